"""User administration (roles, (de)activation) and retrying undelivered email, each audited."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext

from bankapp import audit
from bankapp.audit import trail
from bankapp.notifications import outbox
from bankapp.extensions import db
from bankapp.platform.formatting import day_start_utc
from bankapp.platform.i18n import role_label
from bankapp.models import (MailStatus, OutboxMessage, Role, User, UserSession,
                            now_utc)
from bankapp.platform.search import escape_like


class AdminError(Exception):
    """A refused administrative change; ``str(error)`` is the message to show."""


def user_search(query: str):
    """Users whose email or name contains ``query`` (case-insensitive), a select."""
    stmt = sa.select(User)
    text = " ".join((query or "").split()).lower()
    if text:
        pattern = f"%{escape_like(text)}%"
        # As the trigram indexes of migration 0021 have them: the search reads the indexes.
        stmt = stmt.where(sa.or_(User.searchable_email().like(pattern, escape="\\"),
                                 User.searchable_name().like(pattern, escape="\\")))
    return stmt.order_by(User.email)


def _ensure_another_active_admin(user: User) -> None:
    """Refuse to take away the last active admin (who can then only be the actor)."""
    if user.role != Role.ADMIN or not user.is_active:
        return
    # Lock the active admins' rows: two admins demoting each other at once are serialized,
    # and the second one counts what the first left.
    admins = db.session.scalars(
        sa.select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True))
        .with_for_update()
    ).all()
    if set(admins) <= {user.id}:
        raise AdminError(gettext("You are the last active admin: make another user an admin "
                                 "first."))


def change_role(user: User, role: str, actor: User) -> None:
    if role not in Role.ALL:
        raise AdminError(gettext("Choose customer, teller or admin."))
    if user.role == role:
        raise AdminError(gettext("%(email)s already has the role %(role)s.", email=user.email,
                                 role=role_label(role)))
    if role != Role.ADMIN:
        _ensure_another_active_admin(user)
    previous = user.role
    user.role = role
    audit.record(audit.Action.ROLE_CHANGE, actor=actor, target_type=audit.TargetType.USER,
                 target_id=user.id,
                 details={"email": user.email, "from": previous, "to": role})
    db.session.commit()


def deactivate(user: User, actor: User) -> None:
    """Stop the user logging in, and end every session they have (new session token)."""
    if not user.is_active:
        raise AdminError(gettext("%(email)s is already deactivated.", email=user.email))
    _ensure_another_active_admin(user)
    user.is_active = False
    user.rotate_session_token()
    audit.record(audit.Action.DEACTIVATE, actor=actor, target_type=audit.TargetType.USER,
                 target_id=user.id,
                 details={"email": user.email})
    db.session.commit()


def reactivate(user: User, actor: User) -> None:
    if user.is_active:
        raise AdminError(gettext("%(email)s is already active.", email=user.email))
    user.is_active = True
    audit.record(audit.Action.REACTIVATE, actor=actor, target_type=audit.TargetType.USER,
                 target_id=user.id,
                 details={"email": user.email})
    db.session.commit()


def end_user_sessions(user: User, actor: User) -> None:
    """End every session and API token of ``user`` (who may sign in again at once)."""
    user.rotate_session_token()
    user.revoke_api_tokens()
    audit.record(audit.Action.END_USER_SESSIONS, actor=actor,
                 target_type=audit.TargetType.USER, target_id=user.id,
                 details={"email": user.email})
    db.session.commit()


def end_all_sessions(actor: User) -> int:
    """End every open session and API token of every user, ``actor``'s own included (after a
    suspected leak of cookies or tokens); how many sessions were open.

    Two statements whatever the number of users: a cookie is refused once its session row
    has ended (``devices.open_session_user``), a token once its user's version moved on.
    """
    ended = db.session.execute(
        sa.update(UserSession).where(UserSession.ended_at.is_(None))
        .values(ended_at=now_utc())).rowcount
    db.session.execute(sa.update(User).values(token_version=User.token_version + 1))
    audit.record(audit.Action.END_ALL_SESSIONS, actor=actor, details={"sessions": ended})
    db.session.commit()
    return ended


def audit_query(*, actor: str = "", action: str = "", target_type: str = "",
                target_id: str = "", date_from: date | None = None,
                date_to: date | None = None, after=None, limit: int | None = None):
    """Audit line ids matching the filters, newest first (a select; ``audit_lines`` loads a
    page of them). Dates are whole days in the bank's time zone, both ends included;
    ``actor`` is part of an email; ``after`` a cursor (``trail.cursor_of``)."""
    actor_ids = None
    if actor:
        pattern = f"%{escape_like(actor.strip().lower())}%"
        actor_ids = trail.actors(
            sa.select(User.id).where(User.searchable_email().like(pattern, escape="\\")))
    return trail.query(
        actor_ids=actor_ids, action=action or None, target_type=target_type or None,
        target_id=target_id.strip() or None,
        since=day_start_utc(date_from) if date_from else None,
        before=day_start_utc(date_to + timedelta(days=1)) if date_to else None, after=after,
        limit=limit)


def audit_lines(line_ids: list[int]) -> list:
    """The audit lines (rows, and postings read from their entries) of one page of ids."""
    return trail.load(line_ids)


@dataclass
class AuditPage:
    """One page of the audit trail, and where the next (older) one starts."""

    lines: list
    older: int | None  # the line id to pass as ``older`` for the next page; None: the last
    first: bool  # the newest page


def audit_page(filters: dict, older: int | None, per_page: int) -> AuditPage:
    """The ``per_page`` lines matching ``filters`` after line ``older`` (None: the newest).

    Paged by keyset, not by offset: a page starts in the index where the previous one
    ended, and nothing counts the matching lines: over a million rows an exact total cost
    more than the page itself. An ``older`` that names no line gives the newest page."""
    cursor = trail.cursor_of(older) if older else None
    line_ids = db.session.scalars(audit_query(**filters, after=cursor,
                                              limit=per_page + 1)).all()
    shown = line_ids[:per_page]
    return AuditPage(audit_lines(shown), shown[-1] if len(line_ids) > per_page else None,
                     cursor is None)


def retry_mail(message: OutboxMessage, actor: User) -> None:
    """Give a pending or dead email a fresh set of attempts, due now."""
    if message.status == MailStatus.SENT:
        raise AdminError(gettext("That email has been sent already."))
    audit.record(audit.Action.MAIL_RETRY, actor=actor, target_type=audit.TargetType.MAIL,
                 target_id=message.id,
                 details={"recipient": message.recipient, "subject": message.subject,
                          "was": message.status, "attempts": message.attempts})
    outbox.requeue(message)
    db.session.commit()

"""Signed-in sessions and known browsers: what the security page lists, ends and alerts on.

Sessions
    Every login opens a ``UserSession`` row. The Flask session carries a random key
    (``session["sid"]``); only its SHA-256 is stored. The user loader
    (``bankapp.identity.security.load_user``) accepts a cookie only while its row is open, so
    ending a row ends that browser's session on its next request, as logout does. A cookie without a
    key (a session started before rows existed) is refused: no browser can be signed in
    without being on the list. ``User.rotate_session_token`` ends every open row of the user
    (password change or reset, deactivation, "not me", reset-2fa, a role change).
    ``last_seen_at`` moves when the cookie's ``seen_at`` does (``enforce_session_timeouts``),
    at most once a minute: an ordinary request reads the row but writes nothing.

Known browsers
    A long-lived random cookie (``BROWSER_COOKIE_NAME``) names the browser; ``KnownBrowser``
    keeps its hash per user. A login from a browser this user has not signed in from before
    queues an email to the owner with the login. Several users of one browser share its
    cookie, each with their own row (and their own first alert).

Sign-in history
    Read from the audit trail (login success and failure, wrong second-step codes), whose
    sign-in rows carry the browser label in their details.
"""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import (
    after_this_request,
    current_app,
    g,
    has_request_context,
    request,
    session,
)
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import AuditEvent, KnownBrowser, User, UserSession, now_utc
from bankapp.notifications.outbox import queue_email
from bankapp.platform.formatting import format_timestamp
from bankapp.platform.i18n import N_, recipient_locale
from bankapp.platform.urls import public_url_for

SESSION_KEY = "sid"
BROWSER_COOKIE_MAX_AGE = int(timedelta(days=365).total_seconds())
# What secrets.token_urlsafe(32) makes; anything else in the cookie is treated as no cookie.
_BROWSER_KEY = re.compile(r"[A-Za-z0-9_-]{43}")


def hash_key(key: str) -> str:
    """What is stored of a session or browser key: its SHA-256 (the keys are random)."""
    return hashlib.sha256(key.encode()).hexdigest()


# ---------------------------------------------------------------- browser labels

# Longer User-Agent strings are cut before parsing: no real browser sends more, and the
# parser's regular expressions should never see an attacker's megabyte.
_UA_PARSE_LIMIT = 512


def browser_label(user_agent: str | None) -> str:
    """A short "Firefox 125 on Linux" label for a User-Agent header (ua-parser's rules)."""
    from ua_parser import parse  # its rules load on first use, not at every app start

    result = parse((user_agent or "")[:_UA_PARSE_LIMIT])
    browser = _family(result.user_agent)
    system = _family(result.os)
    if browser and system:
        label = f"{browser} on {system}"
    else:
        label = browser or system or "Unknown browser"
    return label[:120]


def _family(part) -> str:
    if part is None or part.family in (None, "", "Other"):
        return ""
    return f"{part.family} {part.major}" if part.major else part.family


def request_browser_label() -> str | None:
    """The label of the current request's browser; None outside a request (CLI)."""
    if not has_request_context():
        return None
    if "browser_label" not in g:  # a login asks twice (session row, audit row)
        g.browser_label = browser_label(request.headers.get("User-Agent"))
    return g.browser_label


def _client_ip() -> str | None:
    # remote_addr is the client ProxyFix found (TRUST_PROXY_HOPS), else the peer.
    return (request.remote_addr or "")[:45] or None


# ---------------------------------------------------------------- session rows


def open_session(user: User, created_at: datetime | None = None) -> UserSession:
    """Add the row of a session just started in this browser, and put its key in the cookie.

    The caller commits. ``created_at`` keeps a renewed session's original sign-in time.
    """
    key = secrets.token_urlsafe(32)
    session[SESSION_KEY] = key
    now = now_utc()
    row = UserSession(user_id=user.id, key_hash=hash_key(key), created_at=created_at or now,
                      last_seen_at=now, ip_address=_client_ip(),
                      browser=request_browser_label())
    db.session.add(row)
    return row


def _current_key_hash() -> str | None:
    key = session.get(SESSION_KEY)
    return hash_key(key) if isinstance(key, str) and key else None


def current_session_row(user: User) -> UserSession | None:
    """This browser's session row of ``user`` (open or not), if its cookie has a key."""
    key_hash = _current_key_hash()
    if key_hash is None:
        return None
    return db.session.scalar(sa.select(UserSession).where(
        UserSession.key_hash == key_hash, UserSession.user_id == user.id))


def open_session_user(user_id: int) -> User | None:
    """The active user ``user_id`` if this browser's session row of theirs is open, else None.

    One query for the user and the row: the user loader runs it on every request.
    """
    key_hash = _current_key_hash()
    if key_hash is None:
        return None
    return db.session.scalar(_open_session_user_query(),
                             {"user_id": user_id, "key_hash": key_hash})


# Built once, with bind parameters: every signed-in request runs it.
@functools.cache
def _open_session_user_query() -> sa.Select:
    return (sa.select(User).join(UserSession, UserSession.user_id == User.id)
            .where(User.id == sa.bindparam("user_id"),
                   UserSession.key_hash == sa.bindparam("key_hash"),
                   UserSession.ended_at.is_(None)))


def _update_current(**values) -> None:
    key_hash = _current_key_hash()
    if key_hash is None:
        return
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.key_hash == key_hash, UserSession.ended_at.is_(None))
        .values(**values))


def touch_current_session() -> None:
    """Move this session's ``last_seen_at`` to now (called at most once a minute) and commit."""
    _update_current(last_seen_at=now_utc())
    db.session.commit()


def end_current_session() -> None:
    """Mark this browser's session row ended (the caller commits)."""
    _update_current(ended_at=now_utc())


def active_sessions(user: User) -> list[UserSession]:
    """The user's open sessions still within both timeouts: this browser's first, then the
    most recently used."""
    now = now_utc()
    cfg = current_app.config
    this_browser_first = sa.case((UserSession.key_hash == (_current_key_hash() or ""), 0),
                                 else_=1)
    return list(db.session.scalars(
        sa.select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None),
               UserSession.last_seen_at > now - cfg["SESSION_IDLE_TIMEOUT"],
               UserSession.created_at > now - cfg["SESSION_ABSOLUTE_TIMEOUT"])
        .order_by(this_browser_first, UserSession.last_seen_at.desc(), UserSession.id.desc())))


class SessionNotFound(Exception):
    """No session with that id belongs to the user (the view answers 404)."""


def end_session_row(user: User, session_id: int) -> UserSession:
    """End one of ``user``'s sessions (the caller audits and commits); SessionNotFound else."""
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != user.id:
        raise SessionNotFound(session_id)
    if row.ended_at is None:
        row.ended_at = now_utc()
    return row


def end_other_sessions(user: User) -> int:
    """End every open session of ``user`` but this browser's (the caller commits); how many."""
    condition = [UserSession.user_id == user.id, UserSession.ended_at.is_(None)]
    key_hash = _current_key_hash()
    if key_hash is not None:
        condition.append(UserSession.key_hash != key_hash)
    return db.session.execute(
        sa.update(UserSession).where(*condition).values(ended_at=now_utc())).rowcount


# ---------------------------------------------------------------- known browsers


def _browser_cookie_name() -> str:
    return current_app.config["BROWSER_COOKIE_NAME"]


def recognise_browser(user: User) -> bool:
    """Note that ``user`` signed in from this browser; True when it is new for them.

    The browser keeps (or gets) its random cookie, refreshed for another year; the caller
    commits. Two simultaneous first logins cannot both insert: the second finds the first.
    """
    key = request.cookies.get(_browser_cookie_name(), "")
    if not _BROWSER_KEY.fullmatch(key):
        key = secrets.token_urlsafe(32)
    _set_browser_cookie(key)
    key_hash = hash_key(key)
    now = now_utc()
    known = db.session.scalar(sa.select(KnownBrowser).where(
        KnownBrowser.user_id == user.id, KnownBrowser.browser_key_hash == key_hash))
    if known is not None:
        known.last_seen_at = now
        return False
    try:
        with db.session.begin_nested():
            db.session.add(KnownBrowser(user_id=user.id, browser_key_hash=key_hash,
                                        first_seen_at=now, last_seen_at=now))
    except IntegrityError:
        return False  # the same browser's other login just recorded it
    return True


def _set_browser_cookie(key: str) -> None:
    cfg = current_app.config

    @after_this_request
    def set_cookie(response):
        response.set_cookie(_browser_cookie_name(), key, max_age=BROWSER_COOKIE_MAX_AGE,
                            path="/", secure=cfg["SESSION_COOKIE_SECURE"], httponly=True,
                            samesite="Lax")
        return response


def queue_new_browser_alert(user: User, browser: str | None, ip_address: str | None,
                            when: datetime) -> None:
    """Tell the owner about a sign-in from a browser not seen before (the caller commits)."""

    zone = current_app.config.get("BANK_TIMEZONE") or "UTC"
    with recipient_locale(user):
        unknown = gettext("unknown")
        body = gettext(
            "Your bankapp account was just signed in to from a browser it has not been used "
            "from before.\n\n"
            "When: %(when)s (%(zone)s)\n"
            "Browser: %(browser)s\n"
            "IP address: %(address)s\n\n"
            "If this was you, there is nothing to do.\n\n"
            "If it was not you, end that session and change your password now:\n"
            "%(security)s\n", when=format_timestamp(when), zone=zone,
            browser=browser or unknown, address=ip_address or unknown,
            security=public_url_for("auth.security"))
        queue_email(user.email, gettext("New sign-in to your bankapp account"), body)


# ---------------------------------------------------------------- sign-in history

SIGN_IN_ACTIONS = (Action.LOGIN_SUCCESS, Action.LOGIN_FAILURE, Action.MFA_FAILURE)
_FAILURE_REASONS = {
    "bad credentials": N_("wrong password"),
    "inactive": N_("account deactivated"),
    "unverified": N_("email not confirmed"),
    "wrong code": N_("wrong second-step code"),
    "malformed code": N_("wrong second-step code"),
    "used recovery code": N_("recovery code already used"),
}
_SECOND_STEP_REASONS = {"wrong code", "malformed code", "used recovery code"}
_SECOND_FACTORS = {"totp": N_("authenticator app"), "recovery": N_("recovery code"),
                   "passkey": N_("passkey")}


@dataclass(frozen=True)
class SignIn:
    """One line of the security page's "Recent sign-ins"."""

    at: datetime
    ip_address: str | None
    browser: str | None
    succeeded: bool
    outcome: str
    second_step: bool = False  # refused at the code after a right password


def sign_in_history(user: User, limit: int = 20) -> list[SignIn]:
    """The user's last ``limit`` sign-in attempts, newest first, from the audit trail.

    A wrong code typed to approve a payment is no sign-in attempt: it is left out.
    """
    during = AuditEvent.details["during"].as_string()
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.actor_id == user.id, AuditEvent.action.in_(SIGN_IN_ACTIONS),
               sa.or_(AuditEvent.action != Action.MFA_FAILURE, during.is_(None)))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit))
    return [_sign_in(event) for event in events]


def _sign_in(event: AuditEvent) -> SignIn:
    details = event.details if isinstance(event.details, dict) else {}
    succeeded = event.action == Action.LOGIN_SUCCESS
    if succeeded:
        factor = _SECOND_FACTORS.get(details.get("second_factor"))
        outcome = (gettext("Signed in (%(factor)s)", factor=gettext(factor)) if factor
                   else gettext("Signed in"))
    else:
        reason = _FAILURE_REASONS.get(details.get("reason"), N_("refused"))
        outcome = gettext("Failed: %(reason)s", reason=gettext(reason))
    return SignIn(at=event.created_at, ip_address=event.ip_address,
                  browser=details.get("browser"), succeeded=succeeded, outcome=outcome,
                  second_step=event.action == Action.MFA_FAILURE
                  and details.get("reason") in _SECOND_STEP_REASONS)

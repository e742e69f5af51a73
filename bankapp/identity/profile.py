"""What the profile pages do, apart from HTTP: edit name and phone, change the email address.

An email change is a row in ``email_changes`` and two signed links (``bankapp.identity.security``):
one to the new address that confirms it, one to the old address, in a notice, that undoes
it ("this was not me") and ends every session. As in ``services``, every function that
writes commits before any email is sent.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.identity import factors
from bankapp.identity.security import (
    check_password,
    load_email_change_confirm_token,
    load_email_change_not_me_token,
    make_email_change_confirm_token,
    make_email_change_not_me_token,
)
from bankapp.identity.services import WRONG_CURRENT_PASSWORD, find_user
from bankapp.models import EmailChange, EmailChangeStatus, User, now_utc
from bankapp.notifications.outbox import MailKind, queue_email, within_recipient_limit
from bankapp.platform.formatting import format_timestamp
from bankapp.platform.i18n import N_, recipient_locale
from bankapp.platform.urls import public_url_for

log = logging.getLogger("bankapp.auth")

SAME_EMAIL = N_("That is already your email address.")
CODE_NEEDED = N_("Enter the current code from your authenticator app, or a recovery code.")
CHANGED_RECENTLY = N_("Your email address was changed recently, so it cannot be changed again "
                    "before %(when)s. If that change was not you, open the link in the email we "
                    "sent to your previous address, or contact the bank.")
EMAIL_TAKEN_AT_CONFIRMATION = ("That address now belongs to another account, so your email "
                               "address was not changed.")


class ProfileRefused(Exception):
    """Why a profile change was refused: ``message`` belongs to the form field ``field``."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- name and phone


class RecentSignInNeeded(Exception):
    """The change needs a sign-in (or the password again) within ``REAUTH_SECONDS``."""


def update_profile(user: User, first_name: str | None, last_name: str | None,
                   phone_number: str, locale: str | None = None, *,
                   recent_sign_in: bool) -> list[str]:
    """Store the (already validated) details; return the names of the fields that changed.

    ``locale`` is one of ``bankapp.platform.i18n.LANGUAGES``, or None to follow the browser.
    A new phone number (how the bank reaches the owner) needs ``recent_sign_in``, as an email
    change needs the password: a session taken from an unlocked screen cannot move it
    (RecentSignInNeeded, nothing written); the owner is emailed when it changes.

    Audited only when something changed, naming the fields and never their values.
    """
    wanted = {"first_name": first_name or None, "last_name": last_name or None,
              "phone_number": phone_number, "locale": locale or None}
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    if not changed:
        return []
    if "phone_number" in changed and not recent_sign_in:
        raise RecentSignInNeeded()
    if "phone_number" in changed:
        _queue_phone_change_notice(user, user.phone_number, phone_number)
    for name in changed:
        setattr(user, name, wanted[name])
    audit.record(Action.PROFILE_UPDATE, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"fields": changed})
    db.session.commit()
    log.info("user %s updated their profile (%s)", user.id, ", ".join(changed))
    return changed


def _ending(phone: str | None) -> str:
    return (phone or "")[-2:] or "-"


def _queue_phone_change_notice(user: User, old: str | None, new: str) -> None:
    with recipient_locale(user):
        body = gettext(
            "The phone number of your bankapp account was changed from the number ending "
            "%(old)s to the number ending %(new)s.\n\n"
            "If this was you, there is nothing to do.\n\n"
            "If this was NOT you, someone is using your account: reset your password now and "
            "contact the bank:\n%(reset)s\n", old=_ending(old), new=_ending(new),
            reset=public_url_for("auth.password_reset"))
        queue_email(user.email, gettext("Your bankapp phone number was changed"), body)


# ---------------------------------------------------------------- email change: request


def _prove_identity(user: User, current_password: str, code: str | None) -> None:
    """Raise ProfileRefused (audited as an email-change failure) unless the proof holds:
    the password, and a current code (or recovery code) when the user has a second factor."""
    if not check_password(user, current_password):
        db.session.rollback()
        audit.record(Action.EMAIL_CHANGE_FAILURE, actor=user, target_type=TargetType.USER,
                     target_id=user.id, details={"reason": "wrong current password"})
        db.session.commit()
        raise ProfileRefused("current_password", gettext(WRONG_CURRENT_PASSWORD))
    if not user.mfa_enabled:
        return
    if not code:
        db.session.rollback()
        raise ProfileRefused("code", gettext(CODE_NEEDED))
    try:
        factors.verify_second_factor(user, code)  # wrong codes count toward the lockout
    except factors.SecondFactorRefused as refusal:
        raise ProfileRefused("code", refusal.message) from None


def request_email_change(user: User, current_password: str, new_email: str,
                         code: str | None = None) -> None:
    """Start moving ``user`` to ``new_email`` (already validated and lower-cased).

    After the identity check, one transaction supersedes the user's older pending request,
    records the new one and its audit row, and queues the emails: the new address gets the
    confirmation link, or, when another account already uses it, a notice to that account's
    owner instead (the requester sees the same answer either way); both count against the
    per-address limit. The old address always gets a notice with the "this was not me" link.
    """
    _prove_identity(user, current_password, code)
    if new_email == user.email:
        db.session.rollback()
        raise ProfileRefused("new_email", gettext(SAME_EMAIL))
    _refuse_while_undoable(user)
    now = now_utc()
    db.session.execute(
        sa.update(EmailChange)
        .where(EmailChange.user_id == user.id, EmailChange.status == EmailChangeStatus.PENDING)
        .values(status=EmailChangeStatus.SUPERSEDED, cancelled_at=now)
    )
    change = EmailChange(user_id=user.id, old_email=user.email, new_email=new_email,
                         status=EmailChangeStatus.PENDING, requested_at=now)
    db.session.add(change)
    db.session.flush()
    audit.record(Action.EMAIL_CHANGE_REQUEST, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"change_id": change.id})
    if within_recipient_limit(new_email, MailKind.EMAIL_CHANGE):
        owner = find_user(new_email)
        if owner is None:
            _queue_confirmation(change)
        else:
            _queue_address_taken_notice(owner)
    _queue_change_notice(change)
    db.session.commit()
    log.info("user %s asked to change their email (change %s)", user.id, change.id)


def _refuse_while_undoable(user: User) -> None:
    """Refuse a new change while the last confirmed one can still be undone from its old address.

    Otherwise someone holding the session and password could confirm a move to an address
    they own, then move on again: the "not me" link in the real owner's mailbox only undoes a
    change the account still shows, so the second move would leave it dead.
    """
    window = timedelta(seconds=current_app.config["EMAIL_CHANGE_REVERT_MAX_AGE"])
    last = db.session.scalar(
        sa.select(EmailChange.requested_at)
        .where(EmailChange.user_id == user.id,
               EmailChange.status == EmailChangeStatus.CONFIRMED,
               EmailChange.requested_at > now_utc() - window)
        .order_by(EmailChange.requested_at.desc()).limit(1))
    if last is not None:
        db.session.rollback()
        raise ProfileRefused("new_email", gettext(
            CHANGED_RECENTLY, when=format_timestamp(last + window)))


def _queue_confirmation(change: EmailChange) -> None:
    link = public_url_for("auth.confirm_email_change",
                          token=make_email_change_confirm_token(change))
    with recipient_locale(change.user):
        body = gettext(
            "Someone (hopefully you) asked to use this address for their bankapp account.\n\n"
            "To confirm it, open this link (valid for 48 hours; it works once):\n\n"
            "%(link)s\n\n"
            "If you did not ask for this, ignore this email: nothing changes.\n", link=link)
        queue_email(change.new_email, gettext("Confirm your new email address"), body)


def _queue_address_taken_notice(owner: User) -> None:
    with recipient_locale(owner):
        body = gettext(
            "Someone asked to move another bankapp account to your email address. It is already "
            "the address of your account, so nothing was changed.\n\n"
            "Log in: %(login)s\n"
            "Forgot your password? %(reset)s\n\n"
            "If this was not you, you can ignore this email.\n",
            login=public_url_for("auth.login"), reset=public_url_for("auth.password_reset"))
        queue_email(owner.email, gettext("Someone tried to use your email address"), body)


def _queue_change_notice(change: EmailChange) -> None:
    link = public_url_for("auth.email_change_not_me",
                          token=make_email_change_not_me_token(change))
    with recipient_locale(change.user):
        body = gettext(
            "Someone asked to change the email address of your bankapp account to "
            "%(email)s. The change takes effect once that address is confirmed.\n\n"
            "If this was you, there is nothing to do.\n\n"
            "If this was NOT you, open this link within 7 days: it cancels the change (or undoes "
            "it, if it was already confirmed) and logs your account out everywhere. Then reset "
            "your password:\n\n"
            "%(link)s\n", email=change.new_email, link=link)
        queue_email(change.old_email,
                          gettext("Your bankapp email address is being changed"), body)


# ---------------------------------------------------------------- email change: the links


class EmailTaken(Exception):
    """The new address was taken by another account between request and confirmation."""


def _move(change: EmailChange, from_status: str, to_status: str, **times) -> bool:
    """Move ``change`` from ``from_status`` to ``to_status`` unless someone else did first.

    A conditional UPDATE: of two clicks on one link at the same moment, only one wins.
    """
    result = db.session.execute(
        sa.update(EmailChange)
        .where(EmailChange.id == change.id, EmailChange.status == from_status)
        .values(status=to_status, **times)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db.session.refresh(change)
    return True


def confirm_email_change(token: str) -> EmailChange | None:
    """Move the user to the new address; None when the link is invalid, expired or used.

    Raises EmailTaken (changing nothing) when another account took the address meanwhile.
    """
    change = load_email_change_confirm_token(token)
    if change is None or not _move(change, EmailChangeStatus.PENDING,
                                   EmailChangeStatus.CONFIRMED, confirmed_at=now_utc()):
        db.session.rollback()
        return None
    user = change.user
    user.email = change.new_email
    audit.record(Action.EMAIL_CHANGE_CONFIRM, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"change_id": change.id})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        audit.record(Action.EMAIL_CHANGE_FAILURE, actor=change.user,
                     target_type=TargetType.USER, target_id=change.user_id,
                     details={"change_id": change.id, "reason": "address taken"})
        db.session.commit()
        raise EmailTaken() from None
    log.info("user %s confirmed their new email (change %s)", user.id, change.id)
    return change


def change_for_not_me_token(token: str) -> EmailChange | None:
    """The change a "not me" link can still undo (nothing is written)."""
    return load_email_change_not_me_token(token)


def cancel_email_change(token: str) -> EmailChange | None:
    """"This was not me": cancel or undo the change and end every session and API token.

    A confirmed change gets the old address back, unless another account took it meanwhile:
    the sessions then end all the same, and the audit row says the address was not restored.
    None (nothing written) when the link is invalid, expired or already used.
    """
    change = load_email_change_not_me_token(token)
    if change is None:
        db.session.rollback()
        return None
    restore = change.status == EmailChangeStatus.CONFIRMED
    try:
        return _cancel(change, restore)
    except IntegrityError:
        db.session.rollback()
        return _cancel(change, restore=False)


def _cancel(change: EmailChange, restore: bool) -> EmailChange | None:
    was = change.status
    if not _move(change, was, EmailChangeStatus.CANCELLED, cancelled_at=now_utc()):
        db.session.rollback()
        return None
    user = change.user
    if restore:
        user.email = change.old_email
    user.rotate_session_token()
    user.revoke_api_tokens()
    audit.record(Action.EMAIL_CHANGE_CANCEL, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"change_id": change.id, "was": was,
                                             "old_email_restored": restore})
    db.session.commit()
    log.warning("user %s: email change %s cancelled from the old address", user.id, change.id)
    return change

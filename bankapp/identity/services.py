"""What the auth views do, apart from HTTP: register, authenticate, verify, reset, change.

Every email is queued in the outbox (``bankapp.notifications.outbox``) in the transaction of
the action that causes it, and delivered after the commit: a failing mail server can never lose a
sign-up, a password change or the email that tells of it.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timezone

import sqlalchemy as sa
from flask import current_app, session
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.identity import devices, throttle
from bankapp.identity.validators import fold_email
from bankapp.identity.security import (
    check_password,
    end_session,
    hash_password,
    load_reset_token,
    load_verification_token,
    make_reset_token,
    make_verification_token,
    mark_reauthenticated,
    renew_session,
    set_password,
    start_session,
)
from bankapp.models import Role, User
from bankapp.notifications.outbox import MailKind, queue_email, within_recipient_limit
from bankapp.platform.i18n import N_, recipient_locale
from bankapp.platform.urls import public_url_for

log = logging.getLogger("bankapp.auth")


def find_user(email: str) -> User | None:
    """The user with this email (stored folded: NFKC, lower-cased)."""
    email = fold_email(email)
    if not email:
        return None
    return db.session.scalar(sa.select(User).where(User.email == email))


# ---------------------------------------------------------------- sign-up


def register_customer(email: str, password: str, phone_number: str,
                      date_of_birth: date, first_name: str | None = None,
                      last_name: str | None = None) -> None:
    """Create an unverified customer and queue the verification link, in one transaction.

    A taken address is not revealed to the visitor: its owner is emailed instead.
    """
    existing = find_user(email)
    if existing is None:
        user = User(email=email, password_hash=hash_password(password), role=Role.CUSTOMER,
                    phone_number=phone_number, date_of_birth=date_of_birth, is_verified=False,
                    first_name=first_name, last_name=last_name)
        db.session.add(user)
        try:
            db.session.flush()
            audit.record(Action.SIGNUP, actor=user, target_type=TargetType.USER, target_id=user.id)
            queue_verification_email(user)
            db.session.commit()
        except IntegrityError:
            # Someone signed up with the same address a moment ago: treat it as taken.
            db.session.rollback()
            existing = find_user(email)
            if existing is None:
                raise
        else:
            log.info("new customer %s signed up", user.id)
            return
    # The same work as a new account (its hash above is the costly part): the answer's
    # timing does not tell that the address is taken.
    hash_password(password)
    queue_signup_attempt_notice(existing)
    db.session.commit()


def queue_verification_email(user: User) -> None:
    """Queue the confirmation link, unless the per-address limit holds it back (caller commits).

    The visitor's answer is the same either way.
    """
    if not within_recipient_limit(user.email, MailKind.VERIFY):
        return
    link = public_url_for("auth.verify_email", token=make_verification_token(user))
    with recipient_locale(user):
        body = gettext(
            "Welcome to bankapp.\n\n"
            "Please confirm your email address by opening this link (valid for 48 hours):\n\n"
            "%(link)s\n\n"
            "If you did not sign up, you can ignore this email.\n", link=link)
        queue_email(user.email, gettext("Confirm your email address"), body)


def queue_signup_attempt_notice(user: User) -> None:
    """Tell an owner someone signed up with their address (limited per address, as above)."""
    if not within_recipient_limit(user.email, MailKind.SIGNUP_NOTICE):
        return
    with recipient_locale(user):
        body = gettext(
            "Someone tried to sign up for bankapp with your email address. You already have an "
            "account, so nothing was changed.\n\n"
            "Log in: %(login)s\n"
            "Forgot your password? %(reset)s\n\n"
            "If this was not you, you can ignore this email.\n",
            login=public_url_for("auth.login"), reset=public_url_for("auth.password_reset"))
        queue_email(user.email, gettext("Someone tried to sign up with your address"),
                          body)


def resend_verification(email: str) -> None:
    """Send a new verification link if an active, unverified account uses ``email``."""
    user = find_user(email)
    if user is not None and user.is_active and not user.is_verified:
        queue_verification_email(user)
        db.session.commit()


def verify_email(token: str) -> User | None:
    """Mark the token's user verified; None when the token is tampered, expired or stale."""
    user = load_verification_token(token)
    if user is None:
        return None
    if not user.is_verified:
        user.is_verified = True
        audit.record(Action.VERIFY_EMAIL, actor=user, target_type=TargetType.USER,
                     target_id=user.id)
        db.session.commit()
        log.info("user %s verified their email", user.id)
    return user


# ---------------------------------------------------------------- login


class LoginRefused(Exception):
    """Why a login attempt failed; ``unverified`` needs a way to resend the link."""

    def __init__(self, unverified: bool = False):
        super().__init__("unverified" if unverified else "bad credentials")
        self.unverified = unverified


class LoginThrottled(Exception):
    """The account's ``LOGIN_RATE_LIMIT`` attempts are spent: nothing was checked."""


def login_window_seconds() -> int:
    """The length of ``LOGIN_RATE_LIMIT``'s window: the longest a spent login count pauses."""
    return int(throttle.Limit.parse(current_app.config["LOGIN_RATE_LIMIT"]).window
               .total_seconds())


def login_rate_key(email) -> str:
    """The rate-limit store's key for attempts on one email address, the same on the login
    form and the token endpoint, so the two channels share one count (a digest: no address
    in the store)."""
    email = fold_email(email)
    return "login-email:" + hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()


def authenticate(email: str, password: str, via_api: bool = False) -> User:
    """The user these credentials belong to, or LoginRefused (LoginThrottled once the
    account's attempts are spent).

    Unknown email, wrong password and deactivated account raise the same refusal so the
    page cannot be used to find out who has an account. Attempts on an account are counted
    in its row (``bankapp.identity.throttle``), web and API together, with or without Redis;
    a successful one gives its slot back. A refusal is audited as a login failure, or with
    ``via_api`` as a refused token request (``record_api_token``).
    """
    user = find_user(email)
    if user is not None and throttle.take_slot(
            throttle.PASSWORD, user.id,
            throttle.Limit.parse(current_app.config["LOGIN_RATE_LIMIT"])) is None:
        raise LoginThrottled()
    if not check_password(user, password):
        db.session.rollback()
        _login_failed(user, email, "bad credentials", via_api)
        raise LoginRefused()
    # check_password may have upgraded the stored hash to the current parameters.
    db.session.commit()
    if not user.is_active:
        _login_failed(user, email, "inactive", via_api)
        raise LoginRefused()
    throttle.give_back(throttle.PASSWORD, user.id)
    if not user.is_verified:
        _login_failed(user, email, "unverified", via_api)
        raise LoginRefused(unverified=True)
    return user


def record_api_token(user: User | None, email: str, refused: str | None = None) -> None:
    """Audit a token request (``POST /api/v1/token``): issued to ``user``, or ``refused`` for
    that reason, with the address given (never the password), as the web login is."""
    details = {"email": (email or "").strip().lower()[:254]}
    if refused:
        details["reason"] = refused
    audit.record(Action.API_TOKEN_FAILURE if refused else Action.API_TOKEN_ISSUED,
                 actor=user, target_type=TargetType.USER,
                 target_id=user.id if user else None, details=details)
    db.session.commit()


def _login_failed(user: User | None, email: str, reason: str, via_api: bool) -> None:
    # The submitted address, never the password: enough to spot an account being ground.
    if via_api:
        record_api_token(user, email, refused=reason)
        return
    audit.record(Action.LOGIN_FAILURE, actor=user, target_type=TargetType.USER,
                 target_id=user.id if user else None,
                 details={"email": (email or "").strip().lower()[:254], "reason": reason,
                          "browser": devices.request_browser_label()})
    db.session.commit()


def log_in(user: User, second_factor: str | None = None) -> None:
    """Start the user's session (after ``authenticate``, and the second factor) and record it.

    A browser this user has not signed in from before is marked in the audit row, and the
    email to the owner is queued with it.
    """
    start_session(user)
    new_browser = devices.recognise_browser(user)
    details = {"browser": devices.request_browser_label()}
    if second_factor:
        details["second_factor"] = second_factor
    if new_browser:
        details["new_browser"] = True
    event = audit.record(Action.LOGIN_SUCCESS, actor=user, target_type=TargetType.USER,
                         target_id=user.id, details=details)
    if new_browser:
        db.session.flush()  # the audit row's time is the one the email gives
        devices.queue_new_browser_alert(user, details["browser"], event.ip_address,
                                        event.created_at)
    db.session.commit()


def begin_second_factor(user: User, next_url: str | None) -> None:
    """The password was right and ``user`` has a second factor: remember who is half-way in.

    Nothing logs the browser in yet (every logged-in page and the API refuse it); the
    second step must follow within ``MFA_PENDING_SECONDS``.
    """
    session.clear()
    session["mfa_user"] = user.id
    session["mfa_since"] = datetime.now(timezone.utc).timestamp()
    if next_url:
        session["mfa_next"] = next_url


def pending_second_factor() -> User | None:
    """The user who gave the right password in this browser and owes the second factor."""
    uid, since = session.get("mfa_user"), session.get("mfa_since", 0)
    age = datetime.now(timezone.utc).timestamp() - since
    if not isinstance(uid, int) or age > current_app.config["MFA_PENDING_SECONDS"]:
        return None
    user = db.session.get(User, uid)
    if user is None or not user.is_active or not user.mfa_enabled:
        return None
    return user


def finish_second_factor(user: User, kind: str) -> str | None:
    """Log ``user`` in after the second factor; where they wanted to go."""
    next_url = session.get("mfa_next")
    log_in(user, second_factor=kind)
    return next_url


def log_out(user) -> None:
    """End the session everywhere its token is used, and record it."""
    if getattr(user, "is_authenticated", False):
        audit.record(Action.LOGOUT, actor=user, target_type=TargetType.USER, target_id=user.id)
    end_session(user)


# ---------------------------------------------------------------- sessions (security page)


def end_user_session(user: User, session_id: int) -> bool:
    """End one of ``user``'s sessions; True when it was this browser's (now logged out).

    Raises ``devices.SessionNotFound`` when no session with that id is the user's.
    """
    row = devices.end_session_row(user, session_id)
    audit.record(Action.SESSION_END, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"session_id": row.id, "browser": row.browser,
                                             "session_ip": row.ip_address})
    this_browser = devices.current_session_row(user)
    if this_browser is not None and this_browser.id == row.id:
        end_session(user)
        return True
    db.session.commit()
    return False


def end_other_sessions(user: User) -> int:
    """End every session of ``user`` except this browser's; how many were open."""
    ended = devices.end_other_sessions(user)
    audit.record(Action.SESSION_END_OTHERS, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"ended": ended})
    db.session.commit()
    return ended


# ---------------------------------------------------------------- password reset


def request_password_reset(email: str) -> None:
    """Queue a reset link if an active account uses ``email``, else a note that none does.

    The same work either way (one per-address count, one audit row, one queued email, one
    commit), so neither the answer nor its timing tells whether the address has an account.
    """
    user = find_user(email)
    if user is None or not user.is_active:
        _queue_no_account_notice((email or "").strip().lower())
        return
    mail_allowed = within_recipient_limit(user.email, MailKind.RESET)
    audit.record(Action.PASSWORD_RESET_REQUEST, actor=user, target_type=TargetType.USER,
                 target_id=user.id,
                 details=None if mail_allowed else {"email": "held back (per-address limit)"})
    if mail_allowed:
        link = public_url_for("auth.password_reset_confirm", token=make_reset_token(user))
        with recipient_locale(user):
            body = gettext(
                "Someone (hopefully you) asked to reset your bankapp password.\n\n"
                "Choose a new password here (the link works once, within one hour):\n\n"
                "%(link)s\n\n"
                "If you did not ask for this, ignore this email: your password stays as it "
                "is.\n", link=link)
            queue_email(user.email, gettext("Reset your bankapp password"), body)
    db.session.commit()


def _queue_no_account_notice(address: str) -> None:
    """Tell ``address`` that no active account uses it (a reset asked for it)."""
    mail_allowed = within_recipient_limit(address, MailKind.RESET)
    # No address in the audit row: it may belong to nobody.
    audit.record(Action.PASSWORD_RESET_REQUEST, actor=None, target_type=TargetType.USER,
                 target_id=None, details={"account": "none" if mail_allowed
                                          else "none; held back (per-address limit)"})
    if mail_allowed:
        body = gettext(
            "Someone (hopefully you) asked to reset the bankapp password of this email "
            "address, but no active bankapp account uses it.\n\n"
            "If you have an account under another address, ask again with that one: "
            "%(reset)s\n\n"
            "If you did not ask for this, ignore this email.\n",
            reset=public_url_for("auth.password_reset"))
        queue_email(address, gettext("Reset your bankapp password"), body)
    db.session.commit()


def user_for_reset_token(token: str) -> User | None:
    return load_reset_token(token)


def reset_password(user: User, new_password: str) -> None:
    """Set the new password, end every session of the user, and tell them by email."""
    set_password(user, new_password)
    # The link reached the user's mailbox, which is what verification proves.
    user.is_verified = True
    audit.record(Action.PASSWORD_RESET_COMPLETE, actor=user, target_type=TargetType.USER,
                 target_id=user.id)
    queue_password_changed_notice(user)
    db.session.commit()
    log.info("user %s reset their password", user.id)


def queue_password_changed_notice(user: User) -> None:
    """Tell the owner their password changed, and what to do if it was not them."""
    with recipient_locale(user):
        body = gettext(
            "Your bankapp password was just changed. Every other session that was open has "
            "ended, and every API access token issued before no longer works.\n\n"
            "If you did not do this, reset your password now and contact the bank:\n"
            "%(reset)s\n", reset=public_url_for("auth.password_reset"))
        queue_email(user.email, gettext("Your bankapp password was changed"), body)


# ---------------------------------------------------------------- password change


WRONG_CURRENT_PASSWORD = N_("That is not your current password.")
SAME_AS_CURRENT = N_("Your new password must be different from your current one.")


class PasswordChangeRefused(Exception):
    """Why a password change was refused: ``message`` belongs to the form field ``field``."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def change_password(user: User, current_password: str, new_password: str) -> None:
    """Replace a logged-in user's password after checking their current one.

    One transaction stores the new hash, ends every other session and API token of the user
    (new session token and token version), writes the audit row and queues the notice to
    the owner; this browser then stays logged in under the new session token. Raises
    PasswordChangeRefused, changing nothing, for a wrong current password (which is audited
    as a failure, like a failed login) or a new one equal to it.
    """
    if not check_password(user, current_password):
        db.session.rollback()
        # Guesses from an unlocked session leave a trace, as failed logins do.
        audit.record(Action.PASSWORD_CHANGE_FAILURE, actor=user, target_type=TargetType.USER,
                     target_id=user.id, details={"reason": "wrong current password"})
        db.session.commit()
        raise PasswordChangeRefused("current_password", gettext(WRONG_CURRENT_PASSWORD))
    # Only compared once the current password is proven, so it reveals nothing about it.
    if new_password == current_password:
        db.session.rollback()
        raise PasswordChangeRefused("new_password1", gettext(SAME_AS_CURRENT))
    set_password(user, new_password)
    audit.record(Action.PASSWORD_CHANGE, actor=user, target_type=TargetType.USER,
                 target_id=user.id)
    renew_session(user)
    queue_password_changed_notice(user)
    db.session.commit()
    log.info("user %s changed their password", user.id)


def reauthenticate(user: User, password: str) -> bool:
    """The password again in a signed-in browser: marks it recently authenticated, or audits
    a failure (as a wrong current password on the password-change page is)."""
    if check_password(user, password):
        db.session.commit()  # a rehash, if the parameters changed
        mark_reauthenticated()
        return True
    db.session.rollback()
    audit.record(Action.REAUTH_FAILURE, actor=user, target_type=TargetType.USER,
                 target_id=user.id)
    db.session.commit()
    return False

"""Passwords, signed tokens, sessions and roles: the security rules every blueprint shares."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort, current_app, session
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bankapp.identity import devices
from bankapp.extensions import db, login_manager
from bankapp.models import EmailChange, EmailChangeStatus, User

# ---------------------------------------------------------------- passwords


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(
        time_cost=cfg["ARGON2_TIME_COST"],
        memory_cost=cfg["ARGON2_MEMORY_COST"],
        parallelism=cfg["ARGON2_PARALLELISM"],
    )


def hash_password(password: str) -> str:
    """An argon2id hash at the configured (OWASP) parameters."""
    return _hasher().hash(password)


# Compared against when the email is unknown, so both failures take the same time.
_DUMMY_HASHES: dict[tuple, str] = {}


def check_password(user: User | None, password: str) -> bool:
    """True when ``password`` is the user's; upgrades the stored hash when parameters changed."""
    hasher = _hasher()
    if user is None:
        key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
        dummy = _DUMMY_HASHES.get(key)
        if dummy is None:  # made once: hashing on every call would itself be the tell
            dummy = _DUMMY_HASHES.setdefault(key, hasher.hash("not-a-real-password"))
        try:
            hasher.verify(dummy, password)
        except VerificationError:
            pass
        return False
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return True


def verify_secret(stored_hash: str, candidate: str) -> bool:
    """Whether ``candidate`` matches an argon2id ``stored_hash`` (recovery codes)."""
    try:
        return _hasher().verify(stored_hash, candidate)
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: User, password: str) -> None:
    """Change the password; every session and token issued before stops working."""
    user.password_hash = hash_password(password)
    user.rotate_session_token()
    user.revoke_api_tokens()


# ---------------------------------------------------------------- signed tokens

VERIFY_EMAIL_SALT = "bankapp.verify-email"
RESET_PASSWORD_SALT = "bankapp.reset-password"
EMAIL_CHANGE_CONFIRM_SALT = "bankapp.notifications.outbox-change.confirm"
EMAIL_CHANGE_NOT_ME_SALT = "bankapp.notifications.outbox-change.not-me"


def signing_serializer(salt: str) -> URLSafeTimedSerializer:
    """Signs and times values sent out (email links, form approvals) under ``salt``."""
    # HMAC-SHA-256 rather than itsdangerous' default SHA-1 (ASVS 5.0 V11.4.1).
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt,
                                  signer_kwargs={"digest_method": hashlib.sha256})


def make_verification_token(user: User) -> str:
    return signing_serializer(VERIFY_EMAIL_SALT).dumps({"uid": user.id, "email": user.email})


def load_verification_token(token: str) -> User | None:
    """The user a verification token names, or None when it is tampered, expired or stale."""
    try:
        data = signing_serializer(VERIFY_EMAIL_SALT).loads(
            token, max_age=current_app.config["EMAIL_VERIFICATION_MAX_AGE"]
        )
    except (BadSignature, SignatureExpired):
        return None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or user.email != data.get("email"):
        return None
    return user


def _password_fingerprint(user: User) -> str:
    # Binding the token to the current hash makes it single-use: a new password voids it.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def _email_fingerprint(user: User) -> str:
    # Binding it to the address it was sent to: an email change undone ("not me") voids a
    # link sent to the address it undid. A digest, so the link does not spell the address.
    return hashlib.sha256(user.email.encode()).hexdigest()[:32]


def make_reset_token(user: User) -> str:
    return signing_serializer(RESET_PASSWORD_SALT).dumps(
        {"uid": user.id, "pw": _password_fingerprint(user), "em": _email_fingerprint(user)}
    )


def load_reset_token(token: str) -> User | None:
    """The user a reset token names, or None when tampered, expired, already used, or sent
    to an address the account no longer has."""
    try:
        data = signing_serializer(RESET_PASSWORD_SALT).loads(
            token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"]
        )
    except (BadSignature, SignatureExpired):
        return None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if (user is None or not user.is_active or data.get("pw") != _password_fingerprint(user)
            or data.get("em") != _email_fingerprint(user)):
        return None
    return user


def _email_change_payload(change: EmailChange) -> dict:
    # Both addresses travel in the token: it names one change from one address to another.
    return {"change": change.id, "old": change.old_email, "new": change.new_email}


def make_email_change_confirm_token(change: EmailChange) -> str:
    """The link sent to the new address (valid ``EMAIL_VERIFICATION_MAX_AGE``)."""
    return signing_serializer(EMAIL_CHANGE_CONFIRM_SALT).dumps(_email_change_payload(change))


def make_email_change_not_me_token(change: EmailChange) -> str:
    """The "this was not me" link sent to the old address (valid ``EMAIL_CHANGE_REVERT_MAX_AGE``)."""
    return signing_serializer(EMAIL_CHANGE_NOT_ME_SALT).dumps(_email_change_payload(change))


def _load_email_change(token: str, salt: str, max_age: int) -> EmailChange | None:
    try:
        data = signing_serializer(salt).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("change"), int):
        return None
    change = db.session.get(EmailChange, data["change"])
    if change is None or (change.old_email, change.new_email) != (data.get("old"), data.get("new")):
        return None
    return change


def load_email_change_confirm_token(token: str) -> EmailChange | None:
    """The change a confirmation token names while it can still be confirmed, else None.

    Only a pending change of an active user still at the old address: once confirmed,
    cancelled or superseded, or once the user's address is something else, the link is dead.
    """
    change = _load_email_change(token, EMAIL_CHANGE_CONFIRM_SALT,
                                current_app.config["EMAIL_VERIFICATION_MAX_AGE"])
    if (change is None or change.status != EmailChangeStatus.PENDING
            or not change.user.is_active or change.user.email != change.old_email):
        return None
    return change


def load_email_change_not_me_token(token: str) -> EmailChange | None:
    """The change a "not me" token names while it can still be undone, else None.

    A pending change, or a confirmed one whose new address the user still has; once
    cancelled (the link was used), superseded, or followed by another change, it is dead.
    """
    change = _load_email_change(token, EMAIL_CHANGE_NOT_ME_SALT,
                                current_app.config["EMAIL_CHANGE_REVERT_MAX_AGE"])
    if change is None:
        return None
    if change.status == EmailChangeStatus.PENDING:
        return change
    if change.status == EmailChangeStatus.CONFIRMED and change.user.email == change.new_email:
        return change
    return None


# ---------------------------------------------------------------- sessions


def _now_ts() -> float:
    return datetime.now(timezone.utc).timestamp()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Load the session's user while the cookie's session token is current and its row open.

    Ending the row (the security page, logout) or rotating the token (password change,
    deactivation) refuses the cookie from its next request on.
    """
    uid, _, token = user_id.partition(":")
    if not uid.isdigit() or not token:
        return None
    user = devices.open_session_user(int(uid))
    if user is None or not user.is_active or user.session_token != token:
        return None
    return user


def _fresh_session(user: User, auth_at: float, created_at: datetime | None = None) -> None:
    # A new session (no fixation) whose cookie carries the user's current session token
    # and the key of a new session row (the caller commits the row).
    session.clear()
    login_user(user, remember=False)
    session.permanent = True
    session["auth_at"] = auth_at
    session["seen_at"] = _now_ts()
    devices.open_session(user, created_at=created_at)


def start_session(user: User) -> None:
    """Log ``user`` in on a fresh session (no fixation) with the timeout clocks started.

    Adds the session's row; the caller commits.
    """
    _fresh_session(user, _now_ts())
    user.last_login = datetime.now(timezone.utc)


def renew_session(user: User) -> None:
    """Keep this browser logged in after ``user``'s session token was rotated.

    Every other cookie still carries the old token and stops working, and the rotation ended
    every session row; this browser gets a fresh session with the new token and a new row
    (new key) that keeps the original sign-in time, as the absolute timeout keeps counting
    from the original login. The caller commits.
    """
    previous = devices.current_session_row(user)
    _fresh_session(user, session.get("auth_at") or _now_ts(),
                   created_at=previous.created_at if previous is not None else None)


def end_session(user: User | None) -> None:
    """Log this browser out: its session row ends, so a copy of its cookie is refused too.

    The user's other sessions stay open (the security page ends them).
    """
    if user is not None and getattr(user, "is_authenticated", False):
        devices.end_current_session()
        db.session.commit()
    logout_user()
    session.clear()


def enforce_session_timeouts() -> None:
    """End a session idle for too long, or older than the absolute limit."""
    if "_user_id" not in session:
        return
    now = _now_ts()
    cfg = current_app.config
    auth_at = session.get("auth_at", 0)
    seen_at = session.get("seen_at", 0)
    if (now - seen_at > cfg["SESSION_IDLE_TIMEOUT"].total_seconds()
            or now - auth_at > cfg["SESSION_ABSOLUTE_TIMEOUT"].total_seconds()):
        devices.end_current_session()
        db.session.commit()
        logout_user()
        session.clear()
        return
    # Write the cookie, and the session row's last_seen_at, at most once a minute: enough
    # precision for a 30-minute idle timeout, and no database write on every request.
    if now - seen_at > 60:
        session["seen_at"] = now
        devices.touch_current_session()


def recently_authenticated() -> bool:
    """Whether this browser proved a factor (login, or the password again) within
    ``REAUTH_SECONDS``: what ending sessions asks for (ASVS 5.0 V7.5.2)."""
    proved = max(session.get("auth_at", 0), session.get("reauth_at", 0))
    return _now_ts() - proved <= current_app.config["REAUTH_SECONDS"]


def mark_reauthenticated() -> None:
    session["reauth_at"] = _now_ts()


# ---------------------------------------------------------------- roles and redirects


def role_required(*roles: str):
    """Allow only logged-in users with one of ``roles``: anonymous → login, others → 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator

"""Second factors: TOTP enrolment and checks, recovery codes, the lockout, the enrolment gate.

Modelled on django-otp's devices: each factor is a row that verifies a code; a TOTP code is
accepted once (``TotpDevice.last_step``); recovery codes are single-use. Codes are counted per
account in the user's row (``bankapp.identity.throttle``: every worker, web and API, shares one
count, with or without Redis): each check takes a slot first, so of many codes sent at once at
most ``MFA_FAILURE_LIMIT`` are checked, and the wrong one that spends the last slot locks
second-factor checks for ``MFA_LOCKOUT_MINUTES``, with one audit row and one email to the owner.
A right code, or one a twin request has just used, gives its slot back. The way back from a
lost phone is a recovery code, or an operator's ``flask reset-2fa``.
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone

import pyotp
import segno
import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.platform.crypto import decrypt_field, encrypt_field, reencrypt_field
from bankapp.identity import throttle
from bankapp.identity.devices import request_browser_label
from bankapp.notifications.outbox import queue_email
from bankapp.extensions import db
from bankapp.platform.i18n import N_, recipient_locale
from bankapp.models import RecoveryCode, Role, TotpDevice, User, WebAuthnCredential, now_utc
from bankapp.identity.security import hash_password, verify_secret
from bankapp.platform.urls import public_url_for

log = logging.getLogger("bankapp.auth")

ISSUER = "bankapp"
RECOVERY_CODE_COUNT = 10
PENDING_SECRET_MINUTES = 10
# No 0/o, 1/l/i: a code copied from paper must not be misread.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_GROUPS = 3  # xxxx-xxxx-xxxx: 12 characters, ~59 bits
TOTP_CODE = re.compile(r"[0-9]{6}")
RECOVERY_CODE = re.compile(rf"[{RECOVERY_ALPHABET}]{{{4 * RECOVERY_GROUPS}}}")

USED_CODE = N_("That code has just been used. Wait for the next code from your app.")
WRONG_CODE = N_("That code is not right. Enter the current 6-digit code from your app, or an unused "
              "recovery code.")
MALFORMED_CODE = N_("Enter the 6-digit code from your authenticator app, or one of your recovery "
                  "codes (12 letters and digits).")
USED_RECOVERY_CODE = N_("That recovery code has already been used: each one works once. Enter "
                        "another recovery code, or the 6-digit code from your app.")
# While setting up, the customer has no recovery codes yet: the messages do not mention them.
WRONG_SETUP_CODE = N_("That code is not right. Enter the 6-digit code your app shows now for "
                      "bankapp (a new one appears every 30 seconds).")
MALFORMED_SETUP_CODE = N_("Enter the 6-digit code from your authenticator app.")
LOCKED = N_("Too many wrong codes: second-factor sign-in for this account is locked for "
          "%(minutes)s minutes. We have emailed the account owner.")


class SecondFactorRefused(Exception):
    """A code was refused; ``locked`` when the account's second-factor checks are locked."""

    def __init__(self, message: str, locked: bool = False):
        super().__init__(message)
        self.message = message
        self.locked = locked


# ---------------------------------------------------------------- policy


def enrolment_required(user: User) -> bool:
    """Whether ``user`` must have a second factor before using the bank (staff always)."""
    if user.role in Role.STAFF:
        return True
    return current_app.config["CUSTOMER_2FA"] == "required"


def needs_enrolment(user: User) -> bool:
    return not user.mfa_enabled and enrolment_required(user)


# ---------------------------------------------------------------- TOTP enrolment


def _device(user: User) -> TotpDevice | None:
    return db.session.scalar(sa.select(TotpDevice).where(TotpDevice.user_id == user.id))


def has_totp(user: User) -> bool:
    """Whether ``user`` has a confirmed authenticator app."""
    device = _device(user)
    return device is not None and device.confirmed_at is not None


def passkey_count(user: User) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(WebAuthnCredential).where(
        WebAuthnCredential.user_id == user.id)) or 0


def refresh_mfa_enabled(user: User) -> None:
    """``mfa_enabled`` from the factors left: an authenticator app or any passkey.

    Called in the transaction that changed them. Recovery codes are the way back of the
    factors, not a factor: they go when the last factor goes.
    """
    user.mfa_enabled = has_totp(user) or passkey_count(user) > 0
    if not user.mfa_enabled:
        db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def start_totp_enrolment(user: User) -> str:
    """A new secret for ``user``'s authenticator app, stored unconfirmed; its base32 text.

    Reloading the page within ``PENDING_SECRET_MINUTES`` shows the same secret (a QR code
    already scanned keeps working); after that a new one replaces it. Refused (ValueError)
    while a confirmed device exists: remove it first.
    """
    device = _device(user)
    if device is not None and device.confirmed_at is not None:
        raise ValueError("an authenticator app is already set up")
    if device is not None and device.created_at > now_utc() - timedelta(
            minutes=PENDING_SECRET_MINUTES):
        return decrypt_field(device.secret_encrypted)
    secret = pyotp.random_base32()
    if device is None:
        device = TotpDevice(user_id=user.id, last_step=0)
        db.session.add(device)
    device.secret_encrypted = encrypt_field(secret)
    device.created_at = now_utc()
    db.session.commit()
    return secret


def enrol_totp_without_code(user: User) -> str:
    """Give ``user`` a confirmed authenticator secret with no code: demo staff, test fixtures.

    The caller shows the secret to whoever will type it into an app; no recovery codes.
    """
    secret = pyotp.random_base32()
    db.session.execute(sa.delete(TotpDevice).where(TotpDevice.user_id == user.id))
    db.session.add(TotpDevice(user_id=user.id, secret_encrypted=encrypt_field(secret),
                              confirmed_at=now_utc(), last_step=0))
    user.mfa_enabled = True
    db.session.commit()
    return secret


def reencrypt_secrets() -> int:
    """Re-encrypt every stored TOTP secret under the first FIELD_ENCRYPTION_KEY; how many."""
    devices = db.session.scalars(sa.select(TotpDevice)).all()
    for device in devices:
        device.secret_encrypted = reencrypt_field(device.secret_encrypted)
    db.session.commit()
    return len(devices)


def pending_totp_secret(user: User) -> str | None:
    """The secret of an enrolment in progress, or None."""
    device = _device(user)
    if device is None or device.confirmed_at is not None:
        return None
    return decrypt_field(device.secret_encrypted)


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code_data_uri(user: User, secret: str) -> str:
    """The provisioning URI as an SVG QR code in a data: URI (an <img>, allowed by the CSP)."""
    return segno.make(provisioning_uri(user, secret), error="m").svg_data_uri(scale=5)


def confirm_totp_enrolment(user: User, code: str) -> list[str]:
    """Finish enrolment with a code from the app; the new recovery codes (shown once).

    Raises SecondFactorRefused, changing nothing, for a wrong code or when no enrolment was
    started (a POST without the setup page). Wrong codes count toward the lockout.
    """
    device = _device(user)
    if device is None or device.confirmed_at is not None:
        raise SecondFactorRefused(gettext("Start again: open the set-up page to get a new QR code."))
    code = normalise_code(code)
    slot = _take_slot(user)
    step = _matching_step(decrypt_field(device.secret_encrypted), code, after=0)
    if step is None:
        _count_failure(user, "totp enrolment", slot)
        raise SecondFactorRefused(gettext(WRONG_SETUP_CODE if TOTP_CODE.fullmatch(code)
                                          else MALFORMED_SETUP_CODE))
    throttle.give_back(throttle.SECOND_FACTOR, user.id)
    device.confirmed_at = device.last_used_at = now_utc()
    device.last_step = step
    user.mfa_enabled = True
    codes = _replace_recovery_codes(user)
    audit.record(Action.MFA_ENROL, actor=user, target_type=TargetType.USER, target_id=user.id,
                 details={"factor": "totp"})
    db.session.commit()
    log.info("user %s set up an authenticator app", user.id)
    return codes


# ---------------------------------------------------------------- checking a code


def normalise_code(code: str | None) -> str:
    """Spaces and dashes out, lower case: how people type codes from apps and paper."""
    return re.sub(r"[\s-]", "", code or "").lower()[:64]


def _matching_step(secret: str, code: str, after: int) -> int | None:
    """The time step whose code is ``code``: now, or ``TOTP_DRIFT_STEPS`` either side."""
    if not TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(datetime.now(timezone.utc))
    drift = int(current_app.config["TOTP_DRIFT_STEPS"])
    for step in range(now - drift, now + drift + 1):
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


SIGN_IN = "sign-in"
PAYMENT = "payment"  # a step-up: approving a transfer or a higher limit, already signed in


def verify_second_factor(user: User, code: str | None, during: str = SIGN_IN) -> str:
    """Check a TOTP or recovery code for ``user``; the kind that matched ("totp", "recovery").

    A code is used up by its success (same transaction as the caller's commit is not needed:
    the use is committed here, atomically, so two requests with one code cannot both pass).
    Raises SecondFactorRefused for a wrong, reused or malformed code, or while locked. A code
    that a twin request has just used is refused without counting as a wrong one. Wrong codes
    count toward the lockout whatever ``during`` is; a ``PAYMENT`` typo is audited as such, so
    the security page never lists it as a failed sign-in.
    """
    code = normalise_code(code)
    slot = _take_slot(user)
    device = _device(user)
    if device is not None and device.confirmed_at is not None and TOTP_CODE.fullmatch(code):
        secret = decrypt_field(device.secret_encrypted)
        step = _matching_step(secret, code, device.last_step)
        if step is not None and _claim_step(device, step):
            return _succeeded(user, "totp")
        if step is not None or _matching_step(secret, code, after=0) is not None:
            _refuse_as_used(user)
    elif RECOVERY_CODE.fullmatch(code):
        outcome = _use_recovery_code(user, code)
        if outcome == "used":
            return _succeeded(user, "recovery")
        if outcome == "taken":
            _refuse_as_used(user)
        if _was_used_recovery_code(user, code):
            _count_failure(user, "used recovery code", slot, during)
            raise SecondFactorRefused(gettext(USED_RECOVERY_CODE))
    malformed = not (TOTP_CODE.fullmatch(code) or RECOVERY_CODE.fullmatch(code))
    _count_failure(user, "malformed code" if malformed else "wrong code", slot, during)
    raise SecondFactorRefused(gettext(MALFORMED_CODE if malformed else WRONG_CODE))


def _succeeded(user: User, kind: str) -> str:
    throttle.give_back(throttle.SECOND_FACTOR, user.id)
    return kind


def _refuse_as_used(user: User) -> None:
    # A right code already used (two posts of one page): no guess, so no failure counted.
    db.session.rollback()
    throttle.give_back(throttle.SECOND_FACTOR, user.id)
    raise SecondFactorRefused(gettext(USED_CODE))


def _claim_step(device: TotpDevice, step: int) -> bool:
    # Conditional: of two requests with the same code, only one moves last_step past it.
    moved = db.session.execute(
        sa.update(TotpDevice)
        .where(TotpDevice.id == device.id, TotpDevice.last_step < step)
        .values(last_step=step, last_used_at=now_utc())
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    return moved


def _matching_recovery_code(user: User, code: str) -> RecoveryCode | None:
    # A recovery code has ~59 bits, under ASVS's 112 for a plain hash: each is stored as an
    # argon2id hash with its own salt, so the candidate is checked against each unused one.
    for row in db.session.scalars(sa.select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))):
        if verify_secret(row.code_hash, code):
            return row
    return None


def _was_used_recovery_code(user: User, code: str) -> bool:
    # Only on the failure path (argon2 per used code): the current set's spent codes.
    return any(verify_secret(code_hash, code) for code_hash in db.session.scalars(
        sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id,
                                                RecoveryCode.used_at.is_not(None))))


def _use_recovery_code(user: User, code: str) -> str | None:
    """"used" (now, by this request), "taken" (by a twin request meanwhile) or None."""
    row = _matching_recovery_code(user, code)
    if row is None:
        return None
    # Conditional: of two requests with one code, only one marks it used.
    used = db.session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
        .values(used_at=now_utc())
        .execution_options(synchronize_session=False)).rowcount == 1
    if used:
        audit.record(Action.MFA_RECOVERY_CODE_USED, actor=user, target_type=TargetType.USER,
                     target_id=user.id, details={"left": recovery_codes_left(user)})
    db.session.commit()
    return "used" if used else "taken"


# ---------------------------------------------------------------- recovery codes


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(4 * RECOVERY_GROUPS))
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=hash_password(normalise_code(c)))
                       for c in codes)
    return codes


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def regenerate_recovery_codes(user: User) -> list[str]:
    """Ten new codes (the old ones stop working); shown once. The page asks for a recent
    sign-in first (``identity.web.recent_login_required``)."""
    if not user.mfa_enabled:
        raise SecondFactorRefused(gettext("Set up an authenticator app first."))
    codes = _replace_recovery_codes(user)
    audit.record(Action.MFA_RECOVERY_CODES_RENEWED, actor=user, target_type=TargetType.USER,
                 target_id=user.id)
    db.session.commit()
    return codes


# ---------------------------------------------------------------- removal and reset


def remove_totp(user: User, code: str) -> None:
    """Remove the authenticator app: needs a current code (or recovery code), and on the page
    a recent sign-in (the password within ``REAUTH_SECONDS``).

    Passkeys stay, and with them two-step sign-in and the recovery codes.
    """
    verify_second_factor(user, code)
    db.session.execute(sa.delete(TotpDevice).where(TotpDevice.user_id == user.id))
    refresh_mfa_enabled(user)
    audit.record(Action.MFA_REMOVE, actor=user, target_type=TargetType.USER, target_id=user.id,
                 details={"factor": "totp"})
    db.session.commit()
    log.info("user %s removed their authenticator app", user.id)


def _remove_all(user: User) -> None:
    db.session.execute(sa.delete(TotpDevice).where(TotpDevice.user_id == user.id))
    db.session.execute(sa.delete(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id))
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    user.mfa_enabled = False


def reset_second_factors(user: User, actor: User | None = None,
                         details: dict | None = None) -> None:
    """An operator's way back for a locked-out user: remove every factor, end every session.

    Audited (``actor`` None: the CLI; else the staff member, with ``details`` such as the
    reason and who approved), the owner's email queued with it, the lockout lifted.
    """
    _remove_all(user)
    user.rotate_session_token()
    user.revoke_api_tokens()
    audit.record(Action.MFA_RESET, actor=actor, target_type=TargetType.USER, target_id=user.id,
                 details=details)
    with recipient_locale(user):
        body = gettext(
            "The bank has removed the second factors (authenticator app, passkeys and recovery "
            "codes) of your bankapp account, as asked. Every session has ended.\n\n"
            "Log in with your password and set up your authenticator app or a passkey again:\n"
            "%(login)s\n\n"
            "If you did not ask for this, contact the bank now.\n",
            login=public_url_for("auth.login"))
        queue_email(user.email, gettext("Your bankapp second factor was reset"), body)
    db.session.commit()
    _lift_lock(user)
    log.warning("second factors of user %s reset by an operator", user.id)


# ---------------------------------------------------------------- lockout


def _failure_limit() -> throttle.Limit:
    return throttle.Limit.parse(current_app.config["MFA_FAILURE_LIMIT"])


def is_locked(user: User) -> bool:
    """True while wrong codes have locked this account's second-factor checks."""
    return throttle.is_locked(throttle.SECOND_FACTOR, user)


def _locked_refusal() -> SecondFactorRefused:
    return SecondFactorRefused(
        gettext(LOCKED, minutes=current_app.config["MFA_LOCKOUT_MINUTES"]), locked=True)


def _take_slot(user: User) -> int:
    """Count this check before it is made; refused (locked) when none is left."""
    slot = throttle.take_slot(throttle.SECOND_FACTOR, user.id, _failure_limit())
    if slot is None:
        raise _locked_refusal()
    return slot


def _count_failure(user: User, reason: str, slot: int, during: str = SIGN_IN) -> None:
    """Audit a wrong code (its slot stays taken); the one that spent the last slot locks the
    account's checks, with one audit row and one email to the owner."""
    db.session.rollback()
    details = {"reason": reason, "browser": request_browser_label()}
    if during != SIGN_IN:
        details["during"] = during
    audit.record(Action.MFA_FAILURE, actor=user, target_type=TargetType.USER, target_id=user.id,
                 details=details)
    db.session.commit()
    minutes = int(current_app.config["MFA_LOCKOUT_MINUTES"])
    if slot < _failure_limit().amount or not throttle.lock(throttle.SECOND_FACTOR, user.id,
                                                            minutes):
        return
    audit.record(Action.MFA_LOCKED, actor=user, target_type=TargetType.USER, target_id=user.id,
                 details={"minutes": minutes})
    until = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    with recipient_locale(user):
        body = gettext(
            "Someone entered several wrong second-factor codes for your bankapp account, so "
            "sign-in codes are refused until %(time)s UTC.\n\n"
            "If this was you, wait and try again, or use one of your recovery codes afterwards.\n"
            "If it was not you, your password is known to someone else: reset it now:\n"
            "%(reset)s\n", time=until.strftime("%H:%M"),
            reset=public_url_for("auth.password_reset"))
        queue_email(user.email, gettext("Too many wrong sign-in codes on your bankapp account"),
                   body)
    db.session.commit()
    log.warning("second-factor checks of user %s locked for %s minutes", user.id, minutes)


def _lift_lock(user: User) -> None:
    throttle.clear(throttle.SECOND_FACTOR, user.id)

"""Passkeys (WebAuthn credentials), apart from HTTP: the ceremonies' options and their checks.

The shape follows py_webauthn's examples: options → the browser (``navigator.credentials``) →
``verify_*_response`` with the expected challenge, origin and RP id taken from configuration,
never from what the browser sent.

- **Relying party.** With ``PUBLIC_URL`` (production) its origin and host name; without it
  (development) the request's own. WebAuthn needs a domain name: ``http://localhost:5000``
  works, ``http://127.0.0.1:5000`` does not (browsers refuse an IP address as RP id).
- **Challenges** are 32 random bytes kept in the Flask session with their purpose, user and
  time. A verification pops the challenge first, so it is used once even when the check fails;
  one older than ``PASSKEY_CHALLENGE_SECONDS`` is refused. The session is a signed cookie a
  client could replay, so each spent challenge is also marked in the limiter's store (Redis in
  production, shared by every worker): an old cookie sent again with its response is refused.
- **User handle**: the user's id as 8 bytes, big-endian. It is stable for the account's whole
  life (a random handle would need a column) and names no person; a discoverable sign-in
  whose handle is not the credential owner's is refused.
- **Sign counts**: an authenticator that counts must show a higher count each time; an
  equal or lower one (a cloned authenticator, or a replay) is refused. Synced passkeys always
  report 0, which is accepted. The new count is stored by a conditional UPDATE, so of two
  requests racing with one response only one passes.
- **Two-step sign-in**: a passkey is a second factor (user verification is required, so it
  also stands for the password on the login page). ``users.mfa_enabled`` is recomputed in the
  same transaction as every change of factors (``factors.refresh_mfa_enabled``); removing the
  last factor needs a recent sign-in and a fresh assertion of that passkey.
- **Bound challenges**: a challenge may carry what it approves (``bound``, e.g. one
  transfer's signed details for step-up); the assertion is then refused for anything else.
- **Audit**: ``passkey.add``, ``passkey.remove`` and ``passkey.failure`` (with the reason).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from datetime import datetime, timezone
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, request, session
from flask_babel import gettext
from limits import RateLimitItemPerSecond
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.identity import factors
from bankapp.extensions import db, limiter
from bankapp.platform.i18n import N_
from bankapp.models import User, WebAuthnCredential, now_utc

log = logging.getLogger("bankapp.auth")

RP_NAME = "bankapp"
NAME_MAX = 64
MAX_PASSKEYS = 10
SESSION_KEY = "webauthn"

# What a ceremony is for; a challenge issued for one purpose is refused by every other.
REGISTER, SIGN_IN, SECOND_FACTOR, CONFIRM = "register", "sign-in", "second-factor", "confirm"
# Approving one transfer (bankapp/identity/stepup.py): the challenge carries the approval it is for.
STEP_UP = "step-up"

NOT_CHECKED = N_("That passkey could not be checked. Try again, or use another way to sign in.")
EXPIRED = N_("The passkey request has expired or was already used. Try again.")
NEEDS_DOMAIN = N_("Passkeys need the site to be opened by its name (for example "
                "http://localhost:5000), not by an IP address.")


class PasskeyRefused(Exception):
    """A passkey ceremony was refused; ``message`` is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- relying party


def relying_party() -> tuple[str, str]:
    """(RP id, origin): PUBLIC_URL's, or in development the request's own."""
    base = current_app.config.get("PUBLIC_URL") or request.host_url
    parts = urlsplit(base)
    rp_id = parts.hostname or ""
    try:
        ipaddress.ip_address(rp_id)
    except ValueError:
        return rp_id, f"{parts.scheme}://{parts.netloc}"
    raise PasskeyRefused(gettext(NEEDS_DOMAIN))


def user_handle(user: User) -> bytes:
    return user.id.to_bytes(8, "big")


def _challenge_seconds() -> int:
    return int(current_app.config["PASSKEY_CHALLENGE_SECONDS"])


def _issue(purpose: str, user: User | None, **extra) -> bytes:
    challenge = secrets.token_bytes(32)
    session[SESSION_KEY] = {"purpose": purpose, "user": user.id if user else None,
                            "challenge": bytes_to_base64url(challenge),
                            "at": datetime.now(timezone.utc).timestamp(), **extra}
    return challenge


def _take(purpose: str, user: User | None) -> dict:
    """Pop the pending challenge: refused if missing, for another purpose or user, old or spent."""
    pending = session.pop(SESSION_KEY, None)
    if (not isinstance(pending, dict) or pending.get("purpose") != purpose
            or pending.get("user") != (user.id if user else None)):
        raise PasskeyRefused(gettext(EXPIRED))
    age = datetime.now(timezone.utc).timestamp() - float(pending.get("at", 0))
    if not 0 <= age <= _challenge_seconds() or not _spend(pending["challenge"]):
        raise PasskeyRefused(gettext(EXPIRED))
    return pending


def _spend(challenge: str) -> bool:
    # True the first time a challenge is presented; the mark outlives the challenge's validity.
    if not limiter.enabled:
        return True
    item = RateLimitItemPerSecond(1, _challenge_seconds() + 60)
    return limiter.limiter.hit(item, "webauthn-challenge", challenge)


def _descriptor(passkey: WebAuthnCredential) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in (passkey.transports or "").split(","):
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            pass
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey.credential_id),
                                         transports=transports or None)


# ---------------------------------------------------------------- listing


def passkeys_of(user: User) -> list[WebAuthnCredential]:
    return list(db.session.scalars(sa.select(WebAuthnCredential).where(
        WebAuthnCredential.user_id == user.id).order_by(WebAuthnCredential.created_at,
                                                        WebAuthnCredential.id)))


def owned_passkey(user: User, passkey_id: int) -> sa.Select:
    """The select of ``user``'s passkey with this id: another user's is not found."""
    return sa.select(WebAuthnCredential).where(WebAuthnCredential.id == passkey_id,
                                               WebAuthnCredential.user_id == user.id)


def is_last_factor(user: User) -> bool:
    """Whether removing one passkey would leave ``user`` with no second factor."""
    return not factors.has_totp(user) and factors.passkey_count(user) <= 1


# ---------------------------------------------------------------- registration


def clean_name(name) -> str:
    """The passkey's name as the user will see it listed, or PasskeyRefused."""
    name = " ".join(name.split()) if isinstance(name, str) else ""
    if not name or len(name) > NAME_MAX:
        raise PasskeyRefused(gettext("Give the passkey a name of up to %(count)s characters, "
                                     "such as “Work laptop”.", count=NAME_MAX))
    return name


def registration_options(user: User, name) -> str:
    """Options for ``navigator.credentials.create()`` (JSON).

    The name is checked now, before the authenticator makes a key it could not store. The
    page asks for a recent sign-in first (the password within ``REAUTH_SECONDS``): it guards
    the account against a passkey added from a borrowed or stolen session.
    """
    name = clean_name(name)
    existing = passkeys_of(user)
    if len(existing) >= MAX_PASSKEYS:
        raise PasskeyRefused(gettext("You already have %(count)s passkeys: remove one first.",
                                     count=MAX_PASSKEYS))
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name=RP_NAME, user_id=user_handle(user), user_name=user.email,
        user_display_name=" ".join(filter(None, [user.first_name, user.last_name])) or user.email,
        challenge=_issue(REGISTER, user, name=name),
        timeout=_challenge_seconds() * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[_descriptor(p) for p in existing],
    )
    return options_to_json(options)


def register(user: User, credential) -> WebAuthnCredential:
    """Check the browser's answer to the registration options and store the passkey."""
    pending = _take(REGISTER, user)
    rp_id, origin = relying_party()
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed, expected_challenge=base64url_to_bytes(pending["challenge"]),
            expected_rp_id=rp_id, expected_origin=origin, require_user_verification=True)
    except Exception as error:  # noqa: BLE001 - any malformed byte string ends up here
        _failed(user, REGISTER, error)
        raise PasskeyRefused(gettext("That passkey could not be added. Try again.")) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.session.scalar(sa.select(WebAuthnCredential.id).where(
            WebAuthnCredential.credential_id == credential_id)) is not None:
        raise PasskeyRefused(gettext("That passkey is already registered."))
    transports = ",".join(t.value for t in parsed.response.transports or [])[:128] or None
    passkey = WebAuthnCredential(user_id=user.id, credential_id=credential_id,
                                 public_key=verified.credential_public_key,
                                 sign_count=verified.sign_count, name=pending["name"],
                                 transports=transports)
    db.session.add(passkey)
    db.session.flush()
    user.mfa_enabled = True
    audit.record(Action.PASSKEY_ADD, actor=user, target_type=TargetType.USER, target_id=user.id,
                 details={"passkey": passkey.id, "name": passkey.name})
    db.session.commit()
    log.info("user %s added passkey %s", user.id, passkey.id)
    return passkey


# ---------------------------------------------------------------- authentication


def sign_in_options() -> str:
    """Options for a discoverable sign-in: no user named, the authenticator offers its passkeys."""
    rp_id, _ = relying_party()
    return options_to_json(generate_authentication_options(
        rp_id=rp_id, challenge=_issue(SIGN_IN, None), timeout=_challenge_seconds() * 1000,
        user_verification=UserVerificationRequirement.REQUIRED))


def sign_in(credential) -> User:
    """The user a discoverable passkey signs in: both factors at once (user verification)."""
    user = authenticate(credential, SIGN_IN)
    if not user.is_active:
        audit.record(Action.LOGIN_FAILURE, actor=user, target_type=TargetType.USER,
                     target_id=user.id, details={"reason": "inactive", "second_factor": "passkey"})
        db.session.commit()
        raise PasskeyRefused(gettext(NOT_CHECKED))
    return user


def user_options(user: User, purpose: str, bound=None) -> str:
    """Options for an assertion by one of ``user``'s passkeys (second step, confirmation,
    step-up); ``bound`` (JSON-able) is kept with the challenge: what the assertion approves."""
    rp_id, _ = relying_party()
    allowed = [_descriptor(p) for p in passkeys_of(user)]
    if not allowed:
        raise PasskeyRefused(gettext("This account has no passkey."))
    challenge = _issue(purpose, user, bound=bound)
    return options_to_json(generate_authentication_options(
        rp_id=rp_id, challenge=challenge, timeout=_challenge_seconds() * 1000,
        allow_credentials=allowed, user_verification=UserVerificationRequirement.REQUIRED))


def authenticate(credential, purpose: str, user: User | None = None, bound=None) -> User:
    """The user whose passkey made this assertion; PasskeyRefused otherwise.

    ``user`` is the account the assertion must belong to (None for a discoverable sign-in);
    ``bound`` must equal what the challenge was issued for (``user_options``). The passkey's
    sign count and last use are updated and committed.
    """
    try:
        pending = _take(purpose, user)
    except PasskeyRefused as refusal:
        _failed(user, purpose, "no challenge pending, expired or already used")
        raise refusal
    if pending.get("bound") != bound:  # spent all the same: made for something else
        _failed(user, purpose, "challenge was issued for something else")
        raise PasskeyRefused(gettext(EXPIRED))
    rp_id, origin = relying_party()
    passkey = None
    try:
        parsed = parse_authentication_credential_json(credential)
        passkey = db.session.scalar(sa.select(WebAuthnCredential).where(
            WebAuthnCredential.credential_id == bytes_to_base64url(parsed.raw_id)))
        if passkey is None or (user is not None and passkey.user_id != user.id):
            raise PasskeyRefused("unknown passkey")
        owner = db.session.get(User, passkey.user_id)
        handle = parsed.response.user_handle
        if handle is not None and handle != user_handle(owner):
            raise PasskeyRefused("user handle is not the passkey owner's")
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=base64url_to_bytes(pending["challenge"]),
            expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
    except Exception as error:  # noqa: BLE001 - any malformed byte string ends up here
        _failed(user or (db.session.get(User, passkey.user_id) if passkey else None),
                purpose, error, passkey)
        raise PasskeyRefused(gettext(NOT_CHECKED)) from None
    if not _claim_count(passkey, verified.new_sign_count):
        _failed(owner, purpose, "sign count did not increase (raced)", passkey)
        raise PasskeyRefused(gettext(NOT_CHECKED))
    return owner


def _claim_count(passkey: WebAuthnCredential, new_count: int) -> bool:
    # Conditional, like a TOTP step: of two requests with one assertion only one moves the count.
    counter = WebAuthnCredential.sign_count
    moved = db.session.execute(
        sa.update(WebAuthnCredential)
        .where(WebAuthnCredential.id == passkey.id,
               counter < new_count if new_count else counter == 0)
        .values(sign_count=new_count, last_used_at=now_utc())
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    return moved


def _failed(user: User | None, purpose: str, error, passkey=None) -> None:
    db.session.rollback()
    reason = error.message if isinstance(error, PasskeyRefused) else str(error)
    audit.record(Action.PASSKEY_FAILURE, actor=user, target_type=TargetType.USER,
                 target_id=user.id if user else None,
                 details={"purpose": purpose, "reason": reason[:200] or type(error).__name__,
                          **({"passkey": passkey.id} if passkey is not None else {})})
    db.session.commit()
    log.info("passkey %s refused for user %s: %s", purpose, getattr(user, "id", None), reason)


# ---------------------------------------------------------------- removal


def remove(user: User, passkey: WebAuthnCredential, assertion=None) -> None:
    """Remove one of ``user``'s passkeys (the page asks for a recent sign-in first).

    While another factor remains (an authenticator app, another passkey) that is enough. The
    last factor also needs a fresh assertion by a passkey of the account (issued with
    ``user_options(user, CONFIRM)``): the code a TOTP user types.
    """
    if is_last_factor(user):
        if not assertion:
            raise PasskeyRefused(gettext("Confirm with your passkey to remove your last second factor."))
        authenticate(assertion, CONFIRM, user)
    db.session.execute(sa.delete(WebAuthnCredential).where(WebAuthnCredential.id == passkey.id))
    factors.refresh_mfa_enabled(user)
    audit.record(Action.PASSKEY_REMOVE, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"passkey": passkey.id, "name": passkey.name})
    db.session.commit()
    log.info("user %s removed passkey %s", user.id, passkey.id)


def parse_json(raw) -> dict | None:
    """A JSON object from a string (a form's hidden field), or None."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

"""Users to act as: the tests' password, an enrolled authenticator app, a logged-in session."""
from __future__ import annotations

from datetime import datetime, timezone

from bankapp.extensions import db
from bankapp.models import User

TEST_PASSWORD = "complexpassword123"


def enrol_totp(user: User) -> str:
    """Give ``user`` a confirmed authenticator app; its secret (``totp_now`` makes codes)."""
    from bankapp.identity.factors import enrol_totp_without_code

    secret = enrol_totp_without_code(user)
    user.totp_secret = secret  # for the test only; not a column
    return secret


def totp_now(secret: str, step_offset: int = 0) -> str:
    """The code an authenticator app shows now (or ``step_offset`` 30-second steps away).

    A code is accepted only in its own 30-second step (TOTP_DRIFT_STEPS=0): one read in the
    step's last 3 seconds could expire before a slow test machine submits it, so then this
    waits for the next step first.
    """
    import time

    import pyotp

    totp = pyotp.TOTP(secret)
    left = totp.interval - time.time() % totp.interval
    if left < 3:
        time.sleep(left + 0.05)
    return totp.generate_otp(totp.timecode(datetime.now(timezone.utc)) + step_offset)


def log_in_as(client, user: User) -> None:
    """Give ``client`` a logged-in session for ``user`` without going through the form.

    Like a real login it opens the session's row (bankapp.identity.devices); the cookie holds its key.
    """
    import secrets

    from bankapp.identity.devices import SESSION_KEY, hash_key
    from bankapp.models import UserSession

    key = secrets.token_urlsafe(32)
    db.session.add(UserSession(user_id=user.id, key_hash=hash_key(key), ip_address="127.0.0.1",
                               browser="Test client"))
    db.session.commit()
    now = datetime.now(timezone.utc).timestamp()
    with client.session_transaction() as session:
        session[SESSION_KEY] = key
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["auth_at"] = session["seen_at"] = now
        session.permanent = True


def age_the_sign_in(client, seconds: int = 3600) -> None:
    """Make ``client``'s last proof of identity (login or password again) ``seconds`` old
    (longer ago than REAUTH_MINUTES by default), as a session cookie taken from an unlocked
    screen would be; the session itself is still in use."""
    with client.session_transaction() as session:
        now = datetime.now(timezone.utc).timestamp()
        session["auth_at"] = now - seconds
        session["seen_at"] = now
        session.pop("reauth_at", None)

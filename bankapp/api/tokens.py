"""Bearer access tokens: short-lived HS256 JWTs bound to the user's ``token_version``."""
from __future__ import annotations

import functools
import hashlib
import hmac
import time
from functools import wraps

import jwt
import sqlalchemy as sa
from flask import current_app, g, request

from bankapp.api.problems import Problem
from bankapp.extensions import db
from bankapp.ledger import fast
from bankapp.models import Role, User

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "ver"]


def _signing_key() -> bytes:
    # Derived, not the raw secret: 32 bytes whatever the secret's length (RFC 7518 §3.2), and
    # a token can never double as another signed value (session cookie, reset link).
    secret = current_app.config.get("JWT_SECRET_KEY") or current_app.config["SECRET_KEY"]
    return hmac.new(secret.encode(), b"bankapp.api.access-token", hashlib.sha256).digest()


def token_lifetime() -> int:
    """Seconds an access token is valid."""
    return int(current_app.config["JWT_ACCESS_TOKEN_MINUTES"]) * 60


def issue_access_token(user: User, issued_at: int | None = None) -> str:
    """A signed access token for ``user``, void once their token_version moves on."""
    now = int(time.time()) if issued_at is None else issued_at
    claims = {"sub": str(user.id), "iat": now, "exp": now + token_lifetime(),
              "ver": user.token_version or 0}
    return jwt.encode(claims, _signing_key(), algorithm=ALGORITHM)


def _unauthorized(detail: str, error: str | None = "invalid_token") -> Problem:
    challenge = 'Bearer realm="bankapp"'
    if error:
        challenge += f', error="{error}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


@functools.cache
def _caller_query() -> sa.Select:
    """What a request needs to know of its caller: one light row, no ORM object."""
    return sa.select(User.id, User.role, User.is_active, User.is_verified, User.token_version,
                     User.mfa_enabled).where(User.id == sa.bindparam("user_id"))


def user_from_token(token: str) -> sa.Row:
    """The user a token authenticates, as a row (``id``, ``role``, ``mfa_enabled``, …), or
    raise a 401 problem (expired, tampered, revoked). ``api_user()`` loads the ORM user."""
    try:
        # One algorithm only: "none" and any other algorithm are refused before verification.
        claims = jwt.decode(token, _signing_key(), algorithms=[ALGORITHM],
                            options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The access token has expired; request a new one.") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise _unauthorized("The access token is invalid.") from None
    subject, version = claims.get("sub"), claims.get("ver")
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()
            and len(subject) < 12) or not isinstance(version, int) or isinstance(version, bool):
        raise _unauthorized("The access token is invalid.")
    found = fast.rows(_caller_query(), {"user_id": int(subject)})
    user = found[0] if found else None
    if user is None or not user.is_active or (user.token_version or 0) != version:
        raise _unauthorized("The access token has been revoked; request a new one.")
    if not user.is_verified:
        raise Problem(403, "Verify your email address before using the API.")
    return user


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("Send an access token: Authorization: Bearer <token>.", error=None)
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Use the Bearer scheme: Authorization: Bearer <token>.",
                            error="invalid_request")
    return token.strip()


def api_user() -> User:
    """The caller as an ORM ``User``, for the few views that change or check more of it."""
    return db.session.get(User, g.api_user.id)


def token_required(view):
    """Authenticate the request by its bearer token; the caller's row is ``g.api_user``."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        g.api_user = user_from_token(bearer_token())
        return view(*args, **kwargs)

    return wrapped


def staff_required(view):
    """Like ``token_required``, for tellers and admins only (others get 403)."""

    @wraps(view)
    def staff_only(*args, **kwargs):
        if g.api_user.role not in Role.STAFF:
            raise Problem(403, "Only tellers and administrators may use this endpoint.")
        return view(*args, **kwargs)

    return token_required(staff_only)

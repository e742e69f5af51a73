"""Bearer access tokens: short-lived HS256 JWTs bound to the user's ``token_version``."""
from __future__ import annotations

import functools
import hashlib
import hmac
import time
from contextlib import contextmanager
from functools import wraps
from typing import NamedTuple

import jwt
import sqlalchemy as sa
from flask import current_app, g, request
from werkzeug.exceptions import HTTPException

from bankapp.api.problems import Problem
from bankapp.extensions import db, limiter
from bankapp.ledger import fast
from bankapp.models import Account, AccountType, Role, User
from bankapp.platform.ratelimit import parsed_limit

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "ver", "aud"]
# The audience when PUBLIC_URL is not set (development, tests): still checked, never empty.
LOCAL_AUDIENCE = "urn:bankapp:api:v1"


def _signing_key() -> bytes:
    # Derived, not the raw secret: 32 bytes whatever the secret's length (RFC 7518 §3.2), and
    # a token can never double as another signed value (session cookie, reset link).
    secret = current_app.config.get("JWT_SECRET_KEY") or current_app.config["SECRET_KEY"]
    return hmac.new(secret.encode(), b"bankapp.api.access-token", hashlib.sha256).digest()


def audience() -> str:
    """Who an access token is for: this deployment's API (``PUBLIC_URL`` + ``/api/v1``), so a
    token from another deployment sharing the signing key (a staging copy) is refused."""
    public_url = current_app.config.get("PUBLIC_URL")
    return f"{public_url}/api/v1" if public_url else LOCAL_AUDIENCE


def token_lifetime() -> int:
    """Seconds an access token is valid."""
    return int(current_app.config["JWT_ACCESS_TOKEN_MINUTES"]) * 60


def issue_access_token(user: User, issued_at: int | None = None) -> str:
    """A signed access token for ``user``, void once their token_version moves on."""
    now = int(time.time()) if issued_at is None else issued_at
    claims = {"sub": str(user.id), "iat": now, "exp": now + token_lifetime(),
              "ver": user.token_version or 0, "aud": audience()}
    return jwt.encode(claims, _signing_key(), algorithm=ALGORITHM)


def _unauthorized(detail: str, error: str | None = "invalid_token") -> Problem:
    challenge = 'Bearer realm="bankapp"'
    if error:
        challenge += f', error="{error}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


class Caller(NamedTuple):
    """What a request needs to know of its caller: a light row, no ORM object."""

    id: int
    role: str
    is_active: bool
    is_verified: bool
    token_version: int | None
    mfa_enabled: bool


class AccountRow(NamedTuple):
    """A customer account as ``caller_with_accounts`` reads it: enough to post with."""

    id: int
    account_number: str
    account_type: str
    owner_id: int
    status: str


_CALLER_COLUMNS = (User.id, User.role, User.is_active, User.is_verified, User.token_version,
                   User.mfa_enabled)


@functools.cache
def _caller_query() -> sa.Select:
    return sa.select(*_CALLER_COLUMNS).where(User.id == sa.bindparam("user_id"))


@functools.cache
def _caller_with_accounts_query() -> sa.Select:
    # Two plain parameters rather than an expanding IN list: the statement is compiled once.
    accounts = (sa.select(*(getattr(Account, name) for name in AccountRow._fields))
                .where(Account.account_number.in_([sa.bindparam("first"),
                                                   sa.bindparam("second")]),
                       Account.account_type.in_([sa.literal(kind) for kind in
                                                 AccountType.CUSTOMER]))
                .subquery())
    return (sa.select(*_CALLER_COLUMNS, *accounts.c)
            .outerjoin_from(User, accounts, sa.true())
            .where(User.id == sa.bindparam("user_id")))


def _claims(token: str) -> tuple[int, int]:
    """The user id and token version of a well-signed, unexpired token; else a 401 problem."""
    try:
        user_id, version, expiry = _verified(token, _signing_key(), audience())
    except (jwt.PyJWTError, ValueError, TypeError):
        raise _unauthorized("The access token is invalid.") from None
    if expiry <= time.time():  # as PyJWT's own check, with no leeway
        raise _unauthorized("The access token has expired; request a new one.")
    return user_id, version


# A client sends the same token with every call until it expires: its signature and claims
# are verified once per worker, its expiry on every call (``_claims``). Keyed by the key and
# audience it was verified against, so a new JWT_SECRET_KEY or PUBLIC_URL verifies afresh; a
# token that fails is not kept. Revocation is the caller's row (``_checked``), read each call.
@functools.lru_cache(maxsize=1024)
def _verified(token: str, key: bytes, audience: str) -> tuple[int, int, int]:
    """(user id, token version, expiry) of a token signed with ``key`` for ``audience``;
    ``jwt.PyJWTError`` when it is not one, or its claims are not ours."""
    # One algorithm only: "none" and any other algorithm are refused before verification.
    claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience,
                        options={"require": REQUIRED_CLAIMS, "verify_exp": False})
    subject, version, expiry = claims.get("sub"), claims.get("ver"), claims.get("exp")
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()
            and len(subject) < 12) or not _is_int(version) or not _is_int(expiry):
        raise jwt.InvalidTokenError("claims of another shape")
    return int(subject), version, expiry


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(user, version: int):
    """``user`` when the token (of ``version``) still speaks for it; else 401 or 403."""
    if user is None or not user.is_active or (user.token_version or 0) != version:
        raise _unauthorized("The access token has been revoked; request a new one.")
    if not user.is_verified:
        raise Problem(403, "Verify your email address before using the API.")
    return user


def user_from_token(token: str) -> sa.Row:
    """The user a token authenticates, as a row (``id``, ``role``, ``mfa_enabled``, …), or
    raise a 401 problem (expired, tampered, revoked). ``api_user()`` loads the ORM user."""
    return _caller(*_claims(token))


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


def spend_call(user_id: int) -> None:
    """Count one API call against the user's ``API_RATE_LIMIT`` (all their tokens together,
    in the rate-limit store); over it, a 429 problem saying when to try again."""
    text = current_app.config.get("API_RATE_LIMIT")
    if not text or not limiter.enabled:
        return
    item = parsed_limit(text)
    if limiter.limiter.hit(item, "api-user", str(user_id)):
        return
    reset_at, _ = limiter.limiter.get_window_stats(item, "api-user", str(user_id))
    wait = max(1, int(reset_at - time.time()) + 1)
    raise Problem(429, f"Too many API calls: at most {text}. Try again in {wait} seconds.",
                  code="rate-limited", headers={"Retry-After": str(wait)})


def token_required(view):
    """Authenticate the request by its bearer token; the caller's row is ``g.api_user``."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        claims = _claims(bearer_token())
        spend_call(claims[0])
        with fast.one_connection():
            g.api_user = _caller(*claims)
            return view(*args, **kwargs)

    return wrapped


def signed_token_required(view):
    """Like ``token_required`` for a view that reads its caller together with the accounts
    it needs, in one query (``caller_with_accounts``): only the token's signature and expiry
    are checked before the view; the caller's row is checked, and ``g.api_user`` set, when
    the view asks for it.

    The view parses its request inside ``caller_checked_first()``, so a revoked token still
    gets its 401 before any complaint about the request, as with ``token_required``.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        g.api_claims = _claims(bearer_token())
        spend_call(g.api_claims[0])
        with fast.one_connection():  # the caller, a look-up, the posting: one checkout
            return view(*args, **kwargs)

    return wrapped


def _caller(user_id: int, version: int):
    """The caller's row, checked against the token's version (see ``_checked``)."""
    found = fast.rows(_caller_query(), {"user_id": user_id})
    return _checked(found[0] if found else None, version)


def _load_caller():
    g.api_user = _caller(*g.api_claims)


@contextmanager
def caller_checked_first():
    """A refusal raised inside answers only after the caller's own check (a revoked or
    deactivated caller gets that answer instead), as if ``token_required`` had run first."""
    try:
        yield
    except (Problem, HTTPException):
        if "api_user" not in g:
            _load_caller()
        raise


def caller_with_accounts(first: str, second: str) -> dict[str, AccountRow]:
    """Check the caller (then ``g.api_user``) and find the customer accounts numbered
    ``first`` and ``second``, in one query: the accounts by number (missing: absent)."""
    user_id, version = g.api_claims
    found = fast.rows(_caller_with_accounts_query(),
                      {"user_id": user_id, "first": first, "second": second})
    width = len(Caller._fields)
    g.api_user = _checked(Caller._make(found[0][:width]) if found else None, version)
    accounts = (AccountRow._make(row[width:]) for row in found if row[width] is not None)
    return {account.account_number: account for account in accounts}


def staff_required(view):
    """Like ``token_required``, for tellers and admins only (others get 403)."""

    @wraps(view)
    def staff_only(*args, **kwargs):
        if g.api_user.role not in Role.STAFF:
            raise Problem(403, "Only tellers and administrators may use this endpoint.")
        return view(*args, **kwargs)

    return token_required(staff_only)

"""People and how they prove who they are: users, second factors, passkeys, signed-in
sessions, known browsers and email changes.
"""
from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc

if TYPE_CHECKING:  # the relationship names its class as a string: no import cycle at run time
    from bankapp.models.ledger import Account


class Role:
    CUSTOMER = "customer"
    TELLER = "teller"
    ADMIN = "admin"
    ALL = (CUSTOMER, TELLER, ADMIN)
    STAFF = (TELLER, ADMIN)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint("role IN ('customer', 'teller', 'admin')", name="role_known"),
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased (and checked so): the unique index is then case-insensitive.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    first_name: Mapped[Optional[str]] = mapped_column(sa.String(80))
    last_name: Mapped[Optional[str]] = mapped_column(sa.String(80))
    phone_number: Mapped[Optional[str]] = mapped_column(sa.String(16), index=True)
    date_of_birth: Mapped[Optional[date]] = mapped_column(sa.Date)
    is_verified: Mapped[bool] = mapped_column(default=False)
    role: Mapped[str] = mapped_column(sa.String(16), default=Role.CUSTOMER)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Rotated on logout, password change and deactivation: every session cookie issued
    # before carries the old value and is refused by the user loader.
    session_token: Mapped[str] = mapped_column(sa.String(64), default=new_session_token)
    # Every API access token carries the version it was issued at and is refused once this
    # moves on. Bumped by revoke_api_tokens(): on password change (security.set_password),
    # on POST /api/v1/token/revoke, and on deactivation (the is_active listener at the end
    # of this module), so every token issued before stops working.
    token_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    last_login: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # True while the user has a confirmed second factor (TOTP); kept in the same transaction
    # as the factor rows, so the login and enrolment checks need no extra query.
    mfa_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Per-account attempt counters (bankapp/identity/throttle.py), in this row so that every
    # worker shares them with or without Redis: password attempts in the current window, and
    # second-factor attempts with the lock they lead to.
    login_attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    login_window_start: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    mfa_attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    mfa_window_start: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    mfa_locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The language chosen on the profile page (``bankapp.platform.i18n.LANGUAGES``); None
    # follows the browser's Accept-Language.
    locale: Mapped[Optional[str]] = mapped_column(sa.String(16))

    accounts: Mapped[list["Account"]] = relationship(
        back_populates="owner", order_by="Account.id"
    )

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or self.email

    @property
    def is_staff(self) -> bool:
        return self.role in Role.STAFF

    @classmethod
    def searchable_name(cls) -> sa.ColumnElement:
        """SQL: the lower-case full name, written exactly as migration 0021's trigram index
        ``ix_users_full_name_trgm`` has it, so that ``LIKE '%…%'`` on it reads the index."""
        return sa.func.lower(sa.func.coalesce(cls.first_name, sa.literal_column("''"))
                             .op("||")(sa.literal_column("' '"))
                             .op("||")(sa.func.coalesce(cls.last_name, sa.literal_column("''"))))

    @classmethod
    def searchable_email(cls) -> sa.ColumnElement:
        """SQL: ``lower(email)``, as ``ix_users_email_trgm`` indexes it (emails are stored
        lower-case already: the same matches)."""
        return sa.func.lower(cls.email)

    def rotate_session_token(self) -> None:
        """End every session of the user: their cookies are refused and their rows end."""
        self.session_token = new_session_token()
        if self.id is not None:
            # So the security page's list stays truthful (bankapp.identity.devices); same
            # transaction.
            db.session.execute(
                sa.update(UserSession)
                .where(UserSession.user_id == self.id, UserSession.ended_at.is_(None))
                .values(ended_at=now_utc()))

    def revoke_api_tokens(self) -> None:
        self.token_version = (self.token_version or 0) + 1

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class TotpDevice(db.Model):
    """A user's authenticator app (RFC 6238). One per user; unconfirmed until a code proves it.

    The seed is stored encrypted (``bankapp.platform.crypto``). ``last_step`` is the 30-second
    time step of the last accepted code: a code is accepted once, never again in its window.
    """

    __tablename__ = "totp_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(sa.String(255))
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_step: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class RecoveryCode(db.Model):
    """One single-use recovery code; only its argon2id hash (salted) is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class WebAuthnCredential(db.Model):
    """A passkey (WebAuthn public-key credential) registered by a user."""

    __tablename__ = "webauthn_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    # base64url of the authenticator's credential id, as the browser reports it.
    credential_id: Mapped[str] = mapped_column(sa.String(1024), unique=True)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sign_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    name: Mapped[str] = mapped_column(sa.String(64))
    transports: Mapped[Optional[str]] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class UserSession(db.Model):
    """One signed-in browser: listed on the security page, ended one by one or all at once.

    The session cookie carries a random key; only its SHA-256 is stored.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    ip_address: Mapped[Optional[str]] = mapped_column(sa.String(45))
    browser: Mapped[Optional[str]] = mapped_column(sa.String(120))
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class KnownBrowser(db.Model):
    """A browser a user has signed in from (a long-lived random cookie, stored hashed)."""

    __tablename__ = "known_browsers"
    __table_args__ = (sa.UniqueConstraint("user_id", "browser_key_hash",
                                          name="uq_known_browsers_user_browser"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    browser_key_hash: Mapped[str] = mapped_column(sa.String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class EmailChangeStatus:
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    ALL = (PENDING, CONFIRMED, CANCELLED, SUPERSEDED)


class EmailChange(db.Model):
    """A user's request to move their account to another email address.

    ``pending`` until the link sent to the new address confirms it; a newer request by the
    same user makes it ``superseded``; the "this was not me" link in the notice sent to the
    old address makes it ``cancelled`` (after confirmation too, which puts the old address
    back: ``confirmed_at`` then stays set). ``cancelled_at`` is when it stopped counting
    without being confirmed, or was undone.
    """

    __tablename__ = "email_changes"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'confirmed', 'cancelled', 'superseded')",
                           name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    old_email: Mapped[str] = mapped_column(sa.String(254))
    new_email: Mapped[str] = mapped_column(sa.String(254))
    status: Mapped[str] = mapped_column(sa.String(10), default=EmailChangeStatus.PENDING)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<EmailChange {self.id} user {self.user_id} {self.status}>"


@sa.event.listens_for(User.is_active, "set", active_history=True)
def _revoke_api_tokens_on_deactivation(user, value, oldvalue, initiator):
    """Deactivating a user voids their API tokens, whichever code path deactivates them."""
    if value is False and oldvalue is not False:
        user.revoke_api_tokens()


class FactorResetStatus:
    PENDING = "pending"
    DONE = "done"
    REJECTED = "rejected"


class FactorResetRequest(db.Model):
    """Staff asked to remove a customer's second factors (lost phone and recovery codes).

    Made only when the reset needs a second person (``backoffice.teller.services``: the
    customer's accounts hold more than ``MAKER_CHECKER_THRESHOLD``); ``pending`` until an admin
    other than the requester carries it out (``done``) or refuses it (``rejected``).
    """

    __tablename__ = "factor_reset_requests"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'done', 'rejected')", name="status_known"),
        # Four eyes: the checker is never the maker.
        sa.CheckConstraint("requested_by_id <> decided_by_id", name="checker_not_maker"),
        sa.CheckConstraint("(status = 'pending') = (decided_by_id IS NULL)",
                           name="decided_iff_not_pending"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(10), default=FactorResetStatus.PENDING,
                                        index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    decided_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    customer: Mapped[User] = relationship(foreign_keys=[customer_id])
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[Optional[User]] = relationship(foreign_keys=[decided_by_id])

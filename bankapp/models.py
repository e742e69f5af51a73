"""Shared SQLAlchemy models: users, accounts, and the double-entry ledger.

Money columns are NUMERIC and every rule that matters is also a database constraint, so a
bug in Python cannot write a negative customer balance, a NaN or a zero-amount ledger row.
"""
from __future__ import annotations

import secrets
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.i18n import N_


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and made aware again when loaded.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


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
    # The language chosen on the profile page (``bankapp.i18n.LANGUAGES``); None follows the
    # browser's Accept-Language.
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

    def rotate_session_token(self) -> None:
        """End every session of the user: their cookies are refused and their rows end."""
        self.session_token = new_session_token()
        if self.id is not None:
            # So the security page's list stays truthful (bankapp.devices); same transaction.
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

    The seed is stored encrypted (``bankapp.crypto``). ``last_step`` is the 30-second time step
    of the last accepted code: a code is accepted once, never again in its window.
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


class _Labelled:
    """Codes stored in the database, with the names people read for them (in English: pages
    translate them with ``_(label)``, the API and CSV files keep them as they are)."""

    LABELS: dict[str, str] = {}

    @classmethod
    def label(cls, code: str) -> str:
        """The name shown for ``code``; an unknown code is shown as it is stored."""
        return cls.LABELS.get(code, code)


class AccountType(_Labelled):
    SAVINGS = "SAVINGS"
    CHECKING = "CHECKING"
    CUSTOMER = (SAVINGS, CHECKING)
    # The bank's own side of the book: no owner, never shown to customers.
    VAULT = "VAULT"
    TILL = "TILL"
    OVER_SHORT = "OVER_SHORT"
    # A bank expense (interest paid to customers, GL-INTEREST): it may go negative.
    EXPENSE = "EXPENSE"
    INTERNAL = (VAULT, TILL, OVER_SHORT, EXPENSE)
    LABELS = {SAVINGS: N_("Savings"), CHECKING: N_("Checking"), VAULT: N_("Vault cash"),
              TILL: N_("Teller till"), OVER_SHORT: N_("Cash over/short"),
              EXPENSE: N_("Bank expense")}


class AccountStatus:
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"
    ALL = (ACTIVE, FROZEN, CLOSED)


_INTERNAL_SQL = "('VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE')"


class Account(db.Model):
    __tablename__ = "accounts"
    __table_args__ = (
        sa.CheckConstraint(
            "account_type IN ('SAVINGS', 'CHECKING', 'VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE')",
            name="account_type_known",
        ),
        sa.CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status_known"),
        # PostgreSQL's numeric admits NaN, and NaN >= 0 is true there: refuse it outright.
        sa.CheckConstraint("balance <> 'NaN'", name="balance_not_nan"),
        sa.CheckConstraint(
            f"account_type IN {_INTERNAL_SQL} OR balance >= 0", name="customer_balance_non_negative"
        ),
        # A till holds cash: its credit-positive balance is minus the cash in the drawer.
        sa.CheckConstraint("account_type <> 'TILL' OR balance <= 0", name="till_not_overdrawn"),
        sa.CheckConstraint(
            f"(owner_id IS NULL) = (account_type IN {_INTERNAL_SQL})", name="owner_iff_customer"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    account_type: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"), index=True)
    # Credit-positive: what the bank owes on this account (see bankapp/ledger/).
    balance: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(sa.String(8), default=AccountStatus.ACTIVE)
    status_reason: Mapped[Optional[str]] = mapped_column(sa.String(255))
    name: Mapped[Optional[str]] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    owner: Mapped[Optional[User]] = relationship(back_populates="accounts")

    @property
    def is_internal(self) -> bool:
        return self.account_type in AccountType.INTERNAL

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.ACTIVE

    @property
    def type_label(self) -> str:
        return AccountType.label(self.account_type)

    def __repr__(self) -> str:
        return f"<Account {self.account_number} {self.balance}>"


class EntryType:
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    TRANSFER = "TRANSFER"
    REVERSAL = "REVERSAL"
    CASH_ALLOCATION = "CASH_ALLOCATION"
    CASH_SETTLEMENT = "CASH_SETTLEMENT"
    CASH_OVER_SHORT = "CASH_OVER_SHORT"
    INTEREST = "INTEREST"


class Channel:
    WEB = "web"
    TELLER = "teller"
    API = "api"
    CLI = "cli"
    SYSTEM = "system"


class JournalEntry(db.Model):
    """One movement of money: its legs (``Transaction`` rows) sum to zero."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        # A replayed form or API call finds the entry its key already posted.
        sa.UniqueConstraint("actor_id", "idempotency_key", name="uq_journal_entries_actor_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(32), unique=True)
    entry_type: Mapped[str] = mapped_column(sa.String(24))
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16), default=Channel.WEB)
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    reverses_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)

    actor: Mapped[Optional[User]] = relationship()
    legs: Mapped[list["Transaction"]] = relationship(
        back_populates="entry", order_by="Transaction.id"
    )


class TransactionType(_Labelled):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"
    REVERSAL = "REVERSAL"
    CASH_IN = "CASH_IN"
    CASH_OUT = "CASH_OUT"
    INTEREST = "INTEREST"
    LABELS = {DEPOSIT: N_("Deposit"), WITHDRAWAL: N_("Withdrawal"),
              TRANSFER_IN: N_("Transfer in"), TRANSFER_OUT: N_("Transfer out"),
              REVERSAL: N_("Reversal"), CASH_IN: N_("Cash in"), CASH_OUT: N_("Cash out"),
              INTEREST: N_("Interest")}


class Transaction(db.Model):
    """One leg of a journal entry on one account; never updated or deleted."""

    __tablename__ = "transactions"
    __table_args__ = (
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name="amount_positive"),
        sa.CheckConstraint("side IN ('credit', 'debit')", name="side_known"),
        sa.CheckConstraint("balance_after <> 'NaN'", name="balance_after_not_nan"),
        sa.Index("ix_transactions_account_id_timestamp", "account_id", "timestamp", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    transaction_type: Mapped[str] = mapped_column(sa.String(16))
    # 'credit' raises the account's (credit-positive) balance, 'debit' lowers it.
    side: Mapped[str] = mapped_column(sa.String(6))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    balance_after: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    description: Mapped[str] = mapped_column(sa.String(255), default="")

    account: Mapped[Account] = relationship()
    entry: Mapped[JournalEntry] = relationship(back_populates="legs")

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.side == "credit" else -self.amount

    @property
    def reference(self) -> str:
        return self.entry.reference

    @property
    def type_label(self) -> str:
        return TransactionType.label(self.transaction_type)


# ---------------------------------------------------------------- teller back office and audit


# At most one reversal per entry, enforced by the database: two admins reversing the same
# entry at once cannot both post a compensating entry.
sa.Index("uq_journal_entries_reverses_id", JournalEntry.reverses_id, unique=True)

# The bank's own postings (no actor: interest, scheduled jobs) are idempotent by their key
# alone; the (actor_id, idempotency_key) constraint cannot see them, NULLs being distinct.
_SYSTEM_KEY = sa.text("actor_id IS NULL AND idempotency_key IS NOT NULL")
sa.Index("uq_journal_entries_system_key", JournalEntry.idempotency_key, unique=True,
         postgresql_where=_SYSTEM_KEY, sqlite_where=_SYSTEM_KEY)


class PendingPostingKind:
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    ALL = (DEPOSIT, WITHDRAWAL)


class PendingStatus:
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ALL = (PENDING, APPROVED, REJECTED)


class PendingPosting(db.Model):
    """A teller posting above the maker-checker threshold, waiting for a second person.

    It moves no money: only ``ledger.approve_posting`` posts it, into the requester's till.
    """

    __tablename__ = "pending_postings"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('deposit', 'withdrawal')", name="kind_known"),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name="amount_positive"),
        # Four eyes: the checker is never the maker.
        sa.CheckConstraint("requested_by_id <> decided_by_id", name="checker_not_maker"),
        sa.CheckConstraint("(status = 'pending') = (decided_by_id IS NULL)", name="decided_iff_not_pending"),
        sa.CheckConstraint("status <> 'approved' OR entry_id IS NOT NULL", name="approved_has_entry"),
        # A replayed request form finds the request it already made.
        sa.UniqueConstraint("requested_by_id", "idempotency_key", name="uq_pending_postings_requester_key"),
        sa.Index("ix_pending_postings_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(10), default=PendingStatus.PENDING)
    decided_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decision_note: Mapped[Optional[str]] = mapped_column(sa.String(255))
    entry_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    account: Mapped[Account] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[Optional[User]] = relationship(foreign_keys=[decided_by_id])
    entry: Mapped[Optional[JournalEntry]] = relationship()

    @property
    def is_pending(self) -> bool:
        return self.status == PendingStatus.PENDING


class AuditEvent(db.Model):
    """One line of the audit trail; written with the action it records, never changed.

    The database refuses UPDATE and DELETE on this table (triggers below and in the migration).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_action_created_at", "action", "created_at"),
        sa.Index("ix_audit_events_actor_id_created_at", "actor_id", "created_at"),
        sa.Index("ix_audit_events_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[Optional[str]] = mapped_column(sa.String(32))
    target_id: Mapped[Optional[str]] = mapped_column(sa.String(64))
    details: Mapped[Optional[dict]] = mapped_column(sa.JSON)
    ip_address: Mapped[Optional[str]] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)

    actor: Mapped[Optional[User]] = relationship()


AUDIT_APPEND_ONLY_DDL = {
    "sqlite": [
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ],
}

# create_all (tests on SQLite, fresh installs without migrations) gets the same triggers.
for _dialect, _statements in AUDIT_APPEND_ONLY_DDL.items():
    for _statement in _statements:
        sa.event.listen(AuditEvent.__table__, "after_create",
                        sa.DDL(_statement).execute_if(dialect=_dialect))


# ---------------------------------------------------------------- API (bankapp/api)


@sa.event.listens_for(User.is_active, "set", active_history=True)
def _revoke_api_tokens_on_deactivation(user, value, oldvalue, initiator):
    """Deactivating a user voids their API tokens, whichever code path deactivates them."""
    if value is False and oldvalue is not False:
        user.revoke_api_tokens()


class ApiIdempotencyKey(db.Model):
    """The answer to one API posting request keyed by ``Idempotency-Key``, to replay on retries.

    A posted request's record is inserted in the posting's own transaction (see
    ``bankapp.api.idempotency``); a refused one's right after the refusal. Records are always
    complete: there is no "in progress" row.
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key", name="uq_api_idempotency_keys_user_key"),
        sa.CheckConstraint("(response_status IS NULL) = (response_body IS NULL)",
                           name="response_complete"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(16))
    # sha256 of method, path and the canonical JSON body: the same key with another
    # request is refused.
    request_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int] = mapped_column(sa.Integer)
    response_body: Mapped[dict] = mapped_column(sa.JSON)
    entry_reference: Mapped[Optional[str]] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


# ---------------------------------------------------------------- reports (issue 5)


class StatementIssue(db.Model):
    """A statement handed out, so ``/reports/verify/`` can recompute it from the ledger."""

    __tablename__ = "statement_issues"
    __table_args__ = (
        sa.CheckConstraint("period_end >= period_start", name="period_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The normalised verification code (20 base32 characters, no separators).
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)
    # Also the statement's cut-off when its period had not ended yet: entries after this
    # moment are not part of what was issued.
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    issued_to: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))

    account: Mapped[Account] = relationship()


# The bank-wide reports read a window of the ledger by time: a covering index lets PostgreSQL
# answer them from the index alone, so their cost follows the window, not the table.
sa.Index("ix_transactions_timestamp", Transaction.timestamp,
         postgresql_include=["transaction_type", "side", "amount"])
sa.Index("ix_users_created_at", User.created_at)


class LedgerTotal(db.Model):
    """Customer movements per 15 minutes (UTC) and kind, kept by the ledger as it posts.

    The bank-wide day report reads these buckets instead of the legs, so its cost follows
    the number of days asked for, not the number of legs. Fifteen minutes because every time
    zone's offset is a multiple of it: a bucket never straddles a local midnight, whatever
    ``BANK_TIMEZONE`` is. Written in the same transaction as the legs; ``reconcile`` checks
    it against them.
    """

    __tablename__ = "ledger_totals"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('deposit', 'withdrawal', 'transfer')", name="kind_known"),
        sa.CheckConstraint("amount >= 0 AND amount <> 'NaN'", name="amount_not_negative"),
        sa.CheckConstraint("movements >= 0", name="movements_not_negative"),
    )

    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    # account id modulo ledger_totals.SHARDS: postings in the same quarter hour update one of
    # several rows, so concurrent postings do not all queue behind a single row lock.
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, default=0)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(16, 2), default=Decimal("0.00"))
    movements: Mapped[int] = mapped_column(sa.BigInteger, default=0)


# ---------------------------------------------------------------- outgoing mail (bankapp/email.py)


class MailStatus:
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class OutboxMessage(db.Model):
    """One email, written in the transaction of the action that causes it; sent afterwards.

    The body carries sign-in, reset and confirmation links, so it is stored encrypted
    (``bankapp.crypto``) and dropped once the message is sent; recipient and subject stay
    readable for the admins' mail page.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The worker's question: which pending messages are due, oldest first.
        sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body_encrypted: Mapped[Optional[str]] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(8), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_error: Mapped[Optional[str]] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- payees, scheduled orders, alerts (issue 15)


class Payee(db.Model):
    """An account a customer saved to pay again, under a name of their choosing."""

    __tablename__ = "payees"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "account_id", name="uq_payees_user_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    nickname: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    account: Mapped[Account] = relationship()


class Frequency(_Labelled):
    ONCE = "once"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    ALL = (ONCE, WEEKLY, MONTHLY)
    LABELS = {ONCE: N_("Once"), WEEKLY: N_("Weekly"), MONTHLY: N_("Monthly")}


class OrderStatus(_Labelled):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ALL = (ACTIVE, PAUSED, CANCELLED, COMPLETED)
    LABELS = {ACTIVE: "Active", PAUSED: "Paused", CANCELLED: "Cancelled", COMPLETED: "Completed"}


class ScheduledOrder(db.Model):
    """A one-off transfer on a future date, or a standing order (weekly or monthly).

    ``next_due_on`` is the next payment's date (NULL once the order has ended); the runner
    (``bankapp.ledger.scheduled``) moves it on in the same transaction as each occurrence.
    """

    __tablename__ = "scheduled_orders"
    __table_args__ = (
        sa.CheckConstraint("frequency IN ('once', 'weekly', 'monthly')", name="frequency_known"),
        sa.CheckConstraint("status IN ('active', 'paused', 'cancelled', 'completed')",
                           name="status_known"),
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name="amount_positive"),
        sa.CheckConstraint("(frequency = 'monthly') = (day_of_month IS NOT NULL)",
                           name="day_iff_monthly"),
        sa.CheckConstraint("day_of_month BETWEEN 1 AND 31", name="day_of_month_valid"),
        sa.CheckConstraint("end_on IS NULL OR end_on >= start_on", name="end_after_start"),
        sa.CheckConstraint("max_occurrences IS NULL OR max_occurrences > 0",
                           name="max_occurrences_positive"),
        sa.CheckConstraint("source_account_id <> destination_account_id", name="not_to_itself"),
        sa.CheckConstraint("(status IN ('active', 'paused')) = (next_due_on IS NOT NULL)",
                           name="next_due_iff_open"),
        # A replayed creation form finds the order it already made.
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_scheduled_orders_user_key"),
        sa.Index("ix_scheduled_orders_status_next_due_on", "status", "next_due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    source_account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    destination_account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    description: Mapped[str] = mapped_column(sa.String(140), default="")
    frequency: Mapped[str] = mapped_column(sa.String(8))
    day_of_month: Mapped[Optional[int]] = mapped_column(sa.SmallInteger)
    start_on: Mapped[date] = mapped_column(sa.Date)
    end_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    max_occurrences: Mapped[Optional[int]] = mapped_column(sa.Integer)
    occurrence_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_due_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(10), default=OrderStatus.ACTIVE)
    status_reason: Mapped[Optional[str]] = mapped_column(sa.String(255))
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    user: Mapped[User] = relationship()
    source: Mapped[Account] = relationship(foreign_keys=[source_account_id])
    destination: Mapped[Account] = relationship(foreign_keys=[destination_account_id])

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.ACTIVE, OrderStatus.PAUSED)


class OccurrenceStatus:
    POSTED = "posted"
    FAILED = "failed"
    ALL = (POSTED, FAILED)


class ScheduledOccurrence(db.Model):
    """One due date of a scheduled order, and what happened: posted (its entry) or failed.

    UNIQUE (order_id, due_on): whatever runs the job, and however often, an occurrence is
    recorded once (the ledger's idempotency key, order id + due date, backs it up).
    """

    __tablename__ = "scheduled_occurrences"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "due_on", name="uq_scheduled_occurrences_order_due"),
        sa.CheckConstraint("status IN ('posted', 'failed')", name="status_known"),
        sa.CheckConstraint("(status = 'posted') = (entry_id IS NOT NULL)", name="posted_has_entry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("scheduled_orders.id"))
    due_on: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(8))
    entry_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    reason: Mapped[Optional[str]] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    entry: Mapped[Optional[JournalEntry]] = relationship()


class AlertSettings(db.Model):
    """A customer's alert choices (``bankapp.alerts``); no row means the defaults."""

    __tablename__ = "alert_settings"
    __table_args__ = (
        sa.CheckConstraint("large_transfer_threshold IS NULL OR large_transfer_threshold > 0",
                           name="threshold_positive"),
        sa.CheckConstraint("low_balance_floor IS NULL OR low_balance_floor > 0",
                           name="floor_positive"),
        sa.CheckConstraint("NOT large_transfer_on OR large_transfer_threshold IS NOT NULL",
                           name="large_transfer_has_threshold"),
        sa.CheckConstraint("NOT low_balance_on OR low_balance_floor IS NOT NULL",
                           name="low_balance_has_floor"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    large_transfer_on: Mapped[bool] = mapped_column(default=False)
    large_transfer_threshold: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(12, 2))
    low_balance_on: Mapped[bool] = mapped_column(default=False)
    low_balance_floor: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(12, 2))
    scheduled_failed_on: Mapped[bool] = mapped_column(default=True)
    hold_placed_on: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)


# ---------------------------------------------------------------- interest (issue 15)


class InterestRate(db.Model):
    """An annual interest rate for one account type, from a date on (a history: never edited).

    The rate of a day is the row with the latest ``effective_from`` on or before it.
    """

    __tablename__ = "interest_rates"
    __table_args__ = (
        sa.CheckConstraint("account_type IN ('SAVINGS', 'CHECKING')", name="account_type_known"),
        # Percent a year: 2.5000 is 2.5 %.
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate <= 100 AND annual_rate <> 'NaN'",
                           name="annual_rate_in_range"),
        sa.UniqueConstraint("account_type", "effective_from",
                            name="uq_interest_rates_type_effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_type: Mapped[str] = mapped_column(sa.String(16))
    annual_rate: Mapped[Decimal] = mapped_column(sa.Numeric(7, 4))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    created_by: Mapped[Optional[User]] = relationship()


class InterestPosting(db.Model):
    """One account's interest for one month: what accrued, what was paid, what is carried.

    Amounts of accrual are kept exactly as *numerators*: the sum over the month's days of the
    end-of-day balance times the annual rate in percent (``interest = numerator / 36500``,
    actual/365). ``posted`` is whole cents; ``carry`` is the numerator not paid yet (the
    sub-cent remainder, or a whole month's interest when the account could not be credited),
    added to the next month's. Written in the same transaction as the INTEREST entry; the
    unique (account, month) makes ``post-interest`` pay each month once.
    """

    __tablename__ = "interest_postings"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "month", name="uq_interest_postings_account_month"),
        sa.CheckConstraint("posted >= 0 AND posted <> 'NaN'", name="posted_not_negative"),
        sa.CheckConstraint("accrued >= 0 AND accrued <> 'NaN'", name="accrued_not_negative"),
        sa.CheckConstraint("(posted > 0) = (entry_id IS NOT NULL)", name="entry_iff_posted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    month: Mapped[date] = mapped_column(sa.Date)  # its first day
    accrued: Mapped[Decimal] = mapped_column(sa.Numeric(24, 6))
    posted: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    carry: Mapped[Decimal] = mapped_column(sa.Numeric(24, 6))
    entry_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    account: Mapped[Account] = relationship()
    entry: Mapped[Optional[JournalEntry]] = relationship()


# ---------------------------------------------------------------- holds and limits (issue 15)


class Hold(db.Model):
    """Money on an account a teller has set aside: it cannot be withdrawn or transferred.

    Active while not released and before ``expires_at``: an expired hold stops counting by
    itself, since every check compares the expiry with the moment of the check.
    """

    __tablename__ = "holds"
    __table_args__ = (
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name="amount_positive"),
        sa.CheckConstraint("(released_at IS NULL) = (released_by_id IS NULL)",
                           name="released_by_iff_released"),
        sa.Index("ix_holds_account_id_expires_at", "account_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    reason: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    placed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    released_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    released_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    placed_by: Mapped[User] = relationship(foreign_keys=[placed_by_id])
    released_by: Mapped[Optional[User]] = relationship(foreign_keys=[released_by_id])

    @classmethod
    def active_total(cls, account_id, now):
        """SQL: the sum of ``account_id``'s holds active at ``now`` (0 when none)."""
        return (sa.select(sa.func.coalesce(sa.func.sum(cls.amount), 0))
                .where(cls.account_id == account_id, cls.released_at.is_(None),
                       cls.expires_at > now)
                .scalar_subquery())

    def is_active_at(self, moment: datetime) -> bool:
        return self.released_at is None and self.expires_at > moment


class TransferLimit(db.Model):
    """A customer's own daily outgoing limit (never above ``DAILY_TRANSFER_LIMIT``).

    A raise waits in ``pending_limit`` until ``pending_from`` (24 hours later) unless it was
    approved with step-up; a lowering replaces ``daily_limit`` at once.
    """

    __tablename__ = "transfer_limits"
    __table_args__ = (
        sa.CheckConstraint("daily_limit > 0 AND daily_limit <> 'NaN'", name="daily_limit_positive"),
        sa.CheckConstraint("pending_limit IS NULL OR (pending_limit > 0 AND pending_limit <> 'NaN')",
                           name="pending_limit_positive"),
        sa.CheckConstraint("(pending_limit IS NULL) = (pending_from IS NULL)",
                           name="pending_complete"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    daily_limit: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    pending_limit: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(12, 2))
    pending_from: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    def limit_at(self, moment: datetime) -> Decimal:
        if self.pending_from is not None and self.pending_from <= moment:
            return self.pending_limit
        return self.daily_limit


class DailyOutgoing(db.Model):
    """What a customer has sent out on one day (``BANK_TIMEZONE``): withdrawals and transfers
    to other people. Raised in the posting's transaction by one conditional upsert that also
    checks the limit, so concurrent payments cannot together pass it."""

    __tablename__ = "daily_outgoing"
    __table_args__ = (
        sa.CheckConstraint("amount >= 0 AND amount <> 'NaN'", name="amount_not_negative"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2), default=Decimal("0.00"))

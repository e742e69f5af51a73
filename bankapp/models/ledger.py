"""The double-entry ledger: accounts, journal entries and their legs, postings waiting for a
second person (maker-checker), and the running totals the bank reports read.

Money columns are NUMERIC and every rule that matters is also a database constraint, so a
bug in Python cannot write a negative customer balance, a NaN or a zero-amount ledger row.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import Labelled, UTCDateTime, now_utc
from bankapp.models.identity import User
from bankapp.platform.i18n import N_


class AccountType(Labelled):
    SAVINGS = "SAVINGS"
    CHECKING = "CHECKING"
    CUSTOMER = (SAVINGS, CHECKING)
    # The bank's own side of the book: no owner, never shown to customers.
    VAULT = "VAULT"
    TILL = "TILL"
    OVER_SHORT = "OVER_SHORT"
    # A bank expense (interest paid to customers, GL-INTEREST): it may go negative.
    EXPENSE = "EXPENSE"
    # The bank's income (loan interest and fees, GL-LOAN-*): credit-positive, it grows.
    INCOME = "INCOME"
    # A disbursed loan (LN-<id>): minus the principal its borrower owes, never above zero.
    LOAN = "LOAN"
    INTERNAL = (VAULT, TILL, OVER_SHORT, EXPENSE, INCOME, LOAN)
    LABELS = {SAVINGS: N_("Savings"), CHECKING: N_("Checking"), VAULT: N_("Vault cash"),
              TILL: N_("Teller till"), OVER_SHORT: N_("Cash over/short"),
              EXPENSE: N_("Bank expense"), INCOME: N_("Bank income"), LOAN: N_("Loan")}
    # What a customer calls the account in a sentence ("Compte Compte courant" otherwise).
    NAMES = {SAVINGS: N_("Savings account"), CHECKING: N_("Checking account")}


class AccountStatus:
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"
    ALL = (ACTIVE, FROZEN, CLOSED)


_INTERNAL_SQL = "('VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE', 'INCOME', 'LOAN')"


class Account(db.Model):
    __tablename__ = "accounts"
    __table_args__ = (
        sa.CheckConstraint(
            "account_type IN ('SAVINGS', 'CHECKING', 'VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE', "
            "'INCOME', 'LOAN')",
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
        # A loan's balance is minus what its borrower owes: the bank never owes on a loan.
        sa.CheckConstraint("account_type <> 'LOAN' OR balance <= 0", name="loan_not_positive"),
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

    @property
    def type_name(self) -> str:
        """The account's kind as a noun (``Savings account``), to translate with ``_()``."""
        return AccountType.NAMES.get(self.account_type, self.type_label)

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
    LOAN_DISBURSEMENT = "LOAN_DISBURSEMENT"
    LOAN_REPAYMENT = "LOAN_REPAYMENT"
    LOAN_WRITE_OFF = "LOAN_WRITE_OFF"


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
    # No index of its own: uq_journal_entries_actor_key starts with it.
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(sa.String(16), default=Channel.WEB)
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    reverses_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    # A customer's deposit, withdrawal or transfer is its own audit line (bankapp.audit.trail):
    # the action and the client's address, instead of an audit_events row. NULL for the
    # other entries and for those written before migration 0022 (they have their row).
    audit_action: Mapped[Optional[str]] = mapped_column(sa.String(64))
    ip_address: Mapped[Optional[str]] = mapped_column(sa.String(45))

    actor: Mapped[Optional[User]] = relationship()
    legs: Mapped[list["Transaction"]] = relationship(
        back_populates="entry", order_by="Transaction.id"
    )


class TransactionType(Labelled):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"
    REVERSAL = "REVERSAL"
    CASH_IN = "CASH_IN"
    CASH_OUT = "CASH_OUT"
    INTEREST = "INTEREST"
    LOAN_PAYOUT = "LOAN_PAYOUT"  # the principal paid out (customer credit, loan debit)
    LOAN_REPAYMENT = "LOAN_REPAYMENT"  # an instalment or repayment (customer debit)
    LOAN_FEE = "LOAN_FEE"  # a disbursement or late fee (to GL-LOAN-FEES)
    LOAN_WRITE_OFF = "LOAN_WRITE_OFF"  # what is left of a loan, to GL-LOAN-LOSS
    LABELS = {DEPOSIT: N_("Deposit"), WITHDRAWAL: N_("Withdrawal"),
              TRANSFER_IN: N_("Transfer in"), TRANSFER_OUT: N_("Transfer out"),
              REVERSAL: N_("Reversal"), CASH_IN: N_("Cash in"), CASH_OUT: N_("Cash out"),
              INTEREST: N_("Interest"), LOAN_PAYOUT: N_("Loan payout"),
              LOAN_REPAYMENT: N_("Loan repayment"), LOAN_FEE: N_("Loan fee"),
              LOAN_WRITE_OFF: N_("Loan write-off")}


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


# At most one reversal per entry, enforced by the database: two admins reversing the same
# entry at once cannot both post a compensating entry.
# Partial: the entries that reverse nothing (nearly all) cost the index nothing.
_REVERSES = sa.text("reverses_id IS NOT NULL")
sa.Index("uq_journal_entries_reverses_id", JournalEntry.reverses_id, unique=True,
         postgresql_where=_REVERSES, sqlite_where=_REVERSES)


# The bank's own postings (no actor: interest, scheduled jobs) are idempotent by their key
# alone; the (actor_id, idempotency_key) constraint cannot see them, NULLs being distinct.
_SYSTEM_KEY = sa.text("actor_id IS NULL AND idempotency_key IS NOT NULL")


sa.Index("uq_journal_entries_system_key", JournalEntry.idempotency_key, unique=True,
         postgresql_where=_SYSTEM_KEY, sqlite_where=_SYSTEM_KEY)


# The audit trail filtered by actor (bankapp.audit.trail): each actor's postings that are their
# own audit line, newest first (read backwards, ``id DESC`` gives equal times by ascending id:
# the trail's order, a posting's line id being minus its entry id). Partial: the bank's own
# postings (interest, standing orders, loans) are no actor's audit line and cost it nothing.
_AUDIT_LINE = sa.text("audit_action IS NOT NULL")
sa.Index("ix_journal_entries_audit_actor_created_at", JournalEntry.actor_id,
         JournalEntry.created_at, JournalEntry.id.desc(),
         postgresql_where=_AUDIT_LINE, sqlite_where=_AUDIT_LINE)


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
    # The largest of these movements: the report's "largest movements" reads the legs of the
    # few buckets that can hold them, not a month of legs. Kept by the same upsert (no extra
    # row, no extra index entry). NULL: not known (a row written before migration 0023 was
    # backfilled, or by the previous release): its bucket is always read.
    max_amount: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(10, 2))


class ClosingBalance(db.Model):
    """The accounts of one type and status, and what they held, as counted at ``counted_at``
    by the daily ``count-balances`` job, soon after the bank's day closed.

    The bank report of a past period shows the first count after its close instead of
    summing every account row as it stands now (a scan that grows with the bank). Counted in
    one statement, so a count is the book at one moment and its rows sum to zero.
    """

    __tablename__ = "closing_balances"
    __table_args__ = (
        sa.CheckConstraint("accounts > 0", name="accounts_positive"),
        sa.CheckConstraint("balance <> 'NaN'", name="balance_not_nan"),
    )

    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    account_type: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    accounts: Mapped[int] = mapped_column(sa.Integer)
    balance: Mapped[Decimal] = mapped_column(sa.Numeric(16, 2))

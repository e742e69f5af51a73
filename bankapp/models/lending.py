"""Lending: loan products, loans (from application to payoff), their repayment schedules and
the repayments made on them.

A disbursed loan has an account in the book (``accounts`` row of type LOAN, ``LN-<id>``, no
owner: the borrower is on the loan). Its credit-positive balance is minus the principal the
borrower still owes, so the book keeps summing to zero (see ``bankapp/lending``).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import Labelled, UTCDateTime, now_utc
from bankapp.models.identity import User
from bankapp.models.ledger import Account, JournalEntry
from bankapp.platform.i18n import N_

ZERO = Decimal("0.00")


class RepaymentFrequency(Labelled):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    ALL = (WEEKLY, MONTHLY)
    LABELS = {WEEKLY: N_("Every week"), MONTHLY: N_("Every month")}


class Amortisation(Labelled):
    # Every instalment the same total (annuity); the last one takes the remainder.
    EQUAL_INSTALMENTS = "equal_instalments"
    # Every instalment the same principal, plus the interest on the declining balance.
    EQUAL_PRINCIPAL = "equal_principal"
    ALL = (EQUAL_INSTALMENTS, EQUAL_PRINCIPAL)
    LABELS = {EQUAL_INSTALMENTS: N_("Equal instalments"),
              EQUAL_PRINCIPAL: N_("Equal principal")}


class LateFeeKind(Labelled):
    FLAT = "flat"
    PERCENT = "percent"  # of the instalment's overdue amount
    ALL = (FLAT, PERCENT)
    LABELS = {FLAT: N_("Flat amount"), PERCENT: N_("Percent of the overdue amount")}


class LoanProduct(db.Model):
    """What the bank lends on: bounds, price and repayment rhythm of its loans."""

    __tablename__ = "loan_products"
    __table_args__ = (
        sa.CheckConstraint("principal_min > 0 AND principal_min <= principal_max "
                           "AND principal_max <> 'NaN'", name="principal_bounds"),
        sa.CheckConstraint("term_min >= 1 AND term_min <= term_max AND term_max <= 520",
                           name="term_bounds"),
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate <= 100 AND annual_rate <> 'NaN'",
                           name="annual_rate_in_range"),
        sa.CheckConstraint("frequency IN ('weekly', 'monthly')", name="frequency_known"),
        sa.CheckConstraint("amortisation IN ('equal_instalments', 'equal_principal')",
                           name="amortisation_known"),
        sa.CheckConstraint("grace_days >= 0 AND grace_days <= 365", name="grace_days_in_range"),
        sa.CheckConstraint("late_fee_kind IN ('flat', 'percent')", name="late_fee_kind_known"),
        sa.CheckConstraint("late_fee >= 0 AND late_fee <> 'NaN'", name="late_fee_not_negative"),
        sa.CheckConstraint("disbursement_fee >= 0 AND disbursement_fee < principal_min",
                           name="disbursement_fee_below_principal"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    principal_min: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    principal_max: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    term_min: Mapped[int] = mapped_column(sa.Integer)
    term_max: Mapped[int] = mapped_column(sa.Integer)
    frequency: Mapped[str] = mapped_column(sa.String(8))
    annual_rate: Mapped[Decimal] = mapped_column(sa.Numeric(7, 4))
    amortisation: Mapped[str] = mapped_column(sa.String(20))
    grace_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    late_fee_kind: Mapped[str] = mapped_column(sa.String(8), default=LateFeeKind.FLAT)
    # An amount (flat) or a percentage (percent) with up to four decimals.
    late_fee: Mapped[Decimal] = mapped_column(sa.Numeric(12, 4), default=ZERO)
    disbursement_fee: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=ZERO)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    @property
    def frequency_label(self) -> str:
        return RepaymentFrequency.label(self.frequency)

    @property
    def amortisation_label(self) -> str:
        return Amortisation.label(self.amortisation)


class LoanStatus(Labelled):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    ACTIVE = "active"
    PAID_OFF = "paid_off"
    WRITTEN_OFF = "written_off"
    ALL = (SUBMITTED, APPROVED, REJECTED, ACTIVE, PAID_OFF, WRITTEN_OFF)
    OPEN = (SUBMITTED, APPROVED, ACTIVE)
    LABELS = {SUBMITTED: N_("Submitted"), APPROVED: N_("Approved"), REJECTED: N_("Rejected"),
              ACTIVE: N_("Active"), PAID_OFF: N_("Paid off"), WRITTEN_OFF: N_("Written off")}


class Loan(db.Model):
    """One loan, from the customer's application on. The product's terms are copied in when
    applying, so changing a product never changes a loan already asked for."""

    __tablename__ = "loans"
    __table_args__ = (
        sa.CheckConstraint("principal > 0 AND principal <> 'NaN'", name="principal_positive"),
        sa.CheckConstraint("term >= 1", name="term_positive"),
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate <= 100", name="annual_rate_in_range"),
        sa.CheckConstraint(
            "status IN ('submitted', 'approved', 'rejected', 'active', 'paid_off', "
            "'written_off')", name="status_known"),
        # Nobody approves (or rejects) their own application.
        sa.CheckConstraint("decided_by_id IS NULL OR decided_by_id <> borrower_id",
                           name="decider_not_borrower"),
        sa.CheckConstraint("status NOT IN ('active', 'paid_off', 'written_off') "
                           "OR loan_account_id IS NOT NULL", name="disbursed_has_account"),
        # A replayed application form finds the application it already made.
        sa.UniqueConstraint("borrower_id", "idempotency_key", name="uq_loans_borrower_key"),
        sa.Index("ix_loans_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("loan_products.id"))
    borrower_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    # The customer's account the principal is paid into and instalments are collected from.
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    loan_account_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("accounts.id"),
                                                           unique=True)
    principal: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    term: Mapped[int] = mapped_column(sa.Integer)
    purpose: Mapped[str] = mapped_column(sa.String(255), default="")
    frequency: Mapped[str] = mapped_column(sa.String(8))
    annual_rate: Mapped[Decimal] = mapped_column(sa.Numeric(7, 4))
    amortisation: Mapped[str] = mapped_column(sa.String(20))
    grace_days: Mapped[int] = mapped_column(sa.Integer)
    late_fee_kind: Mapped[str] = mapped_column(sa.String(8))
    late_fee: Mapped[Decimal] = mapped_column(sa.Numeric(12, 4))
    disbursement_fee: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    status: Mapped[str] = mapped_column(sa.String(12), default=LoanStatus.SUBMITTED)
    # Above the policy amount (LOAN_APPROVAL_THRESHOLD) only an admin may approve.
    needs_admin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    decided_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decision_reason: Mapped[Optional[str]] = mapped_column(sa.String(255))
    disbursed_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    disbursement_entry_id: Mapped[Optional[int]] = mapped_column(
        sa.ForeignKey("journal_entries.id"))
    closed_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    # Bumped by every repayment in the repayment's own transaction: a repayment computed on
    # an older state (a concurrent collection paid meanwhile) finds it moved and rolls back.
    version: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    product: Mapped[LoanProduct] = relationship()
    borrower: Mapped[User] = relationship(foreign_keys=[borrower_id])
    account: Mapped[Account] = relationship(foreign_keys=[account_id])
    loan_account: Mapped[Optional[Account]] = relationship(foreign_keys=[loan_account_id])
    decided_by: Mapped[Optional[User]] = relationship(foreign_keys=[decided_by_id])
    instalments: Mapped[list["LoanInstalment"]] = relationship(
        back_populates="loan", order_by="LoanInstalment.number")

    @property
    def status_label(self) -> str:
        return LoanStatus.label(self.status)

    @property
    def number(self) -> str:
        """The loan's account number in the book."""
        return f"LN-{self.id:08d}"


# An instalment with something left to pay (paid never exceeds due: constraints below).
UNSETTLED = ("(principal_paid < principal_due OR interest_paid < interest_due "
             "OR fee_paid < fee_due)")


class LoanInstalment(db.Model):
    """One instalment of a disbursed loan's schedule: what is due on a date and what has been
    paid of it. Interest is the declining-balance interest of its period (see
    ``bankapp/lending/schedule.py``); ``fee_due`` is the late fee, once charged."""

    __tablename__ = "loan_instalments"
    __table_args__ = (
        sa.UniqueConstraint("loan_id", "number", name="uq_loan_instalments_loan_number"),
        sa.CheckConstraint("principal_due >= 0 AND interest_due >= 0 AND fee_due >= 0",
                           name="due_not_negative"),
        sa.CheckConstraint("principal_paid >= 0 AND principal_paid <= principal_due",
                           name="principal_paid_within_due"),
        sa.CheckConstraint("interest_paid >= 0 AND interest_paid <= interest_due",
                           name="interest_paid_within_due"),
        sa.CheckConstraint("fee_paid >= 0 AND fee_paid <= fee_due", name="fee_paid_within_due"),
        # By due date, with the amounts the loan portfolio reads (bankapp/lending/portfolio.py):
        # it reads them from the index alone, not from a table where a day's instalments lie
        # one per loan, on nearly every page. SQLite has no INCLUDE: the key alone there.
        sa.Index("ix_loan_instalments_due_on_amounts", "due_on",
                 postgresql_include=["loan_id", "number", "principal_due", "interest_due",
                                     "interest_paid"]),
        # The arrears (what is due and unpaid) without reading every instalment ever settled.
        sa.Index("ix_loan_instalments_unsettled_amounts", "due_on",
                 postgresql_include=["loan_id", "principal_due", "principal_paid",
                                     "interest_due", "interest_paid"],
                 postgresql_where=sa.text(UNSETTLED), sqlite_where=sa.text(UNSETTLED)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(sa.ForeignKey("loans.id"))
    number: Mapped[int] = mapped_column(sa.Integer)
    due_on: Mapped[date] = mapped_column(sa.Date)
    principal_due: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    interest_due: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    fee_due: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=ZERO)
    principal_paid: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=ZERO)
    interest_paid: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=ZERO)
    fee_paid: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=ZERO)
    late_fee_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    reminded_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    overdue_notice_on: Mapped[Optional[date]] = mapped_column(sa.Date)

    loan: Mapped[Loan] = relationship(back_populates="instalments")

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fee_due

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fee_paid

    @property
    def outstanding(self) -> Decimal:
        return self.total_due - self.total_paid


class RepaymentKind(Labelled):
    COLLECTION = "collection"  # taken by the scheduled run on a due date
    REPAYMENT = "repayment"  # paid by the customer (web, API)
    PAYOFF = "payoff"  # the customer paid everything owed today
    ALL = (COLLECTION, REPAYMENT, PAYOFF)
    LABELS = {COLLECTION: N_("Collected"), REPAYMENT: N_("Repayment"), PAYOFF: N_("Payoff")}


class LoanRepayment(db.Model):
    """One repayment posted on a loan and how it was allocated (fees, interest, principal)."""

    __tablename__ = "loan_repayments"
    __table_args__ = (
        # Compared within half a cent: SQLite adds NUMERIC columns in binary floating point.
        sa.CheckConstraint("amount > 0 AND abs(amount - (principal + interest + fees)) < 0.005",
                           name="amount_allocated"),
        sa.CheckConstraint("kind IN ('collection', 'repayment', 'payoff')", name="kind_known"),
        # A month's repayments (the portfolio's "collected") from the index alone.
        sa.Index("ix_loan_repayments_paid_on", "paid_on", postgresql_include=["amount"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(sa.ForeignKey("loans.id"), index=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("journal_entries.id"), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    paid_on: Mapped[date] = mapped_column(sa.Date)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    principal: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    interest: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    fees: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    entry: Mapped[JournalEntry] = relationship()

    @property
    def kind_label(self) -> str:
        return RepaymentKind.label(self.kind)


class LoanRun(db.Model):
    """One run of the collections (``flask run-loans``): a run may not go back before the
    latest one's date, since the days up to it were collected already."""

    __tablename__ = "loan_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date] = mapped_column(sa.Date, index=True)
    trigger: Mapped[str] = mapped_column(sa.String(8))
    collected: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

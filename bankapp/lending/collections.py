"""The collections run (``flask run-loans``, the cron job): instalments, late fees, notices.

For each day from the day after the last run (or the oldest unpaid due date, on a first
run) up to ``as_of``, in order, and for each active loan:

1. **Collect** what is due (every instalment due by that day, oldest first: fees, interest,
   principal) from the loan's account, or as much of it as is *available* (balance less
   active holds, never below zero); the rest stays overdue. The idempotency key is
   ``loan:<id>:<oldest unpaid instalment>:<day>`` (a bank posting, unique by key), so a
   second run of the same day, or two hosts at once, collect once.
2. **Late fee**: once an instalment is still unpaid more than ``grace_days`` after its due
   date, its late fee (flat, or a percentage of what is overdue on it, half-up) is added
   to what it owes, once (``late_fee_on``, set by a conditional UPDATE).
3. **Notices** (the mail outbox, in the borrower's language): ``REMINDER_DAYS`` before a due
   date, and on the first day an instalment is overdue; each once per instalment.

A run may not go back before the latest run's date: those days were collected already.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext

from bankapp import audit as audit_trail
from bankapp import ledger
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.lending import notices
from bankapp.lending.errors import LendingError, LoanChanged
from bankapp.lending.schedule import half_up
from bankapp.lending.services import instalments_of, owed_on, post_repayment
from bankapp.models import (
    Channel,
    LateFeeKind,
    Loan,
    LoanInstalment,
    LoanRun,
    LoanStatus,
    RepaymentKind,
)

log = logging.getLogger("bankapp.lending")

REMINDER_DAYS = 3
MAX_CATCH_UP_DAYS = 366


@dataclass
class LoanRunReport:
    as_of: date
    first_day: date | None = None
    collections: int = 0
    collected: Decimal = Decimal("0.00")
    late_fees: int = 0
    notices: int = 0

    def summary(self) -> dict:
        """As plain JSON (the cron route's answer and the run's audit line)."""
        return {"as_of": self.as_of.isoformat(),
                "from": self.first_day.isoformat() if self.first_day else None,
                "collections": self.collections, "collected": str(self.collected),
                "late_fees": self.late_fees, "notices": self.notices}


def last_run() -> date | None:
    return db.session.scalar(sa.select(sa.func.max(LoanRun.as_of)))


def _first_day(as_of: date) -> date:
    previous = last_run()
    if previous is not None:
        if as_of < previous:
            raise LendingError(gettext(
                "The last run was for %(day)s: a run cannot go back before it.",
                day=previous.isoformat()), "as_of")
        return previous + timedelta(days=1)
    oldest = db.session.scalar(
        sa.select(sa.func.min(LoanInstalment.due_on)).join(Loan)
        .where(Loan.status == LoanStatus.ACTIVE))
    start = min(oldest, as_of) if oldest is not None else as_of
    return max(start - timedelta(days=REMINDER_DAYS), as_of - timedelta(days=MAX_CATCH_UP_DAYS))


def run_loans(as_of: date, trigger: str = "cli") -> LoanRunReport:
    """Collect, charge late fees and send notices for every day up to ``as_of`` (see the
    module docstring); a run of the same day again does nothing new."""
    report = LoanRunReport(as_of)
    day = report.first_day = _first_day(as_of)
    if day > as_of:  # already run for this day: a second run collects nothing twice
        day = as_of
    while day <= as_of:
        for loan_id in db.session.scalars(
                sa.select(Loan.id).where(Loan.status == LoanStatus.ACTIVE).order_by(Loan.id)):
            _run_loan_day(db.session.get(Loan, loan_id), day, report)
        day += timedelta(days=1)
    db.session.add(LoanRun(as_of=as_of, trigger=trigger[:8], collected=report.collections))
    audit_trail.record(Action.LOAN_RUN, actor=None, details={**report.summary(),
                                                             "trigger": trigger})
    db.session.commit()
    return report


def _run_loan_day(loan: Loan, day: date, report: LoanRunReport) -> None:
    db.session.refresh(loan)
    if loan.status != LoanStatus.ACTIVE or loan.disbursed_on is None \
            or loan.disbursed_on > day:
        return
    _collect(loan, day, report)
    if loan.status != LoanStatus.ACTIVE:
        return
    for row in instalments_of(loan, fresh=True):
        _late_fee(loan, row, day, report)
        _notice(loan, row, day, report)


def collection_key(loan: Loan, row: LoanInstalment, day: date) -> str:
    return f"loan:{loan.id}:{row.number}:{day.isoformat()}"


def _collect(loan: Loan, day: date, report: LoanRunReport) -> None:
    """Take what is due by ``day``, or as much of it as the account has available."""
    for _ in range(3):
        rows = instalments_of(loan, fresh=True)
        oldest = next((row for row in rows if row.due_on <= day and row.outstanding > 0), None)
        if oldest is None:
            return
        due = owed_on(loan, day, rows).due
        available = ledger.available_balance(loan.account) if loan.account.is_active \
            else Decimal("0.00")
        amount = min(due, available)
        if amount <= 0:
            return  # nothing to take: it stays overdue
        try:
            posting = post_repayment(loan, amount, RepaymentKind.COLLECTION, day, None,
                                     Channel.SYSTEM, collection_key(loan, oldest, day))
        except ledger.InsufficientFunds:
            continue  # a hold or a payment landed meanwhile: look at the balance again
        except (ledger.AccountNotActive, LoanChanged, LendingError) as refusal:
            log.info("loan %s: nothing collected on %s: %s", loan.id, day, refusal)
            return
        if posting is not None and not posting.replayed:
            report.collections += 1
            report.collected += _collected(posting)
        return


def _collected(posting: ledger.Posting) -> Decimal:
    """What a collection took: its customer leg's amount."""
    return next(leg.amount for leg in posting.entry.legs if leg.side == "debit")


def late_fee_of(loan: Loan, row: LoanInstalment) -> Decimal:
    """The late fee of an overdue instalment: flat, or a percentage of what it still owes."""
    if loan.late_fee_kind == LateFeeKind.PERCENT:
        return half_up(row.outstanding * loan.late_fee / 100)
    return Decimal(loan.late_fee).quantize(Decimal("0.01"))


def _late_fee(loan: Loan, row: LoanInstalment, day: date, report: LoanRunReport) -> None:
    if row.late_fee_on is not None or row.outstanding <= 0 \
            or day <= row.due_on + timedelta(days=loan.grace_days):
        return
    fee = late_fee_of(loan, row)

    def work() -> None:
        changed = db.session.execute(
            sa.update(LoanInstalment)
            .where(LoanInstalment.id == row.id, LoanInstalment.late_fee_on.is_(None))
            .values(fee_due=sa.func.round(LoanInstalment.fee_due + fee, 2), late_fee_on=day)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise LoanChanged()  # charged by another run meanwhile
        db.session.execute(sa.update(Loan).where(Loan.id == loan.id)
                           .values(version=Loan.version + 1)
                           .execution_options(synchronize_session=False))
        audit_trail.record(Action.LOAN_LATE_FEE, actor=None, target_type=TargetType.LOAN,
                           target_id=loan.id, details={"instalment": row.number, "fee": fee,
                                                       "on": day})

    if fee <= 0:
        return
    try:
        ledger.atomically(work, Action.LOAN_LATE_FEE)
    except LoanChanged:
        return
    report.late_fees += 1


def _notice(loan: Loan, row: LoanInstalment, day: date, report: LoanRunReport) -> None:
    if row.outstanding <= 0:
        return
    if row.reminded_on is None and row.due_on - timedelta(days=REMINDER_DAYS) <= day < row.due_on:
        column, send = LoanInstalment.reminded_on, notices.due_soon
    elif row.overdue_notice_on is None and day > row.due_on:
        column, send = LoanInstalment.overdue_notice_on, notices.overdue
    else:
        return

    def work() -> None:
        changed = db.session.execute(
            sa.update(LoanInstalment).where(LoanInstalment.id == row.id, column.is_(None))
            .values({column: day}).execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise LoanChanged()
        send(loan, row)

    try:
        ledger.atomically(work, "loan notice")
    except LoanChanged:
        return
    report.notices += 1

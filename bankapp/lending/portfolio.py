"""The loan portfolio on a day: loans by status, principal outstanding, interest owed,
portfolio at risk (PAR1, PAR30, PAR90) and this month's repayments expected and collected.

Portfolio at risk *k* is the principal outstanding of the loans whose oldest unpaid
instalment is at least *k* days past its due date, as a share of all principal outstanding
(the microfinance convention: the whole loan is at risk, not only the late instalment).

The figures are ``owed_on``'s (``bankapp/lending/services.py``) summed over the active
loans, computed by the database in a few statements whatever the number of loans: the
running period's interest to the day is rounded half-up per loan, as ``owed_on`` does, in
whole cents (integers), so SQLite's binary floating point cannot move a half cent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.lending.schedule import DAYS_IN_YEAR, LONGEST_PERIOD_DAYS
from bankapp.models import Account, Loan, LoanInstalment, LoanRepayment, LoanStatus
from bankapp.models.lending import UNSETTLED
from bankapp.platform.database import days_between

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
PAR_DAYS = (1, 30, 90)
RATE_UNITS = 10_000  # annual_rate is NUMERIC(7, 4): counted in ten-thousandths of a percent
# cents owed × rate units × days / INTEREST_DIVISOR = the interest in cents (actual/365).
INTEREST_DIVISOR = 100 * RATE_UNITS * DAYS_IN_YEAR


@dataclass
class Portfolio:
    day: date
    by_status: dict[str, int] = field(default_factory=dict)
    outstanding: Decimal = ZERO  # principal owed on active loans
    interest_owed: Decimal = ZERO  # due and unpaid, plus the running periods' to the day
    at_risk: dict[int, Decimal] = field(default_factory=dict)  # days → principal at risk
    expected: Decimal = ZERO  # instalments (principal + interest) due this month
    collected: Decimal = ZERO  # repaid this month (collections and repayments)

    def par(self, days: int) -> Decimal:
        """PAR<days> in percent, half-up to two places (0 with nothing outstanding)."""
        if self.outstanding == 0:
            return ZERO
        return (self.at_risk[days] * 100 / self.outstanding).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP)


def portfolio(day: date) -> Portfolio:
    """The portfolio as it stands on ``day`` (see the module docstring): four statements."""
    report = Portfolio(day, at_risk={days: ZERO for days in PAR_DAYS})
    report.by_status = {status: 0 for status in LoanStatus.ALL}
    for status, count in db.session.execute(
            sa.select(Loan.status, sa.func.count(Loan.id)).group_by(Loan.status)):
        report.by_status[status] = count
    principal, interest, accrued_cents, *at_risk = db.session.execute(
        _active_loans_totals(day)).one()
    report.outstanding = _money(principal)
    report.interest_owed = _money(interest) + Decimal(accrued_cents).scaleb(-2)
    report.at_risk = {days: _money(value) for days, value in zip(PAR_DAYS, at_risk)}
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    report.expected = _money(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LoanInstalment.principal_due
                                               + LoanInstalment.interest_due), 0))
        .join(Loan).where(Loan.status != LoanStatus.REJECTED,
                          LoanInstalment.due_on >= first, LoanInstalment.due_on < following)
    ))
    report.collected = _money(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LoanRepayment.amount), 0))
        .where(LoanRepayment.paid_on >= first, LoanRepayment.paid_on < following)
    ))
    return report


def _money(value) -> Decimal:
    """A sum the database returned, to the cent (SQLite's are binary floats)."""
    return Decimal(value or 0).quantize(CENT)


def _whole(amount, units: int = 100) -> sa.ColumnElement:
    """``amount`` as a whole number of ``1 / units`` (of cents by default): exact when it has
    at most that many places, whether the database added it in decimal or in binary."""
    return sa.cast(sa.func.round(amount * units), sa.BigInteger)


def _active_loans_totals(day: date) -> sa.Select:
    """One row over the active loans: principal outstanding, interest due and unpaid by
    ``day``, the running periods' interest to the day in cents, and the principal at risk
    for each of PAR_DAYS; each loan reckoned as ``owed_on`` does.

    It reads a few rows per loan, not its schedule: the principal still owed is the loan
    account's balance (the ledger moves it with every principal paid, in the same
    transaction as the instalments); what is due and unpaid is in the unsettled instalments
    due by the day (the arrears); and the running period lies within a month either side of
    the day (no period is longer: ``LONGEST_PERIOD_DAYS``).
    """
    row = LoanInstalment
    arrears = (
        sa.select(row.loan_id,
                  sa.func.sum(row.principal_due - row.principal_paid).label("principal"),
                  sa.func.sum(row.interest_due - row.interest_paid).label("interest"),
                  sa.func.min(sa.case((row.due_on < day, row.due_on))).label("first_late"))
        .where(row.due_on <= day, sa.text(UNSETTLED))  # ix_loan_instalments_unsettled_due_on
        .group_by(row.loan_id)
        .subquery("arrears"))
    # The running instalment: the first not yet due; its period began on the instalment
    # before it (the latest due by the day) or, for the first, on the payout.
    upcoming = (
        sa.select(row.loan_id, row.interest_due, row.interest_paid,
                  sa.func.row_number().over(partition_by=row.loan_id, order_by=row.number)
                  .label("place"))
        .where(row.due_on > day, row.due_on <= day + timedelta(days=LONGEST_PERIOD_DAYS))
        .subquery("upcoming"))
    previous = (
        sa.select(row.loan_id, sa.func.max(row.due_on).label("due_on"))
        .where(row.due_on <= day, row.due_on >= day - timedelta(days=LONGEST_PERIOD_DAYS))
        .group_by(row.loan_id)
        .subquery("previous"))
    principal = -Account.balance
    loans = (
        sa.select(
            principal.label("principal"),
            sa.func.coalesce(arrears.c.interest, 0).label("interest"),
            arrears.c.first_late,
            # accrued_interest(): the principal of the running instalment and those after it
            # (all of it but the arrears'), from the period's start to the day.
            _whole(principal - sa.func.coalesce(arrears.c.principal, 0)).label("owed"),
            sa.case((upcoming.c.loan_id.is_not(None), days_between(
                sa.literal(day, sa.Date),
                sa.func.coalesce(previous.c.due_on, Loan.disbursed_on)))).label("days"),
            _whole(Loan.annual_rate, RATE_UNITS).label("rate"),
            _whole(sa.func.coalesce(upcoming.c.interest_due, 0)).label("cap"),
            _whole(sa.func.coalesce(upcoming.c.interest_paid, 0)).label("paid"))
        .select_from(Loan)
        .join(Account, Account.id == Loan.loan_account_id)
        .outerjoin(arrears, arrears.c.loan_id == Loan.id)
        .outerjoin(upcoming, sa.and_(upcoming.c.loan_id == Loan.id, upcoming.c.place == 1))
        .outerjoin(previous, previous.c.loan_id == Loan.id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .offset(0)  # a fence: each column computed once per loan, not inlined at every use
        .subquery("loans"))
    accruing = (sa.select(loans, _period_interest_cents(loans).label("to_day"))
                .offset(0).subquery("accruing"))
    # min(to_day, cap) less what was paid of it, never below zero (paid ≤ cap: a
    # constraint); without a running instalment, to_day, cap and paid are all 0.
    accrued = sa.case((accruing.c.to_day >= accruing.c.cap, accruing.c.cap - accruing.c.paid),
                      (accruing.c.to_day > accruing.c.paid,
                       accruing.c.to_day - accruing.c.paid),
                      else_=0)
    return sa.select(
        sa.func.sum(accruing.c.principal), sa.func.sum(accruing.c.interest),
        sa.func.coalesce(sa.func.sum(accrued), 0),
        *(sa.func.sum(sa.case((accruing.c.first_late <= day - timedelta(days=days),
                               accruing.c.principal), else_=0))
          for days in PAR_DAYS))


def _period_interest_cents(loans) -> sa.ColumnElement:
    """``period_interest(owed, rate, days)`` in whole cents, half-up once per loan: zero for
    no days or nothing owed, and without a running instalment (its days are NULL)."""
    divisor = INTEREST_DIVISOR
    per_day = loans.c.rate * loans.c.days  # rate units × days: a period, at most 10⁶ × 31
    # half_up(owed × per_day / divisor) with owed = q × divisor + r is q × per_day plus
    # (r × per_day + divisor / 2) // divisor: no product leaves 64 bits, whatever the loan.
    return sa.case(
        (sa.and_(loans.c.days > 0, loans.c.owed > 0),
         (loans.c.owed // divisor) * per_day
         + ((loans.c.owed % divisor) * per_day + divisor // 2) // divisor),
        else_=0)

"""The loan portfolio on a day: loans by status, principal outstanding, interest owed,
portfolio at risk (PAR1, PAR30, PAR90) and this month's repayments expected and collected.

Portfolio at risk *k* is the principal outstanding of the loans whose oldest unpaid
instalment is at least *k* days past its due date, as a share of all principal outstanding
(the microfinance convention: the whole loan is at risk, not only the late instalment).

The figures are ``owed_on``'s (``bankapp/lending/services.py``) summed over the active
loans, computed by the database in one statement whatever the number of loans: the
running period's interest to the day is rounded half-up per loan, as ``owed_on`` does, in
whole cents (integers), so SQLite's binary floating point cannot move a half cent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.ledger.amounts import to_money
from bankapp.lending.schedule import DAYS_IN_YEAR, LONGEST_PERIOD_DAYS
from bankapp.models import Account, Loan, LoanInstalment, LoanRepayment, LoanStatus
from bankapp.models.lending import UNSETTLED
from bankapp.platform.database import days_between, whole_number

ZERO = Decimal("0.00")
PAR_DAYS = (1, 30, 90)
RATE_UNITS = 10_000  # annual_rate is NUMERIC(7, 4): counted in ten-thousandths of a percent
# cents owed × rate units × days / INTEREST_DIVISOR = the interest in cents (actual/365).
INTEREST_DIVISOR = 100 * RATE_UNITS * DAYS_IN_YEAR
PACK = 10 ** 12  # see _first_by_number


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
    """The portfolio as it stands on ``day`` (see the module docstring): one statement."""
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    row = db.session.execute(_portfolio_figures(day, first, following)).one()._mapping
    report = Portfolio(day)
    report.by_status = {status: int(row[f"status_{status}"] or 0) for status in LoanStatus.ALL}
    report.outstanding = to_money(row["principal"])
    report.interest_owed = to_money(row["interest"]) + Decimal(row["accrued_cents"] or 0).scaleb(-2)
    report.at_risk = {days: to_money(row[f"par_{days}"]) for days in PAR_DAYS}
    report.expected = to_money(row["expected"])
    report.collected = to_money(row["collected"])
    return report


def _whole(amount, units: int = 100) -> sa.ColumnElement:
    """``amount`` as a whole number of ``1 / units`` (of cents by default): exact when it has
    at most that many places, whether the database added it in decimal or in binary."""
    return whole_number(amount * units)


def _first_by_number(rows, amount) -> sa.ColumnElement:
    """``amount`` in whole cents of the lowest-numbered instalment among ``rows`` (NULL when
    none): the minimum of ``number × PACK + cents`` is that instalment's, and its remainder
    by ``PACK`` is the amount (every amount is below 10¹² cents: NUMERIC(12, 2)). One pass
    of the aggregate, where a window function would sort every loan's instalments."""
    return sa.func.min(sa.case((rows, LoanInstalment.number * sa.literal(PACK, sa.BigInteger)
                                + _whole(amount))))


def _arrears(day: date) -> sa.Subquery:
    """Per loan with something due and unpaid by ``day``: the principal and interest left
    on those instalments and the oldest one's due date if it is late (before the day).
    Read from the unsettled instalments only, in their index alone
    (``ix_loan_instalments_unsettled_amounts`` holds the amounts)."""
    row = LoanInstalment
    return (
        sa.select(row.loan_id,
                  sa.func.sum(row.principal_due - row.principal_paid).label("principal"),
                  sa.func.sum(row.interest_due - row.interest_paid).label("interest"),
                  sa.func.min(sa.case((row.due_on < day, row.due_on))).label("first_late"))
        .where(row.due_on <= day, sa.text(UNSETTLED))
        .group_by(row.loan_id)
        .subquery("arrears"))


def _running(day: date) -> sa.Subquery:
    """Per loan with an instalment due within a month either side of ``day``: the running
    instalment's interest, due and paid, in cents (the first instalment not yet due), and
    the start of its period if it is an instalment's due date (the latest due by the day;
    else the period is the first, begun on the payout).

    Both lie within a month of the day (no period is longer: ``LONGEST_PERIOD_DAYS``), so
    one pass over those instalments does, grouped by loan with no sort, from the index alone
    (``ix_loan_instalments_due_on_amounts`` holds the amounts)."""
    row = LoanInstalment
    month = timedelta(days=LONGEST_PERIOD_DAYS)
    upcoming = row.due_on > day
    return (
        sa.select(row.loan_id,
                  sa.func.max(sa.case((~upcoming, row.due_on))).label("period_start"),
                  _first_by_number(upcoming, row.interest_due).label("interest_due"),
                  _first_by_number(upcoming, row.interest_paid).label("interest_paid"))
        .where(row.due_on >= day - month, row.due_on <= day + month)
        .group_by(row.loan_id)
        .subquery("running"))


def _portfolio_figures(day: date, first: date, following: date) -> sa.Select:
    """One row: loans by status; over the active loans the principal outstanding, the
    interest due and unpaid by ``day``, the running periods' interest to the day in cents and
    the principal at risk for each of PAR_DAYS, each loan reckoned as ``owed_on`` does; what
    falls due in the month [first, following) on loans not rejected, and what was repaid in
    it.

    It reads a few rows per loan, not its schedule: the principal still owed is the loan
    account's balance (the ledger moves it with every principal paid, in the same
    transaction as the instalments); what is due and unpaid is in the unsettled instalments
    due by the day (the arrears); and the running period lies within a month either side of
    the day (``_running``).
    """
    arrears, running = _arrears(day), _running(day)
    active = Loan.status == LoanStatus.ACTIVE
    # The loan account is joined to the active loans only (below): testing for it is one
    # NULL check per loan where the status would be a string compared in each column.
    lent = Account.id.is_not(None)
    is_running = sa.and_(lent, running.c.interest_due.is_not(None))
    principal = -Account.balance  # NULL unless the loan is active: the join below
    loans = (
        sa.select(
            Loan.status,
            principal.label("principal"),
            sa.case((lent, arrears.c.interest)).label("interest"),
            sa.case((lent, arrears.c.first_late)).label("first_late"),
            # accrued_interest(): the principal of the running instalment and those after it
            # (all of it but the arrears'), from the period's start to the day.
            _whole(principal - sa.func.coalesce(arrears.c.principal, 0)).label("owed"),
            sa.case((is_running, days_between(
                sa.literal(day, sa.Date),
                sa.func.coalesce(running.c.period_start, Loan.disbursed_on)))).label("days"),
            _whole(Loan.annual_rate, RATE_UNITS).label("rate"),
            sa.case((is_running, running.c.interest_due % PACK), else_=0).label("cap"),
            sa.case((is_running, running.c.interest_paid % PACK), else_=0).label("paid"))
        .select_from(Loan)
        # A loan account is one of the bank's own (no owner: a constraint), which
        # ix_accounts_owner_id finds without reading every customer's account.
        .outerjoin(Account, sa.and_(Account.id == Loan.loan_account_id, active,
                                    Account.owner_id.is_(None)))
        .outerjoin(arrears, arrears.c.loan_id == Loan.id)
        .outerjoin(running, running.c.loan_id == Loan.id)
        .offset(0)  # a fence: each column computed once per loan, not inlined at every use
        .subquery("loans"))
    accruing = (sa.select(loans, _period_interest_cents(loans).label("to_day"))
                .offset(0).subquery("accruing"))
    # min(to_day, cap) less what was paid of it, never below zero (paid ≤ cap: a
    # constraint; NULL, which sum() skips, when nothing is owed); without a running
    # instalment, to_day, cap and paid are all 0.
    accrued = sa.case((accruing.c.to_day >= accruing.c.cap, accruing.c.cap - accruing.c.paid),
                      (accruing.c.to_day > accruing.c.paid,
                       accruing.c.to_day - accruing.c.paid))
    instalment = LoanInstalment
    expected = (
        sa.select(sa.func.sum(instalment.principal_due + instalment.interest_due))
        .where(instalment.due_on >= first, instalment.due_on < following,
               ~sa.exists().where(Loan.id == instalment.loan_id,
                                  Loan.status == LoanStatus.REJECTED))
        .scalar_subquery())
    collected = (sa.select(sa.func.sum(LoanRepayment.amount))
                 .where(LoanRepayment.paid_on >= first, LoanRepayment.paid_on < following)
                 .scalar_subquery())
    return sa.select(
        *(sa.func.count(sa.case((accruing.c.status == status, 1))).label(f"status_{status}")
          for status in LoanStatus.ALL),
        sa.func.sum(accruing.c.principal).label("principal"),
        sa.func.sum(accruing.c.interest).label("interest"),
        sa.func.sum(accrued).label("accrued_cents"),
        *(sa.func.sum(sa.case((accruing.c.first_late <= day - timedelta(days=days),
                               accruing.c.principal))).label(f"par_{days}")
          for days in PAR_DAYS),
        expected.label("expected"),
        collected.label("collected"))


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

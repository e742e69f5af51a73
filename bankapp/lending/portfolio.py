"""The loan portfolio on a day: loans by status, principal outstanding, interest owed,
portfolio at risk (PAR1, PAR30, PAR90) and this month's repayments expected and collected.

Portfolio at risk *k* is the principal outstanding of the loans whose oldest unpaid
instalment is at least *k* days past its due date, as a share of all principal outstanding
(the microfinance convention: the whole loan is at risk, not only the late instalment).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.lending.services import owed_on
from bankapp.models import Loan, LoanInstalment, LoanRepayment, LoanStatus

ZERO = Decimal("0.00")
PAR_DAYS = (1, 30, 90)


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
    """The portfolio as it stands on ``day`` (see the module docstring)."""
    report = Portfolio(day, at_risk={days: ZERO for days in PAR_DAYS})
    report.by_status = {status: 0 for status in LoanStatus.ALL}
    for status, count in db.session.execute(
            sa.select(Loan.status, sa.func.count(Loan.id)).group_by(Loan.status)):
        report.by_status[status] = count
    # Every active loan's schedule in one query (not one per loan), grouped by loan here.
    schedules: dict[int, list[LoanInstalment]] = defaultdict(list)
    for row in db.session.scalars(
            sa.select(LoanInstalment).join(Loan).where(Loan.status == LoanStatus.ACTIVE)
            .order_by(LoanInstalment.loan_id, LoanInstalment.number)):
        schedules[row.loan_id].append(row)
    for loan in db.session.scalars(sa.select(Loan).where(Loan.status == LoanStatus.ACTIVE)):
        rows = schedules[loan.id]
        owed = owed_on(loan, day, rows)
        report.outstanding += owed.principal
        report.interest_owed += owed.interest
        late = [row.due_on for row in rows if row.due_on < day and row.outstanding > 0]
        for days in PAR_DAYS:
            if late and (day - min(late)).days >= days:
                report.at_risk[days] += owed.principal
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    report.expected = Decimal(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LoanInstalment.principal_due
                                               + LoanInstalment.interest_due), 0))
        .join(Loan).where(Loan.status != LoanStatus.REJECTED,
                          LoanInstalment.due_on >= first, LoanInstalment.due_on < following)
    )).quantize(Decimal("0.01"))
    report.collected = Decimal(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LoanRepayment.amount), 0))
        .where(LoanRepayment.paid_on >= first, LoanRepayment.paid_on < following)
    )).quantize(Decimal("0.01"))
    return report

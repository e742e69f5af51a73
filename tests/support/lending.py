"""Loan products and loans to test with (through the lending services)."""
from __future__ import annotations

from decimal import Decimal

from bankapp.lending import products

PRODUCT_FIELDS = {
    "name": "Small business loan", "currency": "USD",  # the test bank's currency
    "principal_min": "100.00", "principal_max": "50000.00",
    "term_min": "1", "term_max": "60", "frequency": "monthly",
    "annual_rate": "12", "amortisation": "equal_instalments",
    "grace_days": "5", "late_fee_kind": "flat", "late_fee": "15.00",
    "disbursement_fee": "10.00",
}


def make_product(**overrides):
    """A loan product with PRODUCT_FIELDS' terms (texts, as an admin types them)."""
    fields = {**PRODUCT_FIELDS, **{key: str(value) for key, value in overrides.items()}}
    return products.create_product(products.parse_product(fields), None)


def money(text: str) -> Decimal:
    return Decimal(text)


def apply_for(borrower, account, product, principal="1200.00", term=12, key=None):
    """``borrower``'s application through the lending service."""
    from bankapp.lending import services

    return services.apply(borrower, services.Application(
        product, account, Decimal(principal), term, "Shop stock", key))


def active_loan(borrower, account, product, staff, principal="1200.00", term=12, on=None):
    """An application approved by ``staff`` and paid out on ``on`` (a date)."""
    from bankapp.lending import services

    loan = apply_for(borrower, account, product, principal, term)
    return services.approve(loan, staff, on)


def owed_in_book(loan) -> Decimal:
    """Minus the loan account's balance: the principal the book says is owed."""
    from support.backoffice import balance

    return -balance(loan.loan_account)


def portfolio_loan_by_loan(day):
    """The portfolio's figures on ``day`` as ``owed_on`` reckons them, loan by loan, with the
    month's money summed row by row in Python: the reference ``portfolio.portfolio`` must
    match to the cent (a dict of its fields)."""
    import sqlalchemy as sa

    from bankapp.extensions import db
    from bankapp.lending import services
    from bankapp.lending.portfolio import PAR_DAYS
    from bankapp.models import Loan, LoanRepayment, LoanStatus

    zero = Decimal("0.00")
    figures = {"by_status": {status: 0 for status in LoanStatus.ALL}, "outstanding": zero,
               "interest_owed": zero, "at_risk": {days: zero for days in PAR_DAYS},
               "expected": zero, "collected": zero}
    first = day.replace(day=1)
    for loan in db.session.scalars(sa.select(Loan).order_by(Loan.id)):
        figures["by_status"][loan.status] += 1
        rows = services.instalments_of(loan, fresh=True)
        if loan.status != LoanStatus.REJECTED:
            figures["expected"] += sum((row.principal_due + row.interest_due for row in rows
                                        if (row.due_on.year, row.due_on.month)
                                        == (first.year, first.month)), zero)
        if loan.status != LoanStatus.ACTIVE:
            continue
        owed = services.owed_on(loan, day, rows)
        figures["outstanding"] += owed.principal
        figures["interest_owed"] += owed.interest
        late = [row.due_on for row in rows if row.due_on < day and row.outstanding > 0]
        for days in PAR_DAYS:
            if late and (day - min(late)).days >= days:
                figures["at_risk"][days] += owed.principal
    figures["collected"] = sum((repayment.amount for repayment in db.session.scalars(
        sa.select(LoanRepayment)) if (repayment.paid_on.year, repayment.paid_on.month)
        == (first.year, first.month)), zero)
    return figures

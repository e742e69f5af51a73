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

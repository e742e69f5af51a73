"""Loan products and loans to test with (through the lending services)."""
from __future__ import annotations

from decimal import Decimal

from bankapp.lending import products

PRODUCT_FIELDS = {
    "name": "Small business loan", "currency": "EUR",
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

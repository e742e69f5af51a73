"""Amounts and texts as the ledger accepts them: exact cents, bounded, cleaned."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask import current_app

from bankapp.ledger.errors import InvalidAmount, InvalidDescription, LimitExceeded, ReasonRequired

CENT = Decimal("0.01")
# NUMERIC(12, 2): the largest balance the column can hold.
MAX_BALANCE = Decimal("9999999999.99")
MAX_DESCRIPTION = 255
MAX_REASON = 255

# ASCII digits only (str.isdigit and Decimal() accept Arabic-Indic and other digits), an
# optional thousands grouping, at most two decimals; no sign, exponent, NaN or Infinity.
AMOUNT_PATTERN = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]{1,2})?", re.ASCII)


def parse_amount(text: object) -> Decimal:
    """Turn what a person typed (``12``, ``12.5``, ``1,234.56``) into a valid amount.

    Raises ``InvalidAmount`` or ``LimitExceeded`` with a message fit to show next to the field.
    """
    if not isinstance(text, str):
        raise InvalidAmount("Enter the amount as text, such as 12.50.")
    cleaned = text.strip(" \t")
    if not cleaned:
        raise InvalidAmount("Enter an amount.")
    if cleaned.startswith("-"):
        raise InvalidAmount("The amount must be greater than zero.")
    if not AMOUNT_PATTERN.fullmatch(cleaned) or not any(c.isdigit() for c in cleaned):
        if re.fullmatch(r"[0-9,]*\.[0-9]{3,}", cleaned, re.ASCII):
            raise InvalidAmount("Use at most two decimal places.")
        raise InvalidAmount("Enter an amount such as 12.50 (digits, optional comma "
                            "thousands separators and up to two decimals).")
    return validate_amount(Decimal(cleaned.replace(",", "")))


def validate_amount(amount: object) -> Decimal:
    """Check an amount given as a ``Decimal``: finite, positive, cents, within the limit."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        # A float has already lost the exact value: refuse it rather than guess.
        raise InvalidAmount("Amounts must be exact decimals, not floating-point numbers.")
    try:
        amount = Decimal(amount)
        if not amount.is_finite():
            raise InvalidAmount("The amount must be a finite number.")
        if amount <= 0:
            raise InvalidAmount("The amount must be greater than zero.")
        if amount != amount.quantize(CENT):
            raise InvalidAmount("Use at most two decimal places.")
    except InvalidOperation as exc:
        raise InvalidAmount() from exc
    limit = Decimal(current_app.config["MAX_TRANSACTION_AMOUNT"])
    if amount > limit:
        raise LimitExceeded(f"The amount is above the per-transaction limit of {limit:,.2f}.")
    return amount.quantize(CENT)


def clean_description(description: str | None) -> str:
    text = " ".join((description or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise InvalidDescription(f"The description may be at most {MAX_DESCRIPTION} characters.")
    return text


def clean_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise ReasonRequired()
    if len(text) > MAX_REASON:
        raise ReasonRequired(f"The reason may be at most {MAX_REASON} characters.")
    return text


def to_money(value) -> Decimal:
    """A database number (or None) as a Decimal of whole cents."""
    return Decimal(value if value is not None else 0).quantize(CENT)

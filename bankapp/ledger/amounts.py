"""Amounts and texts as the ledger accepts them: exact cents, bounded, cleaned."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_decimal, parse_pattern
from flask import current_app
from flask_babel import gettext

from bankapp.ledger.errors import (
    InvalidAmount,
    InvalidDescription,
    LimitExceeded,
    ReasonRequired,
)
from bankapp.platform.formatting import format_money

CENT = Decimal("0.01")
# NUMERIC(12, 2): the largest balance the column can hold.
MAX_BALANCE = Decimal("9999999999.99")
MAX_DESCRIPTION = 255
MAX_REASON = 255

# ASCII digits only (str.isdigit and Decimal() accept Arabic-Indic and other digits), an
# optional thousands grouping, at most two decimals; no sign, exponent, NaN or Infinity.
# English's form; ``amount_pattern`` builds the same for any locale's separators.
AMOUNT_PATTERN = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]{1,2})?", re.ASCII)

SPACES = " \u00a0\u202f"  # what a locale that groups with a space may be typed or pasted with


@dataclass(frozen=True)
class Separators:
    """How a locale writes amounts: its decimal mark, its grouping mark and group sizes."""

    decimal: str
    group: str
    primary: int = 3  # digits in the group before the decimals
    secondary: int = 3  # digits in every group before that (2 in Indian grouping)

    @classmethod
    @lru_cache(maxsize=64)
    def of(cls, locale: str | Locale) -> "Separators":
        locale = Locale.parse(locale)
        symbols = locale.number_symbols.get("latn", {})
        primary, secondary = parse_pattern(locale.decimal_formats[None]).grouping
        group = symbols.get("group", ",")
        return cls(symbols.get("decimal", "."), " " if group in SPACES else group,
                   primary, secondary)

    @property
    def pattern(self) -> re.Pattern:
        g, d = re.escape(self.group), re.escape(self.decimal)
        grouped = (rf"[0-9]{{1,{self.secondary}}}(?:{g}[0-9]{{{self.secondary}}})*"
                   rf"{g}[0-9]{{{self.primary}}}")
        return re.compile(rf"(?:{grouped}|[0-9]+)?(?:{d}[0-9]{{1,2}})?", re.ASCII)

    @property
    def foreign_decimal(self) -> str:
        """The other common decimal mark: what a visitor from elsewhere may type instead."""
        return "," if self.decimal == "." else "."


def read_amount(text: object, locale: str | Locale = "en") -> Decimal:
    """The number a person typed, written the way ``locale`` writes amounts; no range check.

    English: ``12``, ``12.5``, ``1,234.56``; French: ``12,5``, ``1 234,56`` (a space, no-break
    space or narrow no-break space between thousands). Either decimal mark is taken where it
    cannot be anything else: one mark followed by one or two digits (``12,50`` in English,
    ``12.50`` in French). Text that another locale would read otherwise (``1.234,5`` in
    English, ``1.234`` or ``1,234.50`` in French) is refused as ambiguous rather than guessed.
    Raises ``InvalidAmount`` with a message fit for the field.
    """
    if not isinstance(text, str):
        raise InvalidAmount(gettext("Enter the amount as text, such as 12.50."))
    marks = Separators.of(locale)
    cleaned = text.strip(" \t")
    if marks.group == " ":
        cleaned = "".join(" " if c in SPACES else c for c in cleaned).strip(" ")
    if not cleaned:
        raise InvalidAmount(gettext("Enter an amount."))
    if cleaned.startswith("-"):
        raise InvalidAmount(gettext("The amount must be greater than zero."))
    if marks.pattern.fullmatch(cleaned) and any(c.isdigit() for c in cleaned):
        return Decimal(cleaned.replace(marks.group, "").replace(marks.decimal, "."))
    if re.fullmatch(rf"[0-9]*{re.escape(marks.foreign_decimal)}[0-9]{{1,2}}", cleaned,
                    re.ASCII) and any(c.isdigit() for c in cleaned):
        # One mark followed by one or two digits is a decimal mark in every locale (a
        # thousands mark is followed by three): ``12,50`` on an English page is 12.50.
        return Decimal(cleaned.replace(marks.foreign_decimal, "."))
    example = format_decimal(Decimal("1234.50"), format="#,##0.00", locale=locale)
    if re.fullmatch(rf"[0-9{re.escape(marks.group)}]*{re.escape(marks.decimal)}[0-9]{{3,}}",
                    cleaned, re.ASCII):
        raise InvalidAmount(gettext("Use at most two decimal places."))
    if re.fullmatch(rf"[0-9.,' ]*{re.escape(marks.foreign_decimal)}[0-9]{{1,2}}", cleaned,
                    re.ASCII):
        raise InvalidAmount(gettext(
            "“%(text)s” is ambiguous here: amounts are written with “%(decimal)s” before the "
            "decimals, such as 12%(decimal)s50 or %(example)s.",
            text=cleaned, decimal=marks.decimal, example=example))
    raise InvalidAmount(gettext(
        "Enter an amount such as 12%(decimal)s50 (digits, optional thousands separators as in "
        "%(example)s, and up to two decimals).", decimal=marks.decimal, example=example))


def parse_amount(text: object, locale: str | Locale = "en") -> Decimal:
    """Turn what a person typed (``12``, ``12.5``, ``1,234.56``; ``12,5`` in French) into a
    valid amount for a posting.

    Raises ``InvalidAmount`` or ``LimitExceeded`` with a message fit to show next to the field.
    """
    return validate_amount(read_amount(text, locale))


def validate_amount(amount: object) -> Decimal:
    """Check an amount given as a ``Decimal``: finite, positive, cents, within the limit."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        # A float has already lost the exact value: refuse it rather than guess.
        raise InvalidAmount(gettext("Amounts must be exact decimals, not floating-point numbers."))
    try:
        amount = Decimal(amount)
        if not amount.is_finite():
            raise InvalidAmount(gettext("The amount must be a finite number."))
        if amount <= 0:
            raise InvalidAmount(gettext("The amount must be greater than zero."))
        if amount != amount.quantize(CENT):
            raise InvalidAmount(gettext("Use at most two decimal places."))
    except InvalidOperation as exc:
        raise InvalidAmount() from exc
    limit = Decimal(current_app.config["MAX_TRANSACTION_AMOUNT"])
    if amount > limit:

        raise LimitExceeded(gettext("The amount is above the per-transaction limit of %(limit)s.",
                                    limit=format_money(limit)))
    return amount.quantize(CENT)


def clean_description(description: str | None) -> str:
    text = " ".join((description or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise InvalidDescription(gettext("The description may be at most %(count)d characters.",
                                         count=MAX_DESCRIPTION))
    return text


def clean_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise ReasonRequired()
    if len(text) > MAX_REASON:
        raise ReasonRequired(gettext("The reason may be at most %(count)d characters.",
                                     count=MAX_REASON))
    return text


def to_money(value) -> Decimal:
    """A database number (or None) as a Decimal of whole cents."""
    return Decimal(value if value is not None else 0).quantize(CENT)

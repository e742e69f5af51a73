"""What a person may type as an amount, and the message for everything else."""
from decimal import Decimal

import pytest

from bankapp.ledger import InvalidAmount, LimitExceeded, parse_amount, validate_amount


@pytest.mark.parametrize("text, expected", [
    ("12", Decimal("12.00")),
    ("12.5", Decimal("12.50")),
    ("12.50", Decimal("12.50")),
    ("1,234.56", Decimal("1234.56")),
    ("1,000,000.00", Decimal("1000000.00")),
    (" 7.25 ", Decimal("7.25")),
    ("0.01", Decimal("0.01")),
    (".50", Decimal("0.50")),
])
def test_accepted_amounts(app, text, expected):
    assert parse_amount(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "Enter an amount"),
    ("   ", "Enter an amount"),
    ("0", "greater than zero"),
    ("0.00", "greater than zero"),
    ("-5", "greater than zero"),
    ("10.005", "two decimal places"),
    ("1.999", "two decimal places"),
    ("NaN", "such as 12.50"),
    ("nan", "such as 12.50"),
    ("sNaN", "such as 12.50"),
    ("Infinity", "such as 12.50"),
    ("-Infinity", "greater than zero"),
    ("1e3", "such as 12.50"),
    ("1E3", "such as 12.50"),
    ("abc", "such as 12.50"),
    ("12abc", "such as 12.50"),
    ("١٢", "such as 12.50"),  # Arabic-Indic digits: Decimal() would accept them
    ("１２", "such as 12.50"),  # full-width digits
    ("1 000", "such as 12.50"),
    ("12\u00a0", "such as 12.50"),  # a no-break space is not a separator we accept
    ("1,2345", "such as 12.50"),  # neither a group of three nor two decimals
    ("12,34.5", "such as 12.50"),
    ("+12", "such as 12.50"),
    ("0x10", "such as 12.50"),
    ("12.", "such as 12.50"),
    (".", "such as 12.50"),
])
def test_refused_amounts(app, text, message):
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(text)
    assert message in str(refused.value)


def test_amount_over_the_per_transaction_limit_is_refused(app):
    with pytest.raises(LimitExceeded) as refused:
        parse_amount("1,000,000.01")
    assert "1,000,000.00" in str(refused.value)


def test_limit_is_configurable(app):
    app.config["MAX_TRANSACTION_AMOUNT"] = Decimal("500.00")
    assert parse_amount("500") == Decimal("500.00")
    with pytest.raises(LimitExceeded):
        parse_amount("500.01")


@pytest.mark.parametrize("value", [12.5, float("nan"), float("inf"), True, "12.50", None])
def test_validate_amount_refuses_anything_but_decimal_or_int(app, value):
    with pytest.raises(InvalidAmount):
        validate_amount(value)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"),
                                   Decimal("-1"), Decimal("0"), Decimal("10.005")])
def test_validate_amount_refuses_non_finite_negative_and_fractional_cents(app, value):
    with pytest.raises(InvalidAmount):
        validate_amount(value)


def test_validate_amount_accepts_exponent_decimal_with_whole_cents(app):
    assert validate_amount(Decimal("1E+3")) == Decimal("1000.00")

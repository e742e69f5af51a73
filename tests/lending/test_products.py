"""Loan products: what the bank lends on, and the terms it refuses."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.lending import products
from bankapp.lending.errors import LendingError
from bankapp.models import AuditEvent, LoanProduct
from support.lending import PRODUCT_FIELDS, make_product


def test_a_product_is_created_and_audited(app):
    product = make_product()
    assert product.principal_max == Decimal("50000.00")
    assert product.annual_rate == Decimal("12.0000")
    assert db.session.scalar(sa.select(AuditEvent.action).where(
        AuditEvent.target_id == str(product.id))) == "loan.product.create"


@pytest.mark.parametrize("field,value,message", [
    ("annual_rate", "-1", "0 to 100 percent"),
    ("annual_rate", "100.0001", "0 to 100 percent"),
    ("annual_rate", "1e2", "Enter a number"),
    ("annual_rate", "NaN", "Enter a number"),
    ("principal_min", "0", "principal runs"),
    ("principal_max", "99.99", "principal runs"),
    ("principal_max", "100000000.00", "principal runs"),
    ("principal_min", "1.005", "decimal places"),
    ("term_min", "0", "term runs"),
    ("term_max", "521", "term runs"),
    ("term_min", "2.5", "whole number"),
    ("frequency", "daily", "weekly or monthly"),
    ("amortisation", "balloon", "equal instalments or equal principal"),
    ("grace_days", "366", "Grace days"),
    ("late_fee", "-5", "positive amount"),
    ("disbursement_fee", "100.00", "below the smallest principal"),
    ("currency", "euro", "three letters"),
    ("currency", "EUR", "bank's currency"),
    ("name", "", "name"),
])
def test_a_product_with_bad_terms_is_refused(app, field, value, message):
    fields = {**PRODUCT_FIELDS, field: value}
    with pytest.raises(LendingError, match=message) as refused:
        products.parse_product(fields)
    assert refused.value.field in (field, "principal_max", "term_max")
    assert db.session.scalar(sa.select(sa.func.count(LoanProduct.id))) == 0


def test_a_percent_late_fee_above_100_is_refused(app):
    with pytest.raises(LendingError, match="0 to 100 percent"):
        products.parse_product({**PRODUCT_FIELDS, "late_fee_kind": "percent",
                                "late_fee": "100.5"})


def test_two_products_cannot_share_a_name(app):
    make_product()
    with pytest.raises(LendingError, match="exists already"):
        make_product()
    assert db.session.scalar(sa.select(sa.func.count(LoanProduct.id))) == 1


def test_the_command_creates_a_product(runner):
    result = runner.invoke(args=["create-loan-product", "--name", "Weekly", "--currency", "USD",
                                 "--principal-min", "50", "--principal-max", "500",
                                 "--term-min", "4", "--term-max", "26",
                                 "--frequency", "weekly", "--annual-rate", "24",
                                 "--amortisation", "equal_principal"])
    assert result.exit_code == 0, result.output
    assert "created" in result.output


def test_the_command_refuses_a_rate_above_100(runner):
    result = runner.invoke(args=["create-loan-product", "--name", "Usury", "--currency", "USD",
                                 "--principal-min", "50", "--principal-max", "500",
                                 "--term-min", "4", "--term-max", "26",
                                 "--frequency", "weekly", "--annual-rate", "101",
                                 "--amortisation", "equal_principal"])
    assert result.exit_code != 0
    assert "--annual-rate" in result.output and "0 to 100" in result.output

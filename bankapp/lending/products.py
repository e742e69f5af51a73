"""Loan products: what the bank lends on, created by an admin (page or ``flask loans``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp import audit as audit_trail
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger import CENT, atomically
from bankapp.lending.errors import LendingError
from bankapp.platform.formatting import format_amount
from bankapp.models import (
    Amortisation,
    LateFeeKind,
    LoanProduct,
    RepaymentFrequency,
    User,
)

MAX_RATE = Decimal("100")
MAX_TERM = 520  # ten years of weekly instalments
MAX_GRACE_DAYS = 365
# NUMERIC(10, 2) legs: the largest amount one posting can move.
MAX_PRINCIPAL = Decimal("99999999.99")
RATE_PLACES = Decimal("0.0001")
_DECIMAL = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]{1,6}", re.ASCII)


@dataclass(frozen=True)
class ProductSpec:
    """A loan product's terms, checked (``parse_product`` builds one from text)."""

    name: str
    currency: str
    principal_min: Decimal
    principal_max: Decimal
    term_min: int
    term_max: int
    frequency: str
    annual_rate: Decimal
    amortisation: str
    grace_days: int = 0
    late_fee_kind: str = LateFeeKind.FLAT
    late_fee: Decimal = Decimal("0.00")
    disbursement_fee: Decimal = Decimal("0.00")


def _decimal(text: object, field: str, places: Decimal = CENT) -> Decimal:
    cleaned = text.strip() if isinstance(text, str) else str(text if text is not None else "")
    if not _DECIMAL.fullmatch(cleaned):
        raise LendingError(gettext("Enter a number such as 1500.00."), field)
    value = Decimal(cleaned)
    if value != value.quantize(places):
        raise LendingError(gettext("Too many decimal places."), field)
    return value.quantize(places)


def _integer(text: object, field: str) -> int:
    cleaned = text.strip() if isinstance(text, str) else str(text if text is not None else "")
    if not _INTEGER.fullmatch(cleaned):
        raise LendingError(gettext("Enter a whole number."), field)
    return int(cleaned)


def parse_product(fields: dict) -> ProductSpec:
    """The product ``fields`` (texts, as typed) describe, or a ``LendingError`` naming the
    first field that is wrong and why."""
    name = " ".join(str(fields.get("name") or "").split())
    if not 1 <= len(name) <= 80:
        raise LendingError(gettext("Give the product a name of at most 80 characters."), "name")
    currency = str(fields.get("currency") or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency, re.ASCII):
        raise LendingError(gettext("Give the currency as three letters, such as EUR."),
                           "currency")
    if currency != current_app.config["BANK_CURRENCY"]:
        # The book is kept in one currency: a loan in another could not be posted.
        raise LendingError(gettext("Loans are in the bank's currency, %(code)s.",
                                   code=current_app.config["BANK_CURRENCY"]), "currency")
    spec = ProductSpec(
        name=name, currency=currency,
        principal_min=_decimal(fields.get("principal_min"), "principal_min"),
        principal_max=_decimal(fields.get("principal_max"), "principal_max"),
        term_min=_integer(fields.get("term_min"), "term_min"),
        term_max=_integer(fields.get("term_max"), "term_max"),
        frequency=str(fields.get("frequency") or ""),
        annual_rate=_decimal(fields.get("annual_rate"), "annual_rate", RATE_PLACES),
        amortisation=str(fields.get("amortisation") or ""),
        grace_days=_integer(fields.get("grace_days") or "0", "grace_days"),
        late_fee_kind=str(fields.get("late_fee_kind") or LateFeeKind.FLAT),
        late_fee=_decimal(fields.get("late_fee") or "0", "late_fee", RATE_PLACES),
        disbursement_fee=_decimal(fields.get("disbursement_fee") or "0", "disbursement_fee"),
    )
    validate_product(spec)
    return spec


def validate_product(spec: ProductSpec) -> None:
    """Refuse terms the bank cannot lend on (``LendingError`` with the field)."""
    if not Decimal("0") <= spec.annual_rate <= MAX_RATE:
        raise LendingError(gettext("The annual rate is 0 to 100 percent."), "annual_rate")
    if not Decimal("0") < spec.principal_min <= spec.principal_max <= MAX_PRINCIPAL:
        raise LendingError(gettext("The principal runs from a minimum above zero to a maximum "
                                   "at least as large (at most %(max)s).",
                                   max=format_amount(MAX_PRINCIPAL)), "principal_max")
    if not 1 <= spec.term_min <= spec.term_max <= MAX_TERM:
        raise LendingError(gettext("The term runs from at least 1 repayment to a maximum at "
                                   "least as large (at most %(max)d).", max=MAX_TERM), "term_max")
    if spec.frequency not in RepaymentFrequency.ALL:
        raise LendingError(gettext("Choose weekly or monthly repayments."), "frequency")
    if spec.amortisation not in Amortisation.ALL:
        raise LendingError(gettext("Choose equal instalments or equal principal."),
                           "amortisation")
    if not 0 <= spec.grace_days <= MAX_GRACE_DAYS:
        raise LendingError(gettext("Grace days are 0 to 365."), "grace_days")
    if spec.late_fee_kind not in LateFeeKind.ALL:
        raise LendingError(gettext("Choose a flat or a percent late fee."), "late_fee_kind")
    if spec.late_fee < 0 or (spec.late_fee_kind == LateFeeKind.PERCENT
                             and spec.late_fee > MAX_RATE):
        raise LendingError(gettext("The late fee is a positive amount, or 0 to 100 percent."),
                           "late_fee")
    if spec.late_fee_kind == LateFeeKind.FLAT and spec.late_fee != spec.late_fee.quantize(CENT):
        raise LendingError(gettext("A flat late fee is in whole cents."), "late_fee")
    if not Decimal("0") <= spec.disbursement_fee < spec.principal_min:
        raise LendingError(gettext("The disbursement fee is below the smallest principal."),
                           "disbursement_fee")


def create_product(spec: ProductSpec, actor: User | None) -> LoanProduct:
    """Add a loan product (audited); names are unique."""
    validate_product(spec)

    def work() -> LoanProduct:
        product = LoanProduct(**spec.__dict__, created_by_id=getattr(actor, "id", None))
        db.session.add(product)
        db.session.flush()
        audit_trail.record(Action.LOAN_PRODUCT_CREATE, actor=actor,
                           target_type=TargetType.LOAN_PRODUCT, target_id=product.id,
                           details={**spec.__dict__})
        return product

    try:
        return atomically(work, Action.LOAN_PRODUCT_CREATE)
    except IntegrityError:
        raise LendingError(gettext("A product with that name exists already."), "name") from None


def active_products() -> list[LoanProduct]:
    """The products customers may apply for, by name."""
    return list(db.session.scalars(
        sa.select(LoanProduct).where(LoanProduct.active.is_(True)).order_by(LoanProduct.name)))


def all_products() -> list[LoanProduct]:
    """Every product, by name (the admin's list)."""
    return list(db.session.scalars(sa.select(LoanProduct).order_by(LoanProduct.name)))

"""Form fields shared by every blueprint that takes money in a form."""
from __future__ import annotations

import uuid
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, StringField, SubmitField, ValidationError
from wtforms.validators import Length

from bankapp.platform.i18n import current_locale
from bankapp.platform.forms import BankForm
from bankapp.ledger import LedgerError, parse_amount


class AmountField(StringField):
    """A money amount typed by a person, validated by ``ledger.parse_amount`` in the locale
    the page is shown in (``12,50`` on a French page).

    Not WTForms' DecimalField: that one rounds ``10.005`` silently and crashes on ``sNaN``.
    ``field.amount`` holds the Decimal once the form validates.
    """

    amount: Decimal | None = None
    parse = staticmethod(parse_amount)

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("render_kw", {"inputmode": "decimal", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)

    def pre_validate(self, form):
        self.amount = None
        try:
            self.amount = self.parse(self.data or "", str(current_locale()))
        except LedgerError as error:
            raise ValidationError(str(error)) from error


class IdempotencyKeyField(HiddenField):
    """A one-time key made when the form is shown: a replayed submission posts nothing new."""

    def __init__(self, label=None, validators=None, **kwargs):
        # A hidden field's label is never shown; naming it spares WTForms making its default
        # one, which loads WTForms' translation catalogue from disk once per request.
        super().__init__(label if label is not None else "Idempotency Key",
                         validators or [Length(min=16, max=64)], **kwargs)

    def process_data(self, value):
        self.data = value or uuid.uuid4().hex


def description_field(label: str | None = None) -> StringField:
    return StringField(label or _l("Description (optional)"), validators=[Length(max=140)])


class ConfirmForm(BankForm):
    """A button that only POSTs: nothing to fill in but the CSRF token."""

    submit = SubmitField(_l("Confirm"))

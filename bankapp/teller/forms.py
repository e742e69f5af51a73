"""Teller forms. Amounts are text parsed by the ledger: WTForms' DecimalField would round
10.005 to 10.01 without a word and raise on sNaN, so it is never used for money."""
from __future__ import annotations

import uuid

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from bankapp import ledger
from bankapp.fields import AmountField


class CountedCashField(AmountField):
    parse = staticmethod(ledger.parse_counted_cash)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class OneTimeForm(FlaskForm):
    """A form carrying a one-time key, drawn when it is shown: a resubmission (double click,
    back button, retry after a timeout) replays the first result instead of posting twice."""

    idempotency_key = HiddenField(validators=[Optional(), Length(max=48)])

    def issue_key(self) -> None:
        if not self.idempotency_key.data:
            self.idempotency_key.data = new_idempotency_key()

    @property
    def key(self) -> str | None:
        return self.idempotency_key.data or None


class CounterPostingForm(OneTimeForm):
    amount = AmountField("Amount")
    description = StringField("Description", validators=[Optional(), Length(max=255)])
    submit = SubmitField("Post")


class CashForm(OneTimeForm):
    amount = AmountField("Amount")
    submit = SubmitField("Post")


class CloseShiftForm(OneTimeForm):
    counted = CountedCashField("Counted cash")
    submit = SubmitField("Close shift")


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Give a reason."), Length(max=255)])
    submit = SubmitField("Confirm")


class ConfirmForm(FlaskForm):
    """A button: nothing to fill in but the CSRF token."""

    submit = SubmitField("Confirm")

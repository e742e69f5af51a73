"""Teller forms. Amounts are text parsed by the ledger: WTForms' DecimalField would round
10.005 to 10.01 without a word and raise on sNaN, so it is never used for money."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from bankapp import ledger
from bankapp.ledger.fields import AmountField, IdempotencyKeyField
from bankapp.platform.forms import BankForm


class CountedCashField(AmountField):
    parse = staticmethod(ledger.parse_counted_cash)


class OneTimeForm(BankForm):
    """A form carrying a one-time key, drawn when it is shown: a resubmission (double click,
    back button, retry after a timeout) replays the first result instead of posting twice."""

    # At most 48 characters: closing a shift derives two prefixed ledger keys from it.
    idempotency_key = IdempotencyKeyField(validators=[Length(min=16, max=48)])

    @property
    def key(self) -> str:
        return self.idempotency_key.data


class CounterPostingForm(OneTimeForm):
    amount = AmountField(_l("Amount"))
    description = StringField(_l("Description"), validators=[Optional(), Length(max=255)])
    submit = SubmitField(_l("Post"))


class CashForm(OneTimeForm):
    amount = AmountField(_l("Amount"))
    submit = SubmitField(_l("Post"))


class CloseShiftForm(OneTimeForm):
    counted = CountedCashField(_l("Counted cash"))
    submit = SubmitField(_l("Close shift"))


class ReasonForm(BankForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(_l("Give a reason.")),
                                                      Length(max=255)])
    submit = SubmitField(_l("Confirm"))


class HoldForm(BankForm):
    """A hold on an account: amount, reason, and the last day it lasts."""

    amount = AmountField(_l("Amount to hold"))
    reason = StringField(_l("Reason (the customer sees it)"), validators=[Length(max=255)])
    # A native date picker: it shows the browser's own date style and sends YYYY-MM-DD.
    until = StringField(_l("Until the end of"), validators=[Length(max=10)],
                        render_kw={"type": "date"})


class ReleaseForm(BankForm):
    """The release button of one hold (CSRF only)."""


class ApproveForm(BankForm):
    """The review page's button: it carries the amount the checker saw, so approving from
    anywhere else (a stale list, a crafted post) moves nothing."""

    amount = HiddenField()
    submit = SubmitField(_l("Approve and post"))


class FactorResetForm(BankForm):
    """Staff reset a customer's second factors, saying why (kept in the audit trail)."""

    reason = StringField(_l("Why (kept in the audit trail)"), validators=[
        DataRequired(_l("Say why (for example: lost phone, identity checked with a passport).")),
        Length(max=255)])
    submit = SubmitField(_l("Reset second factor"))

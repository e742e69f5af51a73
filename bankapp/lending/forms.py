"""Forms of the customer's loan pages."""
from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import Length, Optional

from bankapp.ledger.fields import AmountField, IdempotencyKeyField
from bankapp.platform.forms import BankForm


class ApplyForm(BankForm):
    product = SelectField(_l("Loan"), choices=[])
    principal = AmountField(_l("Amount to borrow"))
    # Checked against the product by bankapp.lending.services.check_terms (with its message).
    term = IntegerField(_l("Number of repayments"), validators=[Optional()])
    account = SelectField(_l("Account to pay into and repay from"), choices=[])
    purpose = StringField(_l("Purpose (optional)"), validators=[Length(max=255)])
    idempotency_key = IdempotencyKeyField()
    show = SubmitField(_l("Show the repayment schedule"))
    apply = SubmitField(_l("Apply for this loan"))


class RepayForm(BankForm):
    amount = AmountField(_l("Amount to repay"))
    idempotency_key = IdempotencyKeyField()

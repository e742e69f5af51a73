"""Forms of the customer's account pages."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from bankapp.ledger.fields import AmountField, IdempotencyKeyField, description_field
from bankapp.models import AccountType


class OpenAccountForm(FlaskForm):
    account_type = SelectField(
        _l("Account type"),
        choices=[SelectChoice(AccountType.SAVINGS, _l("Savings")),
                 SelectChoice(AccountType.CHECKING, _l("Checking"))],
    )


class CashForm(FlaskForm):
    """A deposit or a withdrawal on one account."""

    amount = AmountField(_l("Amount"))
    description = description_field()
    idempotency_key = IdempotencyKeyField()


class TransferForm(FlaskForm):
    from_account = SelectField(_l("From account"), choices=[])
    # Saved payees (bankapp/payments/payees.py) come first; any number can still be typed.
    payee = SelectField(_l("To a saved payee"), choices=[], validate_choice=False)
    to_account = StringField(
        _l("Or to account number"),
        validators=[Length(max=20)],
        render_kw={"placeholder": "ACC-123456789", "autocomplete": "off"},
    )
    amount = AmountField(_l("Amount"))
    description = description_field()
    idempotency_key = IdempotencyKeyField()
    # Hidden fields are named (never shown) so that building the form loads no catalogue
    # (bankapp.ledger.fields.IdempotencyKeyField).
    confirmed = HiddenField("Confirmed")
    # Step-up (bankapp/identity/stepup.py): only on the confirmation page, only when the transfer
    # needs it; checked there by the view (a wrong code must not send the customer back to
    # the first page), so no validators here.
    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       filters=[lambda value: value.strip() if isinstance(value, str) else value],
                       render_kw={"autocomplete": "one-time-code", "spellcheck": "false"})
    approval = HiddenField("Approval")
    # Filled by public/static/js/passkeys.js: a passkey assertion instead of the code.
    passkey_assertion = HiddenField("Passkey Assertion")


class LimitForm(FlaskForm):
    """A customer's own daily outgoing limit (checked by ``ledger.parse_limit``)."""

    daily_limit = StringField(_l("New daily limit"), validators=[Length(max=32)],
                              render_kw={"inputmode": "decimal", "autocomplete": "off"})
    code = StringField(_l("Code from your authenticator app (to raise it at once)"),
                       validators=[Length(max=32)],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"})

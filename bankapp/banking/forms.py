"""Forms of the customer's account pages."""
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, SelectField, StringField, ValidationError
from wtforms.fields import DateField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from bankapp.ledger.fields import AmountField, IdempotencyKeyField, description_field
from bankapp.models import AccountType, TransactionType
from bankapp.platform.forms import BankForm


class OpenAccountForm(BankForm):
    account_type = SelectField(
        _l("Account type"),
        choices=[SelectChoice(AccountType.SAVINGS, _l("Savings")),
                 SelectChoice(AccountType.CHECKING, _l("Checking"))],
    )


class CashForm(BankForm):
    """A deposit or a withdrawal on one account."""

    amount = AmountField(_l("Amount"))
    description = description_field()
    idempotency_key = IdempotencyKeyField()


class TransferForm(BankForm):
    # Radio buttons, not drop-downs: their labels wrap, so no account or payee name is ever
    # cut off on a phone (a select shows one line and clips it).
    from_account = RadioField(_l("From account"), choices=[])
    # The customer's other accounts and saved payees (bankapp/payments/payees.py) come first;
    # any number can still be typed.
    payee = RadioField(_l("Send to"), choices=[], validate_choice=False)
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


class LimitForm(BankForm):
    """A customer's own daily outgoing limit (checked by ``ledger.parse_limit``)."""

    daily_limit = StringField(_l("New daily limit"), validators=[Length(max=32)],
                              render_kw={"inputmode": "decimal", "autocomplete": "off"})
    code = StringField(_l("Code from your authenticator app (to raise it at once)"),
                       validators=[Length(max=32)],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"})


class OptionalAmountField(AmountField):
    """An amount that may be left empty (``amount`` is then None); the same parser otherwise."""

    def pre_validate(self, form):
        if (self.data or "").strip():
            super().pre_validate(form)
        else:
            self.amount = None


# The kinds of line a customer's history holds, in the order the filter offers them.
HISTORY_TYPES = (TransactionType.TRANSFER_IN, TransactionType.TRANSFER_OUT,
                 TransactionType.DEPOSIT, TransactionType.WITHDRAWAL, TransactionType.INTEREST,
                 TransactionType.REVERSAL)


class HistoryFilterForm(BankForm):
    """Search one account's history (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Length(max=80)],
                    render_kw={"type": "search", "autocomplete": "off"})
    start = DateField(_l("First day"), validators=[Optional()])
    end = DateField(_l("Last day"), validators=[Optional()])
    least = OptionalAmountField(_l("Amount at least"))
    most = OptionalAmountField(_l("Amount at most"))
    type = SelectField(_l("Type"), validate_choice=False, choices=[
        SelectChoice("", _l("All types"))] + [
        SelectChoice(kind, _l(TransactionType.LABELS[kind])) for kind in HISTORY_TYPES])

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("The last day must not be before the first."))

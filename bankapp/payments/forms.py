"""Forms of the payees, scheduled payments and alert settings pages."""
from flask_babel import lazy_gettext as _l
from wtforms import (BooleanField, DateField, HiddenField, IntegerField, RadioField, SelectField,
                     StringField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from bankapp.ledger.fields import AmountField, IdempotencyKeyField, description_field
from bankapp.models import Frequency
from bankapp.platform.forms import BankForm


class PayeeLookupForm(BankForm):
    account_number = StringField(_l("Account number"), validators=[Length(max=20)],
                                 render_kw={"placeholder": "ACC-123456789",
                                            "autocomplete": "off"})
    # Checked (and its message given) by bankapp.payments.payees.clean_nickname.
    nickname = StringField(_l("Name for this payee"),
                           render_kw={"autocomplete": "off"})


class PayeeConfirmForm(BankForm):
    token = HiddenField()


class PayeeRenameForm(BankForm):
    nickname = StringField(_l("New name"),
                           render_kw={"autocomplete": "off"})


class ScheduledOrderForm(BankForm):
    # Radio cards, as on the transfer form: a card's label wraps, a drop-down clips it on a phone.
    from_account = RadioField(_l("From account"), choices=[])
    to_account = RadioField(_l("Pay to"), choices=[],
                             description=_l("One of your payees or your own accounts. To pay a "
                                            "new account, save it as a payee first."))
    amount = AmountField(_l("Amount"))
    description = description_field()
    frequency = SelectField(_l("How often"), choices=[SelectChoice(code, _l(Frequency.label(code)))
                                                  for code in Frequency.ALL])
    start_on = DateField(_l("First payment date"), validators=[Optional()])
    # No "day of the month": a monthly order takes it from the first payment date.
    end_on = DateField(_l("Last payment date (optional)"), validators=[Optional()])
    max_occurrences = IntegerField(_l("Or: number of payments (optional)"),
                                   validators=[Optional()])
    idempotency_key = IdempotencyKeyField()
    # Step-up: shown when the order pays someone else and the customer has a second factor.
    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       filters=[lambda value: value.strip() if isinstance(value, str) else value],
                       render_kw={"autocomplete": "one-time-code", "spellcheck": "false"})


class AlertSettingsForm(BankForm):
    # Each label a whole sentence: the amount it depends on is its own field, below it.
    large_transfer_on = BooleanField(_l("Email me about large transfers out"))
    large_transfer_threshold = StringField(_l("A transfer is large above"),
                                           validators=[Length(max=20)],
                                           render_kw={"inputmode": "decimal",
                                                      "autocomplete": "off"})
    low_balance_on = BooleanField(_l("Email me when a balance runs low"))
    low_balance_floor = StringField(_l("A balance is low below"), validators=[Length(max=20)],
                                    render_kw={"inputmode": "decimal", "autocomplete": "off"})
    scheduled_failed_on = BooleanField(_l("Email me when a scheduled payment cannot be made"))
    hold_placed_on = BooleanField(_l("Email me when the bank places a hold on an account"))

"""Admin forms: role changes, (de)activation buttons, the audit filter, interest rates and
loan products."""
from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from bankapp.audit import Action
from bankapp.models import Amortisation, LateFeeKind, RepaymentFrequency, Role
from bankapp.platform.forms import BankForm


ROLE_NAMES = {Role.CUSTOMER: _l("Customer"), Role.TELLER: _l("Teller"), Role.ADMIN: _l("Admin")}


class RoleForm(BankForm):
    role = SelectField(_l("Role"), choices=[
        SelectChoice(role, ROLE_NAMES.get(role, role.capitalize())) for role in Role.ALL])
    submit = SubmitField(_l("Change role"))


class InterestRateForm(BankForm):
    """A new annual rate for an account type from a day on (checked by ``ledger.set_rate``)."""

    account_type = SelectField(_l("Account type"),
                               choices=[SelectChoice("SAVINGS", _l("Savings")),
                                        SelectChoice("CHECKING", _l("Checking"))])
    annual_rate = StringField(_l("Annual rate (percent)"), validators=[Length(max=20)])
    # A native date picker: it shows the browser's own date style and sends YYYY-MM-DD.
    effective_from = StringField(_l("Effective from"), validators=[Length(max=10)],
                                 render_kw={"type": "date"})
    submit = SubmitField(_l("Add rate"))


class AuditFilterForm(BankForm):
    """Filters read from the query string (a GET form: nothing to protect with a token)."""

    class Meta:
        csrf = False

    actor = StringField(_l("Actor email"), validators=[Optional(), Length(max=254)])
    action = SelectField(_l("Action"), choices=[SelectChoice("", _l("Any action"))]
                         + [SelectChoice(name, name) for name in Action.all()],
                         default="",
                         validate_choice=True)
    target_type = StringField(_l("Target type"), validators=[Optional(), Length(max=32)])
    target_id = StringField(_l("Target id"), validators=[Optional(), Length(max=64)])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))


def _choices(labelled) -> list[SelectChoice]:
    return [SelectChoice(code, _l(labelled.label(code))) for code in labelled.ALL]


class LoanProductForm(BankForm):
    """A new loan product, as typed: ``lending.products.parse_product`` checks it with the
    rules of ``flask create-loan-product`` (the field names are that command's options)."""

    name = StringField(_l("Name"), validators=[Length(max=200)])
    currency = StringField(_l("Currency"), validators=[Length(max=10)])
    principal_min = StringField(_l("Smallest principal"), validators=[Length(max=30)])
    principal_max = StringField(_l("Largest principal"), validators=[Length(max=30)])
    term_min = StringField(_l("Fewest repayments"), validators=[Length(max=10)])
    term_max = StringField(_l("Most repayments"), validators=[Length(max=10)])
    frequency = SelectField(_l("Repayments"), choices=_choices(RepaymentFrequency),
                            validate_choice=False)
    annual_rate = StringField(_l("Annual rate (percent)"), validators=[Length(max=30)])
    amortisation = SelectField(_l("Amortisation"), choices=_choices(Amortisation),
                               validate_choice=False)
    grace_days = StringField(_l("Grace days"), default="0", validators=[Length(max=10)])
    late_fee_kind = SelectField(_l("Late fee kind"), choices=_choices(LateFeeKind),
                                validate_choice=False)
    late_fee = StringField(_l("Late fee"), default="0", validators=[Length(max=30)])
    disbursement_fee = StringField(_l("Disbursement fee"), default="0",
                                   validators=[Length(max=30)])
    submit = SubmitField(_l("Add product"))

    def product_fields(self) -> dict[str, str]:
        """The typed terms, by the names ``parse_product`` reads."""
        return {name: self[name].data for name in PRODUCT_FIELD_NAMES}


PRODUCT_FIELD_NAMES = ("name", "currency", "principal_min", "principal_max", "term_min",
                       "term_max", "frequency", "annual_rate", "amortisation", "grace_days",
                       "late_fee_kind", "late_fee", "disbursement_fee")

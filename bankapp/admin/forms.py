"""Admin forms: role changes, (de)activation buttons and the audit filter."""
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from bankapp.audit import Action
from bankapp.models import Role


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(role, role.capitalize()) for role in Role.ALL])
    submit = SubmitField("Change role")


class InterestRateForm(FlaskForm):
    """A new annual rate for an account type from a day on (checked by ``ledger.set_rate``)."""

    account_type = SelectField("Account type", choices=[SelectChoice("SAVINGS", "Savings"),
                                                        SelectChoice("CHECKING", "Checking")])
    annual_rate = StringField("Annual rate (percent)", validators=[Length(max=20)])
    effective_from = StringField("From (YYYY-MM-DD)", validators=[Length(max=10)])
    submit = SubmitField("Add rate")


class AuditFilterForm(FlaskForm):
    """Filters read from the query string (a GET form: nothing to protect with a token)."""

    class Meta:
        csrf = False

    actor = StringField("Actor email", validators=[Optional(), Length(max=254)])
    action = SelectField("Action", choices=[SelectChoice("", "Any action")]
                         + [SelectChoice(name, name) for name in Action.all()],
                         default="",
                         validate_choice=True)
    target_type = StringField("Target type", validators=[Optional(), Length(max=32)])
    target_id = StringField("Target id", validators=[Optional(), Length(max=64)])
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")

"""Forms of the auth blueprint; the rules themselves live in ``bankapp.identity.validators``."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext, lazy_gettext as _l
from wtforms import (EmailField, PasswordField, SelectField, StringField, SubmitField,
                     ValidationError)
from wtforms.fields.choices import SelectChoice
from wtforms.fields import DateField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional

from bankapp.platform.i18n import LANGUAGES
from bankapp.identity.validators import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    AdultDateOfBirth,
    InternationalPhone,
    StrongPassword,
    ValidEmail,
)
from bankapp.platform.forms import BankForm

PASSWORD_HINT = _l(
    "At least %(count)s characters. A few unrelated words are easy to remember "
    "and hard to guess; no symbols are required. Not your name, your email address or "
    "the bank's name.", count=PASSWORD_MIN_LENGTH)


class IsoDateField(DateField):
    """A ``<input type="date">`` whose parse error tells the user the expected form."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = datetime.strptime(valuelist[0].strip(), "%Y-%m-%d").date()
        except ValueError:
            self.data = None
            raise ValueError(gettext("Enter the date as YYYY-MM-DD, for example 1990-04-23.")) from None


def _email_field(label: str | None = None) -> EmailField:
    return EmailField(label or _l("Email address"), validators=[
        DataRequired(_l("Enter your email address.")), Length(max=320), ValidEmail()])


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class SignupForm(BankForm):
    email = _email_field()
    password1 = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Choose a password.")), StrongPassword()])
    password2 = PasswordField(_l("Password again"), validators=[
        DataRequired(_l("Type the password again.")),
        EqualTo("password1", _l("The two passwords do not match."))])
    phone_number = StringField(_l("Mobile phone number"), validators=[
        DataRequired(_l("Enter your phone number.")), Length(max=32), InternationalPhone()])
    date_of_birth = IsoDateField(_l("Date of birth"), validators=[
        InputRequired(_l("Enter your date of birth.")), AdultDateOfBirth()])
    # Optional: shown on statements and (masked) to people who pay you.
    first_name = StringField(_l("First name (optional)"), filters=[_strip],
                             validators=[Optional(), Length(max=80)])
    last_name = StringField(_l("Last name (optional)"), filters=[_strip],
                            validators=[Optional(), Length(max=80)])
    submit = SubmitField(_l("Create account"))


class LoginForm(BankForm):
    # Deliberately no syntax check: every failure gets the same message.
    email = EmailField(_l("Email address"), validators=[DataRequired(_l("Enter your email address.")),
                                                    Length(max=320)])
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX_LENGTH * 4)])
    submit = SubmitField(_l("Log in"))


class ResendVerificationForm(BankForm):
    email = _email_field()
    submit = SubmitField(_l("Send a new link"))


class PasswordResetRequestForm(BankForm):
    email = _email_field()
    submit = SubmitField(_l("Email me a reset link"))


class SetPasswordForm(BankForm):
    new_password1 = PasswordField(_l("New password"), validators=[
        DataRequired(_l("Choose a password.")), StrongPassword()])
    new_password2 = PasswordField(_l("New password again"), validators=[
        DataRequired(_l("Type the password again.")),
        EqualTo("new_password1", _l("The two passwords do not match."))])
    submit = SubmitField(_l("Set password"))

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The user whose password this is: it may not contain their email or names.
        self.account = account


class ChangePasswordForm(SetPasswordForm):
    """A logged-in user's password change: the current password, then the new one twice."""

    current_password = PasswordField(_l("Current password"), validators=[
        DataRequired(_l("Enter your current password.")),
        # No stored password is this long; the bound keeps argon2's work per request small.
        Length(max=PASSWORD_MAX_LENGTH * 4, message=_l("That is not your current password."))])
    submit = SubmitField(_l("Change password"))


class ProfileForm(BankForm):
    """Name and phone, with the very fields (and rules) of the sign-up form."""

    first_name = SignupForm.first_name
    last_name = SignupForm.last_name
    phone_number = SignupForm.phone_number
    # Empty: follow the browser's Accept-Language (bankapp/platform/i18n.py).
    locale = SelectField(_l("Language"), default="", validate_choice=False, choices=[
        SelectChoice("", _l("As my browser asks")),
        *(SelectChoice(code, name) for code, name in LANGUAGES.items())])

    def validate_locale(self, field):
        if field.data and field.data not in LANGUAGES:
            raise ValidationError(_l("Choose one of the languages in the list."))
    submit = SubmitField(_l("Save"))


class EmailChangeForm(BankForm):
    """The new address (checked as at sign-up) and the current password."""

    new_email = _email_field(_l("New email address"))
    current_password = ChangePasswordForm.current_password
    # Asked (and checked by the service) only when the user has a second factor.
    code = StringField(_l("Current code from your authenticator app, or a recovery code"),
                       filters=[_strip], validators=[Optional(), Length(max=64)])
    submit = SubmitField(_l("Send the confirmation link"))


class NotMeForm(BankForm):
    """The one button behind a "this was not me" link (a GET must change nothing)."""

    submit = SubmitField(_l("Cancel the change and log out everywhere"))


# ---------------------------------------------------------------- second factors


def _code_field(label: str | None = None) -> StringField:
    # Checked by bankapp.identity.factors (which also counts wrong codes): only a bound here.
    return StringField(label or _l("Code"), filters=[_strip], validators=[
        DataRequired(_l("Enter the code.")), Length(max=64, message=_l("That code is too long."))])


class SecondFactorForm(BankForm):
    """The login's second step: a code from the app, or a recovery code."""

    code = _code_field(_l("Code from your authenticator app, or a recovery code"))
    submit = SubmitField(_l("Continue"))


class TotpSetupForm(BankForm):
    code = _code_field(_l("6-digit code from the app"))
    submit = SubmitField(_l("Turn on two-step sign-in"))


class RemoveTotpForm(BankForm):
    """After a recent sign-in (the security page's one password box): a current code."""

    code = _code_field(_l("Current code from the app, or a recovery code"))
    submit = SubmitField(_l("Remove the authenticator app"))


class NewRecoveryCodesForm(BankForm):
    """A button (after a recent sign-in)."""

    submit = SubmitField(_l("Make new recovery codes"))


class ReauthenticateForm(BankForm):
    """The password again, before a sensitive change (ending sessions)."""

    password = ChangePasswordForm.current_password
    submit = SubmitField(_l("Confirm"))

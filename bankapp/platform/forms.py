"""What every page's form handling shares, knowing no domain."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms.csrf.core import CSRFTokenField


class _TokenSignedWhenShown(CSRFTokenField):
    """WTForms' CSRF token field, whose signed token is made when the field is shown."""

    @property
    def current_token(self) -> str:
        return self.csrf_impl.generate_csrf_token(self)  # once per request (Flask-WTF's g)

    def process(self, *args, **kwargs):
        # A hidden field's processing, without CSRFTokenField's signing of a token up front.
        super(CSRFTokenField, self).process(*args, **kwargs)


class _CSRF(FlaskForm.Meta.csrf_class):
    field_class = _TokenSignedWhenShown


class BankForm(FlaskForm):
    """Flask-WTF's form, signing the CSRF token its page shows only when the page is drawn.

    Flask-WTF signs one (an HMAC, its serializer built) each time a form is built, and most
    forms that are sent are built only to validate them before a redirect: the token was
    thrown away. The check of the token sent is Flask-WTF's own (``CSRFProtect`` before the
    view), unchanged; a form shown gets the request's one token, as before.
    """

    class Meta(FlaskForm.Meta):
        csrf_class = _CSRF


def show_errors(form: FlaskForm, errors) -> None:
    """Put each ``(field name, message)`` a service returned on its field, or at the top of
    the form when the name is None or no field of the form."""
    for name, message in errors:
        field = getattr(form, name or "", None)
        if field is None:
            form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]

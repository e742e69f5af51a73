"""What every page's form handling shares, knowing no domain."""
from __future__ import annotations

from flask_wtf import FlaskForm


def show_errors(form: FlaskForm, errors) -> None:
    """Put each ``(field name, message)`` a service returned on its field, or at the top of
    the form when the name is None or no field of the form."""
    for name, message in errors:
        field = getattr(form, name or "", None)
        if field is None:
            form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]

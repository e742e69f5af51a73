"""The form every page's form builds on (``bankapp.platform.forms.BankForm``): when it signs
the CSRF token its page shows."""
from flask import g
from flask_wtf.csrf import generate_csrf
from wtforms import StringField

from bankapp.platform.forms import BankForm


class NameForm(BankForm):
    name = StringField("Name")


def test_a_form_built_to_check_what_was_sent_signs_no_csrf_token(app):
    with app.test_request_context("/", method="POST", data={"name": "Ann"}):
        form = NameForm()
        assert form.name.data == "Ann"
        assert "csrf_token" not in g  # Flask-WTF keeps the request's signed token there


def test_a_form_shown_carries_the_requests_one_csrf_token(app):
    with app.test_request_context("/"):
        shown = str(NameForm().csrf_token)
        assert f'value="{generate_csrf()}"' in shown

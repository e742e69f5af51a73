"""Every authentication event leaves exactly one audit row, and never a password."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.extensions import db, mail
from bankapp.models import AuditEvent, User
from bankapp.identity.security import make_reset_token, make_verification_token
from support.users import TEST_PASSWORD
from support.web import csrf_token, post_form

NEW_PASSWORD = "a brand new passphrase 42"


def rows(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def log_in(client, email, password=TEST_PASSWORD):
    return post_form(client, "/accounts/login/", {"email": email, "password": password})


def test_sign_up_writes_one_signup_row(client):
    post_form(client, "/accounts/signup/", {
        "email": "new@example.com", "password1": TEST_PASSWORD, "password2": TEST_PASSWORD,
        "phone_number": "+442071838750", "date_of_birth": "1990-01-01"})
    user = db.session.scalar(sa.select(User).where(User.email == "new@example.com"))
    [row] = rows(Action.SIGNUP)
    assert row.actor_id == user.id and row.target_id == str(user.id)


def test_sign_up_with_a_taken_email_writes_no_signup_row(client, customer):
    post_form(client, "/accounts/signup/", {
        "email": customer.email.upper(), "password1": TEST_PASSWORD,
        "password2": TEST_PASSWORD, "phone_number": "+442071838750",
        "date_of_birth": "1990-01-01"})
    assert rows(Action.SIGNUP) == []


def test_email_verification_writes_one_row(client, make_user):
    user = make_user(verified=False)
    client.get(f"/accounts/verify/{make_verification_token(user)}/")
    client.get(f"/accounts/verify/{make_verification_token(user)}/")  # a second click
    assert [r.actor_id for r in rows(Action.VERIFY_EMAIL)] == [user.id]


def test_login_success_writes_one_row(client, customer):
    assert log_in(client, customer.email).status_code == 302
    assert [r.actor_id for r in rows(Action.LOGIN_SUCCESS)] == [customer.id]
    assert rows(Action.LOGIN_FAILURE) == []


@pytest.mark.parametrize("email, password, reason", [
    ("alice@example.com", "wrong password 123", "bad credentials"),
    ("nobody@example.com", TEST_PASSWORD, "bad credentials"),
])
def test_login_failure_writes_one_row_without_the_password(client, customer, email, password,
                                                           reason):
    log_in(client, email, password)
    [row] = rows(Action.LOGIN_FAILURE)
    # The test client's User-Agent (Werkzeug/…) names no browser ua-parser knows.
    assert row.details == {"email": email, "reason": reason, "browser": "Unknown browser"}
    assert password not in str(row.details) and rows(Action.LOGIN_SUCCESS) == []


def test_unverified_login_is_recorded_as_a_failure(client, make_user):
    user = make_user(verified=False)
    log_in(client, user.email)
    [row] = rows(Action.LOGIN_FAILURE)
    assert row.actor_id == user.id and row.details["reason"] == "unverified"


def test_logout_writes_one_row(client, customer):
    log_in(client, customer.email)
    token = csrf_token(client, "/dashboard/")
    assert client.post("/accounts/logout/", data={"csrf_token": token}).status_code == 302
    assert [r.actor_id for r in rows(Action.LOGOUT)] == [customer.id]


def test_anonymous_logout_writes_nothing(client):
    token = csrf_token(client, "/accounts/login/")
    client.post("/accounts/logout/", data={"csrf_token": token})
    assert rows(Action.LOGOUT) == []


def test_password_reset_request_and_completion_write_one_row_each(client, customer):
    with mail.record_messages() as outbox:
        post_form(client, "/accounts/password_reset/", {"email": customer.email})
        post_form(client, "/accounts/password_reset/", {"email": "nobody@example.com"})
    assert len(outbox) == 2  # the link, and a "no account uses this address" notice
    assert [r.actor_id for r in rows(Action.PASSWORD_RESET_REQUEST)] == [customer.id, None]
    url = f"/accounts/reset/{make_reset_token(customer)}/"
    response = post_form(client, url, {"new_password1": NEW_PASSWORD,
                                       "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert [r.actor_id for r in rows(Action.PASSWORD_RESET_COMPLETE)] == [customer.id]

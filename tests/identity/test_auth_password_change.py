"""Changing the password while logged in: proof of the current one, the sign-up rules for the
new one, every other session and API token ended, one audit row, and a notice by email."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from argon2 import extract_parameters
from argon2.low_level import Type
from flask_mail import email_dispatched
from sqlalchemy import event

from bankapp.audit import Action
from bankapp.identity.routes import PASSWORD_CHANGED
from bankapp.identity.services import SAME_AS_CURRENT, WRONG_CURRENT_PASSWORD
from bankapp.extensions import db, mail
from bankapp.models import AuditEvent, User
from bankapp.identity.security import check_password
from support.api import bearer
from support.backoffice import admin, teller  # noqa: F401  (fixtures)
from support.users import TEST_PASSWORD, log_in_as
from support.web import post_form

URL = "/accounts/password/"
NEW_PASSWORD = "lantern orbit velvet quarry"


def change(client, current=TEST_PASSWORD, new=NEW_PASSWORD, again=None, **kwargs):
    return post_form(client, URL, {"current_password": current, "new_password1": new,
                                   "new_password2": new if again is None else again}, **kwargs)


def page_text(response) -> str:
    return response.get_data(as_text=True)


def stored(user: User) -> User:
    """``user`` as the database holds it now."""
    db.session.expire_all()
    return db.session.get(User, user.id)


def change_rows() -> list[AuditEvent]:
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == Action.PASSWORD_CHANGE)))


@pytest.fixture
def unchanged(customer):
    """Assert, after the test, that nothing about Alice's credentials or trail moved."""
    before = (customer.password_hash, customer.session_token, customer.token_version)
    yield
    user = stored(customer)
    assert (user.password_hash, user.session_token, user.token_version) == before
    assert check_password(user, TEST_PASSWORD)
    assert change_rows() == []


# ---------------------------------------------------------------- the page


def test_page_asks_for_the_current_password_and_the_new_one_twice(customer_client):
    page = page_text(customer_client.get(URL))
    assert 'name="current_password"' in page and 'autocomplete="current-password"' in page
    assert 'name="new_password1"' in page and 'name="new_password2"' in page
    assert page.count('autocomplete="new-password"') == 2
    assert 'name="csrf_token"' in page


def test_page_is_not_cached(customer_client):
    assert customer_client.get(URL).headers["Cache-Control"] == "no-store"


def test_customers_find_the_page_in_the_navigation(customer_client):
    page = page_text(customer_client.get("/dashboard/"))
    assert f'href="{URL}"' in page


def test_staff_find_the_page_in_the_navigation(client, teller):
    log_in_as(client, teller)
    assert f'href="{URL}"' in page_text(client.get("/teller/"))


# ---------------------------------------------------------------- success


def test_right_current_password_sets_the_new_one(customer_client, customer):
    response = change(customer_client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(URL)
    user = stored(customer)
    assert check_password(user, NEW_PASSWORD)
    assert not check_password(user, TEST_PASSWORD)


def test_new_password_is_stored_as_an_argon2id_hash(customer_client, customer):
    change(customer_client)
    assert extract_parameters(stored(customer).password_hash).type is Type.ID


def test_success_is_announced_on_the_next_page(customer_client):
    response = change(customer_client)
    assert PASSWORD_CHANGED in page_text(customer_client.get(response.headers["Location"]))


def test_this_browser_stays_logged_in(customer_client):
    change(customer_client)
    assert customer_client.get("/dashboard/").status_code == 200


def test_another_browser_of_the_user_is_logged_out(app, customer_client, customer):
    other_device = app.test_client()
    log_in_as(other_device, customer)
    assert other_device.get("/dashboard/").status_code == 200
    change(customer_client)
    response = other_device.get("/dashboard/")
    assert response.status_code == 302
    assert "/accounts/login/" in response.headers["Location"]


def test_session_cookie_copied_before_the_change_stops_working(app, customer_client):
    thief = app.test_client()
    thief.set_cookie("session", customer_client.get_cookie("session").value)
    assert thief.get("/dashboard/").status_code == 200
    change(customer_client)
    assert thief.get("/dashboard/").status_code == 302


def test_api_token_issued_before_the_change_gets_401(app, customer_client, customer):
    headers = bearer(customer)
    api = app.test_client()
    assert api.get("/api/v1/accounts", headers=headers).status_code == 200
    change(customer_client)
    response = api.get("/api/v1/accounts", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.get_json()["detail"]


def test_success_writes_exactly_one_audit_row(customer_client, customer):
    change(customer_client)
    [row] = change_rows()
    assert (row.actor_id, row.target_type, row.target_id) == (customer.id, "user",
                                                              str(customer.id))
    assert NEW_PASSWORD not in str(row.details) and TEST_PASSWORD not in str(row.details)


def test_owner_is_emailed_a_notice_with_what_to_do_if_it_was_not_them(customer_client):
    with mail.record_messages() as outbox:
        change(customer_client)
    [message] = outbox
    assert message.recipients == ["alice@example.com"]
    assert message.subject == "Your bankapp password was changed"
    assert "If you did not do this" in message.body and "contact the bank" in message.body
    assert "http://localhost/accounts/password_reset/" in message.body
    assert NEW_PASSWORD not in message.body


def test_notice_is_sent_only_after_the_change_is_committed(app, customer_client):
    events = []

    def committed(session):
        events.append("commit")

    def mailed(app, message):
        events.append("mail")

    event.listen(db.session, "after_commit", committed)
    email_dispatched.connect(mailed)
    try:
        change(customer_client)
    finally:
        email_dispatched.disconnect(mailed)
        event.remove(db.session, "after_commit", committed)
    # The change commits (with its queued notice), then the mail goes, then the outbox row
    # is marked sent.
    assert events == ["commit", "mail", "commit"]


def test_mail_failure_does_not_undo_the_change(smtp_down, customer_client, customer):
    response = change(customer_client)
    assert response.status_code == 302
    assert check_password(stored(customer), NEW_PASSWORD)
    assert len(change_rows()) == 1
    assert customer_client.get("/dashboard/").status_code == 200


def test_the_new_password_logs_in_and_the_old_one_no_longer_does(app, customer_client):
    change(customer_client)
    fresh = app.test_client()
    old = post_form(fresh, "/accounts/login/", {"email": "alice@example.com",
                                                "password": TEST_PASSWORD})
    assert old.status_code == 200
    new = post_form(fresh, "/accounts/login/", {"email": "alice@example.com",
                                                "password": NEW_PASSWORD})
    assert new.status_code == 302


def test_a_unicode_pass_phrase_is_accepted_and_logs_in(app, customer_client, customer):
    phrase = "ĉielarko ŝtormo 雨傘 🌧️ velo"
    assert change(customer_client, new=phrase).status_code == 302
    login = post_form(app.test_client(), "/accounts/login/", {"email": "alice@example.com",
                                                              "password": phrase})
    assert login.status_code == 302


@pytest.mark.parametrize("role_fixture", ["teller", "admin"])
def test_staff_change_their_password_too(request, client, role_fixture):
    user = request.getfixturevalue(role_fixture)
    log_in_as(client, user)
    assert change(client).status_code == 302
    assert check_password(stored(user), NEW_PASSWORD)


# ---------------------------------------------------------------- refusals


def test_wrong_current_password_is_refused_and_changes_nothing(customer_client, unchanged):
    with mail.record_messages() as outbox:
        response = change(customer_client, current="not my password at all")
    assert response.status_code == 200
    assert WRONG_CURRENT_PASSWORD in page_text(response)
    assert 'aria-invalid="true"' in page_text(response)
    assert outbox == []


def test_wrong_current_password_is_audited_as_a_failure(customer_client, customer, unchanged):
    # Someone at an unlocked session guessing the password leaves a trace, like a failed login.
    change(customer_client, current="not my password at all")
    rows = list(db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == Action.PASSWORD_CHANGE_FAILURE)))
    assert [(row.actor_id, row.target_id, row.details) for row in rows] == [
        (customer.id, str(customer.id), {"reason": "wrong current password"})]


def test_wrong_current_password_keeps_the_session(customer_client, unchanged):
    change(customer_client, current="not my password at all")
    assert customer_client.get("/dashboard/").status_code == 200


def test_a_wrong_current_password_does_not_say_whether_the_new_one_is_the_real_one(
        customer_client, unchanged):
    # Otherwise the "new password" field would be a way to test guesses at the current one.
    page = page_text(change(customer_client, current="not my password at all",
                            new=TEST_PASSWORD))
    assert WRONG_CURRENT_PASSWORD in page
    assert SAME_AS_CURRENT not in page


@pytest.mark.parametrize("weak, message", [
    ("short pass", "Use at least 12 characters"),
    ("password1234", "most common passwords"),
    ("alice@example.com", "cannot be your email address"),
    ("123456789012345", "cannot be only digits"),
    ("x" * 129, "Use at most 128 characters"),
])
def test_weak_new_password_is_refused_by_the_sign_up_rules(customer_client, unchanged, weak,
                                                          message):
    response = change(customer_client, new=weak)
    assert response.status_code == 200
    assert message in page_text(response)


def test_new_password_equal_to_the_current_one_is_refused(customer_client, unchanged):
    response = change(customer_client, new=TEST_PASSWORD)
    assert response.status_code == 200
    assert SAME_AS_CURRENT in page_text(response)


def test_confirmation_must_match_the_new_password(customer_client, unchanged):
    response = change(customer_client, again=NEW_PASSWORD + "x")
    assert response.status_code == 200
    assert "The two passwords do not match." in page_text(response)


def test_change_without_csrf_token_is_refused(customer_client, unchanged):
    response = customer_client.post(URL, data={"current_password": TEST_PASSWORD,
                                               "new_password1": NEW_PASSWORD,
                                               "new_password2": NEW_PASSWORD})
    assert response.status_code == 400


@pytest.mark.parametrize("current, new, again", [
    ("", "", ""),
    ("", NEW_PASSWORD, NEW_PASSWORD),
    (TEST_PASSWORD, "", ""),
    ("x" * 100_000, NEW_PASSWORD, NEW_PASSWORD),
    (TEST_PASSWORD, "y" * 100_000, "y" * 100_000),
    ("пароль🔑\u202e\u0301", "é" * 5000, "é" * 5000),
    (TEST_PASSWORD, "\x00" * 20, "\x00" * 20),
    (TEST_PASSWORD, NEW_PASSWORD, "\U0001F511" * 40),
])
def test_bad_input_is_answered_on_the_form_never_with_a_server_error(customer_client,
                                                                    unchanged, current, new,
                                                                    again):
    response = change(customer_client, current=current, new=new, again=again)
    assert response.status_code == 200
    assert 'class="error"' in page_text(response)


def test_guesses_at_the_current_password_are_rate_limited_per_account(
        app, customer_client, unchanged):
    from limits import parse

    allowed = parse(app.config["LOGIN_RATE_LIMIT"]).amount
    statuses = [change(customer_client, current=f"guess number {n}",
                       environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code
                for n in range(allowed)]
    assert statuses == [200] * allowed
    # Even the right password, from yet another address, waits for the limit to pass.
    last = change(customer_client, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert last.status_code == 429


def test_the_limit_is_on_one_account_not_on_the_site(app, client, customer, make_user):
    other = make_user(email="bob@example.com")
    log_in_as(client, customer)
    for n in range(6):
        change(client, current=f"guess number {n}")
    bobs_browser = app.test_client()
    log_in_as(bobs_browser, other)
    assert change(bobs_browser).status_code == 302


def test_the_change_does_not_extend_the_absolute_session_lifetime(app, customer_client):
    logged_in_at = (datetime.now(timezone.utc) - timedelta(hours=1)).timestamp()
    with customer_client.session_transaction() as session:
        session["auth_at"] = logged_in_at
    change(customer_client)
    with customer_client.session_transaction() as session:
        assert session["auth_at"] == logged_in_at

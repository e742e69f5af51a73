"""Sessions: logout really ends them, timeouts end them, cookies captured earlier stop working."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bankapp.extensions import db
from bankapp.models import User
from support.users import TEST_PASSWORD, log_in_as
from support.web import csrf_token, post_form


def log_in(client, email="alice@example.com"):
    response = post_form(client, "/accounts/login/", {"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    return response


def log_out(client):
    token = csrf_token(client, "/dashboard/")
    return client.post("/accounts/logout/", data={"csrf_token": token})


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def test_logout_ends_the_session(client, customer):
    log_in(client)
    response = log_out(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts/login/")
    assert client.get("/dashboard/").status_code == 302


def test_session_cookie_captured_before_logout_no_longer_works(app, client, customer):
    log_in(client)
    thief = app.test_client()
    thief.set_cookie("session", session_cookie(client))
    assert thief.get("/dashboard/").status_code == 200
    log_out(client)
    response = thief.get("/dashboard/")
    assert response.status_code == 302
    assert "/accounts/login/" in response.headers["Location"]


def test_logout_by_get_does_nothing(client, customer):
    log_in(client)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/dashboard/").status_code == 200


def test_logout_without_csrf_token_is_refused(client, customer):
    log_in(client)
    assert client.post("/accounts/logout/").status_code == 400
    assert client.get("/dashboard/").status_code == 200


def test_deactivation_ends_existing_sessions(client, customer):
    log_in(client)
    user = db.session.get(User, customer.id)
    user.is_active = False
    db.session.commit()
    assert client.get("/dashboard/").status_code == 302


def test_idle_session_ends_after_the_idle_timeout(app, client, customer):
    log_in_as(client, customer)
    idle = app.config["SESSION_IDLE_TIMEOUT"] + timedelta(minutes=1)
    with client.session_transaction() as session:
        session["seen_at"] = (datetime.now(timezone.utc) - idle).timestamp()
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert "/accounts/login/" in response.headers["Location"]


def test_session_ends_after_the_absolute_timeout_even_when_active(app, client, customer):
    log_in_as(client, customer)
    age = app.config["SESSION_ABSOLUTE_TIMEOUT"] + timedelta(minutes=1)
    with client.session_transaction() as session:
        session["auth_at"] = (datetime.now(timezone.utc) - age).timestamp()
        session["seen_at"] = datetime.now(timezone.utc).timestamp()
    assert client.get("/dashboard/").status_code == 302


def test_session_within_both_timeouts_stays_open(app, client, customer):
    log_in_as(client, customer)
    with client.session_transaction() as session:
        recent = datetime.now(timezone.utc) - app.config["SESSION_IDLE_TIMEOUT"] / 2
        session["seen_at"] = recent.timestamp()
    assert client.get("/dashboard/").status_code == 200


def session_cookie_sent(response) -> str | None:
    return next((header for header in response.headers.getlist("Set-Cookie")
                 if header.startswith("session=")), None)


def test_a_page_that_changes_nothing_in_the_session_sends_no_cookie(client, customer):
    log_in(client)
    client.get("/dashboard/")
    assert session_cookie_sent(client.get("/dashboard/")) is None
    assert client.get("/dashboard/").status_code == 200


def test_the_cookie_is_sent_again_with_the_new_last_seen_time_once_a_minute_passed(
        app, client, customer):
    log_in(client)
    with client.session_transaction() as session:
        session["seen_at"] -= 120
        before = session["seen_at"]
    sent = session_cookie_sent(client.get("/dashboard/"))
    assert sent is not None and "Expires=" in sent
    with client.session_transaction() as session:
        assert session["seen_at"] > before + 100


def test_login_sets_no_remember_me_cookie(client, customer):
    log_in(client)
    assert client.get_cookie("remember_token") is None


def test_logged_in_pages_are_not_cached(client, customer):
    log_in(client)
    assert client.get("/dashboard/").headers["Cache-Control"] == "no-store"


def test_logout_says_so_on_the_login_page(client, customer):
    log_in(client)
    response = log_out(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You are logged out." in page

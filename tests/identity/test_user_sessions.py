"""Sessions and devices: every login is a session the customer can see and end, sign-ins are
listed with IP and browser, and a new browser is announced by email."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bankapp import audit
from bankapp.backoffice.admin.services import deactivate
from bankapp.audit import Action
from bankapp.identity.devices import SESSION_KEY, browser_label, hash_key
from bankapp.extensions import db, mail
from bankapp.models import AuditEvent, KnownBrowser, Role, UserSession
from bankapp.identity.security import make_reset_token
from support.users import TEST_PASSWORD, enrol_totp, totp_now
from support.web import csrf_token, post_form

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
SECURITY = "/accounts/security/"
NEW_SIGN_IN = "New sign-in to your bankapp account"


def browser(app, user_agent=FIREFOX, ip="203.0.113.7"):
    """A test client that sends this User-Agent from this address, with its own cookies."""
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    return client


def log_in(client, email="alice@example.com", password=TEST_PASSWORD):
    response = post_form(client, "/accounts/login/", {"email": email, "password": password})
    assert response.status_code == 302
    return response


def signed_in(client) -> bool:
    return client.get("/dashboard/").status_code == 200


def open_rows(user) -> list[UserSession]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)).order_by(UserSession.id)))


def row_of(client) -> UserSession:
    """The session row of the browser ``client``, found by the key in its cookie."""
    with client.session_transaction() as session:
        key = session[SESSION_KEY]
    db.session.expire_all()
    return db.session.scalar(sa.select(UserSession).where(UserSession.key_hash == hash_key(key)))


def end(client, session_id, with_token=True):
    data = {"csrf_token": csrf_token(client, SECURITY)} if with_token else {}
    return client.post(f"/accounts/sessions/{session_id}/end/", data=data)


def end_others(client):
    return client.post("/accounts/sessions/end-others/",
                       data={"csrf_token": csrf_token(client, SECURITY)})


# ---------------------------------------------------------------- session rows


def test_login_opens_a_session_row_with_ip_and_browser(app, customer):
    laptop = browser(app)
    log_in(laptop)
    [row] = open_rows(customer)
    assert (row.ip_address, row.browser) == ("203.0.113.7", "Firefox 125 on Linux")
    assert row == row_of(laptop)


def test_only_a_hash_of_the_session_key_is_stored(app, customer):
    laptop = browser(app)
    log_in(laptop)
    with laptop.session_transaction() as session:
        key = session[SESSION_KEY]
    [row] = open_rows(customer)
    assert row.key_hash == hash_key(key) and key not in row.key_hash


def test_security_page_lists_each_open_session_and_marks_this_browser(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE, "198.51.100.9")
    log_in(laptop)
    log_in(phone)
    html = laptop.get(SECURITY).get_data(as_text=True)
    rows = re.findall(r'<tr class="user-session".*?</tr>', html, re.S)
    assert len(rows) == 2
    [mine] = [r for r in rows if "Firefox 125 on Linux" in r]
    [other] = [r for r in rows if "Mobile Safari 17 on iOS 17" in r]
    assert "This browser" in mine and "203.0.113.7" in mine
    assert "This browser" not in other and "198.51.100.9" in other and ">End</button>" in other


def test_this_browser_is_listed_first(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    html = laptop.get(SECURITY).get_data(as_text=True)
    first = re.search(r'<tr class="user-session".*?</tr>', html, re.S).group(0)
    assert "This browser" in first


def test_ending_another_session_refuses_its_cookie_on_the_next_request(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    assert signed_in(phone)
    response = end(laptop, row_of(phone).id)
    assert response.status_code == 302 and response.headers["Location"].endswith(SECURITY)
    response = phone.get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]
    assert signed_in(laptop)


def test_ended_session_is_no_longer_listed(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    end(laptop, row_of(phone).id)
    assert "Mobile Safari" not in laptop.get(SECURITY).get_data(as_text=True).split(
        "Recent sign-ins")[0]
    assert [r.browser for r in open_rows(customer)] == ["Firefox 125 on Linux"]


def test_ending_this_browsers_own_session_logs_it_out(app, customer):
    laptop = browser(app)
    log_in(laptop)
    response = end(laptop, row_of(laptop).id)
    assert response.headers["Location"].endswith("/accounts/login/")
    assert not signed_in(laptop) and open_rows(customer) == []


def test_end_all_others_keeps_this_browser(app, customer):
    laptop, phone, tablet = browser(app), browser(app, IPHONE), browser(app)
    for client in (laptop, phone, tablet):
        log_in(client)
    assert end_others(laptop).status_code == 302
    assert [signed_in(c) for c in (laptop, phone, tablet)] == [True, False, False]
    assert open_rows(customer) == [row_of(laptop)]


def test_ending_another_users_session_is_404_and_leaves_it_open(app, customer, make_user):
    bob = make_user(email="bob@example.com")
    alice_browser, bob_browser = browser(app), browser(app)
    log_in(alice_browser)
    log_in(bob_browser, bob.email)
    assert end(alice_browser, row_of(bob_browser).id).status_code == 404
    assert signed_in(bob_browser)


def test_ending_an_unknown_session_is_404(app, customer):
    laptop = browser(app)
    log_in(laptop)
    assert end(laptop, 999_999).status_code == 404


def test_ending_others_does_not_touch_another_users_sessions(app, customer, make_user):
    bob = make_user(email="bob@example.com")
    alice_browser, bob_browser = browser(app), browser(app)
    log_in(alice_browser)
    log_in(bob_browser, bob.email)
    end_others(alice_browser)
    assert signed_in(bob_browser)


@pytest.mark.parametrize("url", ["/accounts/sessions/{id}/end/", "/accounts/sessions/end-others/"])
def test_ending_sessions_needs_the_csrf_token(app, customer, url):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    assert laptop.post(url.format(id=row_of(phone).id)).status_code == 400
    assert signed_in(phone)


def test_ending_a_session_by_get_is_not_allowed(app, customer):
    laptop = browser(app)
    log_in(laptop)
    assert laptop.get(f"/accounts/sessions/{row_of(laptop).id}/end/").status_code == 405


def test_ending_a_session_needs_a_logged_in_user(app, client, customer):
    laptop = browser(app)
    log_in(laptop)
    response = client.post(f"/accounts/sessions/{row_of(laptop).id}/end/",
                           data={"csrf_token": csrf_token(client, "/accounts/login/")})
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]
    assert signed_in(laptop)


def test_staff_who_must_still_enrol_can_end_their_other_sessions(app, make_user):
    teller = make_user(email="tim@example.com", role=Role.TELLER, second_factor=False)
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop, teller.email)
    log_in(phone, teller.email)
    assert end(laptop, row_of(phone).id).headers["Location"].endswith(SECURITY)
    assert phone.get(SECURITY).status_code == 302
    assert open_rows(teller) == [row_of(laptop)]


def test_ending_sessions_is_audited(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE, "198.51.100.9")
    log_in(laptop)
    log_in(phone)
    end(laptop, row_of(phone).id)
    [event] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == Action.SESSION_END))
    assert event.actor_id == customer.id
    assert event.details["browser"] == "Mobile Safari 17 on iOS 17"
    assert event.details["session_ip"] == "198.51.100.9"


def test_logout_ends_this_browsers_row_only(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    laptop_row = row_of(laptop)
    laptop.post("/accounts/logout/", data={"csrf_token": csrf_token(laptop, "/dashboard/")})
    db.session.refresh(laptop_row)
    assert laptop_row.ended_at is not None
    assert [r.browser for r in open_rows(customer)] == ["Mobile Safari 17 on iOS 17"]
    assert signed_in(phone) and not signed_in(laptop)


def test_a_session_started_before_session_rows_is_logged_out(app, customer):
    # A cookie from before this change: the user's current token, but no session key.
    old = app.test_client()
    with old.session_transaction() as session:
        session["_user_id"] = customer.get_id()
        session["auth_at"] = session["seen_at"] = datetime.now(timezone.utc).timestamp()
        session.permanent = True
    response = old.get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


def test_password_change_ends_other_rows_and_keeps_this_browser(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    signed_in_at = row_of(laptop).created_at
    response = post_form(laptop, "/accounts/password/", {
        "current_password": TEST_PASSWORD, "new_password1": "a brand new passphrase 42",
        "new_password2": "a brand new passphrase 42"})
    assert response.status_code == 302
    [row] = open_rows(customer)
    assert row == row_of(laptop) and row.created_at == signed_in_at
    assert signed_in(laptop) and not signed_in(phone)


def test_password_reset_ends_every_row(app, client, customer):
    laptop = browser(app)
    log_in(laptop)
    post_form(client, f"/accounts/reset/{make_reset_token(customer)}/", {
        "new_password1": "a brand new passphrase 42", "new_password2": "a brand new passphrase 42"})
    assert open_rows(customer) == [] and not signed_in(laptop)


def test_deactivation_ends_every_row(app, customer, make_user):
    admin = make_user(email="admin@example.com", role=Role.ADMIN)
    laptop = browser(app)
    log_in(laptop)
    deactivate(customer, admin)
    assert open_rows(customer) == []


def test_reset_2fa_ends_every_row(app, runner, customer):
    enrol_totp(customer)
    laptop = browser(app)
    log_in(laptop)
    post_form(laptop, "/accounts/login/2fa/", {"code": totp_now(customer.totp_secret)})
    assert len(open_rows(customer)) == 1
    assert runner.invoke(args=["reset-2fa", customer.email]).exit_code == 0
    assert open_rows(customer) == []


def test_idle_timeout_ends_the_row(app, customer):
    laptop = browser(app)
    log_in(laptop)
    idle = app.config["SESSION_IDLE_TIMEOUT"] + timedelta(minutes=1)
    with laptop.session_transaction() as session:
        session["seen_at"] = (datetime.now(timezone.utc) - idle).timestamp()
    assert not signed_in(laptop)
    assert open_rows(customer) == []


# ---------------------------------------------------------------- last seen


def _count_session_updates(app):
    """A list that grows by one for every UPDATE of user_sessions the app sends."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE USER_SESSIONS"):
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    return seen, lambda: sa.event.remove(db.engine, "before_cursor_execute", count)


def test_last_seen_is_not_written_on_every_request(app, customer):
    laptop = browser(app)
    log_in(laptop)
    updates, stop = _count_session_updates(app)
    try:
        for _ in range(5):
            assert signed_in(laptop)
    finally:
        stop()
    assert updates == []


def test_last_seen_moves_once_the_minute_has_passed(app, customer):
    laptop = browser(app)
    log_in(laptop)
    before = row_of(laptop).last_seen_at
    with laptop.session_transaction() as session:
        session["seen_at"] -= 120
    updates, stop = _count_session_updates(app)
    try:
        assert signed_in(laptop)
        assert signed_in(laptop)
    finally:
        stop()
    assert len(updates) == 1
    assert row_of(laptop).last_seen_at > before


# ---------------------------------------------------------------- sign-in history


def _history(client) -> list[str]:
    html = client.get(SECURITY).get_data(as_text=True)
    return re.findall(r'<tr class="sign-in [^"]*">.*?</tr>', html, re.S)


def test_sign_in_history_shows_success_and_failure_with_ip_and_browser(app, customer):
    phone = browser(app, IPHONE, "198.51.100.9")
    post_form(phone, "/accounts/login/", {"email": customer.email, "password": "not it at all"})
    laptop = browser(app)
    log_in(laptop)
    success, failure = _history(laptop)
    assert "sign-in-success" in success and "Signed in" in success
    assert "203.0.113.7" in success and "Firefox 125 on Linux" in success
    assert "sign-in-failure" in failure and "Failed: wrong password" in failure
    assert "198.51.100.9" in failure and "Mobile Safari 17 on iOS 17" in failure


def test_sign_in_history_shows_a_wrong_second_step_code(app, customer):
    enrol_totp(customer)
    laptop = browser(app)
    log_in(laptop)
    post_form(laptop, "/accounts/login/2fa/", {"code": "000000"})
    post_form(laptop, "/accounts/login/2fa/", {"code": totp_now(customer.totp_secret)})
    newest, wrong_code, _password_step_has_no_row = [*_history(laptop), None][:3]
    assert "Signed in (authenticator app)" in newest
    assert "Failed: wrong second-step code" in wrong_code and "Firefox 125" in wrong_code


def test_a_mistyped_payment_code_is_not_listed_as_a_failed_sign_in(app, customer):
    from bankapp.identity.factors import PAYMENT, SecondFactorRefused, verify_second_factor

    enrol_totp(customer)
    laptop = browser(app)
    log_in(laptop)
    post_form(laptop, "/accounts/login/2fa/", {"code": totp_now(customer.totp_secret)})
    with app.test_request_context(), pytest.raises(SecondFactorRefused):
        verify_second_factor(customer, "000000", during=PAYMENT)
    html = laptop.get(SECURITY).get_data(as_text=True)
    assert [line for line in _history(laptop) if "sign-in-failure" in line] == []
    assert "someone knows your password" not in html


def test_a_wrong_second_step_code_warns_that_the_password_is_known(app, customer):
    enrol_totp(customer)
    laptop = browser(app)
    log_in(laptop)
    post_form(laptop, "/accounts/login/2fa/", {"code": "000000"})
    post_form(laptop, "/accounts/login/2fa/", {"code": totp_now(customer.totp_secret)})
    html = " ".join(laptop.get(SECURITY).get_data(as_text=True).split())
    assert "A wrong second-step code you do not recognise means someone knows your password" in html


def test_sign_in_history_shows_the_last_twenty_of_this_user_only(app, customer, make_user):
    bob = make_user(email="bob@example.com")
    # More failures than the login form's rate limit lets through in a test's minute.
    for user in [customer] * 21 + [bob]:
        audit.record(Action.LOGIN_FAILURE, actor=user, details={"reason": "bad credentials"})
    db.session.commit()
    laptop = browser(app)
    log_in(laptop)
    history = _history(laptop)
    assert len(history) == 20 and "Signed in" in history[0]
    assert all("Failed: wrong password" in line for line in history[1:])


def test_sign_in_times_are_in_the_bank_time_zone(app, customer):
    app.config["BANK_TIMEZONE"] = "Asia/Tokyo"
    laptop = browser(app)
    log_in(laptop)
    [row] = _history(laptop)
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == Action.LOGIN_SUCCESS))
    tokyo = event.created_at + timedelta(hours=9)
    assert f"{tokyo:%b} {tokyo.day}, {tokyo.year}, {tokyo:%H:%M}" in row  # English medium date


# ---------------------------------------------------------------- new browsers


def _alerts(outbox, to=None) -> list:
    return [m for m in outbox if m.subject == NEW_SIGN_IN and (to is None or m.recipients == [to])]


def test_sign_in_from_a_new_browser_emails_the_owner_once(app, customer):
    laptop = browser(app)
    with mail.record_messages() as outbox:
        log_in(laptop)
    [alert] = _alerts(outbox)
    assert alert.recipients == [customer.email]
    assert "Firefox 125 on Linux" in alert.body and "203.0.113.7" in alert.body
    assert "http://localhost/accounts/security/" in alert.body


def test_sign_in_again_from_the_same_browser_sends_no_email(app, customer):
    laptop = browser(app)
    log_in(laptop)
    laptop.post("/accounts/logout/", data={"csrf_token": csrf_token(laptop, "/dashboard/")})
    with mail.record_messages() as outbox:
        log_in(laptop)
    assert _alerts(outbox) == []


def test_a_second_user_on_the_same_browser_gets_their_own_email(app, customer, make_user):
    bob = make_user(email="bob@example.com")
    shared = browser(app)
    log_in(shared)
    shared.post("/accounts/logout/", data={"csrf_token": csrf_token(shared, "/dashboard/")})
    with mail.record_messages() as outbox:
        log_in(shared, bob.email)
    assert [m.recipients for m in _alerts(outbox)] == [[bob.email]]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(KnownBrowser)) == 2


def test_new_browser_email_waits_for_the_second_factor(app, customer):
    enrol_totp(customer)
    laptop = browser(app)
    with mail.record_messages() as outbox:
        log_in(laptop)
        assert _alerts(outbox) == []
        post_form(laptop, "/accounts/login/2fa/", {"code": totp_now(customer.totp_secret)})
    assert len(_alerts(outbox, customer.email)) == 1


def test_a_new_browser_is_marked_in_the_audit_trail(app, customer):
    laptop = browser(app)
    log_in(laptop)
    laptop.post("/accounts/logout/", data={"csrf_token": csrf_token(laptop, "/dashboard/")})
    log_in(laptop)
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == Action.LOGIN_SUCCESS).order_by(AuditEvent.id))
    assert [e.details.get("new_browser", False) for e in events] == [True, False]


def test_browser_cookie_is_long_lived_http_only_and_lax(app, customer):
    laptop = browser(app)
    response = log_in(laptop)
    [header] = [h for h in response.headers.getlist("Set-Cookie")
                if h.startswith("bankapp_browser=")]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    max_age = int(re.search(r"Max-Age=(\d+)", header).group(1))
    assert max_age >= 360 * 24 * 3600
    [known] = db.session.scalars(sa.select(KnownBrowser))
    assert known.browser_key_hash == hash_key(laptop.get_cookie("bankapp_browser").value)


def test_a_forged_browser_cookie_counts_as_a_new_browser(app, customer):
    laptop = browser(app)
    laptop.set_cookie("bankapp_browser", "x" * 500)
    with mail.record_messages() as outbox:
        log_in(laptop)
    assert len(_alerts(outbox)) == 1
    assert len(laptop.get_cookie("bankapp_browser").value) == 43


def test_production_browser_cookie_is_host_prefixed_and_secure():
    from config import ProductionConfig

    assert ProductionConfig.BROWSER_COOKIE_NAME.startswith("__Host-")
    assert ProductionConfig.SESSION_COOKIE_SECURE  # the browser cookie follows it


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("user_agent, label", [
    (FIREFOX, "Firefox 125 on Linux"),
    (IPHONE, "Mobile Safari 17 on iOS 17"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "Chrome 124 on Windows 10"),
    ("curl/8.5.0", "curl 8"),
    ("", "Unknown browser"),
    (None, "Unknown browser"),
    ("x" * 100_000, "Unknown browser"),
])
def test_browser_label_is_short_and_never_fails(user_agent, label):
    assert browser_label(user_agent) == label


# ---------------------------------------------------------------- a recent sign-in first


def stale(client, app) -> None:
    """Make this browser's last proof of identity older than REAUTH_SECONDS."""
    with client.session_transaction() as session:
        session["auth_at"] -= app.config["REAUTH_SECONDS"] + 1
        session["seen_at"] = datetime.now(timezone.utc).timestamp()


def test_ending_a_session_long_after_signing_in_asks_for_the_password_first(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    stale(laptop, app)
    response = end(laptop, row_of(phone).id)
    assert response.status_code == 302 and "/accounts/reauthenticate/" in response.headers[
        "Location"]
    assert signed_in(phone)
    assert len(open_rows(customer)) == 2


def test_after_the_password_again_the_session_can_be_ended(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    stale(laptop, app)
    confirmed = post_form(laptop, "/accounts/reauthenticate/?next=/accounts/security/",
                          {"password": TEST_PASSWORD})
    assert confirmed.headers["Location"].endswith(SECURITY)
    end(laptop, row_of(phone).id)
    assert not signed_in(phone)


def test_a_wrong_password_to_confirm_ends_nothing_and_is_audited(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    stale(laptop, app)
    response = post_form(laptop, "/accounts/reauthenticate/", {"password": "not the password"})
    assert response.status_code == 200
    assert "That is not your current password." in response.get_data(as_text=True)
    assert end(laptop, row_of(phone).id).status_code == 302
    assert signed_in(phone)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == Action.REAUTH_FAILURE)) == 1


def test_ending_all_others_long_after_signing_in_asks_for_the_password_first(app, customer):
    laptop, phone = browser(app), browser(app, IPHONE)
    log_in(laptop)
    log_in(phone)
    stale(laptop, app)
    token = csrf_token(laptop, SECURITY)
    response = laptop.post("/accounts/sessions/end-others/", data={"csrf_token": token})
    assert "/accounts/reauthenticate/" in response.headers["Location"]
    assert signed_in(phone)

"""Login: who gets in, what the refusals say, rate limits, safe redirects, verification links."""
from __future__ import annotations

import re
import time

import pytest
from argon2 import extract_parameters

from bankapp.identity.routes import BAD_CREDENTIALS
from bankapp.extensions import db
from bankapp.identity.security import make_verification_token
from support.users import TEST_PASSWORD
from support.web import post_form

LOGIN = "/accounts/login/"


def log_in(client, email, password=TEST_PASSWORD, url=LOGIN, **kwargs):
    return post_form(client, url, {"email": email, "password": password}, **kwargs)


def page_text(response) -> str:
    return response.get_data(as_text=True)


def test_verified_customer_logs_in_and_lands_on_dashboard(client, customer):
    response = log_in(client, "alice@example.com")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/dashboard/")
    assert client.get("/dashboard/").status_code == 200


def test_login_email_is_case_insensitive(client, customer):
    response = log_in(client, "  Alice@Example.COM ")
    assert response.status_code == 302


def test_login_records_last_login(client, customer):
    assert customer.last_login is None
    log_in(client, "alice@example.com")
    db.session.refresh(customer)
    assert customer.last_login is not None


def test_login_page_uses_email_and_current_password_autocomplete(client):
    page = page_text(client.get(LOGIN))
    assert 'autocomplete="email"' in page
    assert 'autocomplete="current-password"' in page
    assert '<label for="password"' in page


def test_wrong_password_and_unknown_email_get_the_identical_answer(client, customer):
    wrong_password = log_in(client, "alice@example.com", "not the right password")
    unknown_email = log_in(client, "nobody@example.com", "not the right password")
    assert wrong_password.status_code == unknown_email.status_code == 200
    assert BAD_CREDENTIALS in page_text(wrong_password)
    # The same page, apart from the typed email and the CSRF token.
    def comparable(response):
        text = page_text(response).replace("alice@example.com", "X").replace("nobody@example.com", "X")
        # A CSRF token carries the second it was made in: two requests may fall in two seconds.
        return re.sub(r'(value|data-csrf-token)="[^"]{40,}"', "", text)

    assert comparable(wrong_password) == comparable(unknown_email)
    assert client.get("/dashboard/").status_code == 302


def test_an_unknown_email_costs_one_verify_and_no_fresh_hash(app, client, monkeypatch):
    # The dummy hash an unknown email is checked against is made once per set of argon2
    # parameters: making it on every attempt took twice as long as a wrong password for a
    # known email, which told who has an account.
    from argon2 import PasswordHasher

    from bankapp.identity.security import check_password

    check_password(None, "first attempt makes the dummy hash")
    hashes, verifies = [], []
    real_hash, real_verify = PasswordHasher.hash, PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "hash",
                        lambda self, *a, **k: hashes.append(1) or real_hash(self, *a, **k))
    monkeypatch.setattr(PasswordHasher, "verify",
                        lambda self, *a, **k: verifies.append(1) or real_verify(self, *a, **k))
    for n in range(3):
        assert log_in(client, f"nobody{n}@example.com", "not the right password").status_code == 200
    assert (len(hashes), len(verifies)) == (0, 3)


def test_inactive_user_is_refused_with_the_generic_message(client, make_user):
    make_user(email="gone@example.com", is_active=False)
    response = log_in(client, "gone@example.com")
    assert response.status_code == 200
    assert BAD_CREDENTIALS in page_text(response)
    assert client.get("/dashboard/").status_code == 302


def test_unverified_user_is_refused_and_offered_a_new_link(client, make_user):
    make_user(email="waiting@example.com", verified=False)
    response = log_in(client, "waiting@example.com")
    page = page_text(response)
    assert response.status_code == 200
    assert "confirm your email address first" in page
    assert 'action="/accounts/verify/resend/"' in page
    assert page.count('id="email"') == 1  # labels stay unambiguous
    assert client.get("/dashboard/").status_code == 302


def test_unverified_user_without_the_password_learns_nothing(client, make_user):
    make_user(email="waiting@example.com", verified=False)
    response = log_in(client, "waiting@example.com", "not the right password")
    assert BAD_CREDENTIALS in page_text(response)
    assert "confirm your email" not in page_text(response)


def test_login_clears_the_previous_session(client, customer):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    log_in(client, "alice@example.com")
    with client.session_transaction() as session:
        assert "planted" not in session


@pytest.mark.parametrize("next_url", ["/accounts/signup/", "/dashboard/?tab=1"])
def test_login_follows_a_same_site_next(client, customer, next_url):
    from urllib.parse import quote

    response = log_in(client, "alice@example.com", url=f"{LOGIN}?next={quote(next_url)}")
    assert response.headers["Location"] == next_url


@pytest.mark.parametrize("next_url", ["//evil.com", "https://evil.com", "/\\evil.com",
                                      "\\\\evil.com", "javascript:alert(1)", "///evil.com"])
def test_login_refuses_an_open_redirect(client, customer, next_url):
    from urllib.parse import quote

    response = log_in(client, "alice@example.com", url=f"{LOGIN}?next={quote(next_url, safe='')}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/"


def test_login_rehashes_when_argon2_parameters_change(app, client, customer):
    old_hash = customer.password_hash
    assert extract_parameters(old_hash).time_cost == 1
    app.config["ARGON2_TIME_COST"] = 2
    assert log_in(client, "alice@example.com").status_code == 302
    db.session.refresh(customer)
    assert customer.password_hash != old_hash
    assert extract_parameters(customer.password_hash).time_cost == 2


def login_limit(app) -> int:
    from limits import parse

    limit = parse(app.config["LOGIN_RATE_LIMIT"])
    assert limit.amount == 5 and limit.GRANULARITY.name == "minute"  # the seed's rule
    return limit.amount


def test_sixth_login_attempt_in_a_minute_from_one_ip_is_refused(app, client):
    allowed = login_limit(app)
    # Different target emails: only the per-IP limit can stop this.
    statuses = [log_in(client, f"guess{n}@example.com", "not the right password").status_code
                for n in range(allowed + 1)]
    assert statuses == [200] * allowed + [429]
    assert "Too many sign-in attempts" in page_text(log_in(client, "other@example.com", "x" * 12))


def test_sixth_login_attempt_on_one_email_from_many_ips_is_refused(app, client, customer):
    allowed = login_limit(app)
    statuses = [
        log_in(client, "Alice@example.com", "not the right password",
               environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code
        for n in range(allowed + 1)
    ]
    assert statuses == [200] * allowed + [429]
    # The limit is on that account, not on the whole site.
    other = log_in(client, "bob@example.com", "not the right password",
                   environ_base={"REMOTE_ADDR": "198.51.100.99"})
    assert other.status_code == 200


def test_the_third_wrong_password_warns_that_two_attempts_are_left(app, client, customer):
    allowed = login_limit(app)
    answers = [page_text(log_in(client, "alice@example.com", "not the right password"))
               for _ in range(allowed - 2)]
    assert "attempts left" not in answers[-2]
    assert ("2 attempts left: then signing in is paused for a while. Forgot your password? "
            "Reset it instead.") in answers[-1]


def test_the_last_allowed_attempt_says_one_attempt_is_left(app, client, customer):
    for _ in range(login_limit(app) - 1):
        answer = log_in(client, "alice@example.com", "not the right password")
    assert "1 attempt left: then signing in is paused for a while." in page_text(answer)


def test_the_lockout_is_the_login_page_with_a_clear_message_and_when_to_retry(app, client,
                                                                            customer):
    for _ in range(login_limit(app)):
        log_in(client, "alice@example.com", "not the right password")
    answer = log_in(client, "alice@example.com", TEST_PASSWORD)
    text = page_text(answer)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts: signing in is paused. Try again in" in text
    assert "429 · Too Many Requests" not in text
    assert 'id="password"' in answer.get_data(as_text=True)  # the page in the site's layout
    assert 'href="/accounts/password_reset/"' in answer.get_data(as_text=True)


def test_the_lockout_page_is_in_french_for_a_french_browser(app, client, customer):
    french = {"HTTP_ACCEPT_LANGUAGE": "fr"}
    for _ in range(login_limit(app)):
        log_in(client, "alice@example.com", "not the right password", environ_base=french)
    text = page_text(log_in(client, "alice@example.com", TEST_PASSWORD, environ_base=french))
    assert "Trop de tentatives de connexion" in text


def test_login_page_itself_is_not_rate_limited(client):
    statuses = {client.get(LOGIN).status_code for _ in range(8)}
    assert statuses == {200}


def test_login_without_csrf_token_is_refused(client, customer):
    response = client.post(LOGIN, data={"email": "alice@example.com", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert client.get("/dashboard/").status_code == 302


# ---------------------------------------------------------------- verification links


def test_tampered_verification_token_shows_a_clear_page(client, make_user):
    user = make_user(email="waiting@example.com", verified=False)
    token = make_verification_token(user)
    response = client.get(f"/accounts/verify/{token[:-2]}xx/")
    assert response.status_code == 400
    assert "This confirmation link does not work" in page_text(response)
    db.session.refresh(user)
    assert not user.is_verified


def test_expired_verification_token_is_refused(client, make_user, monkeypatch):
    from itsdangerous.timed import TimestampSigner

    user = make_user(email="waiting@example.com", verified=False)
    issued = int(time.time()) - 49 * 3600  # the link lives 48 hours
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued)
    token = make_verification_token(user)
    monkeypatch.undo()
    response = client.get(f"/accounts/verify/{token}/")
    assert response.status_code == 400
    db.session.refresh(user)
    assert not user.is_verified


def test_reused_verification_token_changes_nothing(client, make_user):
    user = make_user(email="waiting@example.com", verified=False)
    token = make_verification_token(user)
    assert client.get(f"/accounts/verify/{token}/").status_code == 302
    again = client.get(f"/accounts/verify/{token}/", follow_redirects=True)
    assert again.status_code == 200
    db.session.refresh(user)
    assert user.is_verified


def test_verification_token_for_a_changed_email_is_refused(client, make_user):
    user = make_user(email="old@example.com", verified=False)
    token = make_verification_token(user)
    user.email = "new@example.com"
    db.session.commit()
    assert client.get(f"/accounts/verify/{token}/").status_code == 400
    db.session.refresh(user)
    assert not user.is_verified


def test_verified_user_can_log_in_after_following_the_link(client, make_user):
    user = make_user(email="waiting@example.com", verified=False)
    client.get(f"/accounts/verify/{make_verification_token(user)}/")
    assert log_in(client, "waiting@example.com").status_code == 302


def test_unverified_user_can_resend_the_link_from_the_refusal(client, make_user):
    from bankapp.extensions import mail
    from support.web import form_fields

    make_user(email="waiting@example.com", verified=False)
    page = page_text(log_in(client, "waiting@example.com"))
    resend_part = page[page.index('action="/accounts/verify/resend/"'):]
    with mail.record_messages() as outbox:
        response = client.post("/accounts/verify/resend/", data=form_fields(resend_part))
    assert response.status_code == 302
    assert [m.recipients for m in outbox] == [["waiting@example.com"]]

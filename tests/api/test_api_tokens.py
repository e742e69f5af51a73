"""Access tokens: issuing, refusing, expiry, tampering and revocation."""
import base64
import json
import time
import uuid

import jwt
import pytest

from bankapp.api.tokens import _signing_key, audience, issue_access_token
from bankapp.extensions import db
from bankapp.identity.security import set_password
from support.api import assert_problem, bearer, send
from support.users import TEST_PASSWORD

TOKEN_URL = "/api/v1/token"


def request_token(client, email, password=TEST_PASSWORD):
    return send(client, "POST", TOKEN_URL, body={"email": email, "password": password})


def test_correct_credentials_get_a_bearer_token(client, customer):
    response = request_token(client, "alice@example.com")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert response.headers["Cache-Control"] == "no-store"
    listed = client.get("/api/v1/accounts",
                        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200


def test_token_carries_subject_issue_time_expiry_and_version(app, customer):
    token = issue_access_token(customer)
    claims = jwt.decode(token, _signing_key(), algorithms=["HS256"], audience=audience())
    assert claims["sub"] == str(customer.id)
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["ver"] == customer.token_version == 0


def test_email_is_matched_case_insensitively(client, customer):
    assert request_token(client, "  Alice@Example.COM ").status_code == 200


@pytest.mark.parametrize("email, password", [
    ("alice@example.com", "wrong-password-123"),
    ("nobody@example.com", TEST_PASSWORD),
])
def test_wrong_credentials_get_one_message(client, customer, email, password):
    body = assert_problem(request_token(client, email, password), 401)
    assert body["detail"] == "The email or password is incorrect."


def test_wrong_credentials_answer_carries_a_bearer_challenge(client, customer):
    response = request_token(client, "alice@example.com", "nope-nope-nope")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unverified_user_gets_403(client, make_user):
    make_user(email="new@example.com", verified=False)
    body = assert_problem(request_token(client, "new@example.com"), 403)
    assert "Verify" in body["detail"]


def test_a_deactivated_account_gets_the_wrong_password_answer(client, customer, make_user):
    make_user(email="gone@example.com", is_active=False)
    deactivated = request_token(client, "gone@example.com")
    wrong = request_token(client, "alice@example.com", "not the right password")
    assert deactivated.status_code == wrong.status_code == 401
    assert deactivated.get_json() == wrong.get_json()
    assert deactivated.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]


def web_login(client, email, password, ip):
    from support.web import post_form

    return post_form(client, "/accounts/login/", {"email": email, "password": password},
                     environ_base={"REMOTE_ADDR": ip})


def test_wrong_passwords_on_the_web_and_the_api_share_one_count_per_account(client, app,
                                                                            customer):
    assert app.config["LOGIN_RATE_LIMIT"] == "5 per minute"  # the seed's rule
    for n in range(3):
        assert web_login(client, "alice@example.com", "wrong", f"10.0.1.{n}").status_code == 200
    for n in range(2):
        wrong = client.post(TOKEN_URL, json={"email": "Alice@example.com", "password": "wrong"},
                            environ_base={"REMOTE_ADDR": f"10.0.2.{n}"})
        assert wrong.status_code == 401
    sixth = client.post(TOKEN_URL, json={"email": "alice@example.com", "password": TEST_PASSWORD},
                        environ_base={"REMOTE_ADDR": "10.0.3.1"})
    assert_problem(sixth, 429)
    assert web_login(client, "alice@example.com", TEST_PASSWORD, "10.0.3.2").status_code == 429


def test_the_per_account_login_count_holds_without_the_rate_limit_store(client, customer,
                                                                        monkeypatch):
    from bankapp.extensions import limiter

    monkeypatch.setattr(limiter, "enabled", False)  # no Redis, no counters of its own
    for n in range(5):
        assert request_token(client, "alice@example.com", "wrong").status_code == 401
    assert_problem(request_token(client, "alice@example.com"), 429)


@pytest.mark.parametrize("body, status", [
    ({"email": "alice@example.com"}, 422),
    ({"email": 5, "password": TEST_PASSWORD}, 400),
    ({"email": "alice@example.com", "password": None}, 400),
    ({"email": "alice@example.com", "password": TEST_PASSWORD, "extra": "x"}, 422),
])
def test_badly_formed_token_requests_are_refused(client, customer, body, status):
    assert_problem(send(client, "POST", TOKEN_URL, body=body), status)


def test_token_requests_are_rate_limited_per_email(client, app, customer):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    for n in range(3):
        other_ip = {"REMOTE_ADDR": f"10.0.0.{n + 1}"}
        response = client.post(TOKEN_URL, json={"email": "alice@example.com", "password": "x"},
                               environ_base=other_ip)
        assert response.status_code == 401
    response = client.post(TOKEN_URL, json={"email": "alice@example.com",
                                            "password": TEST_PASSWORD},
                           environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert_problem(response, 429)


def test_token_requests_are_rate_limited_per_ip(client, app, customer):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    for n in range(3):
        response = request_token(client, f"someone{n}@example.com", "x")
        assert response.status_code == 401
    response = request_token(client, "alice@example.com")
    problem = assert_problem(response, 429)
    assert "Too many token requests" in problem["detail"]
    assert int(response.headers["Retry-After"]) > 0


# ---------------------------------------------------------------- using tokens

def get_accounts(client, token):
    return client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})


def test_missing_token_gets_401_with_bearer_challenge(client):
    response = client.get("/api/v1/accounts")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_other_authorization_scheme_gets_401(client, customer):
    response = client.get("/api/v1/accounts", headers={"Authorization": "Basic YTpi"})
    assert_problem(response, 401)


def test_session_cookie_does_not_authenticate_the_api(customer_client):
    assert_problem(customer_client.get("/api/v1/accounts"), 401)


def _session_due_for_refresh(client) -> None:
    # The cookie is rewritten at most once a minute (bankapp.identity.security): make it due now.
    with client.session_transaction() as session:
        session["seen_at"] -= 120


def test_api_answers_set_no_session_cookie(customer_client, customer):
    _session_due_for_refresh(customer_client)
    response = customer_client.get("/api/v1/accounts", headers=bearer(customer))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_a_page_still_refreshes_the_session_cookie(customer_client):
    _session_due_for_refresh(customer_client)
    response = customer_client.get("/dashboard/")
    assert response.status_code == 200
    assert response.headers["Set-Cookie"].startswith("session=")


def test_expired_token_is_refused(client, customer):
    token = issue_access_token(customer, issued_at=int(time.time()) - 3600)
    body = assert_problem(get_accounts(client, token), 401)
    assert "expired" in body["detail"]


def test_a_token_sent_again_is_verified_once(client, customer, monkeypatch):
    verified = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: verified.append(True) or decode(*a, **k))
    now = int(time.time())
    token = jwt.encode({"sub": str(customer.id), "iat": now, "exp": now + 600, "ver": 0,
                        "aud": audience(), "jti": uuid.uuid4().hex},  # a token never seen
                       _signing_key(), algorithm="HS256")
    answers = [get_accounts(client, token).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    assert len(verified) == 1


def test_a_token_verified_before_is_refused_once_it_expires(client, customer):
    now = int(time.time())
    expiry = now + 2
    token = jwt.encode({"sub": str(customer.id), "iat": now, "exp": expiry, "ver": 0,
                        "aud": audience()}, _signing_key(), algorithm="HS256")
    assert get_accounts(client, token).status_code == 200
    time.sleep(max(0.0, expiry - time.time()) + 0.05)
    body = assert_problem(get_accounts(client, token), 401)
    assert "expired" in body["detail"]


@pytest.mark.parametrize("setting, value", [("JWT_SECRET_KEY", "another-key-" + "x" * 32),
                                            ("PUBLIC_URL", "https://bank.example")])
def test_a_token_verified_before_is_refused_once_its_key_or_audience_changes(
        app, client, customer, setting, value):
    token = issue_access_token(customer)
    assert get_accounts(client, token).status_code == 200
    app.config[setting] = value
    body = assert_problem(get_accounts(client, token), 401)
    assert "invalid" in body["detail"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_alg_none_token_is_refused(client, customer):
    now = int(time.time())
    claims = {"sub": str(customer.id), "iat": now, "exp": now + 600, "ver": 0}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert_problem(get_accounts(client, token), 401)


def test_token_signed_with_another_key_is_refused(client, customer):
    now = int(time.time())
    claims = {"sub": str(customer.id), "iat": now, "exp": now + 600, "ver": 0}
    token = jwt.encode(claims, "another-key-of-at-least-32-bytes-long!", algorithm="HS256")
    assert_problem(get_accounts(client, token), 401)


def test_token_with_modified_payload_is_refused(client, customer, make_user):
    other = make_user()
    header, _, signature = issue_access_token(customer).split(".")
    now = int(time.time())
    forged = _b64({"sub": str(other.id), "iat": now, "exp": now + 600, "ver": 0})
    assert_problem(get_accounts(client, f"{header}.{forged}.{signature}"), 401)


@pytest.mark.parametrize("claim", [
    {"sub": "abc"}, {"sub": "-1"}, {"sub": 7}, {"sub": "1" * 12},
    {"ver": True}, {"ver": "0"}, {"ver": 1}, {"sub": "999999"},
])
def test_correctly_signed_token_with_bad_claims_is_refused(client, customer, claim):
    now = int(time.time())
    claims = {"sub": str(customer.id), "iat": now, "exp": now + 600, "ver": 0,
              "aud": audience(), **claim}
    token = jwt.encode(claims, _signing_key(), algorithm="HS256")
    assert_problem(get_accounts(client, token), 401)


def test_expired_token_cannot_move_money(client, customer, funded_account):
    from decimal import Decimal

    account = funded_account(customer, "100.00")
    past = int(time.time()) - 3600
    token = jwt.encode({"sub": str(customer.id), "iat": past - 900, "exp": past, "ver": 0,
                        "aud": audience()}, _signing_key(), algorithm="HS256")
    response = client.post(f"/api/v1/accounts/{account.account_number}/withdrawals",
                           json={"amount": "10.00"},
                           headers={"Authorization": f"Bearer {token}",
                                    "Idempotency-Key": "expired-token-1"})
    body = assert_problem(response, 401)
    assert "expired" in body["detail"]
    db.session.refresh(account)
    assert account.balance == Decimal("100.00")


def test_token_without_expiry_is_refused(client, customer):
    claims = {"sub": str(customer.id), "iat": int(time.time()), "ver": 0, "aud": audience()}
    token = jwt.encode(claims, _signing_key(), algorithm="HS256")
    assert_problem(get_accounts(client, token), 401)


def test_garbage_token_is_refused(client):
    assert_problem(get_accounts(client, "not.a.token"), 401)


def test_password_change_revokes_earlier_tokens(client, customer):
    headers = bearer(customer)
    set_password(customer, "a-brand-new-password-456")
    db.session.commit()
    body = assert_problem(client.get("/api/v1/accounts", headers=headers), 401)
    assert "revoked" in body["detail"]
    assert client.get("/api/v1/accounts", headers=bearer(customer)).status_code == 200


def test_revoke_endpoint_voids_every_earlier_token(client, customer):
    first, second = bearer(customer), bearer(customer)
    assert client.post("/api/v1/token/revoke", headers=first).status_code == 204
    assert_problem(client.get("/api/v1/accounts", headers=first), 401)
    assert_problem(client.get("/api/v1/accounts", headers=second), 401)
    assert client.get("/api/v1/accounts", headers=bearer(customer)).status_code == 200


def test_deactivation_revokes_tokens_even_after_reactivation(client, customer):
    headers = bearer(customer)
    customer.is_active = False
    db.session.commit()
    assert_problem(client.get("/api/v1/accounts", headers=headers), 401)
    customer.is_active = True
    db.session.commit()
    assert_problem(client.get("/api/v1/accounts", headers=headers), 401)


def test_oversized_token_request_is_413(client, customer):
    body = {"email": "alice@example.com", "password": "x" * 70000}
    assert_problem(send(client, "POST", TOKEN_URL, body=body), 413)


def test_token_of_a_user_no_longer_verified_gets_403(client, customer):
    headers = bearer(customer)
    customer.is_verified = False
    db.session.commit()
    assert_problem(client.get("/api/v1/accounts", headers=headers), 403)


def test_token_names_the_api_on_public_url_as_its_audience(app, customer):
    app.config["PUBLIC_URL"] = "https://bank.example"
    claims = jwt.decode(issue_access_token(customer), _signing_key(), algorithms=["HS256"],
                        options={"verify_aud": False})
    assert claims["aud"] == "https://bank.example/api/v1"


def _signed(customer, **claims) -> str:
    now = int(time.time())
    return jwt.encode({"sub": str(customer.id), "iat": now, "exp": now + 600, "ver": 0,
                       **claims}, _signing_key(), algorithm="HS256")


def test_token_without_an_audience_is_refused(client, customer):
    assert_problem(get_accounts(client, _signed(customer)), 401)


def test_token_meant_for_another_service_is_refused(app, client, customer):
    # Same signing key (a staging copy sharing JWT_SECRET_KEY), another audience.
    app.config["PUBLIC_URL"] = "https://bank.example"
    other = _signed(customer, aud="https://staging.bank.example/api/v1")
    assert_problem(get_accounts(client, other), 401)
    ours = _signed(customer, aud="https://bank.example/api/v1")
    assert get_accounts(client, ours).status_code == 200

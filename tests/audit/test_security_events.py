"""Security events in the audit trail (ASVS 5.0 V16.3.1-V16.3.3): API token issuance and
refusals, 403s, refused object access, CSRF failures, rate-limit refusals and refused bearer
tokens; at most SECURITY_EVENT_AUDIT_LIMIT rows per kind and caller, every one logged."""
from __future__ import annotations

import logging

from bankapp.audit import Action
from support.api import bearer, send
from support.backoffice import audit_rows
from support.users import TEST_PASSWORD, log_in_as


def request_token(client, email, password=TEST_PASSWORD):
    return send(client, "POST", "/api/v1/token", body={"email": email, "password": password})


def security_rows():
    return [row for row in audit_rows() if row.action.startswith("security.")]


# ---------------------------------------------------------------- API tokens (V16.3.1)


def test_api_token_issuance_is_audited(client, customer):
    assert request_token(client, customer.email).status_code == 200
    [row] = audit_rows(Action.API_TOKEN_ISSUED)
    assert row.actor_id == customer.id and row.details == {"email": customer.email}


def test_a_refused_token_request_is_audited_without_the_password(client, customer):
    assert request_token(client, customer.email, "not the password!").status_code == 401
    [row] = audit_rows(Action.API_TOKEN_FAILURE)
    assert row.details == {"email": customer.email, "reason": "bad credentials"}
    assert "not the password!" not in str(row.details)
    assert security_rows() == []  # one row for one refusal


def test_a_token_request_for_an_unknown_email_is_audited(client):
    request_token(client, "nobody@example.com")
    [row] = audit_rows(Action.API_TOKEN_FAILURE)
    assert row.actor_id is None and row.details["email"] == "nobody@example.com"


def test_a_deactivated_users_token_request_is_audited(client, make_user):
    user = make_user(is_active=False)
    request_token(client, user.email)
    [row] = audit_rows(Action.API_TOKEN_FAILURE)
    assert row.details["reason"] == "inactive"


# ---------------------------------------------------------------- refusals (V16.3.2)


def test_a_customer_on_a_teller_page_is_recorded(customer_client, customer):
    assert customer_client.get("/teller/").status_code == 403
    [row] = security_rows()
    assert row.action == Action.ACCESS_REFUSED and row.actor_id == customer.id
    assert row.details["path"] == "/teller/" and row.ip_address == "127.0.0.1"


def test_another_customers_account_page_is_recorded_as_refused(customer_client, customer,
                                                                make_user, funded_account):
    other = funded_account(make_user(), "10.00")
    assert customer_client.get(f"/accounts/{other.account_number}/").status_code == 404
    [row] = security_rows()
    assert row.action == Action.OBJECT_REFUSED and row.actor_id == customer.id
    assert other.account_number in row.details["path"]


def test_another_customers_account_through_the_api_is_recorded(client, customer, make_user,
                                                                funded_account):
    other = funded_account(make_user(), "10.00")
    response = client.get(f"/api/v1/accounts/{other.account_number}", headers=bearer(customer))
    assert response.status_code == 404
    [row] = security_rows()
    assert row.action == Action.OBJECT_REFUSED and row.actor_id == customer.id


def test_a_customer_calling_a_staff_endpoint_is_recorded(client, customer):
    assert client.get("/api/v1/customers", headers=bearer(customer)).status_code == 403
    [row] = security_rows()
    assert row.action == Action.ACCESS_REFUSED and row.details["path"] == "/api/v1/customers"


def test_an_anonymous_404_is_not_an_event(client):
    assert client.get("/wp-login.php").status_code == 404
    assert security_rows() == []


# ---------------------------------------------------------------- bypass attempts (V16.3.3)


def test_a_csrf_failure_is_recorded(client, customer):
    response = client.post("/accounts/login/", data={"email": customer.email,
                                                     "password": TEST_PASSWORD})
    assert response.status_code == 400
    [row] = security_rows()
    assert row.action == Action.CSRF_FAILURE and row.actor_id is None
    assert "CSRF" in row.details["reason"]


def test_a_rate_limit_refusal_is_recorded(app, client):
    from support.web import post_form

    statuses = [post_form(client, "/accounts/login/", {
        "email": f"guess{n}@example.com", "password": "not the right password"}).status_code
        for n in range(6)]
    assert statuses[-1] == 429
    [row] = security_rows()
    assert row.action == Action.RATE_LIMITED and row.details["path"] == "/accounts/login/"


def test_a_refused_bearer_token_is_recorded(client):
    assert client.get("/api/v1/accounts",
                      headers={"Authorization": "Bearer not.a.token"}).status_code == 401
    [row] = security_rows()
    assert row.action == Action.API_AUTH_REFUSED


# ---------------------------------------------------------------- bounded


def test_a_flood_of_refusals_writes_at_most_the_budget_of_rows(app, client, caplog):
    app.config["SECURITY_EVENT_AUDIT_LIMIT"] = "10 per hour"
    with caplog.at_level(logging.WARNING, logger="bankapp.security"):
        for _ in range(25):
            assert client.post("/accounts/login/", data={}).status_code == 400
    assert len(security_rows()) == 10
    logged = [r for r in caplog.records if r.name == "bankapp.security"]
    assert len(logged) == 25
    assert sum("over the audit budget" in r.getMessage() for r in logged) == 15


def test_the_budget_is_per_kind_and_per_caller(app, client, customer):
    app.config["SECURITY_EVENT_AUDIT_LIMIT"] = "2 per hour"
    for _ in range(5):
        client.post("/accounts/login/", data={})  # anonymous CSRF failures
    signed_in = app.test_client()
    log_in_as(signed_in, customer)
    for _ in range(5):
        signed_in.get("/teller/")
    kinds = [row.action for row in security_rows()]
    assert kinds == [Action.CSRF_FAILURE] * 2 + [Action.ACCESS_REFUSED] * 2

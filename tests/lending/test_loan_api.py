"""The loans API: list, one loan with its schedule, repayments with an Idempotency-Key."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from bankapp.lending import services
from support.api import assert_problem, balance, new_key, send
from support.lending import active_loan, apply_for
from support.users import enrol_totp, totp_now


@pytest.fixture
def loan(customer, account, product, teller):
    return active_loan(customer, account, product, teller)


def repay(client, user, loan, body, key=None):
    return send(client, "POST", f"/api/v1/loans/{loan.id}/repayments", user, body,
                key=key or new_key())


def test_the_caller_lists_their_loans(client, customer, loan):
    response = send(client, "GET", "/api/v1/loans", customer)
    assert response.status_code == 200
    [shown] = response.get_json()["loans"]
    assert shown["loan_number"] == loan.number and shown["principal"] == "1200.00"
    assert "schedule" not in shown


def test_one_loan_comes_with_its_schedule_and_payoff(client, customer, loan):
    body = send(client, "GET", f"/api/v1/loans/{loan.id}", customer).get_json()
    assert len(body["schedule"]) == 12
    assert body["schedule"][0]["interest"] and body["payoff"] == "1200.00"


def test_someone_elses_loan_is_404(client, loan, make_user):
    response = send(client, "GET", f"/api/v1/loans/{loan.id}", make_user(email="eve@x.org"))
    assert_problem(response, 404)


def test_a_repayment_posts_once_per_key(client, customer, loan, account):
    key = new_key()
    first = repay(client, customer, loan, {"amount": "50.00"}, key)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["entry_type"] == "LOAN_REPAYMENT"
    again = repay(client, customer, loan, {"amount": "50.00"}, key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert balance(account) == D("1640.00")


def test_a_repayment_without_a_key_is_refused(client, customer, loan, account):
    response = send(client, "POST", f"/api/v1/loans/{loan.id}/repayments", customer,
                    {"amount": "50.00"})
    assert_problem(response, 400)
    assert balance(account) == D("1690.00")


def test_repaying_more_than_the_payoff_is_422_and_nothing_moves(client, customer, loan,
                                                                account):
    body = assert_problem(repay(client, customer, loan, {"amount": "1200.01"}), 422)
    assert "more than the loan owes" in body["detail"]
    assert balance(account) == D("1690.00")


def test_repaying_an_application_not_paid_out_is_422(client, customer, account, product):
    application = apply_for(customer, account, product)
    assert_problem(repay(client, customer, application, {"amount": "5.00"}), 422)


def test_a_repayment_above_the_step_up_threshold_needs_a_code(app, client, customer, loan,
                                                             account):
    secret = enrol_totp(customer)
    app.config["STEP_UP_THRESHOLD"] = D("100.00")
    body = assert_problem(repay(client, customer, loan, {"amount": "150.00"}), 403)
    assert body["code"] == "step-up-required"
    assert balance(account) == D("1690.00")
    paid = repay(client, customer, loan, {"amount": "150.00", "otp": totp_now(secret)})
    assert paid.status_code == 201, paid.get_data(as_text=True)
    assert services.payoff_amount(loan) == D("1050.00")


def test_the_loans_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/loans", "/api/v1/loans/{loan_id}",
            "/api/v1/loans/{loan_id}/repayments"} <= paths.keys()

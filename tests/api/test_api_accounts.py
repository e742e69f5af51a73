"""Accounts and their transactions through the API."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import Transaction
from support.api import assert_problem, send


def test_list_shows_only_the_callers_accounts(client, customer, make_user, funded_account):
    mine = funded_account(customer, "25.00")
    funded_account(make_user(), "99.00")
    response = send(client, "GET", "/api/v1/accounts", customer)
    assert response.status_code == 200
    accounts = response.get_json()["accounts"]
    assert [a["account_number"] for a in accounts] == [mine.account_number]
    assert accounts[0]["balance"] == "25.00"
    assert accounts[0]["account_type"] == "SAVINGS"
    assert accounts[0]["status"] == "active"


def test_open_account_answers_201_with_the_new_account(client, customer):
    response = send(client, "POST", "/api/v1/accounts", customer, {"account_type": "CHECKING"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["account_type"] == "CHECKING"
    assert body["balance"] == "0.00"
    assert response.headers["Location"].endswith(f"/api/v1/accounts/{body['account_number']}")
    assert [a.account_number for a in customer.accounts] == [body["account_number"]]


@pytest.mark.parametrize("body, status", [
    ({"account_type": "VAULT"}, 422),
    ({"account_type": "GOLD"}, 422),
    ({}, 422),
    ({"account_type": 1}, 400),
])
def test_open_account_refuses_other_types(client, customer, body, status):
    problem = assert_problem(send(client, "POST", "/api/v1/accounts", customer, body), status)
    assert problem["errors"][0]["pointer"] == "#/account_type"
    assert customer.accounts == []


def test_open_account_over_the_banks_maximum_is_refused(app, client, customer):
    app.config["MAX_OPEN_ACCOUNTS"] = 1
    send(client, "POST", "/api/v1/accounts", customer, {"account_type": "CHECKING"})
    response = send(client, "POST", "/api/v1/accounts", customer, {"account_type": "SAVINGS"})
    assert "You already have 1 open accounts" in assert_problem(response, 422)["detail"]
    assert len(customer.accounts) == 1


def test_api_calls_over_the_callers_limit_are_refused_with_retry_after(app, client, customer):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    answers = [send(client, "GET", "/api/v1/accounts", customer) for _ in range(4)]
    assert [answer.status_code for answer in answers[:3]] == [200] * 3
    problem = assert_problem(answers[3], 429)
    assert problem["code"] == "rate-limited"
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60


def test_the_api_limit_counts_every_token_of_a_caller_together_and_no_one_else(
        app, client, customer, make_user):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    other = make_user(email="bob@example.com")
    for _ in range(2):  # send() signs a new token each time
        send(client, "GET", "/api/v1/accounts", customer)
    assert send(client, "GET", "/api/v1/accounts", customer).status_code == 429
    assert send(client, "GET", "/api/v1/accounts", other).status_code == 200


def test_get_own_account(client, customer, funded_account):
    account = funded_account(customer, "10.00")
    response = send(client, "GET", f"/api/v1/accounts/{account.account_number}", customer)
    assert response.status_code == 200
    assert response.get_json()["balance"] == "10.00"


def test_account_number_is_matched_case_insensitively(client, customer, funded_account):
    account = funded_account(customer)
    url = f"/api/v1/accounts/{account.account_number.lower()}"
    assert send(client, "GET", url, customer).status_code == 200


@pytest.mark.parametrize("number", ["ACC-000000000", "GL-VAULT", "x" * 30])
def test_unknown_account_is_404(client, customer, number):
    assert_problem(send(client, "GET", f"/api/v1/accounts/{number}", customer), 404)


# ---------------------------------------------------------------- transactions

def history_url(account, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/accounts/{account.account_number}/transactions" + (f"?{query}" if query else "")


def test_transactions_are_newest_first_with_money_as_strings(client, customer, funded_account):
    account = funded_account(customer, "100.00")
    ledger.withdraw(account, Decimal("30.25"), "Cash", customer)
    response = send(client, "GET", history_url(account), customer)
    assert response.status_code == 200
    body = response.get_json()
    rows = body["transactions"]
    assert [(r["transaction_type"], r["signed_amount"], r["balance_after"]) for r in rows] == [
        ("WITHDRAWAL", "-30.25", "69.75"), ("DEPOSIT", "100.00", "100.00")]
    assert body["next_cursor"] is None


def test_cursor_pages_return_every_row_once_while_rows_are_inserted(
        client, customer, funded_account):
    account = funded_account(customer, "1.00")
    for n in range(6):
        ledger.deposit(account, Decimal("1.00"), f"deposit {n}", customer)
    existing = {leg.id for leg in db.session.scalars(
        sa.select(Transaction).where(Transaction.account_id == account.id))}
    seen = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = send(client, "GET", history_url(account, **params), customer).get_json()
        seen.extend((r["reference"], r["description"]) for r in body["transactions"])
        # A new posting between pages must neither repeat nor push rows onto later pages.
        ledger.deposit(account, Decimal("1.00"), "meanwhile", customer)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(existing) == 7
    assert all(description != "meanwhile" for _, description in seen)


def test_limit_defaults_to_50(client, customer, funded_account):
    account = funded_account(customer, "1.00")
    for _ in range(55):
        ledger.deposit(account, Decimal("1.00"), "", customer)
    body = send(client, "GET", history_url(account), customer).get_json()
    assert len(body["transactions"]) == 50
    assert body["next_cursor"]


@pytest.mark.parametrize("params, status, parameter", [
    ({"limit": "0"}, 422, "limit"),
    ({"limit": "201"}, 422, "limit"),
    ({"limit": "ten"}, 400, "limit"),
    ({"limit": "-1"}, 400, "limit"),
    ({"cursor": "garbage!"}, 400, "cursor"),
    ({"cursor": "WzEsMl0"}, 400, "cursor"),  # base64 of [1,2]: not a position
    ({"start": "yesterday"}, 400, "start"),
    ({"end": "2026-11-25T10:00:00"}, 400, "end"),  # no offset
    ({"start": "2026-11-25", "end": "2026-11-01"}, 422, "start"),
])
def test_bad_query_parameters_are_refused(client, customer, funded_account, params, status,
                                          parameter):
    account = funded_account(customer)
    problem = assert_problem(send(client, "GET", history_url(account, **params), customer),
                             status)
    assert problem["errors"][0]["parameter"] == parameter


def test_start_and_end_filter_by_time(client, customer, funded_account):
    account = funded_account(customer, "5.00")
    now = datetime.now(timezone.utc)
    before = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    after = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    inside = send(client, "GET", history_url(account, start=before, end=after), customer)
    assert len(inside.get_json()["transactions"]) == 1
    later = send(client, "GET", history_url(account, start=after), customer)
    assert later.get_json()["transactions"] == []
    today = now.date().isoformat()
    whole_day = send(client, "GET", history_url(account, start=today, end=today), customer)
    assert len(whole_day.get_json()["transactions"]) == 1


def test_transactions_name_the_other_party_on_both_sides(client, customer, make_user,
                                                         funded_account):
    source = funded_account(customer, "100.00")
    bob = make_user(first_name="Bob", last_name="Brown")
    bobs = funded_account(bob)
    ledger.transfer(source, bobs, Decimal("40.00"), "Rent", customer)
    sent = send(client, "GET", history_url(source), customer).get_json()["transactions"]
    received = send(client, "GET", history_url(bobs), bob).get_json()["transactions"]
    assert [(r["transaction_type"], r["counterparty"]) for r in sent] == [
        ("TRANSFER_OUT", "B** B****"), ("DEPOSIT", None)]
    assert [(r["transaction_type"], r["counterparty"]) for r in received] == [
        ("TRANSFER_IN", "A**** A*****")]

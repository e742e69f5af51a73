"""A customer can neither see nor move another customer's money through any endpoint."""
from decimal import Decimal

import pytest

from support.api import assert_problem, balance, entry_count, new_key, send

ALICE_KEY = "alice-request-1"


@pytest.fixture
def alice_account(customer, funded_account, client):
    account = funded_account(customer, "500.00")
    send(client, "POST", f"/api/v1/accounts/{account.account_number}/deposits", customer,
         {"amount": "1.00"}, key=ALICE_KEY)
    return account


@pytest.fixture
def mallory(make_user, funded_account):
    user = make_user(email="mallory@example.com")
    funded_account(user, "1.00")
    return user


def mallory_account(mallory):
    return mallory.accounts[0].account_number


ATTEMPTS = {
    "read account": lambda a, m: ("GET", f"/api/v1/accounts/{a}", None, None),
    "read transactions": lambda a, m: ("GET", f"/api/v1/accounts/{a}/transactions", None, None),
    "deposit": lambda a, m: ("POST", f"/api/v1/accounts/{a}/deposits", {"amount": "1"},
                             new_key()),
    "withdraw": lambda a, m: ("POST", f"/api/v1/accounts/{a}/withdrawals", {"amount": "1"},
                              new_key()),
    "transfer out": lambda a, m: ("POST", "/api/v1/transfers",
                                  {"from_account": a, "to_account": m, "amount": "100"},
                                  new_key()),
    "request status": lambda a, m: ("GET", f"/api/v1/transfers/{ALICE_KEY}", None, None),
    "replay alice's key": lambda a, m: ("POST", f"/api/v1/accounts/{a}/withdrawals",
                                        {"amount": "1"}, ALICE_KEY),
}


@pytest.mark.parametrize("attempt", list(ATTEMPTS), ids=list(ATTEMPTS))
def test_other_customers_account_answers_404_and_nothing_moves(
        client, alice_account, mallory, attempt):
    entries = entry_count()
    method, url, body, key = ATTEMPTS[attempt](alice_account.account_number,
                                               mallory_account(mallory))
    response = send(client, method, url, mallory, body, key=key)
    problem = assert_problem(response, 404)
    assert alice_account.account_number not in problem["detail"]
    assert "500" not in response.get_data(as_text=True)
    assert balance(alice_account) == Decimal("501.00")
    assert entry_count() == entries


def test_account_list_never_shows_other_customers_accounts(client, alice_account, mallory):
    body = send(client, "GET", "/api/v1/accounts", mallory).get_json()
    assert [a["account_number"] for a in body["accounts"]] == [mallory_account(mallory)]


def test_customer_cannot_search_customers(client, alice_account, mallory):
    assert_problem(send(client, "GET", "/api/v1/customers?q=alice", mallory), 403)

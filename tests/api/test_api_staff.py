"""Teller and admin scope: customer search and postings on any customer account."""
from decimal import Decimal
from urllib.parse import quote

import pytest

from bankapp.models import Role
from support.api import assert_problem, balance, new_key, send


@pytest.fixture
def teller(make_user):
    return make_user(email="tom@bank.example", role=Role.TELLER, first_name="Tom")


@pytest.mark.parametrize("role", [Role.TELLER, Role.ADMIN])
def test_staff_find_customers_with_their_accounts(client, make_user, customer, funded_account,
                                                  role):
    account = funded_account(customer, "20.00")
    staff = make_user(role=role)
    response = send(client, "GET", "/api/v1/customers?q=ARCHER", staff)
    assert response.status_code == 200
    [found] = response.get_json()["customers"]
    assert found["email"] == "alice@example.com"
    assert found["accounts"][0]["account_number"] == account.account_number
    assert found["accounts"][0]["balance"] == "20.00"


def test_customer_search_by_account_number(client, teller, customer, funded_account):
    account = funded_account(customer)
    response = send(client, "GET", f"/api/v1/customers?q={account.account_number[-6:]}", teller)
    assert [c["email"] for c in response.get_json()["customers"]] == ["alice@example.com"]


def test_customer_search_finds_a_full_name(client, teller, customer):
    response = send(client, "GET", "/api/v1/customers?q=alice%20archer", teller)
    assert [c["email"] for c in response.get_json()["customers"]] == ["alice@example.com"]


@pytest.mark.parametrize("typed", ["0722 000 111", "+254 722 000 111"])
def test_customer_search_finds_a_phone_number_typed_the_local_way(app, client, teller,
                                                                  make_user, typed):
    app.config["BANK_PHONE_REGION"] = "KE"
    make_user(email="wanjiru@example.com", phone_number="+254722000111")
    response = send(client, "GET", f"/api/v1/customers?q={quote(typed)}", teller)
    assert [c["email"] for c in response.get_json()["customers"]] == ["wanjiru@example.com"]


def test_customer_search_sorts_customers_by_name(client, teller, make_user):
    for first, last in (("Zoe", "Young"), ("Adam", "Young"), ("Yann", "Abel")):
        make_user(email=f"{first.lower()}@example.com", first_name=first, last_name=last)
    emails = [c["email"] for c in send(client, "GET", "/api/v1/customers", teller)
              .get_json()["customers"]]
    assert emails == ["yann@example.com", "adam@example.com", "zoe@example.com"]


def test_customer_search_lists_customers_only(client, teller, customer):
    emails = [c["email"] for c in send(client, "GET", "/api/v1/customers", teller)
              .get_json()["customers"]]
    assert emails == ["alice@example.com"]


def test_customer_search_treats_wildcards_literally(client, teller, customer):
    response = send(client, "GET", "/api/v1/customers?q=%25", teller)
    assert response.get_json()["customers"] == []


def test_customer_search_refuses_control_characters(client, teller):
    assert_problem(send(client, "GET", "/api/v1/customers?q=%00", teller), 422)


def test_customers_cannot_search(client, customer):
    problem = assert_problem(send(client, "GET", "/api/v1/customers", customer), 403)
    assert "tellers" in problem["detail"]


@pytest.mark.parametrize("operation, amount, expected", [
    ("deposits", "15.00", "65.00"),
    ("withdrawals", "15.00", "35.00"),
])
def test_teller_posts_on_any_customer_account(client, teller, customer, funded_account,
                                              operation, amount, expected):
    account = funded_account(customer, "50.00")
    response = send(client, "POST", f"/api/v1/accounts/{account.account_number}/{operation}",
                    teller, {"amount": amount}, key=new_key())
    assert response.status_code == 201
    assert balance(account) == Decimal(expected)


def test_teller_cannot_post_on_the_banks_own_accounts(client, teller, customer, funded_account):
    funded_account(customer, "1.00")  # creates the vault
    response = send(client, "POST", "/api/v1/accounts/GL-VAULT/withdrawals", teller,
                    {"amount": "1.00"}, key=new_key())
    assert_problem(response, 404)


def test_teller_transfers_only_from_own_accounts(client, teller, customer, make_user,
                                                 funded_account):
    source = funded_account(customer, "50.00")
    target = funded_account(make_user(), "0.00")
    body = {"from_account": source.account_number, "to_account": target.account_number,
            "amount": "5.00"}
    assert_problem(send(client, "POST", "/api/v1/transfers", teller, body, key=new_key()), 404)
    assert balance(source) == Decimal("50.00")

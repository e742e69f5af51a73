"""The customer's pages send as many SQL statements for many rows as for one (no N+1),
and the dashboard's latest activity is the newest legs across all the customer's accounts."""
from decimal import Decimal

from bankapp import ledger
from support.queries import counted_statements

D = Decimal


def statements_for(client, url: str) -> int:
    client.get(url)  # first visit: one-off work (the session's row, caches) is not counted
    with counted_statements() as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def test_dashboard_sends_as_many_statements_for_many_accounts_and_legs_as_for_one(
        customer_client, customer, make_user, funded_account):
    first = funded_account(customer, "500.00")
    theirs = funded_account(make_user("other@example.com"), "50.00")
    ledger.transfer(first, theirs, D("2.00"), "one transfer", customer)
    few = statements_for(customer_client, "/dashboard/")
    for account_type in ("CHECKING", "SAVINGS", "CHECKING"):
        account = funded_account(customer, "100.00", account_type=account_type)
        for i in range(4):
            ledger.transfer(account, first, D("1.00"), f"move {i}", customer)
        ledger.transfer(first, theirs, D("2.00"), "to someone else", customer)
    assert statements_for(customer_client, "/dashboard/") == few


def test_account_history_sends_as_many_statements_for_a_full_page_as_for_one_transfer(
        customer_client, customer, make_user, funded_account):
    account = funded_account(customer, "500.00")
    theirs = funded_account(make_user("other@example.com"), "50.00")
    ledger.transfer(account, theirs, D("1.00"), "payment first", customer)
    one_line = statements_for(customer_client, f"/accounts/{account.account_number}/")
    for i in range(30):
        ledger.transfer(account, theirs, D("1.00"), f"payment {i}", customer)
    full_page = statements_for(customer_client, f"/accounts/{account.account_number}/")
    searched = statements_for(customer_client, f"/accounts/{account.account_number}/?q=payment")
    assert full_page == one_line and searched <= one_line + 1


def test_latest_activity_is_the_newest_legs_across_every_account_of_the_owner(
        app, customer, make_user, funded_account):
    savings = funded_account(customer, "100.00")
    checking = funded_account(customer, "100.00", account_type="CHECKING")
    other = funded_account(make_user("other@example.com"), "100.00")
    for i in range(6):
        ledger.withdraw(savings if i % 2 else checking, D("1.00"), f"item {i}", customer)
    ledger.withdraw(other, D("1.00"), "not theirs", other.owner)
    latest = ledger.latest_activity(customer, limit=4)
    assert [leg.description for leg in latest] == ["item 5", "item 4", "item 3", "item 2"]


def test_latest_activity_of_a_customer_without_accounts_is_empty(app, customer):
    assert ledger.latest_activity(customer) == []

"""The customer's pages send as many SQL statements for many rows as for one (no N+1),
and the dashboard's latest activity is the newest legs across all the customer's accounts."""
from decimal import Decimal

from bankapp import ledger
from support.queries import counted_statements
from support.web import post_form

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


def confirmation_statements(client, source, destination) -> list[str]:
    """The statements of the transfer's confirmation page (after a first visit to it)."""
    post_form(client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "5.00"})
    assert client.get("/accounts/transfer/confirm/").status_code == 200
    with counted_statements() as seen:
        page = client.get("/accounts/transfer/confirm/")
    assert page.status_code == 200 and "5.00" in page.get_data(as_text=True)
    return seen


def test_the_transfer_confirmation_names_another_customer_with_the_accounts_it_reads(
        customer_client, customer, make_user, funded_account):
    # The holder's masked name and the customer's nickname for them come with the two
    # accounts' one query. Beyond what one's own account costs, another customer's asks
    # only whether the number may be shown (bankapp/identity/lookups.py) and the step-up
    # rule's daily limit and today's outgoing total (bankapp/identity/stepup.py).
    source = funded_account(customer, "500.00")
    own = funded_account(customer, "0.00", account_type="CHECKING")
    theirs = funded_account(make_user("bob@example.com", first_name="Bob", last_name="Brown"))
    to_own = len(confirmation_statements(customer_client, source, own))
    to_them = confirmation_statements(customer_client, source, theirs)
    assert len(to_them) == to_own + 3
    assert not [s for s in to_them if s.lstrip().startswith("SELECT payees.nickname")]


def test_the_account_page_reads_its_holds_once_for_both_the_list_and_the_available_balance(
        customer_client, customer, make_user, funded_account):
    from datetime import timedelta

    from bankapp.models import Role, now_utc

    account = funded_account(customer, "500.00")
    teller = make_user("teller@example.com", role=Role.TELLER)
    ledger.place_hold(account, D("120.00"), "Cheque", now_utc() + timedelta(days=2), teller)
    url = f"/accounts/{account.account_number}/"
    customer_client.get(url)
    with counted_statements() as seen:
        page = customer_client.get(url).get_data(as_text=True)
    assert "380.00" in page and "Cheque" in page
    assert len([s for s in seen if "FROM holds" in s]) == 1

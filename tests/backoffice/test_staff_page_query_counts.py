"""The staff pages send as many SQL statements for a full page of rows as for one row
(no query per customer, request, activity line or audit line)."""
from decimal import Decimal

from bankapp import audit, ledger
from bankapp.extensions import db
from support.backoffice import (  # noqa: F401  (fixtures)
    admin,
    admin_client,
    other_admin,
    teller,
    teller_client,
)
from support.queries import counted_statements

D = Decimal


def statements_for(client, url: str) -> int:
    client.get(url)  # first visit: one-off work (caches, the session's row) is not counted
    with counted_statements() as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def okafor(make_user, funded_account, number: int):
    person = make_user(f"okafor{number}@example.com", first_name="Ngozi", last_name="Okafor")
    funded_account(person, "10.00")
    funded_account(person, "20.00", account_type="CHECKING")
    return person


def test_customer_search_sends_as_many_statements_for_many_matches_as_for_one(
        teller_client, make_user, funded_account):
    okafor(make_user, funded_account, 0)
    one = statements_for(teller_client, "/teller/customers/?q=okafor")
    for number in range(1, 8):
        okafor(make_user, funded_account, number)
    page = teller_client.get("/teller/customers/?q=okafor").get_data(as_text=True)
    assert page.count("Ngozi Okafor") == 8
    assert statements_for(teller_client, "/teller/customers/?q=okafor") == one


def test_customer_search_finds_a_customer_by_part_of_an_account_number(
        teller_client, make_user, funded_account):
    person = okafor(make_user, funded_account, 0)
    number = person.accounts[0].account_number
    page = teller_client.get(f"/teller/customers/?q={number[-5:]}").get_data(as_text=True)
    assert "Ngozi Okafor" in page and number in page


def test_customer_page_sends_as_many_statements_for_a_busy_customer_as_for_a_new_one(
        teller_client, customer, make_user, funded_account):
    first = funded_account(customer, "100.00")
    one = statements_for(teller_client, f"/teller/customers/{customer.id}/")
    other = funded_account(make_user("other@example.com"), "10.00")
    for account_type in ("CHECKING", "SAVINGS"):
        account = funded_account(customer, "100.00", account_type=account_type)
        for i in range(5):
            ledger.transfer(account, other if i % 2 else first, D("1.00"), f"move {i}", customer)
    assert statements_for(teller_client, f"/teller/customers/{customer.id}/") == one


def test_approvals_page_sends_as_many_statements_for_many_requests_as_for_one(
        admin_client, teller, make_user, funded_account):
    def held_deposit(number: int):
        person = make_user(f"held{number}@example.com")
        ledger.request_posting("deposit", funded_account(person, "1.00"), D("12000.00"),
                               "Held", teller)

    held_deposit(0)
    one = statements_for(admin_client, "/teller/approvals/")
    for number in range(1, 6):
        held_deposit(number)
    assert statements_for(admin_client, "/teller/approvals/") == one


def test_audit_page_sends_as_many_statements_for_many_actors_as_for_one(
        admin_client, make_user):
    audit.record(audit.Action.LOGIN_FAILURE, actor=make_user("first@example.com"))
    db.session.commit()
    one = statements_for(admin_client, "/admin/audit/")
    for number in range(6):
        audit.record(audit.Action.LOGIN_FAILURE, actor=make_user(f"actor{number}@example.com"))
    db.session.commit()
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert "actor5@example.com" in page
    assert statements_for(admin_client, "/admin/audit/") == one

"""The teller back office over HTTP: who may open what, and what each page does."""
import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import (
    Account,
    AccountStatus,
    Channel,
    JournalEntry,
    PendingPosting,
    PendingStatus,
    Role,
)
from support.backoffice import (  # noqa: F401  (fixtures)
    account,
    admin,
    admin_client,
    audit_rows,
    balance,
    post_with_csrf,
    session_csrf,
    stocked_till,
    teller,
    teller_client,
)
from support.users import log_in_as
from support.web import form_fields, post_form

D = Decimal


def entry_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


# ---------------------------------------------------------------- role matrix


@pytest.fixture
def targets(customer, account, teller, admin):
    """Ids the back-office URLs need: a customer, an account, an entry, a pending request."""
    entry = db.session.scalar(sa.select(JournalEntry))
    pending = ledger.request_posting("deposit", account, D("20000.00"), "", teller).pending
    return {"user": customer.id, "number": account.account_number, "ref": entry.reference,
            "pending": pending.id, "staff": teller.id}


STAFF, ADMIN = "staff", "admin"
URLS = [
    ("GET", "/teller/", STAFF, None),
    ("GET", "/teller/customers/?q=alice", STAFF, None),
    ("GET", "/teller/customers/{user}/", STAFF, None),
    ("POST", "/teller/customers/{user}/verify/", STAFF, {}),
    ("GET", "/teller/accounts/{number}/deposit/", STAFF, None),
    ("POST", "/teller/accounts/{number}/deposit/", STAFF, {"amount": "5.00"}),
    ("GET", "/teller/accounts/{number}/withdraw/", STAFF, None),
    ("POST", "/teller/accounts/{number}/withdraw/", STAFF, {"amount": "5.00"}),
    ("GET", "/teller/accounts/{number}/freeze/", STAFF, None),
    ("POST", "/teller/accounts/{number}/freeze/", STAFF, {"reason": "Fraud"}),
    ("GET", "/teller/accounts/{number}/unfreeze/", STAFF, None),
    ("POST", "/teller/accounts/{number}/unfreeze/", STAFF, {"reason": "Cleared"}),
    ("GET", "/teller/approvals/", STAFF, None),
    ("GET", "/teller/approvals/{pending}/", ADMIN, None),
    ("POST", "/teller/approvals/{pending}/approve/", ADMIN, {}),
    ("POST", "/teller/approvals/{pending}/reject/", ADMIN, {"reason": "No"}),
    ("GET", "/teller/entries/{ref}/", STAFF, None),
    ("POST", "/teller/entries/{ref}/reverse/", ADMIN, {"reason": "Error"}),
    ("GET", "/teller/tills/", ADMIN, None),
    ("GET", "/teller/tills/{staff}/allocate/", ADMIN, None),
    ("POST", "/teller/tills/{staff}/allocate/", ADMIN, {"amount": "5.00"}),
    ("GET", "/teller/tills/{staff}/settle/", ADMIN, None),
    ("POST", "/teller/tills/{staff}/settle/", ADMIN, {"amount": "5.00"}),
    ("GET", "/teller/till/close/", STAFF, None),
    ("POST", "/teller/till/close/", STAFF, {"counted": "0"}),
    ("GET", "/admin/users/", ADMIN, None),
    ("GET", "/admin/users/?q=alice", ADMIN, None),
    ("GET", "/admin/users/{user}/", ADMIN, None),
    ("POST", "/admin/users/{user}/role/", ADMIN, {"role": "teller"}),
    ("POST", "/admin/users/{user}/deactivate/", ADMIN, {}),
    ("POST", "/admin/users/{user}/reactivate/", ADMIN, {}),
    ("GET", "/admin/audit/", ADMIN, None),
    ("GET", "/admin/audit/?action=ledger.deposit", ADMIN, None),
]
ROLES = ["anonymous", "customer", "teller", "admin"]


def expected_outcome(role: str, allowed: str) -> str:
    if role == "anonymous":
        return "login"
    if role == "customer" or (role == "teller" and allowed == ADMIN):
        return "forbidden"
    return "served"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, url, allowed, data", URLS,
                         ids=[f"{m} {u}" for m, u, _, _ in URLS])
def test_role_matrix(app, client, targets, customer, teller, admin, role, method, url,
                     allowed, data):
    users = {"customer": customer, "teller": teller, "admin": admin}
    if role in users:
        log_in_as(client, users[role])
    url = url.format(**targets)
    if method == "GET":
        response = client.get(url)
    else:
        response = post_with_csrf(client, app, url, data)
    outcome = expected_outcome(role, allowed)
    if outcome == "login":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/accounts/login/")
    elif outcome == "forbidden":
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 303), response.get_data(as_text=True)[:500]


def test_customers_do_not_see_the_back_office_links(customer_client):
    page = customer_client.get("/dashboard/").get_data(as_text=True)
    assert "/teller/" not in page and "/admin/" not in page


def test_staff_see_their_navigation_links(admin_client):
    page = admin_client.get("/teller/").get_data(as_text=True)
    assert 'href="/teller/"' in page and 'href="/admin/users/"' in page
    assert 'href="/admin/audit/"' in page


# ---------------------------------------------------------------- desk and search


def test_desk_shows_the_tills_cash_and_todays_totals(teller_client, account, stocked_till):
    post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
              {"amount": "40.00"})
    post_form(teller_client, f"/teller/accounts/{account.account_number}/withdraw/",
              {"amount": "15.00"})
    page = teller_client.get("/teller/").get_data(as_text=True)
    assert re.search(r'id="till-cash">\$1,025.00<', page)
    assert re.search(r'id="total-in">\$40.00<', page)
    assert re.search(r'id="total-out">\$15.00<', page)
    assert page.count(account.account_number) == 2


def test_the_entry_page_shows_the_tills_cash_with_the_desks_sign(teller_client, account,
                                                                 stocked_till):
    posted = post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
                       {"amount": "40.00"})
    entry = teller_client.get(posted.headers["Location"]).get_data(as_text=True)
    assert re.search(r'class="num cash-held">\$1,040.00 <span class="muted">cash held<', entry)
    assert "-$1,040.00" not in entry and "−$1,040.00" not in entry
    desk = teller_client.get("/teller/").get_data(as_text=True)
    assert re.search(r'id="till-cash">\$1,040.00<', desk)


def test_the_tills_page_shows_the_vault_cash_as_cash_held(admin_client, stocked_till):
    from bankapp.ledger import internal_account

    # The test book's vault never took cash in: allocating 1,000.00 leaves it 1,000.00 short.
    assert internal_account().balance == D("1000.00")
    page = admin_client.get("/teller/tills/").get_data(as_text=True)
    assert "cash held \u2212$1,000.00" in page and "credit-positive" not in page


def test_opening_the_desk_creates_no_till(teller_client, teller):
    from bankapp.models import Account

    page = teller_client.get("/teller/")
    assert page.status_code == 200 and f"GL-TILL-{teller.id}" in page.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 0


def test_desk_shows_only_the_tellers_own_postings(teller_client, account, admin, stocked_till):
    ledger.teller_posting("deposit", account, D("7.00"), "", admin)
    page = teller_client.get("/teller/").get_data(as_text=True)
    assert re.search(r'id="total-in">\$0.00<', page)
    assert "No counter postings yet today" in page


@pytest.fixture
def people(make_user, funded_account):
    bob = make_user(email="bob.baker@example.com", first_name="Bob", last_name="Baker",
                    phone_number="+14155550123")
    carol = make_user(email="carol@example.org", first_name="Carol", last_name="Cook",
                      phone_number="+33142685300")
    make_user(email="bob.teller@example.com", role="teller", first_name="Bob")
    return {"bob": bob, "carol": carol, "carol_account": funded_account(carol)}


@pytest.mark.parametrize("query, found", [
    ("BOB.BAK", {"bob"}),
    ("example.org", {"carol"}),
    ("carol", {"carol"}),
    ("baker", {"bob"}),
    ("bob baker", {"bob"}),
    ("415 555", {"bob"}),
    ("+3314268", {"carol"}),
    ("zzz", set()),
    ("%", set()),
])
def test_search_finds_customers_by_partial_email_phone_or_name(teller_client, people, query,
                                                               found):
    page = teller_client.get("/teller/customers/", query_string={"q": query}).get_data(
        as_text=True)
    shown = {name for name in ("bob", "carol") if f"/teller/customers/{people[name].id}/" in page}
    assert shown == found
    assert "bob.teller@" not in page  # staff are not customers


@pytest.mark.parametrize("typed", ["0722 000 111", "0722-000-111", "722000111",
                                   "+254 722 000 111"])
def test_search_finds_a_local_format_phone_number_in_the_banks_region(app, teller_client,
                                                                      make_user, typed):
    app.config["BANK_PHONE_REGION"] = "KE"
    wanjiru = make_user(email="wanjiru@example.com", phone_number="+254722000111")
    page = teller_client.get("/teller/customers/", query_string={"q": typed}).get_data(
        as_text=True)
    assert f"/teller/customers/{wanjiru.id}/" in page


def test_an_unknown_phone_region_refuses_to_start():
    from bankapp import create_app

    with pytest.raises(SystemExit, match="BANK_PHONE_REGION must be an ISO 3166 region"):
        create_app({"TESTING": True, "BANK_PHONE_REGION": "XX"})


def test_search_finds_a_customer_by_partial_account_number(teller_client, people):
    number = people["carol_account"].account_number
    page = teller_client.get("/teller/customers/",
                             query_string={"q": number[3:9].lower()}).get_data(as_text=True)
    assert f"/teller/customers/{people['carol'].id}/" in page


def test_search_lists_a_customer_found_by_name_and_by_account_number_once(
        teller_client, make_user, funded_account):
    # "acc-" is in Dana's name and in both her account numbers.
    dana = make_user(email="dana@example.com", first_name="Dana", last_name="Acc-Smith")
    funded_account(dana), funded_account(dana)
    page = teller_client.get("/teller/customers/", query_string={"q": "acc-"}).get_data(
        as_text=True)
    assert page.count(f'href="/teller/customers/{dana.id}/"') == 1


def test_search_finds_a_customer_without_a_phone_number_by_account_number(
        teller_client, make_user, funded_account):
    # The digits typed are looked for in the phone numbers too: a missing one matches nothing
    # there, and the account number still finds its owner.
    erin = make_user(email="erin@example.com", phone_number=None)
    number = funded_account(erin).account_number
    page = teller_client.get("/teller/customers/", query_string={"q": number}).get_data(
        as_text=True)
    assert f"/teller/customers/{erin.id}/" in page


def test_search_results_are_paginated(teller_client, make_user):
    for n in range(25):
        make_user(email=f"many{n:02d}@example.com", last_name=f"Many{n:02d}")
    first = teller_client.get("/teller/customers/?q=many").get_data(as_text=True)
    second = teller_client.get("/teller/customers/?q=many&page=2").get_data(as_text=True)
    assert len(re.findall(r"many\d\d@", first)) == 20
    assert len(re.findall(r"many\d\d@", second)) == 5
    assert "many24@" in second and "many24@" not in first
    assert "Page 2 of 2" in second and "q=many" in first


def test_customer_page_shows_details_accounts_and_activity(teller_client, customer, account):
    page = teller_client.get(f"/teller/customers/{customer.id}/").get_data(as_text=True)
    assert "alice@example.com" in page and account.account_number in page
    assert "500.00" in page and "Opening deposit" in page and "Verified" in page


def test_customer_page_is_404_for_staff_and_unknown_ids(teller_client, teller):
    assert teller_client.get(f"/teller/customers/{teller.id}/").status_code == 404
    assert teller_client.get("/teller/customers/9999/").status_code == 404


def test_teller_verifies_a_customers_identity(app, teller_client, make_user):
    person = make_user(verified=False)
    response = post_with_csrf(teller_client, app, f"/teller/customers/{person.id}/verify/")
    assert response.status_code == 303
    db.session.refresh(person)
    assert person.is_verified


def test_verification_needs_a_csrf_token(teller_client, make_user):
    person = make_user(verified=False)
    assert teller_client.post(f"/teller/customers/{person.id}/verify/").status_code == 400
    db.session.refresh(person)
    assert not person.is_verified


# ---------------------------------------------------------------- cash at the counter


def test_counter_deposit_posts_through_the_till(teller_client, teller, account, stocked_till):
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
                         {"amount": "1,250.50", "description": "Cash"})
    assert response.status_code == 303 and "/teller/entries/" in response.headers["Location"]
    entry = db.session.scalars(sa.select(JournalEntry).order_by(JournalEntry.id.desc())).first()
    assert entry.channel == Channel.TELLER and entry.actor_id == teller.id
    assert balance(account) == D("1750.50")
    assert ledger.cash_held(stocked_till) == D("2250.50")
    receipt = teller_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Deposit posted" in receipt and "1,250.50" in receipt


@pytest.mark.parametrize("amount, message", [
    ("", "Enter an amount."),
    ("abc", "Enter an amount such as 12.50"),
    ("10.005", "Use at most two decimal places."),
    ("sNaN", "Enter an amount such as 12.50"),
    ("-5", "The amount must be greater than zero."),
    ("0", "The amount must be greater than zero."),
    ("1e3", "Enter an amount such as 12.50"),
    ("2,000,000.00", "per-transaction limit"),
])
def test_counter_form_shows_amount_errors_inline(teller_client, account, stocked_till, amount,
                                                 message):
    entries = entry_count()
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
                         {"amount": amount})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert entry_count() == entries


def test_a_resubmitted_counter_form_posts_once_and_shows_the_first_result(
        teller_client, account, stocked_till):
    url = f"/teller/accounts/{account.account_number}/deposit/"
    fields = form_fields(teller_client.get(url).get_data(as_text=True))
    assert len(fields["idempotency_key"]) == 32
    fields["amount"] = "25.00"
    first = teller_client.post(url, data=fields)
    again = teller_client.post(url, data=fields)
    assert again.headers["Location"] == first.headers["Location"]
    assert balance(account) == D("525.00")
    assert "already submitted" in teller_client.get(again.headers["Location"]).get_data(
        as_text=True)


def test_a_fresh_form_gets_a_fresh_key(teller_client, account):
    url = f"/teller/accounts/{account.account_number}/deposit/"
    keys = {form_fields(teller_client.get(url).get_data(as_text=True))["idempotency_key"]
            for _ in range(2)}
    assert len(keys) == 2


def test_counter_withdrawal_beyond_the_tills_cash_is_refused_inline(teller_client, account):
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/withdraw/",
                         {"amount": "100.00"})
    assert response.status_code == 200
    assert "till does not hold enough cash" in response.get_data(as_text=True)
    assert balance(account) == D("500.00")


def test_counter_withdrawal_beyond_the_balance_is_refused_inline(teller_client, account,
                                                                 stocked_till):
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/withdraw/",
                         {"amount": "500.01"})
    assert response.status_code == 200 and "Insufficient funds" in response.get_data(
        as_text=True)


def test_a_frozen_account_refuses_counter_postings(teller_client, teller, account,
                                                   stocked_till):
    ledger.freeze_account(account, "Court order", teller)
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
                         {"amount": "5.00"})
    assert response.status_code == 200 and "frozen" in response.get_data(as_text=True)
    assert balance(account) == D("500.00")


def test_unknown_account_is_404(teller_client):
    assert teller_client.get("/teller/accounts/ACC-000000000/deposit/").status_code == 404
    assert teller_client.get("/teller/accounts/GL-VAULT/deposit/").status_code == 404


def test_account_numbers_and_entry_references_are_found_as_typed(teller_client, account):
    reference = db.session.scalar(sa.select(JournalEntry.reference))
    number = account.account_number
    assert teller_client.get(f"/teller/accounts/{number.lower()}/holds/").status_code == 200
    assert teller_client.get(f"/teller/accounts/{number}/freeze/").status_code == 200
    assert teller_client.get(f"/teller/entries/{reference.upper()}/").status_code == 200


@pytest.mark.parametrize("method, url", [
    ("GET", "/teller/entries/0123456789abcdef0123456789abcdef/"),
    ("POST", "/teller/entries/0123456789abcdef0123456789abcdef/reverse/"),
    ("GET", "/teller/accounts/{till}/freeze/"),
    ("GET", "/teller/accounts/GL-VAULT/holds/"),
    ("POST", "/teller/customers/{staff}/verify/"),
    ("POST", "/teller/holds/999999/release/"),
    ("POST", "/teller/approvals/999999/approve/"),
    ("POST", "/teller/approvals/999999/reject/"),
    ("GET", "/teller/tills/{former}/allocate/"),
])
def test_what_a_back_office_page_cannot_act_on_is_404(app, admin_client, admin, teller, make_user,
                                                      method, url):
    """Unknown entries, holds and requests; the bank's own accounts; staff on a customer's
    page; cash for someone no longer staff, even with a till."""
    former = make_user(role=Role.TELLER)
    ledger.till_for(former)
    former.role = Role.CUSTOMER
    db.session.commit()
    url = url.format(till=ledger.till_number(former), staff=teller.id, former=former.id)
    response = (admin_client.get(url) if method == "GET"
                else post_with_csrf(admin_client, app, url, {"reason": "Checked"}))
    assert response.status_code == 404


# ---------------------------------------------------------------- maker-checker


def test_a_large_counter_posting_waits_for_approval(teller_client, account, stocked_till):
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
                         {"amount": "10,000.01"})
    assert response.headers["Location"] == "/teller/approvals/"
    page = teller_client.get("/teller/approvals/").get_data(as_text=True)
    assert "No money has moved yet" in page and "10,000.01" in page
    assert balance(account) == D("500.00")


def test_exactly_the_threshold_posts_at_the_counter(teller_client, account, stocked_till):
    post_form(teller_client, f"/teller/accounts/{account.account_number}/deposit/",
              {"amount": "10,000.00"})
    assert balance(account) == D("10500.00")


def test_a_teller_sees_only_their_own_requests(client, teller, make_user, account):
    other = make_user(role="teller", email="other.teller@example.com")
    ledger.request_posting("deposit", account, D("11111.11"), "", other)
    ledger.request_posting("deposit", account, D("22222.22"), "", teller)
    log_in_as(client, teller)
    page = client.get("/teller/approvals/").get_data(as_text=True)
    assert "22,222.22" in page and "11,111.11" not in page
    assert "Approve" not in page


def test_approvals_name_the_customer(admin_client, teller, account):
    ledger.request_posting("deposit", account, D("12000.00"), "", teller)
    page = admin_client.get("/teller/approvals/").get_data(as_text=True)
    assert "Alice Archer" in page and account.account_number in page


def test_approving_from_the_list_moves_no_money_without_the_review_page(app, admin_client,
                                                                         teller, account):
    pending = ledger.request_posting("deposit", account, D("15000.00"), "", teller).pending
    page = admin_client.get("/teller/approvals/").get_data(as_text=True)
    assert f"/teller/approvals/{pending.id}/approve/" not in page
    response = post_with_csrf(admin_client, app, f"/teller/approvals/{pending.id}/approve/")
    assert response.headers["Location"].endswith(f"/teller/approvals/{pending.id}/")
    assert balance(account) == D("500.00")
    flashed = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Review the request before approving it: nothing was posted." in flashed


def test_the_review_page_names_the_customer_and_the_amount(admin_client, teller, account):
    pending = ledger.request_posting("deposit", account, D("15000.00"), "", teller).pending
    page = admin_client.get(f"/teller/approvals/{pending.id}/").get_data(as_text=True)
    assert re.search(r'id="review-amount">Deposit \$15,000.00<', page)
    assert "Alice Archer" in page and "Approve and post" in page


def test_admin_approves_a_request_and_it_posts(app, admin_client, teller, account):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", teller).pending
    review = f"/teller/approvals/{pending.id}/"
    fields = form_fields(admin_client.get(review).get_data(as_text=True))
    response = admin_client.post(f"{review}approve/", data=fields)
    assert response.status_code == 303
    assert balance(account) == D("12500.00")
    db.session.refresh(pending)
    assert pending.status == PendingStatus.APPROVED


def test_the_admin_desk_counts_the_requests_waiting_for_their_decision(admin_client, admin,
                                                                      teller, account):
    ledger.request_posting("deposit", account, D("12000.00"), "", teller)
    ledger.request_posting("deposit", account, D("13000.00"), "", teller)
    ledger.request_posting("deposit", account, D("14000.00"), "", admin)  # not theirs to decide
    page = admin_client.get("/teller/").get_data(as_text=True)
    assert re.search(r'id="approvals-waiting">\s*<h2>Approvals</h2>\s*<p class="balance">2<', page)
    assert "requests wait for your decision" in page
    assert re.search(r'id="approvals-waiting-count">2<', admin_client.get(
        "/admin/users/").get_data(as_text=True))


def test_the_teller_desk_counts_the_tellers_own_pending_requests(teller_client, teller,
                                                                 account):
    ledger.request_posting("deposit", account, D("12000.00"), "", teller)
    page = teller_client.get("/teller/").get_data(as_text=True)
    assert re.search(r'<p class="balance">1</p>\s*<p class="muted">of my requests is pending', page)


def test_no_count_shows_when_nothing_waits(admin_client):
    assert "approvals-waiting-count" not in admin_client.get("/teller/").get_data(as_text=True)


def test_an_admin_cannot_approve_their_own_request(app, admin_client, admin, account):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", admin).pending
    page = admin_client.get("/teller/approvals/").get_data(as_text=True)
    assert "another admin must decide it" in page
    response = post_with_csrf(admin_client, app, f"/teller/approvals/{pending.id}/approve/",
                              {"amount": "12000.00"})
    assert response.status_code == 200
    assert "cannot decide your own request" in response.get_data(as_text=True)
    assert balance(account) == D("500.00")


def test_a_teller_cannot_approve_their_own_request(app, teller_client, teller, account):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", teller).pending
    response = post_with_csrf(teller_client, app, f"/teller/approvals/{pending.id}/approve/")
    assert response.status_code == 403
    db.session.refresh(pending)
    assert pending.status == PendingStatus.PENDING and balance(account) == D("500.00")


def test_rejection_without_a_reason_is_shown_inline(app, admin_client, teller, account):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", teller).pending
    response = post_with_csrf(admin_client, app, f"/teller/approvals/{pending.id}/reject/",
                              {"reason": ""})
    assert response.status_code == 200 and "Give a reason." in response.get_data(as_text=True)
    db.session.refresh(pending)
    assert pending.status == PendingStatus.PENDING


def test_admin_rejects_a_request(app, admin_client, teller, account):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", teller).pending
    post_with_csrf(admin_client, app, f"/teller/approvals/{pending.id}/reject/",
                   {"reason": "Customer left"})
    db.session.refresh(pending)
    assert pending.status == PendingStatus.REJECTED and balance(account) == D("500.00")
    assert "Customer left" in admin_client.get("/teller/approvals/").get_data(as_text=True)


# ---------------------------------------------------------------- CSRF on the checker's buttons


def book_state() -> dict:
    """Everything an approval, a rejection or a reversal would change."""
    return {
        "balances": dict(db.session.execute(
            sa.select(Account.account_number, Account.balance)).all()),
        "entries": entry_count(),
        "pending": dict(db.session.execute(
            sa.select(PendingPosting.id, PendingPosting.status)).all()),
        # The refusal's own security event (bankapp/audit/events.py) is not a change of these.
        "audit": [row.id for row in audit_rows() if not row.action.startswith("security.")],
    }


def forged_token(app, token_kind: str) -> dict:
    """The form data a cross-site page could send: no token, junk, or another session's."""
    if token_kind == "missing":
        return {}
    if token_kind == "junk":
        return {"csrf_token": "not-a-token"}
    return {"csrf_token": session_csrf(app.test_client(), app)}


TOKEN_KINDS = ["missing", "junk", "another-session"]


@pytest.mark.parametrize("token_kind", TOKEN_KINDS)
def test_approving_without_a_valid_csrf_token_is_refused_and_posts_nothing(
        app, admin_client, teller, account, token_kind):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", teller).pending
    before = book_state()
    response = admin_client.post(f"/teller/approvals/{pending.id}/approve/",
                                 data=forged_token(app, token_kind))
    assert response.status_code == 400
    assert book_state() == before
    db.session.refresh(pending)
    assert pending.status == PendingStatus.PENDING and balance(account) == D("500.00")


@pytest.mark.parametrize("token_kind", TOKEN_KINDS)
def test_rejecting_without_a_valid_csrf_token_is_refused_and_decides_nothing(
        app, admin_client, teller, account, token_kind):
    pending = ledger.request_posting("deposit", account, D("12000.00"), "", teller).pending
    before = book_state()
    response = admin_client.post(f"/teller/approvals/{pending.id}/reject/",
                                 data={**forged_token(app, token_kind),
                                       "reason": "Customer left"})
    assert response.status_code == 400
    assert book_state() == before
    db.session.refresh(pending)
    assert pending.status == PendingStatus.PENDING and pending.decided_by_id is None


@pytest.mark.parametrize("token_kind", TOKEN_KINDS)
def test_reversing_without_a_valid_csrf_token_is_refused_and_posts_nothing(
        app, admin_client, customer, account, token_kind):
    original = ledger.deposit(account, D("40.00"), "Twice", customer).entry
    before = book_state()
    response = admin_client.post(f"/teller/entries/{original.reference}/reverse/",
                                 data={**forged_token(app, token_kind),
                                       "reason": "Posted twice"})
    assert response.status_code == 400
    assert book_state() == before
    assert ledger.reversal_of(original) is None and balance(account) == D("540.00")
    assert audit_rows("ledger.reversal") == []


# ---------------------------------------------------------------- freezes and reversals


def test_freezing_needs_a_reason_shown_inline(teller_client, account):
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/freeze/",
                         {"reason": "  "})
    assert response.status_code == 200 and "Give a reason." in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.status == AccountStatus.ACTIVE


def test_teller_freezes_and_unfreezes_an_account(teller_client, customer, account):
    url = f"/teller/accounts/{account.account_number}/"
    response = post_form(teller_client, url + "freeze/", {"reason": "Lost card"})
    assert response.headers["Location"] == f"/teller/customers/{customer.id}/"
    db.session.refresh(account)
    assert account.status == AccountStatus.FROZEN and account.status_reason == "Lost card"
    assert "Lost card" in teller_client.get(response.headers["Location"]).get_data(as_text=True)
    post_form(teller_client, url + "unfreeze/", {"reason": "Found it"})
    db.session.refresh(account)
    assert account.status == AccountStatus.ACTIVE


def test_admin_reverses_an_entry_from_its_page(admin_client, customer, account):
    original = ledger.deposit(account, D("40.00"), "Twice", customer).entry
    url = f"/teller/entries/{original.reference}/"
    fields = form_fields(admin_client.get(url).get_data(as_text=True))
    response = admin_client.post(url + "reverse/", data={**fields, "reason": "Posted twice"})
    assert response.status_code == 303
    assert balance(account) == D("500.00")
    assert "Reversal of" in admin_client.get(response.headers["Location"]).get_data(
        as_text=True)


def test_a_reversal_that_would_overdraw_is_refused_inline(app, admin_client, customer, account):
    original = ledger.deposit(account, D("40.00"), "", customer).entry
    ledger.withdraw(account, D("530.00"), "", customer)
    response = post_with_csrf(admin_client, app,
                              f"/teller/entries/{original.reference}/reverse/",
                              {"reason": "Bounced"})
    assert response.status_code == 200
    assert "Insufficient funds" in response.get_data(as_text=True)
    assert balance(account) == D("10.00") and ledger.reversal_of(original) is None


def test_tellers_do_not_see_the_reversal_form(teller_client, account):
    entry = db.session.scalar(sa.select(JournalEntry))
    page = teller_client.get(f"/teller/entries/{entry.reference}/").get_data(as_text=True)
    assert "Reverse entry" not in page and entry.reference in page


# ---------------------------------------------------------------- tills


def test_admin_allocates_and_settles_a_tellers_cash(admin_client, teller):
    till_url = f"/teller/tills/{teller.id}/"
    assert post_form(admin_client, till_url + "allocate/", {"amount": "300.00"}
                     ).status_code == 303
    assert post_form(admin_client, till_url + "settle/", {"amount": "120.00"}).status_code == 303
    assert ledger.cash_held(ledger.till_for(teller)) == D("180.00")
    assert "180.00" in admin_client.get("/teller/tills/").get_data(as_text=True)


def test_settling_more_than_the_till_holds_is_refused_inline(admin_client, teller):
    response = post_form(admin_client, f"/teller/tills/{teller.id}/settle/", {"amount": "1.00"})
    assert response.status_code == 200
    assert "till does not hold enough cash" in response.get_data(as_text=True)


def account_count() -> int:
    from bankapp.models import Account

    return db.session.scalar(sa.select(sa.func.count(Account.id)))


@pytest.mark.parametrize("page", ["allocate", "settle"])
def test_opening_a_cash_page_creates_no_till(admin_client, teller, page):
    response = admin_client.get(f"/teller/tills/{teller.id}/{page}/")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Till GL-TILL-{teller.id} holds $0.00" in text
    assert account_count() == 0


def test_opening_the_close_shift_page_creates_no_till(teller_client, teller):
    response = teller_client.get("/teller/till/close/")
    assert response.status_code == 200
    assert re.search(r'id="expected-cash">\$0.00<', response.get_data(as_text=True))
    assert account_count() == 0


def test_the_first_allocation_opens_the_till(admin_client, teller):
    response = post_form(admin_client, f"/teller/tills/{teller.id}/allocate/",
                         {"amount": "75.00"})
    assert response.status_code == 303
    assert ledger.cash_held(ledger.find_till(teller)) == D("75.00")


def test_a_refused_allocation_to_a_deactivated_teller_opens_no_till(admin_client, teller):
    teller.is_active = False
    db.session.commit()
    response = post_form(admin_client, f"/teller/tills/{teller.id}/allocate/",
                         {"amount": "50.00"})
    assert response.status_code == 200 and "is deactivated" in response.get_data(as_text=True)
    assert account_count() == 0


def test_allocating_cash_to_a_deactivated_teller_is_refused_inline(admin_client, teller,
                                                                   stocked_till):
    teller.is_active = False
    db.session.commit()
    response = post_form(admin_client, f"/teller/tills/{teller.id}/allocate/",
                         {"amount": "50.00"})
    assert response.status_code == 200
    assert ("teller@example.com is deactivated: their till takes no new cash"
            in response.get_data(as_text=True))
    assert ledger.cash_held(stocked_till) == D("1000.00")


def test_admin_settles_the_cash_of_a_deactivated_teller(admin_client, teller, stocked_till):
    teller.is_active = False
    db.session.commit()
    response = post_form(admin_client, f"/teller/tills/{teller.id}/settle/",
                         {"amount": "1000.00"})
    assert response.status_code == 303
    assert ledger.cash_held(stocked_till) == D("0.00")


def test_the_till_of_a_demoted_teller_still_holding_cash_is_listed(admin_client, teller,
                                                                    stocked_till):
    teller.role = Role.CUSTOMER
    db.session.commit()
    page = admin_client.get("/teller/tills/").get_data(as_text=True)
    assert stocked_till.account_number in page and "1,000.00" in page
    assert f"/teller/tills/{teller.id}/settle/" in page
    assert f"/teller/tills/{teller.id}/allocate/" not in page  # it takes no new cash


def test_admin_settles_the_cash_of_a_demoted_teller(admin_client, teller, stocked_till):
    teller.role = Role.CUSTOMER
    db.session.commit()
    assert admin_client.get(f"/teller/tills/{teller.id}/settle/").status_code == 200
    response = post_form(admin_client, f"/teller/tills/{teller.id}/settle/",
                         {"amount": "1000.00"})
    assert response.status_code == 303
    assert ledger.cash_held(stocked_till) == D("0.00")
    assert ledger.reconcile().clean


def test_a_customer_who_never_held_a_till_has_no_settle_page(admin_client, customer):
    assert admin_client.get(f"/teller/tills/{customer.id}/settle/").status_code == 404


def test_teller_closes_a_short_shift(teller_client, stocked_till):
    page = teller_client.get("/teller/till/close/").get_data(as_text=True)
    assert re.search(r'id="expected-cash">\$1,000.00<', page)
    response = post_form(teller_client, "/teller/till/close/", {"counted": "995.00"})
    assert response.status_code == 303
    desk = teller_client.get("/teller/").get_data(as_text=True)
    assert "cash short by $5.00" in desk
    assert balance(stocked_till) == D("0.00")
    assert ledger.reconcile().clean


@pytest.mark.parametrize("counted, message", [
    ("", "Enter an amount."), ("-1", "greater than zero"), ("9.999", "two decimal places")])
def test_close_shift_shows_count_errors_inline(teller_client, stocked_till, counted, message):
    response = post_form(teller_client, "/teller/till/close/", {"counted": counted})
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert ledger.cash_held(stocked_till) == D("1000.00")


def test_allocating_to_a_customer_is_404(admin_client, customer):
    assert admin_client.get(f"/teller/tills/{customer.id}/allocate/").status_code == 404


# ---------------------------------------------------------------- templates


def test_templates_have_no_inline_script_or_style():
    root = Path(__file__).resolve().parents[2] / "bankapp" / "templates"
    for folder in ("teller", "admin"):
        for template in (root / folder).glob("*.html"):
            text = template.read_text()
            assert "<script" not in text and "<style" not in text, template
            assert not re.search(r"\sstyle=", text), template
            assert not re.search(r"\son[a-z]+=", text), template


def test_pending_request_never_moves_money_until_approved(account, teller):
    before = entry_count()
    ledger.request_posting("withdrawal", account, D("400.00"), "", teller)
    assert entry_count() == before
    assert db.session.scalar(sa.select(PendingPosting.status)) == PendingStatus.PENDING

"""The customer's pages: dashboard, opening accounts, deposits, withdrawals and transfers."""
import re
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.audit import Action
from bankapp.models import (Account, AccountStatus, AuditEvent, Hold, JournalEntry, Role,
                            Transaction, now_utc)
from support.users import log_in_as
from support.web import csrf_token, form_fields, post_form

D = Decimal


def balance_of(account: Account) -> Decimal:
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account.id))


def entry_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


def text(response) -> str:
    return response.get_data(as_text=True)


def send_transfer(client, source, destination, amount: str):
    """Fill in the transfer form, then confirm it as shown; the confirmation's answer."""
    confirm = post_form(client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": amount}, follow_redirects=True)
    return client.post("/accounts/transfer/", data=form_fields(text(confirm)))


# ---------------------------------------------------------------- dashboard and opening

def test_dashboard_lists_accounts_with_balances_and_total(customer_client, customer,
                                                          funded_account):
    a = funded_account(customer, "1200.50")
    b = funded_account(customer, "99.50", account_type="CHECKING")
    page = text(customer_client.get("/dashboard/"))
    assert a.account_number in page and b.account_number in page
    assert "1,200.50" in page and "1,300.00" in page
    assert "Opening deposit" in page


def test_customer_opens_an_account_from_the_dashboard(customer_client, customer):
    response = post_form(customer_client, "/accounts/open/", {"account_type": "CHECKING"})
    assert response.status_code == 302
    accounts = db.session.scalars(sa.select(Account).where(Account.owner_id == customer.id)).all()
    assert [a.account_type for a in accounts] == ["CHECKING"]
    assert response.headers["Location"].endswith(f"/accounts/{accounts[0].account_number}/")


def test_opening_an_internal_account_type_is_refused(customer_client, customer):
    response = post_form(customer_client, "/accounts/open/", {"account_type": "VAULT"})
    assert response.status_code == 200 and "Not a valid choice" in text(response)
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 0


def test_a_customer_cannot_hold_more_open_accounts_than_the_bank_allows(app, customer_client,
                                                                       customer):
    app.config["MAX_OPEN_ACCOUNTS"] = 2
    for _ in range(2):
        post_form(customer_client, "/accounts/open/", {"account_type": "SAVINGS"})
    response = post_form(customer_client, "/accounts/open/", {"account_type": "SAVINGS"})
    assert response.status_code == 422
    assert "You already have 2 open accounts" in text(response)
    assert len(customer.accounts) == 2


def test_a_closed_account_leaves_room_for_a_new_one(app, customer_client, customer,
                                                    funded_account):
    app.config["MAX_OPEN_ACCOUNTS"] = 1
    closed = funded_account(customer, "0.00")
    closed.status = AccountStatus.CLOSED
    db.session.commit()
    response = post_form(customer_client, "/accounts/open/", {"account_type": "SAVINGS"})
    assert response.status_code == 302
    assert len(customer.accounts) == 2


def test_open_account_without_csrf_token_is_refused(customer_client):
    response = customer_client.post("/accounts/open/", data={"account_type": "SAVINGS"})
    assert response.status_code == 400


# ---------------------------------------------------------------- account page

def test_account_page_shows_balance_and_history_newest_first(customer_client, customer,
                                                             funded_account):
    account = funded_account(customer, "100.00")
    ledger.withdraw(account, D("25.00"), "Groceries", customer)
    page = text(customer_client.get(f"/accounts/{account.account_number}/"))
    assert "75.00" in page
    assert page.index("Groceries") < page.index("Opening deposit")
    assert "−$25.00" in page and "+$100.00" in page


def test_history_is_paginated_25_a_page(customer_client, customer, funded_account):
    account = funded_account(customer, "100.00")
    for i in range(30):
        ledger.withdraw(account, D("1.00"), f"item {i:02d}", customer)
    first = text(customer_client.get(f"/accounts/{account.account_number}/"))
    second = text(customer_client.get(f"/accounts/{account.account_number}/?page=2"))
    assert "item 29" in first and "item 05" in first and "item 04" not in first
    assert "item 04" in second and "Opening deposit" in second and "Page 2 of 2" in second


def test_history_times_are_shown_in_the_bank_timezone(app, customer_client, customer,
                                                      funded_account):
    app.config["BANK_TIMEZONE"] = "Asia/Tokyo"
    account = funded_account(customer, "1.00")
    leg = db.session.scalar(sa.select(Transaction).where(Transaction.account_id == account.id))
    from zoneinfo import ZoneInfo
    tokyo = leg.timestamp.astimezone(ZoneInfo("Asia/Tokyo"))
    local = f"{tokyo:%b} {tokyo.day}, {tokyo.year}, {tokyo:%H:%M}"  # English medium date
    assert local in text(customer_client.get(f"/accounts/{account.account_number}/"))


@pytest.mark.parametrize("path", ["/accounts/{n}/", "/accounts/{n}/deposit/",
                                  "/accounts/{n}/withdraw/"])
def test_someone_elses_account_is_not_found(customer_client, make_user, funded_account, path):
    bob = make_user(email="bob@example.com")
    bobs = funded_account(bob, "10.00")
    assert customer_client.get(path.format(n=bobs.account_number)).status_code == 404
    assert customer_client.get(path.format(n="ACC-000000000")).status_code == 404


def test_posting_to_someone_elses_account_is_not_found(customer_client, make_user,
                                                       funded_account, customer):
    own = funded_account(customer)
    bobs = funded_account(make_user(), "10.00")
    fields = form_fields(text(customer_client.get(f"/accounts/{own.account_number}/withdraw/")))
    response = customer_client.post(f"/accounts/{bobs.account_number}/withdraw/",
                                    data={**fields, "amount": "5.00"})
    assert response.status_code == 404 and balance_of(bobs) == D("10.00")


def test_frozen_account_shows_the_reason(customer_client, customer, funded_account):
    account = funded_account(customer, "10.00")
    account.status, account.status_reason = AccountStatus.FROZEN, "Suspected fraud — call us"
    db.session.commit()
    page = text(customer_client.get(f"/accounts/{account.account_number}/"))
    assert "frozen" in page and "Suspected fraud — call us" in page


def test_pages_with_account_data_are_not_cached(customer_client, customer, funded_account):
    account = funded_account(customer)
    response = customer_client.get(f"/accounts/{account.account_number}/")
    assert response.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- deposits and withdrawals

def test_deposit_form_posts_and_redirects_to_the_account(customer_client, customer,
                                                         funded_account):
    account = funded_account(customer)
    url = f"/accounts/{account.account_number}/deposit/"
    response = post_form(customer_client, url, {"amount": "1,234.50", "description": "Salary"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/accounts/{account.account_number}/")
    assert balance_of(account) == D("1234.50")
    page = text(customer_client.get(response.headers["Location"]))
    assert "Deposit of $1,234.50 posted" in page and "Salary" in page


def test_without_self_deposits_a_customer_has_no_deposit_page_or_link(
        app, customer_client, customer, funded_account):
    app.config["CUSTOMER_SELF_DEPOSITS"] = False
    account = funded_account(customer, "5.00")
    url = f"/accounts/{account.account_number}/deposit/"
    assert customer_client.get(url).status_code == 404
    token = csrf_token(customer_client, f"/accounts/{account.account_number}/withdraw/")
    assert customer_client.post(url, data={"amount": "1000.00",
                                           "csrf_token": token}).status_code == 404
    assert balance_of(account) == D("5.00") and entry_count() == 1
    for page in ("/dashboard/", f"/accounts/{account.account_number}/"):
        assert url not in text(customer_client.get(page))
    assert customer_client.get(f"/accounts/{account.account_number}/withdraw/").status_code == 200


@pytest.mark.parametrize("amount, message", [
    ("", "Enter an amount"),
    ("0", "greater than zero"),
    ("-5", "greater than zero"),
    ("10.005", "two decimal places"),
    ("NaN", "such as 12.50"),
    ("sNaN", "such as 12.50"),
    ("Infinity", "such as 12.50"),
    ("1e3", "such as 12.50"),
    ("ten", "such as 12.50"),
    ("١٢", "such as 12.50"),
    ("1000000.01", "per-transaction limit"),
])
def test_deposit_form_refuses_bad_amounts_and_changes_nothing(customer_client, customer,
                                                              funded_account, amount, message):
    account = funded_account(customer, "5.00")
    response = post_form(customer_client, f"/accounts/{account.account_number}/deposit/",
                         {"amount": amount})
    assert response.status_code == 200
    assert message in text(response)
    assert balance_of(account) == D("5.00") and entry_count() == 1


def test_typed_amount_is_kept_after_an_error(customer_client, customer, funded_account):
    account = funded_account(customer)
    response = post_form(customer_client, f"/accounts/{account.account_number}/deposit/",
                         {"amount": "10.005", "description": "keep me"})
    assert 'value="10.005"' in text(response) and 'value="keep me"' in text(response)


def test_withdraw_form_cannot_overdraw(customer_client, customer, funded_account):
    account = funded_account(customer, "20.00")
    response = post_form(customer_client, f"/accounts/{account.account_number}/withdraw/",
                         {"amount": "20.01"})
    assert response.status_code == 200 and "Insufficient funds" in text(response)
    assert balance_of(account) == D("20.00")


def test_withdraw_from_a_frozen_account_is_refused_with_the_reason(customer_client, customer,
                                                                   funded_account):
    account = funded_account(customer, "20.00")
    account.status, account.status_reason = AccountStatus.FROZEN, "court order"
    db.session.commit()
    response = post_form(customer_client, f"/accounts/{account.account_number}/withdraw/",
                         {"amount": "1.00"})
    assert response.status_code == 200
    assert "frozen" in text(response) and "court order" in text(response)
    assert balance_of(account) == D("20.00")


def test_double_submitted_form_posts_once(customer_client, customer, funded_account):
    account = funded_account(customer, "100.00")
    url = f"/accounts/{account.account_number}/withdraw/"
    fields = form_fields(text(customer_client.get(url)))
    first = customer_client.post(url, data={**fields, "amount": "10.00"})
    second = customer_client.post(url, data={**fields, "amount": "10.00"})
    assert first.status_code == second.status_code == 302
    assert balance_of(account) == D("90.00") and entry_count() == 2
    assert "already submitted" in text(customer_client.get(second.headers["Location"]))


def test_each_form_shown_gets_a_new_key(customer_client, customer, funded_account):
    account = funded_account(customer, "100.00")
    url = f"/accounts/{account.account_number}/withdraw/"
    post_form(customer_client, url, {"amount": "10.00"})
    post_form(customer_client, url, {"amount": "10.00"})
    assert balance_of(account) == D("80.00")


# ---------------------------------------------------------------- transfers

def test_transfer_asks_for_confirmation_with_a_masked_payee(customer_client, customer,
                                                            make_user, funded_account):
    source = funded_account(customer, "100.00")
    bob = make_user(first_name="Bob", last_name="Brown")
    destination = funded_account(bob)
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "40", "description": "Dinner"}, follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and "Confirm the transfer" in page
    assert "B** B****" in page and "Bob" not in page and "40.00" in page
    assert balance_of(source) == D("100.00")


def test_confirmed_transfer_moves_the_money(customer_client, customer, make_user,
                                            funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "40", "description": "Dinner"}, follow_redirects=True)
    fields = form_fields(text(confirm))
    assert fields["confirmed"] == "yes"
    response = customer_client.post("/accounts/transfer/", data=fields)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/accounts/{source.account_number}/")
    assert (balance_of(source), balance_of(destination)) == (D("60.00"), D("40.00"))
    again = customer_client.post("/accounts/transfer/", data=fields)
    assert again.status_code == 303 and balance_of(source) == D("60.00")


def test_transfer_form_redirects_to_a_confirmation_page_that_reloads_without_resending(
        customer_client, customer, make_user, funded_account):
    """Post/Redirect/Get: the checked form answers 303 to the confirmation page, a GET, so
    reloading it (or coming Back to it) sends no form again."""
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user(first_name="Bob", last_name="Brown"))
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "40", "description": "Dinner"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/accounts/transfer/confirm/")
    for _ in range(2):
        page = customer_client.get(response.headers["Location"])
        assert page.status_code == 200 and "Confirm the transfer" in text(page)
        assert "B** B****" in text(page) and "Dinner" in text(page)
    assert balance_of(source) == D("100.00")


def test_confirmed_transfer_answers_see_other_to_a_page_that_reloads_without_posting(
        customer_client, customer, make_user, funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user(first_name="Bob", last_name="Brown"))
    sent = send_transfer(customer_client, source, destination, "40")
    assert sent.status_code == 303
    outcome = sent.headers["Location"]
    assert outcome.endswith(f"/accounts/{source.account_number}/")
    assert "$40.00 sent to B** B****." in text(customer_client.get(outcome))
    entries = entry_count()
    assert customer_client.get(outcome).status_code == 200  # a reload
    assert entry_count() == entries and balance_of(source) == D("60.00")


def test_back_to_the_confirmation_page_after_sending_shows_the_form_not_the_transfer(
        customer_client, customer, make_user, funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    send_transfer(customer_client, source, destination, "40")
    back = customer_client.get("/accounts/transfer/confirm/")
    assert back.status_code == 303 and back.headers["Location"].endswith("/accounts/transfer/")
    assert balance_of(source) == D("60.00")


def test_confirmed_transfer_flashes_its_amount_and_payee_without_the_reference(
        customer_client, customer, make_user, funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user(first_name="Bob", last_name="Brown"))
    send_transfer(customer_client, source, destination, "40")
    reference = db.session.scalar(sa.select(JournalEntry.reference)
                                  .order_by(JournalEntry.id.desc()).limit(1))
    page = text(customer_client.get(f"/accounts/{source.account_number}/"))
    assert '<p class="flash flash-success">$40.00 sent to B** B****.</p>' in page
    assert reference not in page


def test_confirmed_transfer_reads_nothing_back_after_its_commit(customer_client, customer,
                                                                make_user, funded_account):
    """The redirect and the flash use what the request already holds: after the COMMIT no
    statement runs, so no second connection is checked out (issue 12)."""
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "40"}, follow_redirects=True)
    fields = form_fields(text(confirm))
    db.session.rollback()  # the test's own reads give their connection back, as a request does
    sent = []
    with _recording_statements(sent):
        response = customer_client.post("/accounts/transfer/", data=fields)
    assert response.status_code == 303 and balance_of(source) == D("60.00")
    assert sent.count("COMMIT") == 1 and sent[-1] == "COMMIT"


def test_withdrawal_reads_nothing_back_after_its_commit(customer_client, customer,
                                                        funded_account):
    """As with transfers: the redirect and the flash need nothing read again after the
    COMMIT (issue 12)."""
    account = funded_account(customer, "100.00")
    page = customer_client.get(f"/accounts/{account.account_number}/withdraw/")
    fields = form_fields(text(page))
    fields.update(amount="30", description="cash")
    db.session.rollback()
    sent = []
    with _recording_statements(sent):
        response = customer_client.post(f"/accounts/{account.account_number}/withdraw/",
                                        data=fields)
    assert response.status_code == 302 and balance_of(account) == D("70.00")
    assert sent.count("COMMIT") == 1 and sent[-1] == "COMMIT"


def test_confirmed_transfer_reads_both_accounts_in_one_query(customer_client, customer,
                                                             make_user, funded_account):
    source = funded_account(customer, "100.00")
    funded_account(customer, account_type="CHECKING")  # not read: the form only names one
    destination = funded_account(make_user())
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "40"}, follow_redirects=True)
    fields = form_fields(text(confirm))
    db.session.rollback()  # nothing the test loaded is reused: each request starts afresh
    sent = []
    with _recording_statements(sent):
        customer_client.post("/accounts/transfer/", data=fields)
    reads = [statement for statement in sent
             if statement.lstrip().upper().startswith("SELECT") and "FROM accounts" in statement]
    assert len(reads) == 1


def test_a_transfer_form_naming_a_new_number_reads_the_customer_and_accounts_once(
        customer_client, customer, make_user, funded_account):
    """The look-up of a number the customer never paid commits its audit line; what the
    request read before that commit (the customer, both accounts) is not read again."""
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    fields = form_fields(text(customer_client.get("/accounts/transfer/")))
    fields.update(from_account=source.account_number, to_account=destination.account_number,
                  amount="40")
    db.session.rollback()
    sent = []
    with _recording_statements(sent):
        response = customer_client.post("/accounts/transfer/", data=fields)
    assert response.status_code == 303
    assert response.location.endswith("/accounts/transfer/confirm/")
    assert _look_ups() == 1
    assert _rows_read(sent, "accounts") == 1 and _rows_read(sent, "users") == 1


def test_a_confirmed_transfer_to_a_new_number_reads_the_customer_and_accounts_once(
        customer_client, customer, make_user, funded_account):
    """Confirmed at once (a program posting the form): the look-up's commit, then the posting
    with what was read before it."""
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    fields = form_fields(text(customer_client.get("/accounts/transfer/")))
    fields.update(from_account=source.account_number, to_account=destination.account_number,
                  amount="40", confirmed="yes")
    db.session.rollback()
    sent = []
    with _recording_statements(sent):
        response = customer_client.post("/accounts/transfer/", data=fields)
    assert response.status_code == 303 and balance_of(source) == D("60.00")
    assert _look_ups() == 1
    assert _rows_read(sent, "accounts") == 1 and _rows_read(sent, "users") == 1


@contextmanager
def _after_the_first_commit(statement):
    """Run ``statement`` on a connection of its own once the request's first commit (the
    look-up's) is done: another request changing the accounts between the look-up and the
    posting, which goes on with the rows as read before."""
    done = []

    def change(session):
        if not done:
            done.append(True)
            with db.engine.begin() as other:
                other.execute(statement)

    sa.event.listen(db.session, "after_commit", change)
    try:
        yield done
    finally:
        sa.event.remove(db.session, "after_commit", change)


def _confirmed_to_a_new_number(client, source, destination, amount: str):
    fields = form_fields(text(client.get("/accounts/transfer/")))
    fields.update(from_account=source.account_number, to_account=destination.account_number,
                  amount=amount, confirmed="yes")
    db.session.rollback()
    return client.post("/accounts/transfer/", data=fields)


def test_a_destination_frozen_after_the_look_up_is_refused_by_the_posting(
        customer_client, customer, make_user, funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    with _after_the_first_commit(sa.update(Account).where(Account.id == destination.id)
                                 .values(status=AccountStatus.FROZEN)) as done:
        response = _confirmed_to_a_new_number(customer_client, source, destination, "40")
    assert done and response.status_code == 200
    assert "cannot receive" in text(response)
    assert balance_of(source) == D("100.00") and balance_of(destination) == D("0.00")


def test_a_transfer_typed_to_a_closed_account_is_refused_and_its_look_up_found_nothing(
        customer_client, customer, make_user, funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    destination.status = AccountStatus.CLOSED
    db.session.commit()
    response = _confirmed_to_a_new_number(customer_client, source, destination, "40")
    assert response.status_code == 200 and "cannot receive" in text(response)
    assert balance_of(source) == D("100.00") and balance_of(destination) == D("0.00")
    (line,) = db.session.scalars(sa.select(AuditEvent)
                                 .where(AuditEvent.action == Action.PAYEE_LOOKUP)).all()
    assert line.target_id == destination.account_number
    assert line.details == {"found": False, "via": "transfer"}


def test_a_hold_placed_after_the_look_up_is_honoured_by_the_posting(
        customer_client, customer, make_user, funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(make_user())
    teller = make_user(role=Role.TELLER)
    with _after_the_first_commit(sa.insert(Hold).values(
            account_id=source.id, amount=D("90.00"), reason="Cheque", placed_by_id=teller.id,
            placed_at=now_utc(), expires_at=now_utc() + timedelta(days=2))) as done:
        response = _confirmed_to_a_new_number(customer_client, source, destination, "40")
    assert done and response.status_code == 200
    assert "$90.00 of the balance is on hold, $10.00 is available" in text(response)
    assert balance_of(source) == D("100.00") and balance_of(destination) == D("0.00")


def test_refused_transfer_shows_the_form_with_balances_and_saved_payees(customer_client, customer,
                                                                         make_user,
                                                                         funded_account):
    from bankapp.models import Payee

    source = funded_account(customer, "10.00")
    bobs = funded_account(make_user())
    db.session.add(Payee(user_id=customer.id, account_id=bobs.id, nickname="Bob"))
    db.session.commit()
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": bobs.account_number,
        "amount": "10.01"}, follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and "Insufficient funds" in page
    assert re.search(rf"{source.account_number}</span></span>\s*<span class=\"choice-detail\">"
                     r"\$10.00 available</span>", page)
    assert '<span class="choice-title">Bob</span>' in page


def _look_ups() -> int:
    """The look-ups of account numbers audited so far (``payee.lookup`` lines)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == Action.PAYEE_LOOKUP))


def _rows_read(sent: list[str], table: str) -> int:
    """How many of ``sent`` load whole rows of ``table`` (the ORM's entity loads)."""
    return len([statement for statement in sent
                if statement.lstrip().startswith(f"SELECT {table}.id, {table}.")])


@contextmanager
def _recording_statements(sent: list[str]):
    """Append each statement the app's engine sends, and "COMMIT" for each commit."""
    engine = db.engine

    def statement(conn, cursor, text, parameters, context, executemany):
        sent.append(text)

    def commit(conn):
        sent.append("COMMIT")

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


def test_change_details_goes_back_to_the_form_without_posting(customer_client, customer,
                                                              funded_account):
    source = funded_account(customer, "100.00")
    destination = funded_account(customer, account_type="CHECKING")
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "40"}, follow_redirects=True)
    fields = {**form_fields(text(confirm)), "edit": "1"}
    response = customer_client.post("/accounts/transfer/", data=fields)
    assert response.status_code == 200 and "Transfer money" in text(response)
    assert balance_of(source) == D("100.00")


@pytest.mark.parametrize("to_account, message", [
    ("ACC-000000000", "No active account has that number"),
    ("", "Enter the destination account number"),
    ("GL-VAULT", "No active account has that number"),
])
def test_transfer_to_an_unknown_account_is_refused_inline(customer_client, customer,
                                                          funded_account, to_account, message):
    source = funded_account(customer, "100.00")
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": to_account, "amount": "1"},
        follow_redirects=True)
    assert response.status_code == 200 and message in text(response)


def test_transfer_to_the_same_account_is_refused_inline(customer_client, customer,
                                                        funded_account):
    source = funded_account(customer, "100.00")
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": source.account_number,
        "amount": "1"}, follow_redirects=True)
    assert "must be different" in text(response)


def test_transfer_that_would_overdraw_is_refused_before_confirmation(customer_client, customer,
                                                                     funded_account):
    source = funded_account(customer, "10.00")
    destination = funded_account(customer)
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": "10.01"}, follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and "Confirm the transfer" not in page
    assert "Insufficient funds: $10.00 is available in this account." in page
    assert balance_of(source) == D("10.00")


def test_transfer_from_someone_elses_account_is_refused(customer_client, make_user,
                                                        funded_account, customer):
    funded_account(customer)
    bobs = funded_account(make_user(), "50.00")
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": bobs.account_number, "to_account": bobs.account_number, "amount": "1"},
        follow_redirects=True)
    assert response.status_code == 200 and "Not a valid choice" in text(response)
    assert balance_of(bobs) == D("50.00")


def test_transfer_from_ones_own_frozen_account_is_refused(customer_client, customer,
                                                          funded_account):
    frozen = funded_account(customer, "50.00")
    destination = funded_account(customer, account_type="CHECKING")
    frozen.status = AccountStatus.FROZEN
    db.session.commit()
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": frozen.account_number, "to_account": destination.account_number,
        "amount": "1", "confirmed": "yes"}, follow_redirects=True)
    assert response.status_code == 200 and "Not a valid choice" in text(response)
    assert balance_of(frozen) == D("50.00")


def test_frozen_accounts_are_not_offered_as_a_source(customer_client, customer, funded_account):
    frozen = funded_account(customer, "50.00")
    frozen.status = AccountStatus.FROZEN
    db.session.commit()
    page = text(customer_client.get("/accounts/transfer/"))
    assert frozen.account_number not in page and "need an active account" in page


def test_views_require_login(client, customer, funded_account):
    account = funded_account(customer)
    for path in ("/dashboard/", "/accounts/transfer/", f"/accounts/{account.account_number}/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


@pytest.mark.parametrize("role", ["teller", "admin"])
def test_staff_start_at_the_teller_desk(client, make_user, role):
    log_in_as(client, make_user(role=role))
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/teller/")
    assert ">Transfer<" not in client.get("/teller/").get_data(as_text=True)

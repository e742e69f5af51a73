"""The customer's money pages as a customer would choose them: balance first, one obvious
"Send money", every line naming the other party, a searchable history, a transfer form that
offers the customer's own accounts and payees and says what is available before confirming."""
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import Account, JournalEntry, Payee
from support.reports import deposit_at, transfer_at
from support.users import log_in_as
from support.web import form_fields, hidden_radio_values, post_form, radio_choices

D = Decimal
UTC = timezone.utc
FRENCH = {"Accept-Language": "fr"}


def text(response) -> str:
    return response.get_data(as_text=True)


def balance_of(account: Account) -> Decimal:
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account.id))


@pytest.fixture
def bob(make_user):
    return make_user(first_name="Bob", last_name="Brown")


def history_lines(html: str) -> list[str]:
    """The "Details" cell of each history line, tags removed."""
    cells = re.findall(r'<td class="h-description">(.*?)</td>', html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


# ---------------------------------------------------------------- the dashboard


def test_dashboard_leads_with_the_total_available_and_one_send_money_button(
        customer_client, customer, funded_account):
    funded_account(customer, "1200.50")
    funded_account(customer, "99.50", account_type="CHECKING")
    page = text(customer_client.get("/dashboard/"))
    assert re.search(r'id="total-available">\$1,300\.00<', page)
    assert page.count('class="button primary-action"') == 1
    assert re.search(r'<a class="button primary-action" id="send-money" '
                     r'href="/accounts/transfer/">Send money</a>', page)
    assert page.index('id="total-available"') < page.index('id="accounts-heading"')


def test_dashboard_shows_what_each_account_can_spend_not_money_on_hold(
        customer_client, customer, funded_account, make_user):
    account = funded_account(customer, "300.00")
    ledger.place_hold(account, D("100.00"), "Cheque clearing",
                      datetime.now(UTC) + timedelta(days=2), make_user(role="teller"))
    page = text(customer_client.get("/dashboard/"))
    assert re.search(r'class="balance account-available"[^>]*>\$200\.00<', page)
    assert "Available · balance $300.00" in page
    assert re.search(r'id="total-available">\$200\.00<', page)


# ---------------------------------------------------------------- the other party


def test_the_senders_history_names_the_recipient_masked(customer_client, customer, bob,
                                                         funded_account):
    source = funded_account(customer, "100.00")
    ledger.transfer(source, funded_account(bob), D("40.00"), "Big payment", customer)
    lines = history_lines(text(customer_client.get(f"/accounts/{source.account_number}/")))
    assert lines[0] == "To B** B**** Big payment"


def test_the_recipients_history_names_the_sender_masked(client, customer, bob, funded_account):
    source = funded_account(customer, "100.00")
    bobs = funded_account(bob)
    ledger.transfer(source, bobs, D("40.00"), "Rent", customer)
    log_in_as(client, bob)
    lines = history_lines(text(client.get(f"/accounts/{bobs.account_number}/")))
    assert lines[0] == "From A**** A***** Rent"


def test_a_saved_payee_is_named_by_its_nickname(customer_client, customer, bob,
                                                funded_account):
    source = funded_account(customer, "100.00")
    bobs = funded_account(bob)
    db.session.add(Payee(user_id=customer.id, account_id=bobs.id, nickname="Landlord"))
    db.session.commit()
    ledger.transfer(source, bobs, D("40.00"), "", customer)
    page = text(customer_client.get("/dashboard/"))
    assert history_lines(page)[0] == "To Landlord"


def test_a_transfer_between_ones_own_accounts_names_the_other_account(
        customer_client, customer, funded_account):
    savings = funded_account(customer, "100.00")
    checking = funded_account(customer, account_type="CHECKING")
    ledger.transfer(savings, checking, D("10.00"), "", customer)
    lines = history_lines(text(customer_client.get(f"/accounts/{savings.account_number}/")))
    assert lines[0] == f"To Checking {checking.account_number}"


def test_cash_lines_name_no_other_party(customer_client, customer, funded_account):
    account = funded_account(customer, "100.00")
    lines = history_lines(text(customer_client.get(f"/accounts/{account.account_number}/")))
    assert lines == ["Opening deposit"]


def test_naming_the_other_party_costs_one_query_whatever_the_page(
        app, customer, bob, funded_account):
    source = funded_account(customer, "500.00")
    for _ in range(10):
        ledger.transfer(source, funded_account(bob), D("1.00"), "", customer)
    legs = ledger.latest_activity(customer, limit=20)
    sent = []
    listen = lambda *args: sent.append(args[2])  # noqa: E731 (conn, cursor, statement…)
    sa.event.listen(db.engine, "before_cursor_execute", listen)
    try:
        names = ledger.counterparties(legs)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listen)
    assert len(names) == 10 and set(names.values()) == {"B** B****"}
    assert len(sent) == 1


# ---------------------------------------------------------------- searching the history


@pytest.fixture
def year_of_history(customer, bob, funded_account):
    """Four lines of one account: two deposits, a transfer out to Bob, a withdrawal."""
    account = funded_account(customer)
    deposit_at(account, "1000.00", datetime(2026, 1, 5, 12, tzinfo=UTC), "Salary")
    transfer_at(account, funded_account(bob), "250.00",
                datetime(2026, 3, 9, 12, tzinfo=UTC), "Rent March", actor=customer)
    deposit_at(account, "12.50", datetime(2026, 6, 15, 12, tzinfo=UTC), "Gift")
    deposit_at(account, "40.00", datetime(2026, 9, 20, 12, tzinfo=UTC),
               "Refund rent")
    return account


def searched(client, account, **params) -> list[str]:
    response = client.get(f"/accounts/{account.account_number}/", query_string=params)
    assert response.status_code == 200
    return history_lines(text(response))


def test_history_search_finds_words_of_the_description_in_any_case(
        customer_client, year_of_history):
    assert searched(customer_client, year_of_history, q="RENT") == [
        "Refund rent", "To B** B**** Rent March"]


def test_history_search_takes_a_range_of_days(customer_client, year_of_history):
    assert searched(customer_client, year_of_history, start="2026-03-09",
                    end="2026-06-15") == ["Gift", "To B** B**** Rent March"]


def test_history_search_takes_a_range_of_amounts(customer_client, year_of_history):
    assert searched(customer_client, year_of_history, least="40", most="250") == [
        "Refund rent", "To B** B**** Rent March"]


def test_history_search_takes_a_french_amount_on_a_french_page(customer_client,
                                                              year_of_history):
    response = customer_client.get(f"/accounts/{year_of_history.account_number}/",
                                   query_string={"least": "12,5", "most": "12,50"},
                                   headers=FRENCH)
    assert history_lines(text(response)) == ["Gift"]


def test_history_search_takes_a_type(customer_client, year_of_history):
    assert searched(customer_client, year_of_history, type="TRANSFER_OUT") == [
        "To B** B**** Rent March"]


def test_history_search_says_how_many_lines_match(customer_client, year_of_history):
    page = text(customer_client.get(f"/accounts/{year_of_history.account_number}/?q=rent"))
    assert '<p class="muted" id="history-count">2 matching lines</p>' in page


def test_history_search_with_the_last_day_before_the_first_is_refused(customer_client,
                                                                     year_of_history):
    page = text(customer_client.get(f"/accounts/{year_of_history.account_number}/",
                                    query_string={"start": "2026-06-01", "end": "2026-05-01"}))
    assert "The last day must not be before the first." in page
    assert len(history_lines(page)) == 4  # nothing filtered by a search that was refused


def test_history_search_treats_like_wildcards_as_text(customer_client, year_of_history):
    assert searched(customer_client, year_of_history, q="%") == []


def test_history_search_finds_a_payee_by_its_nickname(customer_client, customer, bob,
                                                     funded_account):
    source = funded_account(customer, "100.00")
    bobs = funded_account(bob)
    db.session.add(Payee(user_id=customer.id, account_id=bobs.id, nickname="Landlord"))
    db.session.commit()
    ledger.transfer(source, bobs, D("40.00"), "March", customer)
    ledger.transfer(source, funded_account(bob), D("5.00"), "Lunch", customer)
    assert searched(customer_client, source, q="landlord") == ["To Landlord March"]


def test_history_search_ignores_a_nickname_someone_else_gave_the_account(
        client, customer, bob, funded_account):
    source = funded_account(customer, "100.00")
    bobs = funded_account(bob)
    db.session.add(Payee(user_id=customer.id, account_id=bobs.id, nickname="Landlord"))
    db.session.commit()
    ledger.transfer(source, bobs, D("40.00"), "March", customer)
    log_in_as(client, bob)
    assert searched(client, bobs, q="landlord") == []


def test_history_search_pages_keep_the_search(customer_client, customer, funded_account):
    account = funded_account(customer)
    for n in range(30):
        ledger.deposit(account, D("1.00"), f"coffee {n}", customer)
    ledger.deposit(account, D("1.00"), "tea", customer)
    page = text(customer_client.get(f"/accounts/{account.account_number}/?q=coffee"))
    assert "Page 1 of 2" in page
    assert re.search(r'href="[^"]*\?q=coffee&amp;page=2"', page)


# ---------------------------------------------------------------- the transfer form


def test_the_transfer_form_offers_ones_own_accounts_then_payees(customer_client, customer,
                                                                bob, funded_account):
    savings = funded_account(customer, "100.00")
    checking = funded_account(customer, account_type="CHECKING")
    payee = Payee(user_id=customer.id, account_id=funded_account(bob).id, nickname="Landlord")
    db.session.add(payee)
    db.session.commit()
    page = text(customer_client.get("/accounts/transfer/"))
    assert re.findall(r'<p class="choice-group">([^<]+)</p>', page) == [
        "Your accounts", "Your payees", "Someone else"]
    assert radio_choices(page, "payee") == [
        (savings.account_number, False, f"Savings account {savings.account_number}"),
        (checking.account_number, False, f"Checking account {checking.account_number}"),
        (str(payee.id), False, f"Landlord {payee.account.account_number}"),
        ("", True, "Another account (type its number)")]


def test_the_transfer_form_does_not_offer_the_source_as_the_destination(
        customer_client, customer, funded_account):
    savings = funded_account(customer, "100.00")
    checking = funded_account(customer, account_type="CHECKING")
    page = text(customer_client.get(f"/accounts/transfer/?from={checking.account_number}"))
    assert hidden_radio_values(page, "payee") == [checking.account_number]
    # Each own account says which it is, so the page's script hides whichever is the source.
    assert f'data-account="{savings.account_number}"' in page


def test_the_transfer_form_shows_the_source_as_destination_once_chosen_so(
        customer_client, customer, funded_account):
    """Sent without the script: the refusal names the problem on the very choice made."""
    savings = funded_account(customer, "100.00")
    funded_account(customer, account_type="CHECKING")
    page = text(post_form(customer_client, "/accounts/transfer/", {
        "from_account": savings.account_number, "payee": savings.account_number,
        "amount": "5"}))
    assert "The source and destination accounts must be different." in page
    assert hidden_radio_values(page, "payee") == []


def test_money_moves_to_ones_own_account_chosen_from_the_list(customer_client, customer,
                                                              funded_account):
    savings = funded_account(customer, "100.00")
    checking = funded_account(customer, account_type="CHECKING")
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": savings.account_number, "payee": checking.account_number,
        "amount": "25"}, follow_redirects=True)
    assert "Confirm the transfer" in text(confirm)
    assert f'id="confirm-payee">Checking {checking.account_number}<' in text(confirm)
    customer_client.post("/accounts/transfer/", data=form_fields(text(confirm)))
    assert (balance_of(savings), balance_of(checking)) == (D("75.00"), D("25.00"))


def test_someone_elses_account_number_cannot_be_chosen_from_the_list(customer_client, customer,
                                                                     bob, funded_account):
    source = funded_account(customer, "100.00")
    bobs = funded_account(bob)
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "payee": bobs.account_number, "amount": "5"},
        follow_redirects=True)
    assert "Choose one of your accounts or saved payees." in text(response)
    assert balance_of(bobs) == 0


@pytest.mark.parametrize("typed", ["acc {digits}", "ACC{digits}", "{digits}",
                                   "acc-{spaced}"])
def test_an_account_number_typed_loosely_is_found(customer_client, customer, bob,
                                                 funded_account, typed):
    source = funded_account(customer, "100.00")
    bobs = funded_account(bob)
    digits = bobs.account_number.removeprefix("ACC-")
    spaced = f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number,
        "to_account": typed.format(digits=digits, spaced=spaced), "amount": "5"},
        follow_redirects=True)
    assert "Confirm the transfer" in text(confirm)
    customer_client.post("/accounts/transfer/", data=form_fields(text(confirm)))
    assert balance_of(bobs) == D("5.00")


def test_a_transfer_above_the_daily_limit_is_refused_before_confirmation(
        app, customer_client, customer, bob, funded_account):
    app.config["DAILY_TRANSFER_LIMIT"] = "100.00"
    source = funded_account(customer, "500.00")
    ledger.transfer(source, funded_account(bob), D("70.00"), "", customer)
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": funded_account(bob).account_number,
        "amount": "40"}, follow_redirects=True)
    page = text(response)
    assert "Confirm the transfer" not in page
    assert "above your daily outgoing limit of $100.00: $30.00 is left today." in page


def test_money_on_hold_is_not_offered_on_the_confirm_page(customer_client, customer, bob,
                                                          funded_account, make_user):
    source = funded_account(customer, "100.00")
    ledger.place_hold(source, D("60.00"), "Cheque", datetime.now(UTC) + timedelta(days=1),
                      make_user(role="teller"))
    response = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "to_account": funded_account(bob).account_number,
        "amount": "50"}, follow_redirects=True)
    assert "Insufficient funds: $40.00 is available in this account." in text(response)


def test_changing_the_details_keeps_the_chosen_payee(customer_client, customer, bob,
                                                     funded_account):
    source = funded_account(customer, "100.00")
    payee = Payee(user_id=customer.id, account_id=funded_account(bob).id, nickname="Landlord")
    db.session.add(payee)
    db.session.commit()
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "payee": str(payee.id), "amount": "25"},
        follow_redirects=True)
    assert 'id="confirm-payee">Landlord (B** B****)<' in text(confirm)
    fields = form_fields(text(confirm))
    fields["edit"] = "1"
    page = text(customer_client.post("/accounts/transfer/", data=fields))
    assert (str(payee.id), True, f"Landlord {payee.account.account_number}") in radio_choices(
        page, "payee")


def test_the_success_message_names_the_payee_by_its_nickname(customer_client, customer, bob,
                                                             funded_account):
    source = funded_account(customer, "100.00")
    payee = Payee(user_id=customer.id, account_id=funded_account(bob).id, nickname="Landlord")
    db.session.add(payee)
    db.session.commit()
    confirm = post_form(customer_client, "/accounts/transfer/", {
        "from_account": source.account_number, "payee": str(payee.id), "amount": "25"},
        follow_redirects=True)
    response = customer_client.post("/accounts/transfer/", data=form_fields(text(confirm)),
                                    follow_redirects=True)
    assert "$25.00 sent to Landlord." in text(response)


def test_the_source_choices_say_what_each_account_has_available(customer_client, customer,
                                                                funded_account, make_user):
    source = funded_account(customer, "3350.00", account_type="CHECKING")
    ledger.place_hold(source, D("350.00"), "Cheque", datetime.now(UTC) + timedelta(days=1),
                      make_user(role="teller"))
    page = text(customer_client.get("/accounts/transfer/"))
    assert radio_choices(page, "from_account") == [
        (source.account_number, True,
         f"Checking account {source.account_number} $3,000.00 available")]


# ---------------------------------------------------------------- messages


def test_a_deposit_message_carries_no_reference(customer_client, customer, funded_account):
    account = funded_account(customer)
    response = post_form(customer_client, f"/accounts/{account.account_number}/deposit/",
                         {"amount": "10"}, follow_redirects=True)
    reference = db.session.scalar(sa.select(JournalEntry.reference)
                                  .order_by(JournalEntry.id.desc()).limit(1))
    page = text(response)
    assert '<p class="flash flash-success">Deposit of $10.00 posted.</p>' in page
    assert reference not in page


@pytest.mark.parametrize("kind, language, message", [
    ("CHECKING", "fr", "Votre nouveau compte courant {number} est ouvert."),
    ("SAVINGS", "fr", "Votre nouveau compte épargne {number} est ouvert."),
    ("CHECKING", "en", "Your new checking account {number} is open."),
])
def test_the_account_opened_message_names_the_kind_once(customer_client, customer, kind,
                                                        language, message):
    response = post_form(customer_client, "/accounts/open/", {"account_type": kind},
                         headers={"Accept-Language": language}, follow_redirects=True)
    number = db.session.scalar(sa.select(Account.account_number))
    assert message.format(number=number) in text(response)


def test_a_withdrawal_from_a_frozen_account_is_refused_in_french(customer_client, customer,
                                                                  funded_account, make_user):
    account = funded_account(customer, "100.00")
    ledger.freeze_account(account, "Checked by the bank", make_user(role="admin"))
    page = text(post_form(customer_client, f"/accounts/{account.account_number}/withdraw/",
                          {"amount": "10"}, headers=FRENCH))
    assert "Ce compte est gelé et ne peut pas faire circuler d’argent." in page
    assert balance_of(account) == D("100.00")


def test_a_withdrawal_of_money_on_hold_is_refused_in_french(customer_client, customer,
                                                            funded_account, make_user):
    account = funded_account(customer, "100.00")
    ledger.place_hold(account, D("60.00"), "Cheque", datetime.now(UTC) + timedelta(days=1),
                      make_user(role="teller"))
    page = text(post_form(customer_client, f"/accounts/{account.account_number}/withdraw/",
                          {"amount": "50"}, headers=FRENCH))
    assert ("Provision disponible insuffisante\xa0: 60,00\xa0$US du solde sont bloqués, "
            "40,00\xa0$US sont disponibles.") in page
    assert balance_of(account) == D("100.00")


def test_a_daily_limit_above_the_banks_is_refused_with_a_french_amount(
        app, customer_client, customer):
    app.config["DAILY_TRANSFER_LIMIT"] = "10000.00"
    page = text(post_form(customer_client, "/accounts/limits/", {"daily_limit": "20000"},
                          headers=FRENCH))
    assert "10\u202f000,00\xa0$US" in page and "10,000.00" not in page


def test_the_french_account_page_names_the_kind_once(customer_client, customer,
                                                     funded_account):
    account = funded_account(customer, account_type="CHECKING")
    page = text(customer_client.get(f"/accounts/{account.account_number}/", headers=FRENCH))
    assert '<p class="muted">Compte courant</p>' in page
    assert "Compte Compte" not in page and "compte compte" not in page


def test_history_search_days_are_native_date_inputs(customer_client, customer, funded_account):
    account = funded_account(customer)
    page = text(customer_client.get(f"/accounts/{account.account_number}/"))
    assert re.search(r'<input [^>]*id="start" name="start" type="date"', page)
    assert re.search(r'<input [^>]*id="end" name="end" type="date"', page)


def test_history_times_are_written_the_french_way_on_a_french_page(
        customer_client, customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "5.00", datetime(2026, 12, 6, 3, 24, tzinfo=UTC), "Tip")
    page = text(customer_client.get(f"/accounts/{account.account_number}/", headers=FRENCH))
    assert '<time datetime="2026-12-06T03:24:00+00:00">6 déc. 2026, 03:24</time>' in page

"""Saved payees: looked up (masked name, rate-limited, audited), confirmed, renamed, removed;
offered first on the transfer form; the first payment to one asks for a code."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.audit import Action
from bankapp.identity.stepup import FIRST_TO_SAVED_PAYEE, step_up_for
from bankapp.extensions import db, limiter
from bankapp.models import AuditEvent, Payee, now_utc
from bankapp.payments import payees
from support.backoffice import audit_rows, balance
from support.users import enrol_totp, log_in_as, totp_now
from support.web import form_fields, post_form

PAYEES = "/accounts/payees/"
CONFIRM = "/accounts/payees/confirm/"
TRANSFER = "/accounts/transfer/"


@pytest.fixture
def bob_account(make_user, funded_account):
    return funded_account(make_user(email="bob@example.com", first_name="Bob",
                                    last_name="Brown"))


@pytest.fixture
def source(customer, funded_account):
    return funded_account(customer, "500.00", "CHECKING")


def text(response) -> str:
    return response.get_data(as_text=True)


def look_up(client, number: str, nickname: str = "Bob"):
    return post_form(client, PAYEES, {"account_number": number, "nickname": nickname})


def add_payee(client, number: str, nickname: str = "Bob") -> Payee:
    page = look_up(client, number, nickname)
    assert page.status_code == 200, text(page)
    response = client.post(CONFIRM, data=form_fields(text(page)))
    assert response.status_code == 302
    return db.session.scalar(sa.select(Payee).where(Payee.nickname == nickname))


def payee_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Payee.id)))


def test_looking_up_a_number_shows_the_masked_holder_before_saving(customer_client,
                                                                   bob_account):
    page = look_up(customer_client, bob_account.account_number.lower(), "Rent")
    assert page.status_code == 200
    assert re.search(r'id="payee-holder">B\*\* B\*\*\*\*<', text(page))
    assert "Bob Brown" not in text(page) and payee_count() == 0


def test_confirming_saves_the_payee_and_audits_it(customer_client, customer, bob_account):
    payee = add_payee(customer_client, bob_account.account_number, "Rent")
    assert payee.user_id == customer.id and payee.account_id == bob_account.id
    [row] = audit_rows(Action.PAYEE_ADD)
    assert row.actor_id == customer.id and row.details["account"] == bob_account.account_number
    assert "Rent" in text(customer_client.get(PAYEES))


def test_a_confirmation_sent_twice_saves_one_payee(customer_client, bob_account):
    page = look_up(customer_client, bob_account.account_number)
    for _ in range(2):
        customer_client.post(CONFIRM, data=form_fields(text(page)))
    assert payee_count() == 1


@pytest.mark.parametrize("token", ["", "forged", "WzEsIDIsICJCb2IiXQ.abc.def"])
def test_a_forged_confirmation_saves_nothing(customer_client, bob_account, token):
    page = look_up(customer_client, bob_account.account_number)
    fields = {**form_fields(text(page)), "token": token}
    response = customer_client.post(CONFIRM, data=fields, follow_redirects=True)
    assert "expired" in text(response) and payee_count() == 0


def test_an_expired_confirmation_saves_nothing(customer_client, bob_account, monkeypatch):
    page = look_up(customer_client, bob_account.account_number)
    # Any token is older than a negative age: the look-up's 15 minutes have run out.
    monkeypatch.setattr(payees, "CONFIRM_MAX_AGE", -1)
    response = customer_client.post(CONFIRM, data=form_fields(text(page)),
                                     follow_redirects=True)
    assert "expired" in text(response) and payee_count() == 0
    assert audit_rows(Action.PAYEE_ADD) == []


def test_another_customers_confirmation_cannot_be_replayed(client, customer, make_user,
                                                           bob_account):
    log_in_as(client, customer)
    page = look_up(client, bob_account.account_number)
    token = form_fields(text(page))["token"]
    mallory = make_user(email="mallory@example.com")
    mallory_client = client.application.test_client()
    log_in_as(mallory_client, mallory)
    fields = {**form_fields(text(mallory_client.get(PAYEES))), "token": token}
    mallory_client.post(CONFIRM, data=fields)
    assert payee_count() == 0


@pytest.mark.parametrize("number, nickname, message", [
    ("ACC-000000000", "Bob", "No account has that number"),
    ("", "Bob", "Enter the payee&#39;s account number"),
    ("GL-VAULT", "Bob", "No account has that number"),
    ("{own}", "Me", "one of your own accounts"),
    ("{bob}", "", "Give the payee a name"),
    ("{bob}", "x" * 41, "at most 40 characters"),
])
def test_a_payee_that_cannot_be_saved_is_explained(customer_client, source, bob_account,
                                                   number, nickname, message):
    number = number.format(own=source.account_number, bob=bob_account.account_number)
    response = look_up(customer_client, number, nickname)
    assert response.status_code == 200 and message in text(response)
    assert "payee-holder" not in text(response) and payee_count() == 0


def test_a_closed_account_is_answered_like_a_missing_one(customer_client, bob_account):
    bob_account.status = "closed"
    db.session.commit()
    assert "No account has that number" in text(look_up(customer_client,
                                                         bob_account.account_number))


def test_an_account_saved_already_is_not_saved_twice(customer_client, bob_account):
    add_payee(customer_client, bob_account.account_number, "Bob")
    response = look_up(customer_client, bob_account.account_number, "Again")
    assert "already saved this account as “Bob”" in text(response) and payee_count() == 1


def test_every_look_up_found_or_not_is_audited(customer_client, customer, bob_account):
    look_up(customer_client, bob_account.account_number)
    look_up(customer_client, "ACC-000000000")
    rows = audit_rows(Action.PAYEE_LOOKUP)
    assert [(r.target_id, r.details["found"]) for r in rows] == [
        (bob_account.account_number, True), ("ACC-000000000", False)]


def test_look_ups_are_limited_per_customer(app, customer_client, bob_account):
    app.config["PAYEE_LOOKUP_LIMIT"] = "3 per hour"
    answers = [look_up(customer_client, "ACC-00000000" + str(n)).status_code for n in range(3)]
    refused = look_up(customer_client, bob_account.account_number)
    assert answers == [200, 200, 200] and refused.status_code == 429
    assert "try again later" in text(refused) and "payee-holder" not in text(refused)
    assert len(audit_rows(Action.PAYEE_LOOKUP)) == 3  # the refused one looked nothing up


def test_the_look_up_budget_holds_after_the_rate_limit_store_is_emptied(
        app, customer_client, bob_account):
    spend_the_look_up_budget(app, customer_client)
    limiter.reset()  # a Redis restart: it keeps nothing on disk
    refused = look_up(customer_client, bob_account.account_number)
    assert refused.status_code == 429
    assert len(audit_rows(Action.PAYEE_LOOKUP)) == 3


def _looked_up_before(customer, minutes: int, count: int) -> None:
    for n in range(count):
        db.session.add(AuditEvent(
            actor_id=customer.id, action=Action.PAYEE_LOOKUP, target_type="account",
            target_id=f"ACC-99999999{n}", details={"found": False, "via": "payees"},
            created_at=now_utc() - timedelta(minutes=minutes)))
    db.session.commit()


def test_look_ups_older_than_the_window_leave_the_budget_whole(app, customer, customer_client,
                                                              bob_account):
    app.config["PAYEE_LOOKUP_LIMIT"] = "3 per hour"
    _looked_up_before(customer, minutes=61, count=3)
    assert look_up(customer_client, bob_account.account_number).status_code == 200


def test_look_ups_within_the_window_count_whichever_page_made_them(
        app, customer, customer_client, source, bob_account):
    app.config["PAYEE_LOOKUP_LIMIT"] = "3 per hour"
    _looked_up_before(customer, minutes=59, count=3)
    assert look_up(customer_client, bob_account.account_number).status_code == 429
    page = text(transfer_form(customer_client, source, bob_account.account_number))
    assert "try again later" in page and "Confirm the transfer" not in page


def spend_the_look_up_budget(app, client) -> None:
    app.config["PAYEE_LOOKUP_LIMIT"] = "3 per hour"
    for n in range(3):
        assert look_up(client, f"ACC-00000000{n}").status_code == 200


def transfer_form(client, source, number: str):
    return post_form(client, TRANSFER, {"from_account": source.account_number,
                                        "to_account": number, "amount": "25.00"},
                                        follow_redirects=True)


def test_the_transfer_form_spends_the_look_up_budget_too(app, customer_client, source,
                                                         bob_account):
    spend_the_look_up_budget(app, customer_client)
    found = text(transfer_form(customer_client, source, bob_account.account_number))
    missing = text(transfer_form(customer_client, source, "ACC-999999999"))
    assert "B** B****" not in found and "Confirm the transfer" not in found
    assert "No active account has that number" not in missing
    assert "try again later" in found and "try again later" in missing
    assert len(audit_rows(Action.PAYEE_LOOKUP)) == 3  # the refused ones looked nothing up


def test_a_number_typed_on_the_transfer_form_is_an_audited_look_up(customer_client, source,
                                                                   bob_account):
    page = transfer_form(customer_client, source, bob_account.account_number)
    assert "Confirm the transfer" in text(page)
    customer_client.post(TRANSFER, data=form_fields(text(page)))  # confirming: no new look-up
    assert balance(bob_account) == D("25.00")
    [row] = audit_rows(Action.PAYEE_LOOKUP)
    assert (row.target_id, row.details["found"], row.details["via"]) == (
        bob_account.account_number, True, "transfer")


def test_an_account_paid_before_costs_no_look_up(customer_client, source, bob_account):
    ledger.transfer(source, bob_account, D("1.00"), "", source.owner)
    transfer_form(customer_client, source, bob_account.account_number)
    assert audit_rows(Action.PAYEE_LOOKUP) == []


def test_a_saved_payee_typed_on_the_transfer_form_is_confirmed_by_nickname_and_masked_name(
        customer_client, customer, source, bob_account):
    db.session.add(Payee(user_id=customer.id, account_id=bob_account.id, nickname="Landlord"))
    db.session.commit()
    page = text(transfer_form(customer_client, source, bob_account.account_number.lower()))
    assert "Confirm the transfer" in page and "Landlord (B** B****)" in page
    assert audit_rows(Action.PAYEE_LOOKUP) == []


def test_the_api_transfer_spends_the_look_up_budget_too(app, client, customer_client,
                                                        customer, source, bob_account):
    from support.api import assert_problem, new_key, send

    enrol_totp(customer)  # so a number that exists would answer 403 step-up-required
    spend_the_look_up_budget(app, customer_client)
    for number in (bob_account.account_number, "ACC-999999999"):
        response = send(client, "POST", "/api/v1/transfers", customer,
                        {"from_account": source.account_number, "to_account": number,
                         "amount": "25.00"}, key=new_key())
        assert assert_problem(response, 429)["detail"].endswith("try again later.")
    assert len(audit_rows(Action.PAYEE_LOOKUP)) == 3


def test_a_payee_can_be_renamed(customer_client, bob_account):
    payee = add_payee(customer_client, bob_account.account_number, "Bob")
    post_form(customer_client, f"{PAYEES}{payee.id}/rename/", {"nickname": "  Landlord  "})
    db.session.refresh(payee)
    assert payee.nickname == "Landlord" and len(audit_rows(Action.PAYEE_RENAME)) == 1


def test_a_blank_new_name_is_refused(customer_client, bob_account):
    payee = add_payee(customer_client, bob_account.account_number, "Bob")
    response = post_form(customer_client, f"{PAYEES}{payee.id}/rename/", {"nickname": "  "})
    assert "Give the payee a name" in text(response)
    db.session.refresh(payee)
    assert payee.nickname == "Bob"


def test_a_payee_can_be_removed(customer_client, bob_account):
    payee = add_payee(customer_client, bob_account.account_number, "Bob")
    post_form(customer_client, f"{PAYEES}{payee.id}/remove/", {})
    assert payee_count() == 0 and len(audit_rows(Action.PAYEE_REMOVE)) == 1


@pytest.mark.parametrize("action", ["rename", "remove"])
def test_another_customers_payee_is_not_found(client, make_user, bob_account, action):
    owner = make_user(email="owner@example.com")
    payee = Payee(user_id=owner.id, account_id=bob_account.id, nickname="Bob")
    db.session.add(payee)
    db.session.commit()
    intruder = make_user(email="intruder@example.com")
    log_in_as(client, intruder)
    assert client.get(f"{PAYEES}{payee.id}/{action}/").status_code == 404
    fields = form_fields(text(client.get(PAYEES)))  # a valid CSRF token of the intruder's
    response = client.post(f"{PAYEES}{payee.id}/{action}/", data={**fields, "nickname": "x"})
    assert response.status_code == 404
    assert payee_count() == 1


# ---------------------------------------------------------------- paying a payee


def test_the_transfer_form_offers_saved_payees_first(customer_client, source, bob_account):
    add_payee(customer_client, bob_account.account_number, "Landlord")
    html = text(customer_client.get(TRANSFER))
    assert html.index('name="payee"') < html.index('name="to_account"')
    assert re.search(r'<p class="choice-group">Your payees</p>\s*<label class="choice-card">\s*'
                     r'<input type="radio" name="payee" value="[0-9]+">\s*'
                     r'<span class="choice-text">\s*<span class="choice-title">Landlord<', html)


def test_paying_a_saved_payee_from_the_transfer_form(customer_client, source, bob_account):
    payee = add_payee(customer_client, bob_account.account_number, "Landlord")
    page = post_form(customer_client, TRANSFER, {"from_account": source.account_number,
                                                 "payee": str(payee.id), "amount": "25.00"},
                                                 follow_redirects=True)
    assert "Confirm the transfer" in text(page)
    customer_client.post(TRANSFER, data=form_fields(text(page)))
    assert balance(bob_account) == D("25.00")


def test_a_saved_payee_that_cannot_receive_money_is_refused_before_confirming(
        customer_client, source, bob_account, make_user):
    payee = add_payee(customer_client, bob_account.account_number, "Landlord")
    ledger.freeze_account(bob_account, "Court order", make_user(role="admin"))
    page = post_form(customer_client, TRANSFER, {"from_account": source.account_number,
                                                 "payee": str(payee.id), "amount": "25.00"},
                                                 follow_redirects=True)
    html = text(page)
    assert page.status_code == 200 and "That account cannot receive money." in html
    # The payee stays chosen: the customer does not have to pick it again.
    assert re.search(rf'name="payee" value="{payee.id}" checked>', html)
    assert balance(bob_account) == 0


def test_the_transfer_form_still_takes_any_account_number(customer_client, source,
                                                          bob_account):
    page = post_form(customer_client, TRANSFER, {"from_account": source.account_number,
                                                 "to_account": bob_account.account_number,
                                                 "amount": "5.00"}, follow_redirects=True)
    customer_client.post(TRANSFER, data=form_fields(text(page)))
    assert balance(bob_account) == D("5.00")


@pytest.mark.parametrize("payee_value", ["999", "abc"])
def test_a_payee_that_is_not_the_customers_is_refused(customer_client, source, payee_value):
    response = post_form(customer_client, TRANSFER, {"from_account": source.account_number,
                                                     "payee": payee_value, "amount": "5.00"},
                                                     follow_redirects=True)
    assert "Choose one of your accounts or saved payees" in text(response)


def test_the_first_payment_to_a_saved_payee_asks_for_a_code_even_if_paid_before(
        customer_client, customer, source, bob_account):
    secret = enrol_totp(customer)
    ledger.transfer(source, bob_account, D("1.00"), "", customer)  # paid before saving
    add_payee(customer_client, bob_account.account_number)
    assert step_up_for(customer, bob_account, D("5.00")).reasons == (FIRST_TO_SAVED_PAYEE,)
    page = post_form(customer_client, TRANSFER, {"from_account": source.account_number,
                                                 "to_account": bob_account.account_number,
                                                 "amount": "5.00"}, follow_redirects=True)
    assert "first payment to this saved payee" in text(page)
    fields = {**form_fields(text(page)), "code": totp_now(secret)}
    customer_client.post(TRANSFER, data=fields)
    assert balance(bob_account) == D("6.00")
    assert not step_up_for(customer, bob_account, D("5.00"))  # paid since it was saved

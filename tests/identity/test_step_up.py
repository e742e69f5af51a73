"""Step-up on transfers: a customer with a second factor approves a first payment to a new
payee, or one above STEP_UP_THRESHOLD, with a fresh code bound to that very transfer
(website confirmation page and API)."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.audit import Action
from bankapp.identity.stepup import ABOVE_THRESHOLD, NEW_PAYEE, has_paid_before, step_up_for
from bankapp.extensions import db
from bankapp.models import JournalEntry, TotpDevice
from support.api import assert_problem, new_key, send
from support.backoffice import audit_rows, balance
from support.database import POSTGRES
from support.users import enrol_totp, totp_now
from support.web import form_fields, post_form

TRANSFER = "/accounts/transfer/"
CONFIRM = "/accounts/transfer/confirm/"
TRANSFERS_API = "/api/v1/transfers"



def entries() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


def text(response) -> str:
    return response.get_data(as_text=True)


def has_code_field(html: str) -> bool:
    return re.search(r'<input[^>]*name="code"', html) is not None


@pytest.fixture
def secret(customer):
    """Alice has an authenticator app."""
    return enrol_totp(customer)


@pytest.fixture
def source(customer, funded_account):
    return funded_account(customer, "5000.00")


@pytest.fixture
def payee(make_user, funded_account):
    """Bob's account: Alice has never paid it."""
    return funded_account(make_user(email="bob@example.com", first_name="Bob"))


def pay(source, destination, amount="10.00"):
    """A transfer straight through the ledger (history for the rule, no step-up)."""
    return ledger.transfer(source, destination, D(amount), "", source.owner)


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize("case, amount, expected", [
    ("first payment to a new account", "10.00", (NEW_PAYEE,)),
    ("first payment to a new account above the threshold", "1000.01",
     (NEW_PAYEE, ABOVE_THRESHOLD)),
    ("known payee under the threshold", "999.99", ()),
    ("known payee exactly at the threshold", "1000.00", ()),
    ("known payee above the threshold", "1000.01", (ABOVE_THRESHOLD,)),
])
def test_the_step_up_rule(customer, secret, source, payee, case, amount, expected):
    if case.startswith("known payee"):
        pay(source, payee)
    assert step_up_for(customer, payee, D(amount)).reasons == expected


@pytest.mark.parametrize("amount", ["10.00", "1000.00", "5000.00"])
def test_transfers_between_own_accounts_never_need_a_code(customer, secret, source,
                                                          funded_account, amount):
    # No money leaves the customer (PSD2 RTS art. 15 exempts it; banks do not ask).
    own = funded_account(customer, account_type="CHECKING")
    assert not step_up_for(customer, own, D(amount))


@pytest.mark.parametrize("amount", ["10.00", "5000.00"])
def test_a_customer_without_a_second_factor_is_never_asked(customer, source, payee, amount):
    assert not step_up_for(customer, payee, D(amount))


def test_a_payee_paid_from_another_of_the_customers_accounts_is_known(
        customer, secret, source, payee, funded_account):
    checking = funded_account(customer, "50.00", account_type="CHECKING")
    pay(checking, payee)
    assert has_paid_before(customer, payee)
    assert not step_up_for(customer, payee, D("10.00"))


def test_money_received_from_an_account_does_not_make_it_a_known_payee(
        customer, secret, source, payee):
    ledger.deposit(payee, D("20.00"), "", payee.owner)
    pay(payee, source)
    assert not has_paid_before(customer, payee)


def test_another_customers_payments_do_not_make_the_payee_known(
        customer, secret, source, payee, make_user, funded_account):
    carol = funded_account(make_user(email="carol@example.com"), "50.00")
    pay(carol, payee)
    assert not has_paid_before(customer, payee)


def test_the_threshold_is_the_configured_one(app, customer, secret, source, payee):
    pay(source, payee)
    app.config["STEP_UP_THRESHOLD"] = D("50.00")
    assert step_up_for(customer, payee, D("50.01")).reasons == (ABOVE_THRESHOLD,)
    assert not step_up_for(customer, payee, D("50.00"))


def test_the_default_threshold_is_one_thousand(app):
    assert app.config["STEP_UP_THRESHOLD"] == D("1000.00")


def test_knowing_a_payee_costs_one_query(customer, secret, source, payee):
    pay(source, payee)
    db.session.refresh(customer), db.session.refresh(payee)  # not the query under test
    statements = []

    def count(connection, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert has_paid_before(customer, payee)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1


# ---------------------------------------------------------------- website


def confirmation(client, source, destination, amount="10.00", description=""):
    return post_form(client, TRANSFER, {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": amount, "description": description}, follow_redirects=True)


def confirm(client, page, code=None, **changes):
    """Press "Send" on a confirmation page, with ``code`` typed and any hidden field changed;
    a refusal is the confirmation page again, reached as the browser would (its redirect)."""
    fields = form_fields(text(page))
    if code is not None:
        fields["code"] = code
    fields.update(changes)
    response = client.post(TRANSFER, data=fields)
    if response.status_code == 303 and response.location.endswith(CONFIRM):
        return client.get(response.location)
    return response


def test_a_first_payment_asks_for_a_code_and_says_why(customer_client, secret, source, payee):
    page = confirmation(customer_client, source, payee)
    html = text(page)
    assert page.status_code == 200 and has_code_field(html)
    assert "Because this is your first payment to this account" in html


def test_a_payment_above_the_threshold_says_so(customer_client, secret, source, payee):
    pay(source, payee)
    html = text(confirmation(customer_client, source, payee, amount="1,500.00"))
    assert has_code_field(html) and "the amount is above $1,000.00" in html
    assert "first payment" not in html


@pytest.mark.parametrize("case", ["known payee", "own account", "no second factor"])
def test_no_code_field_when_step_up_does_not_apply(customer_client, customer, source, payee,
                                                   funded_account, case):
    destination = payee
    if case != "no second factor":
        enrol_totp(customer)
    if case == "known payee":
        pay(source, payee)
    if case == "own account":
        destination = funded_account(customer, account_type="CHECKING")
    before = balance(destination)
    page = confirmation(customer_client, source, destination, amount="900.00")
    assert "Confirm the transfer" in text(page) and not has_code_field(text(page))
    assert confirm(customer_client, page).status_code == 303
    assert balance(destination) == before + D("900.00")


def test_the_right_code_posts_the_transfer(customer_client, secret, source, payee):
    page = confirmation(customer_client, source, payee, amount="25.00")
    response = confirm(customer_client, page, totp_now(secret))
    assert response.status_code == 303
    assert (balance(source), balance(payee)) == (D("4975.00"), D("25.00"))


def test_a_recovery_code_can_approve_a_payment(customer_client, customer, source, payee):
    from bankapp.identity.factors import _replace_recovery_codes

    enrol_totp(customer)
    codes = _replace_recovery_codes(customer)
    db.session.commit()
    page = confirmation(customer_client, source, payee)
    assert confirm(customer_client, page, codes[0]).status_code == 303
    assert balance(payee) == D("10.00")


def test_the_approval_is_audited_with_the_transfer(customer_client, customer, secret, source,
                                                   payee):
    page = confirmation(customer_client, source, payee, amount="25.00")
    key = form_fields(text(page))["idempotency_key"]
    confirm(customer_client, page, totp_now(secret))
    [event] = audit_rows(Action.STEP_UP_SUCCESS)
    assert event.actor_id == customer.id and event.target_id == source.account_number
    assert event.details == {"from_account": source.account_number,
                             "to_account": payee.account_number, "amount": "25.00",
                             "idempotency_key": key, "reasons": [NEW_PAYEE],
                             "factor": "totp"}


def test_confirming_without_a_code_asks_for_it_and_counts_nothing(customer_client, secret,
                                                                  source, payee):
    page = confirmation(customer_client, source, payee)
    response = confirm(customer_client, page, "")
    assert response.status_code == 200 and "Enter the code." in text(response)
    assert balance(payee) == 0 and not audit_rows(Action.MFA_FAILURE)


def test_a_wrong_code_posts_nothing_and_counts_toward_the_lockout(customer_client, secret,
                                                                  source, payee):
    page = confirmation(customer_client, source, payee)
    response = confirm(customer_client, page, "000000")
    html = text(response)
    assert response.status_code == 200 and "Confirm the transfer" in html
    assert "That code is not right" in html and has_code_field(html)
    assert balance(payee) == 0 and entries() == 1  # only the opening deposit
    assert len(audit_rows(Action.MFA_FAILURE)) == 1
    assert audit_rows(Action.STEP_UP_FAILURE)[0].details["locked"] is False


def test_a_wrong_code_redirects_to_the_confirmation_page_so_reload_sends_nothing(
        customer_client, secret, source, payee):
    fields = form_fields(text(confirmation(customer_client, source, payee)))
    response = customer_client.post(TRANSFER, data={**fields, "code": "000000"})
    assert response.status_code == 303 and response.location.endswith(CONFIRM)
    page = text(customer_client.get(CONFIRM))
    assert "That code is not right" in page and has_code_field(page)
    # Said once: the page loaded again (reload, Back) is the confirmation without it.
    assert "That code is not right" not in text(customer_client.get(CONFIRM))
    assert balance(payee) == 0


def test_after_a_refused_posting_the_confirmation_page_is_gone(customer_client, secret,
                                                               source, payee, make_user):
    page = confirmation(customer_client, source, payee, amount="25.00")
    ledger.place_hold(source, D("4990.00"), "Cheque", datetime.now(timezone.utc)
                      + timedelta(days=1), make_user(role="teller"))
    refused = confirm(customer_client, page, totp_now(secret))
    assert "Insufficient available funds" in text(refused)
    back = customer_client.get(CONFIRM)  # Back: no page to confirm that transfer again
    assert back.status_code == 303 and back.location.endswith(TRANSFER)
    assert balance(payee) == 0


def test_a_wrong_payment_code_is_audited_as_a_payment_code_not_a_sign_in(customer_client,
                                                                         secret, source, payee):
    confirm(customer_client, confirmation(customer_client, source, payee), "000000")
    assert audit_rows(Action.MFA_FAILURE)[0].details["during"] == "payment"
    security = customer_client.get("/accounts/security/").get_data(as_text=True)
    assert "sign-in-failure" not in security


@pytest.mark.parametrize("code", ["abcdef", "1234567", "9" * 200, "12 34 5x"])
def test_a_malformed_code_posts_nothing(customer_client, secret, source, payee, code):
    page = confirmation(customer_client, source, payee)
    response = confirm(customer_client, page, code)
    assert response.status_code == 200 and "Enter the 6-digit code" in text(response)
    assert balance(payee) == 0


def test_a_code_already_used_is_refused(customer_client, secret, source, payee,
                                        make_user, funded_account):
    code = totp_now(secret)
    assert confirm(customer_client, confirmation(customer_client, source, payee),
                   code).status_code == 303
    other = funded_account(make_user(email="dave@example.com"))
    response = confirm(customer_client, confirmation(customer_client, source, other), code)
    assert response.status_code == 200 and "That code has just been used" in text(response)
    assert balance(other) == 0


def test_wrong_codes_lock_payment_approval(app, customer_client, secret, source, payee):
    page = confirmation(customer_client, source, payee)
    for _ in range(5):
        confirm(customer_client, page, "000000")
    response = confirm(customer_client, page, totp_now(secret))
    assert response.status_code == 429
    assert "payments that need a code cannot be approved for 15 minutes" in text(response)
    assert balance(payee) == 0
    assert len(audit_rows(Action.MFA_LOCKED)) == 1


def test_while_approval_is_locked_every_confirmation_page_says_so(customer_client, secret,
                                                                   source, payee):
    """Only the refused code is answered 429; a new confirmation page, or one sent back
    without a code, says once at the top that approval is locked."""
    locked = "payments that need a code cannot be approved for 15 minutes"
    page = confirmation(customer_client, source, payee)
    for _ in range(5):
        confirm(customer_client, page, "000000")
    fresh = confirmation(customer_client, source, payee, amount="11.00")
    assert fresh.status_code == 200 and text(fresh).count(locked) == 1
    empty = confirm(customer_client, fresh, "")
    assert empty.status_code == 200 and "Enter the code." in text(empty)
    assert text(empty).count(locked) == 1
    assert balance(payee) == 0


@pytest.mark.parametrize("field, value", [
    ("amount", "4000.00"),
    ("to_account", "other payee"),
    ("from_account", "other source"),
    ("idempotency_key", "0" * 32),
])
def test_changing_the_transfer_after_its_page_needs_a_new_confirmation(
        customer_client, customer, secret, source, payee, make_user, funded_account,
        field, value):
    if value == "other payee":
        value = funded_account(make_user(email="mallory@example.com")).account_number
    if value == "other source":
        value = funded_account(customer, "5000.00", account_type="CHECKING").account_number
    code = totp_now(secret)
    response = confirm(customer_client, confirmation(customer_client, source, payee), code,
                       **{field: value})
    html = text(response)
    assert response.status_code == 200 and "Confirm the transfer" in html
    assert "enter a new code" in html and has_code_field(html)
    assert entries() == (2 if field == "from_account" else 1)  # nothing new posted
    assert not audit_rows(Action.STEP_UP_SUCCESS) and not audit_rows(Action.MFA_FAILURE)
    # The new page shows the new details and approves them with a code.
    assert confirm(customer_client, response, code).status_code == 303


def test_a_changed_amount_shows_the_new_amount_for_its_code(customer_client, secret, source,
                                                            payee):
    page = confirmation(customer_client, source, payee, amount="10.00")
    response = confirm(customer_client, page, totp_now(secret), amount="4000.00")
    assert "4,000.00" in text(response) and form_fields(text(response))["amount"] == "4000.00"
    assert balance(payee) == 0


def test_a_double_submitted_confirmation_posts_once_without_a_new_code(
        customer_client, secret, source, payee):
    page = confirmation(customer_client, source, payee, amount="30.00")
    code = totp_now(secret)
    assert confirm(customer_client, page, code).status_code == 303
    again = confirm(customer_client, page, code)  # the same form, its code now used
    assert again.status_code == 303
    assert balance(payee) == D("30.00") and entries() == 2
    assert len(audit_rows(Action.STEP_UP_SUCCESS)) == 1 and not audit_rows(Action.MFA_FAILURE)
    follow = customer_client.get(again.headers["Location"])
    assert "already submitted" in text(follow)


def test_the_step_up_form_needs_its_csrf_token(customer_client, secret, source, payee):
    page = confirmation(customer_client, source, payee)
    response = confirm(customer_client, page, totp_now(secret), csrf_token="")
    assert response.status_code == 400 and balance(payee) == 0


def test_the_confirmation_page_never_shows_a_code_back(customer_client, secret, source, payee):
    page = confirmation(customer_client, source, payee)
    response = confirm(customer_client, page, "000001")
    assert "000001" not in text(response)


# ---------------------------------------------------------------- API


def api_transfer(client, user, source, destination, amount="10.00", otp=None, key=None):
    body = {"from_account": source.account_number, "to_account": destination.account_number,
            "amount": amount}
    if otp is not None:
        body["otp"] = otp
    return send(client, "POST", TRANSFERS_API, user, body, key=key or new_key())


def test_api_transfer_to_a_new_payee_needs_otp(client, customer, secret, source, payee):
    body = assert_problem(api_transfer(client, customer, source, payee), 403)
    assert body["type"].endswith("step-up-required")
    assert "first payment" in body["detail"] and body["errors"][0]["pointer"] == "#/otp"
    assert balance(payee) == 0


def test_api_transfer_above_the_threshold_needs_otp(client, customer, secret, source, payee):
    pay(source, payee)
    body = assert_problem(api_transfer(client, customer, source, payee, "1000.01"), 403)
    assert "above $1,000.00" in body["detail"]


@pytest.mark.parametrize("case", ["known payee", "own account", "no second factor"])
def test_api_transfer_without_step_up_needs_no_otp(client, customer, source, payee,
                                                   funded_account, case):
    destination = payee
    if case != "no second factor":
        enrol_totp(customer)
    if case == "known payee":
        pay(source, payee)
    if case == "own account":
        destination = funded_account(customer, account_type="CHECKING")
    assert api_transfer(client, customer, source, destination, "900.00").status_code == 201


def test_api_transfer_with_the_right_otp_posts(client, customer, secret, source, payee):
    response = api_transfer(client, customer, source, payee, otp=totp_now(secret))
    assert response.status_code == 201 and balance(payee) == D("10.00")
    assert audit_rows(Action.STEP_UP_SUCCESS)[0].details["to_account"] == payee.account_number


def test_api_wrong_otp_is_refused_and_counts_toward_the_lockout(client, customer, secret,
                                                                source, payee):
    body = assert_problem(api_transfer(client, customer, source, payee, otp="000000"), 401)
    assert body["type"].endswith("mfa-failed") and balance(payee) == 0
    for _ in range(4):
        api_transfer(client, customer, source, payee, otp="000000")
    body = assert_problem(api_transfer(client, customer, source, payee,
                                       otp=totp_now(secret)), 429)
    assert body["type"].endswith("mfa-locked") and balance(payee) == 0


def test_api_step_up_refusal_is_not_stored_under_the_key(client, customer, secret, source,
                                                         payee):
    key = new_key()
    assert api_transfer(client, customer, source, payee, key=key).status_code == 403
    response = api_transfer(client, customer, source, payee, otp=totp_now(secret), key=key)
    assert response.status_code == 201 and balance(payee) == D("10.00")


def test_api_otp_is_not_part_of_the_request_fingerprint(client, customer, secret, source,
                                                        payee):
    key = new_key()
    first = api_transfer(client, customer, source, payee, otp=totp_now(secret), key=key)
    retry = api_transfer(client, customer, source, payee, otp=totp_now(secret, 1), key=key)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json() and balance(payee) == D("10.00")


def test_api_replay_of_a_posted_key_uses_no_code(client, customer, secret, source, payee):
    key = new_key()
    api_transfer(client, customer, source, payee, otp=totp_now(secret), key=key)
    used_step = db.session.scalar(sa.select(TotpDevice.last_step))
    for otp in (None, totp_now(secret, 1)):
        retry = api_transfer(client, customer, source, payee, otp=otp, key=key)
        assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    db.session.expire_all()
    assert db.session.scalar(sa.select(TotpDevice.last_step)) == used_step
    assert len(audit_rows(Action.STEP_UP_SUCCESS)) == 1


def test_api_replay_of_a_pruned_answer_uses_no_code(client, customer, secret, source, payee):
    from bankapp.models import ApiIdempotencyKey

    key = new_key()
    api_transfer(client, customer, source, payee, otp=totp_now(secret), key=key)
    db.session.execute(sa.delete(ApiIdempotencyKey))
    db.session.commit()
    retry = api_transfer(client, customer, source, payee, key=key)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert balance(payee) == D("10.00")


def test_api_key_reused_for_another_transfer_is_refused_without_a_code(
        client, customer, secret, source, payee):
    key = new_key()
    api_transfer(client, customer, source, payee, otp=totp_now(secret), key=key)
    body = assert_problem(api_transfer(client, customer, source, payee, "20.00", key=key), 422)
    assert body["type"].endswith("idempotency-key-reused") and balance(payee) == D("10.00")


def test_api_a_used_otp_cannot_approve_another_transfer(client, customer, secret, source,
                                                        payee, make_user, funded_account):
    code = totp_now(secret)
    assert api_transfer(client, customer, source, payee, otp=code).status_code == 201
    other = funded_account(make_user(email="erin@example.com"))
    body = assert_problem(api_transfer(client, customer, source, other, otp=code), 401)
    assert body["type"].endswith("mfa-failed") and balance(other) == 0


# ---------------------------------------------------------------- concurrency (PostgreSQL)


def _at_once(app, user, bodies_and_keys) -> list[tuple[int, dict]]:
    """Send these API transfers from parallel threads, released together."""
    from support.api import bearer

    barrier = threading.Barrier(len(bodies_and_keys))
    answers = []

    def one(body, key):
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            response = client.post(TRANSFERS_API, json=body,
                                   headers={**bearer(user), "Idempotency-Key": key})
            answers.append((response.status_code, response.get_json()))
            db.session.remove()

    threads = [threading.Thread(target=one, args=pair) for pair in bodies_and_keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    return answers


@pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL")
def test_one_code_sent_with_many_transfers_at_once_approves_one(app, customer, secret, source,
                                                                payee):
    body = {"from_account": source.account_number, "to_account": payee.account_number,
            "amount": "10.00", "otp": totp_now(secret)}
    answers = _at_once(app, customer, [(body, new_key()) for _ in range(4)])
    assert sorted(status for status, _ in answers) == [201, 401, 401, 401]
    assert balance(payee) == D("10.00") and len(audit_rows(Action.STEP_UP_SUCCESS)) == 1


@pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL")
def test_concurrent_retries_of_one_approved_transfer_post_once(app, customer, secret, source,
                                                               payee):
    body = {"from_account": source.account_number, "to_account": payee.account_number,
            "amount": "10.00", "otp": totp_now(secret)}
    key = new_key()
    answers = _at_once(app, customer, [(body, key)] * 4)
    # The code approves the first; a twin either replays its answer or, racing it, finds
    # the code used (a retry then gets the stored answer). Never a second posting.
    assert {status for status, _ in answers} <= {201, 401} and 201 in dict(answers)
    assert balance(payee) == D("10.00") and entries() == 2
    retry = api_transfer(app.test_client(), customer, source, payee, key=key)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"

"""Step-up by passkey: on a transfer's confirmation page a passkey assertion can approve the
transfer instead of the code. Its challenge is bound to that page's approval (source, payee,
amount, one-time key), so an assertion made for one transfer cannot approve another.

The ceremonies go through py_webauthn's real checks with the software authenticator
(tests/support/passkeys.py), the way public/static/js/passkeys.js drives them.
"""
from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.identity.stepup import NEW_PAYEE
from bankapp.extensions import db
from bankapp.models import JournalEntry, WebAuthnCredential
from support.backoffice import audit_rows, balance
from support.passkeys import add_passkey, post_json, SoftAuthenticator
from support.users import enrol_totp, log_in_as, totp_now
from support.web import form_fields, post_form

TRANSFER = "/accounts/transfer/"
CONFIRM = "/accounts/transfer/confirm/"
STEP_UP_OPTIONS = "/accounts/passkeys/step-up/options/"
REFUSED = "Your passkey did not approve this transfer"



def entries() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def passkey(customer_client):
    """Alice's passkey (her only second factor)."""
    authenticator, answer = add_passkey(customer_client)
    assert answer.status_code == 201
    return authenticator


@pytest.fixture
def source(customer, funded_account):
    return funded_account(customer, "5000.00")


@pytest.fixture
def payee(make_user, funded_account):
    """Bob's account: Alice has never paid it."""
    return funded_account(make_user(email="bob@example.com", first_name="Bob"))


def confirmation(client, source, destination, amount="10.00"):
    return post_form(client, TRANSFER, {
        "from_account": source.account_number, "to_account": destination.account_number,
        "amount": amount, "description": ""}, follow_redirects=True)


def passkey_answer(client, page, authenticator: SoftAuthenticator, **tamper) -> str:
    """The "Approve with a passkey" button: options bound to the page's approval, the
    authenticator's assertion as the JSON the script puts in ``passkey_assertion``."""
    fields = form_fields(text(page))
    options = post_json(client, STEP_UP_OPTIONS, {"approval": fields["approval"]},
                        fields["csrf_token"])
    assert options.status_code == 200, options.get_json()
    return json.dumps(authenticator.get(options.get_json(), **tamper))


def send(client, page, assertion: str | None = None, code: str = ""):
    """Submit a confirmation page's form as the browser would."""
    fields = form_fields(text(page))
    fields["code"] = code
    if assertion is not None:
        fields["passkey_assertion"] = assertion
    response = client.post(TRANSFER, data=fields)
    if response.status_code == 303 and response.location.endswith(CONFIRM):
        return client.get(response.location)  # a refusal: the confirmation page again
    return response


# ---------------------------------------------------------------- approving


def test_the_confirmation_page_offers_the_passkey(customer_client, passkey, source, payee):
    html = text(confirmation(customer_client, source, payee))
    assert "Approve with a passkey" in html and 'data-passkey="step-up"' in html
    assert 'name="passkey_assertion"' in html and "js/passkeys.js" in html


def test_no_passkey_button_without_a_passkey(customer_client, customer, source, payee):
    enrol_totp(customer)
    html = text(confirmation(customer_client, source, payee))
    assert 'name="code"' in html and "Approve with a passkey" not in html


def test_a_passkey_approves_a_payment_to_a_new_payee(customer_client, customer, passkey,
                                                     source, payee):
    page = confirmation(customer_client, source, payee, amount="25.00")
    key = form_fields(text(page))["idempotency_key"]
    response = send(customer_client, page, passkey_answer(customer_client, page, passkey))
    assert response.status_code == 303
    assert (balance(source), balance(payee)) == (D("4975.00"), D("25.00"))
    [event] = audit_rows(Action.STEP_UP_SUCCESS)
    assert event.actor_id == customer.id and event.details == {
        "from_account": source.account_number, "to_account": payee.account_number,
        "amount": "25.00", "idempotency_key": key, "reasons": [NEW_PAYEE], "factor": "passkey"}


def test_the_code_still_approves_when_the_customer_also_has_a_passkey(
        customer_client, customer, passkey, source, payee):
    secret = enrol_totp(customer)
    page = confirmation(customer_client, source, payee)
    assert send(customer_client, page, code=totp_now(secret)).status_code == 303
    assert balance(payee) == D("10.00")
    assert audit_rows(Action.STEP_UP_SUCCESS)[0].details["factor"] == "totp"


def test_neither_a_code_nor_a_passkey_asks_again(customer_client, passkey, source, payee):
    response = send(customer_client, confirmation(customer_client, source, payee))
    assert response.status_code == 200 and "Enter the code." in text(response)
    assert "Approve with a passkey" in text(response)
    assert balance(payee) == 0 and not audit_rows(Action.STEP_UP_FAILURE)


# ---------------------------------------------------------------- refusals


def assert_refused(response, payee):
    html = text(response)
    assert response.status_code == 200 and "Confirm the transfer" in html
    assert REFUSED in html and "Approve with a passkey" in html
    assert balance(payee) == 0 and entries() <= 2  # the opening deposit(s) only
    assert not audit_rows(Action.STEP_UP_SUCCESS)
    assert audit_rows(Action.STEP_UP_FAILURE)[-1].details["factor"] == "passkey"


@pytest.mark.parametrize("other", ["amount", "payee", "one-time key"])
def test_an_assertion_made_for_one_transfer_cannot_approve_another(
        customer_client, make_user, funded_account, passkey, source, payee, other):
    shown = confirmation(customer_client, source, payee)
    assertion = passkey_answer(customer_client, shown, passkey)
    destination, amount = payee, "10.00"
    if other == "payee":
        destination = funded_account(make_user(email="mallory@example.com"))
    if other == "amount":
        amount = "4000.00"
    # Another confirmation page (every page has its own one-time key), sent with its own
    # approval and the assertion made for the first one.
    response = send(customer_client, confirmation(customer_client, source, destination, amount),
                    assertion)
    assert_refused(response, destination)
    assert balance(payee) == 0


def test_an_assertion_sent_with_changed_details_is_not_even_checked(
        customer_client, passkey, source, payee):
    page = confirmation(customer_client, source, payee)
    fields = form_fields(text(page))
    fields.update(passkey_assertion=passkey_answer(customer_client, page, passkey),
                  amount="4000.00")
    response = customer_client.post(TRANSFER, data=fields, follow_redirects=True)
    assert response.status_code == 200 and "enter a new code" in text(response)
    assert balance(payee) == 0 and not audit_rows(Action.STEP_UP_SUCCESS)


def test_a_replayed_assertion_is_refused(customer_client, passkey, source, payee):
    first = confirmation(customer_client, source, payee, amount="1500.00")
    assertion = passkey_answer(customer_client, first, passkey)
    assert send(customer_client, first, assertion).status_code == 303
    # The same assertion for a new transfer of the same details (above the threshold, so it
    # needs approval again): its challenge is spent, even once a new one is pending.
    second = confirmation(customer_client, source, payee, amount="1500.00")
    response = send(customer_client, second, assertion)
    assert response.status_code == 200 and REFUSED in text(response)
    passkey_answer(customer_client, second, passkey)  # a fresh challenge for this page
    response = send(customer_client, second, assertion)
    assert response.status_code == 200 and REFUSED in text(response)
    assert balance(payee) == D("1500.00") and len(audit_rows(Action.STEP_UP_SUCCESS)) == 1


def test_a_double_submitted_passkey_approval_posts_once(customer_client, passkey, source,
                                                        payee):
    page = confirmation(customer_client, source, payee)
    assertion = passkey_answer(customer_client, page, passkey)
    assert send(customer_client, page, assertion).status_code == 303
    assert send(customer_client, page, assertion).status_code == 303  # replays its posting
    assert balance(payee) == D("10.00") and len(audit_rows(Action.STEP_UP_SUCCESS)) == 1


def test_another_users_passkey_is_refused(app, customer_client, customer, passkey, source,
                                          payee, make_user):
    bob_client = app.test_client()
    log_in_as(bob_client, payee.owner)
    bobs_passkey, answer = add_passkey(bob_client)
    assert answer.status_code == 201
    page = confirmation(customer_client, source, payee)
    assert_refused(send(customer_client, page, passkey_answer(customer_client, page,
                                                              bobs_passkey)), payee)


@pytest.mark.parametrize("tamper", [{"origin": "https://evil.example"}, {"count": 3},
                                    {"challenge": "AAAA"}, {"rp_id": "evil.example"}])
def test_a_tampered_assertion_is_refused(customer_client, passkey, source, payee, tamper):
    # The passkey has signed 5 times before: a count of 3 is a clone's or a replay's.
    db.session.execute(sa.update(WebAuthnCredential).values(sign_count=5))
    db.session.commit()
    passkey.sign_count = 5  # its next honest count is 6
    page = confirmation(customer_client, source, payee)
    assert_refused(send(customer_client, page,
                        passkey_answer(customer_client, page, passkey, **tamper)), payee)


@pytest.mark.parametrize("assertion", ["not json", "{}", json.dumps({"id": "x" * 200})])
def test_a_malformed_assertion_is_refused(customer_client, passkey, source, payee, assertion):
    page = confirmation(customer_client, source, payee)
    passkey_answer(customer_client, page, passkey)
    assert_refused(send(customer_client, page, assertion), payee)


# ---------------------------------------------------------------- the options endpoint


def test_options_need_the_pages_genuine_approval(customer_client, passkey, source, payee):
    page = confirmation(customer_client, source, payee)
    fields = form_fields(text(page))
    for approval in ("", "forged." + fields["approval"][7:], None, 42):
        response = post_json(customer_client, STEP_UP_OPTIONS, {"approval": approval},
                             fields["csrf_token"])
        assert response.status_code == 400 and "has expired" in response.get_json()["detail"]


def test_options_refuse_another_users_approval(app, customer_client, passkey, source, payee,
                                               make_user, funded_account):
    carol = make_user(email="carol@example.com")
    carol_client = app.test_client()
    log_in_as(carol_client, carol)
    add_passkey(carol_client)
    carols_page = confirmation(carol_client, funded_account(carol, "50.00"), payee)
    approval = form_fields(text(carols_page))["approval"]
    token = form_fields(text(confirmation(customer_client, source, payee)))["csrf_token"]
    response = post_json(customer_client, STEP_UP_OPTIONS, {"approval": approval}, token)
    assert response.status_code == 400


def test_options_need_the_csrf_token(customer_client, passkey, source, payee):
    fields = form_fields(text(confirmation(customer_client, source, payee)))
    response = post_json(customer_client, STEP_UP_OPTIONS, {"approval": fields["approval"]})
    assert response.status_code == 400


def test_options_need_a_json_body(customer_client, passkey, source, payee):
    fields = form_fields(text(confirmation(customer_client, source, payee)))
    response = post_json(customer_client, STEP_UP_OPTIONS, token=fields["csrf_token"],
                         raw="approval=x")
    assert response.status_code == 400


def test_options_need_a_logged_in_user(client):
    assert client.post(STEP_UP_OPTIONS, json={}).status_code in (302, 400, 401)

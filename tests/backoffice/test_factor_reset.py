"""Staff reset a customer's second factors from the customer page (lost phone and recovery
codes): audited, with the owner emailed; above MAKER_CHECKER_THRESHOLD (what the customer's
accounts hold together) it waits for an admin other than the requester."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.extensions import db, mail
from bankapp.models import FactorResetRequest, FactorResetStatus, TotpDevice
from support.backoffice import (  # noqa: F401  (fixtures)
    admin,
    admin_client,
    audit_rows,
    other_admin,
    post_with_csrf,
    teller,
    teller_client,
)
from support.users import enrol_totp, log_in_as
from support.web import csrf_token

REASON = "Lost phone; passport checked at the counter"


@pytest.fixture
def enrolled(customer, funded_account):
    """Alice, with an authenticator app and 500.00 (under the policy's 10,000.00)."""
    funded_account(customer, "500.00")
    enrol_totp(customer)
    return customer


@pytest.fixture
def wealthy(customer, funded_account):
    """Alice, with an authenticator app and 15,000.00 across two accounts (over the policy)."""
    funded_account(customer, "9000.00")
    funded_account(customer, "6000.00", account_type="CHECKING")
    enrol_totp(customer)
    return customer


def ask_reset(client, customer, reason=REASON):
    page = f"/teller/customers/{customer.id}/"
    return client.post(f"/teller/customers/{customer.id}/reset-second-factor/",
                       data={"csrf_token": csrf_token(client, page), "reason": reason})


def has_totp(customer) -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(TotpDevice).where(
        TotpDevice.user_id == customer.id)) == 1


def test_a_teller_resets_a_customers_second_factor_under_the_policy(teller_client, teller,
                                                                     enrolled):
    with mail.record_messages() as outbox:
        answer = ask_reset(teller_client, enrolled)
    assert answer.status_code == 303 and not has_totp(enrolled)
    db.session.refresh(enrolled)
    assert not enrolled.mfa_enabled
    [event] = audit_rows(Action.MFA_RESET)
    assert event.actor_id == teller.id and event.details == {"reason": REASON}
    assert [m.recipients for m in outbox] == [[enrolled.email]]
    page = teller_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "second factor is reset: every session has ended" in page.replace("&#39;", "'")


def test_a_reset_needs_a_reason(teller_client, enrolled):
    answer = ask_reset(teller_client, enrolled, reason="   ")
    assert answer.status_code == 400 and has_totp(enrolled)
    assert "Say why (for example: lost phone" in answer.get_data(as_text=True)


def test_a_customer_without_a_second_factor_has_nothing_to_reset(teller_client, customer):
    answer = ask_reset(teller_client, customer)
    assert answer.status_code == 409
    assert "This customer has no second factor to reset." in answer.get_data(as_text=True)
    assert not audit_rows(Action.MFA_RESET)


def test_over_the_policy_a_reset_waits_for_an_admin(teller_client, teller, wealthy):
    answer = ask_reset(teller_client, wealthy)
    assert answer.status_code == 303 and has_totp(wealthy)
    page = teller_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "accounts hold more than $10,000.00: the reset waits for an admin" in page.replace(
        "&#39;", "'")
    assert "A reset waits for an admin's approval (asked by Tom Teller)." in page
    [event] = audit_rows(Action.MFA_RESET_REQUEST)
    assert event.actor_id == teller.id and event.details["reason"] == REASON


def test_a_second_request_while_one_waits_is_refused(teller_client, wealthy):
    ask_reset(teller_client, wealthy)
    answer = ask_reset(teller_client, wealthy)
    assert answer.status_code == 409
    assert "already waits for approval" in answer.get_data(as_text=True)


def test_an_admin_approves_a_waiting_reset(app, client, teller, admin, wealthy):
    log_in_as(client, teller)
    ask_reset(client, wealthy)
    log_in_as(client, admin)
    page = client.get("/teller/approvals/").get_data(as_text=True)
    assert re.search(r'<tr class="factor-reset">.*Alice Archer.*Lost phone', page, re.S)
    waiting = db.session.scalar(sa.select(FactorResetRequest))
    with mail.record_messages() as outbox:
        answer = post_with_csrf(client, app, f"/teller/resets/{waiting.id}/approve/")
    assert "The second factor of Alice Archer is reset." in client.get(
        answer.headers["Location"]).get_data(as_text=True)
    db.session.refresh(waiting)
    assert waiting.status == FactorResetStatus.DONE and not has_totp(wealthy)
    [event] = audit_rows(Action.MFA_RESET)
    assert event.actor_id == admin.id and event.details["requested_by"] == teller.id
    assert [m.recipients for m in outbox] == [[wealthy.email]]


def test_the_requester_cannot_approve_their_own_reset(app, admin_client, admin, wealthy):
    ask_reset(admin_client, wealthy)
    waiting = db.session.scalar(sa.select(FactorResetRequest))
    answer = post_with_csrf(admin_client, app, f"/teller/resets/{waiting.id}/approve/")
    flashed = admin_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "You cannot decide your own request: another admin must." in flashed
    assert has_totp(wealthy) and waiting.status == FactorResetStatus.PENDING


def test_a_rejected_reset_changes_nothing(app, client, teller, admin, wealthy):
    log_in_as(client, teller)
    ask_reset(client, wealthy)
    log_in_as(client, admin)
    waiting = db.session.scalar(sa.select(FactorResetRequest))
    answer = post_with_csrf(client, app, f"/teller/resets/{waiting.id}/reject/")
    assert "The reset for Alice Archer is rejected: nothing changed." in client.get(
        answer.headers["Location"]).get_data(as_text=True)
    db.session.refresh(waiting)
    assert waiting.status == FactorResetStatus.REJECTED and has_totp(wealthy)
    assert len(audit_rows(Action.MFA_RESET_REJECT)) == 1 and not audit_rows(Action.MFA_RESET)


def test_a_teller_cannot_decide_a_reset(app, client, teller, admin, wealthy):
    log_in_as(client, admin)
    ask_reset(client, wealthy)
    log_in_as(client, teller)
    waiting = db.session.scalar(sa.select(FactorResetRequest))
    assert post_with_csrf(client, app, f"/teller/resets/{waiting.id}/approve/").status_code == 403
    assert has_totp(wealthy)


def test_a_waiting_reset_counts_on_the_admin_desk(client, teller, admin, wealthy):
    log_in_as(client, teller)
    ask_reset(client, wealthy)
    log_in_as(client, admin)
    assert re.search(r'id="approvals-waiting-count">1<', client.get("/teller/").get_data(
        as_text=True))


def test_a_decided_reset_cannot_be_decided_again(app, client, teller, admin, wealthy):
    log_in_as(client, teller)
    ask_reset(client, wealthy)
    log_in_as(client, admin)
    waiting = db.session.scalar(sa.select(FactorResetRequest))
    post_with_csrf(client, app, f"/teller/resets/{waiting.id}/reject/")
    answer = post_with_csrf(client, app, f"/teller/resets/{waiting.id}/approve/")
    assert "This request is already decided." in client.get(
        answer.headers["Location"]).get_data(as_text=True)
    assert has_totp(wealthy) and not audit_rows(Action.MFA_RESET)

"""Email alerts: large transfer out, low balance, failed scheduled payment, hold placed; sent
only after the transaction that caused them commits, as each customer chose on one page."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from bankapp import ledger
from bankapp.notifications import alerts
from bankapp.notifications import outbox
from bankapp.api.idempotency import find_record
from bankapp.audit import Action
from bankapp.extensions import db, mail
from bankapp.models import AlertSettings
from support.api import new_key, send
from support.backoffice import audit_rows
from support.users import age_the_sign_in
from support.web import post_form

SETTINGS = "/accounts/notifications/"


@pytest.fixture
def source(customer, funded_account):
    return funded_account(customer, "1000.00", "CHECKING")


@pytest.fixture
def bob_account(make_user, funded_account):
    return funded_account(make_user(email="bob@example.com"))


def choose(customer, threshold=None, floor=None, scheduled=True, hold=True):
    alerts.save_settings(customer, large_transfer_threshold=threshold and D(threshold),
                         low_balance_floor=floor and D(floor), scheduled_failed_on=scheduled,
                         hold_placed_on=hold)


def sent(action) -> list:
    """What ``action`` emails: the outbox rows it committed, delivered as a request's would be."""
    with mail.record_messages() as messages:
        action()
        outbox.deliver_committed()
    return messages


def test_no_balance_alerts_until_the_customer_sets_an_amount(customer, source, bob_account):
    messages = sent(lambda: ledger.transfer(source, bob_account, D("990.00"), "", customer))
    assert messages == []


def test_a_transfer_above_the_threshold_is_emailed(customer, source, bob_account):
    choose(customer, threshold="500.00")
    [email] = sent(lambda: ledger.transfer(source, bob_account, D("500.01"), "", customer))
    assert email.recipients == [customer.email] and "500.01" in email.body
    assert source.account_number[-4:] in email.body
    assert source.account_number not in email.body  # only its last four digits


def test_an_api_transfer_that_alerts_is_answered_once_and_emailed_once(client, customer, source,
                                                                       bob_account):
    """On PostgreSQL ledger_post() hands such a posting back to the generic path: the retry
    still finds the posting, replays its answer and sends nothing."""
    choose(customer, threshold="100.00")
    body = {"from_account": source.account_number, "to_account": bob_account.account_number,
            "amount": "150.00"}
    key = new_key()

    def transfer():
        return send(client, "POST", "/api/v1/transfers", customer, body, key=key)

    with mail.record_messages() as messages:
        first = transfer()
        again = transfer()
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.get_json()["balance_after"] == "850.00"
    assert find_record(customer, key) is None  # the entry is the record
    [email] = messages
    assert email.recipients == [customer.email] and "150.00" in email.body


def test_a_transfer_of_exactly_the_threshold_is_not_emailed(customer, source, bob_account):
    choose(customer, threshold="500.00")
    assert sent(lambda: ledger.transfer(source, bob_account, D("500.00"), "", customer)) == []


def test_a_large_withdrawal_is_not_a_transfer_alert(customer, source):
    choose(customer, threshold="10.00")
    assert sent(lambda: ledger.withdraw(source, D("50.00"), "", customer)) == []


def test_the_receiver_of_a_large_transfer_is_not_alerted(customer, source, bob_account):
    choose(bob_account.owner, threshold="1.00")
    assert sent(lambda: ledger.transfer(source, bob_account, D("50.00"), "", customer)) == []


def test_crossing_below_the_floor_is_emailed_once(customer, source, bob_account):
    choose(customer, floor="100.00")
    assert sent(lambda: ledger.withdraw(source, D("900.00"), "", customer)) == []  # 100.00
    [email] = sent(lambda: ledger.withdraw(source, D("0.01"), "", customer))
    assert "99.99" in email.body and email.subject == "Your balance is low"
    assert sent(lambda: ledger.withdraw(source, D("10.00"), "", customer)) == []
    ledger.deposit(source, D("500.00"), "", customer)
    assert len(sent(lambda: ledger.transfer(source, bob_account, D("500.00"), "",
                                            customer))) == 1


def test_a_refused_posting_sends_no_alert(customer, source, bob_account):
    choose(customer, threshold="1.00", floor="5000.00")
    with mail.record_messages() as messages:
        with pytest.raises(ledger.InsufficientFunds):
            ledger.transfer(source, bob_account, D("1000.01"), "", customer)
        db.session.commit()  # a later commit must not carry the dropped alerts
        outbox.deliver_committed()
    assert messages == []


def test_an_alert_waits_for_the_commit_and_is_dropped_by_a_rollback(customer):
    with mail.record_messages() as messages:
        alerts.queue_alert(customer.email, "Kept back", "body")
        outbox.deliver_committed()
        assert messages == []
        db.session.rollback()
        db.session.commit()
        alerts.queue_alert(customer.email, "Sent", "body")
        db.session.commit()
        outbox.deliver_committed()
    assert [message.subject for message in messages] == ["Sent"]


def test_a_hold_placed_is_emailed_with_its_reason(customer, source):
    def place():
        alerts.hold_placed(source, D("25.00"), "Card dispute")
        db.session.commit()
    [email] = sent(place)
    assert "25.00" in email.body and "Card dispute" in email.body


def test_a_balance_alert_is_written_in_the_recipients_language(customer, source, bob_account):
    customer.locale = "fr"
    choose(customer, threshold="500.00")
    [email] = sent(lambda: ledger.transfer(source, bob_account, D("500.01"), "", customer))
    assert email.subject == "Un virement important est sorti de votre compte"
    assert "Si vous ne l’avez pas fait, contactez la banque immédiatement." in email.body


def test_a_hold_alert_is_written_in_the_recipients_language(customer, source):
    customer.locale = "fr"
    db.session.commit()

    def place():
        alerts.hold_placed(source, D("25.00"), "Litige carte")
        db.session.commit()
    [email] = sent(place)
    assert email.subject == "Un blocage a été placé sur votre compte"
    assert "Motif\xa0: Litige carte" in email.body


def test_a_customer_can_turn_off_hold_and_failed_payment_alerts(customer, source):
    choose(customer, hold=False, scheduled=False)
    outbox.deliver_committed()  # the notice that they were switched off goes out first
    assert sent(lambda: (alerts.hold_placed(source, D("1.00"), "x"), db.session.commit())) == []


# ---------------------------------------------------------------- the settings page


def test_the_settings_page_saves_the_customers_choices(customer_client, customer):
    response = post_form(customer_client, SETTINGS, {
        "large_transfer_on": "y", "large_transfer_threshold": "1,500.00",
        "low_balance_on": "y", "low_balance_floor": "50", "hold_placed_on": "y"})
    assert response.status_code == 302
    settings = db.session.get(AlertSettings, customer.id)
    assert settings.large_transfer_threshold == D("1500.00")
    assert settings.low_balance_floor == D("50.00")
    assert settings.scheduled_failed_on is False and settings.hold_placed_on is True
    assert len(audit_rows(Action.ALERT_SETTINGS)) == 1
    page = customer_client.get(SETTINGS).get_data(as_text=True)
    assert 'value="1500.00"' in page


def test_switching_alerts_off_needs_a_recent_sign_in(customer_client, customer):
    age_the_sign_in(customer_client)
    response = post_form(customer_client, SETTINGS, {})  # every box unticked
    assert response.status_code == 302
    assert "/accounts/reauthenticate/" in response.headers["Location"]
    assert db.session.get(AlertSettings, customer.id) is None  # the defaults stay on


def test_switching_alerts_off_tells_the_owner_by_email(customer_client, customer):
    with mail.record_messages() as messages:
        post_form(customer_client, SETTINGS, {"hold_placed_on": "y"})
    [notice] = [m for m in messages if m.recipients == ["alice@example.com"]]
    assert "switched off" in notice.body and "failed" in notice.body


def test_switching_an_alert_on_needs_no_recent_sign_in(customer_client, customer):
    age_the_sign_in(customer_client)
    response = post_form(customer_client, SETTINGS, {
        "scheduled_failed_on": "y", "hold_placed_on": "y", "low_balance_on": "y",
        "low_balance_floor": "50"})
    assert response.status_code == 302 and response.headers["Location"].endswith(SETTINGS)
    assert db.session.get(AlertSettings, customer.id).low_balance_floor == D("50.00")


def test_the_defaults_tell_of_failed_payments_and_holds(customer_client, customer):
    page = customer_client.get(SETTINGS).get_data(as_text=True)
    assert 'id="scheduled_failed_on" name="scheduled_failed_on" type="checkbox" value="y"' in page
    assert 'checked' in page and db.session.get(AlertSettings, customer.id) is None


def test_an_alert_switched_off_keeps_no_amount(customer_client, customer):
    post_form(customer_client, SETTINGS, {"large_transfer_threshold": "abc"})
    settings = db.session.get(AlertSettings, customer.id)
    assert settings.large_transfer_on is False and settings.large_transfer_threshold is None


@pytest.mark.parametrize("field, value, message", [
    ("large_transfer", "", "Enter an amount"),
    ("large_transfer", "0", "greater than zero"),
    ("large_transfer", "-1", "greater than zero"),
    ("large_transfer", "10.005", "two decimal places"),
    ("large_transfer", "NaN", "such as 12.50"),
    ("large_transfer", "1e9", "such as 12.50"),
    ("low_balance", "Infinity", "such as 12.50"),
    ("low_balance", "1,000,000.01", "per-transaction limit"),
])
def test_a_bad_amount_is_explained_and_saves_nothing(customer_client, customer, field, value,
                                                     message):
    amount = "large_transfer_threshold" if field == "large_transfer" else "low_balance_floor"
    response = post_form(customer_client, SETTINGS, {f"{field}_on": "y", amount: value})
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert db.session.get(AlertSettings, customer.id) is None

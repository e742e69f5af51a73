"""The scheduled payments pages: set one up (bad input explained, nothing saved), see its
next date and payments, pause, resume and cancel it; the CLI and the cron route run them."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import Frequency, OrderStatus, Payee, ScheduledOrder
from support.backoffice import audit_rows, balance
from support.users import enrol_totp, log_in_as, totp_now
from support.web import form_fields, post_form

NEW = "/accounts/scheduled/new/"
CRON = "/internal/cron/run-scheduled"


@pytest.fixture
def source(customer, funded_account):
    return funded_account(customer, "1000.00", "CHECKING")


@pytest.fixture
def bob_account(customer, make_user, funded_account):
    """Bob's account, saved as one of Alice's payees."""
    account = funded_account(make_user(email="bob@example.com", first_name="Bob"))
    db.session.add(Payee(user_id=customer.id, account_id=account.id, nickname="Bob"))
    db.session.commit()
    return account


def text(response) -> str:
    return response.get_data(as_text=True)


def tomorrow() -> date:
    return ledger.bank_today() + timedelta(days=1)


def order_form(source, destination, **changes) -> dict:
    data = {"from_account": source.account_number, "to_account": destination.account_number,
            "amount": "50.00", "frequency": "monthly", "start_on": tomorrow().isoformat(),
            "end_on": "", "max_occurrences": "", "description": "Rent"}
    return {**data, **changes}


def orders() -> list[ScheduledOrder]:
    return list(db.session.scalars(sa.select(ScheduledOrder)))


def test_a_customer_schedules_a_monthly_payment_to_a_payee(customer_client, source,
                                                           bob_account):
    response = post_form(customer_client, NEW, order_form(source, bob_account))
    [order] = orders()
    assert response.status_code == 303 and response.location.endswith(f"/{order.id}/")
    assert order.frequency == Frequency.MONTHLY and order.day_of_month == tomorrow().day
    assert order.amount == D("50.00") and order.description == "Rent"
    page = text(customer_client.get(response.location))
    assert order.next_due_on.isoformat() in page and f"Monthly on day {order.day_of_month}" in page


def test_the_form_offers_payees_then_own_accounts(customer_client, customer, source,
                                                  bob_account, funded_account):
    savings = funded_account(customer)
    html = text(customer_client.get(NEW))
    assert html.index(f'name="to_account" value="{bob_account.account_number}"') < html.index(
        f'name="to_account" value="{savings.account_number}"')


def test_a_payment_to_an_own_account_can_be_scheduled(customer_client, customer, source,
                                                      funded_account):
    savings = funded_account(customer)
    post_form(customer_client, NEW, order_form(source, savings, frequency="weekly"))
    [order] = orders()
    assert order.destination_account_id == savings.id and order.day_of_month is None


AMOUNT_TRAPS = ["0", "-5", "10.005", "NaN", "sNaN", "Infinity", "1e3", "١٢", "1,000,000.01",
                ""]


def test_the_order_form_does_not_ask_for_the_day_of_the_month(customer_client, source):
    page = text(customer_client.get(NEW))
    assert 'name="start_on"' in page and 'name="day_of_month"' not in page
    assert "Day of the month" not in page


@pytest.mark.parametrize("start_in_days", [1, 45])
def test_a_monthly_order_takes_its_day_from_the_first_payment_date(
        customer_client, source, bob_account, start_in_days):
    first = ledger.bank_today() + timedelta(days=start_in_days)
    response = post_form(customer_client, NEW, order_form(source, bob_account,
                                                          start_on=first.isoformat()))
    [order] = orders()
    assert response.status_code == 303
    assert order.day_of_month == first.day and order.next_due_on == first


@pytest.mark.parametrize("changes, message", [
    ({"start_on": "2020-01-01"}, "after today"),
    ({"start_on": "{today}"}, "after today"),
    ({"start_on": "not-a-date"}, "Not a valid date"),
    ({"end_on": "{yesterday}"}, "on or after the first payment date"),
    ({"max_occurrences": "0"}, "from 1 to 1000"),
    ({"end_on": "2099-01-01", "max_occurrences": "3"}, "not both"),
    ({"to_account": "{source}"}, "paid from"),
    ({"to_account": "ACC-000000000"}, "not one of your payees or accounts"),
    ({"to_account": "GL-VAULT"}, "not one of your payees or accounts"),
    ({"from_account": "{bob}"}, "Not a valid choice"),
    ({"frequency": "daily"}, "Not a valid choice"),
    *[({"amount": trap}, "") for trap in AMOUNT_TRAPS],
], ids=lambda value: str(value)[:40])
def test_bad_input_is_explained_and_saves_nothing(customer_client, source, bob_account,
                                                  changes, message):
    today = ledger.bank_today()
    values = {name: value.format(today=today.isoformat(),
                                 yesterday=(today - timedelta(days=1)).isoformat(),
                                 source=source.account_number,
                                 bob=bob_account.account_number)
              for name, value in changes.items()}
    response = post_form(customer_client, NEW, order_form(source, bob_account, **values))
    assert response.status_code == 200
    assert 'class="error"' in text(response) and message in text(response)
    assert orders() == []


def test_a_payment_to_someone_else_needs_a_code_from_a_customer_with_one(
        customer_client, customer, source, bob_account):
    secret = enrol_totp(customer)
    refused = post_form(customer_client, NEW, order_form(source, bob_account))
    assert "Enter a code" in text(refused) and orders() == []
    wrong = post_form(customer_client, NEW, order_form(source, bob_account, code="000000"))
    assert orders() == [] and wrong.status_code == 200
    post_form(customer_client, NEW, order_form(source, bob_account, code=totp_now(secret)))
    assert len(orders()) == 1
    [approved] = audit_rows(Action.STEP_UP_SUCCESS)
    assert approved.details["reasons"] == ["standing-order"]


def test_a_payment_to_an_own_account_needs_no_code(customer_client, customer, source,
                                                   funded_account):
    enrol_totp(customer)
    post_form(customer_client, NEW, order_form(source, funded_account(customer)))
    assert len(orders()) == 1


def _made(customer, source, destination) -> ScheduledOrder:
    return ledger.create_order(customer, source, destination, D("50.00"),
                               frequency=Frequency.WEEKLY, start_on=tomorrow(),
                               today=ledger.bank_today())


def test_someone_elses_order_is_not_found(client, make_user, customer, source, bob_account):
    order = _made(customer, source, bob_account)
    intruder = make_user(email="intruder@example.com")
    log_in_as(client, intruder)
    assert client.get(f"/accounts/scheduled/{order.id}/").status_code == 404
    fields = form_fields(text(client.get("/accounts/scheduled/")))
    for change in ("pause", "cancel"):
        response = client.post(f"/accounts/scheduled/{order.id}/{change}/", data=fields)
        assert response.status_code == 404
    db.session.refresh(order)
    assert order.status == OrderStatus.ACTIVE
    assert bob_account.account_number not in text(client.get("/accounts/scheduled/"))


def test_pause_resume_and_cancel_from_the_order_page(customer_client, customer, source,
                                                     bob_account):
    order = _made(customer, source, bob_account)
    page = f"/accounts/scheduled/{order.id}/"
    for change, status in (("pause", OrderStatus.PAUSED), ("resume", OrderStatus.ACTIVE),
                           ("cancel", OrderStatus.CANCELLED)):
        fields = form_fields(text(customer_client.get(page)))
        customer_client.post(f"{page}{change}/", data=fields)
        db.session.refresh(order)
        assert order.status == status
    assert "The order is cancelled" in text(customer_client.get(page))


def test_the_order_page_lists_posted_and_failed_payments(customer_client, customer, source,
                                                         bob_account):
    order = ledger.create_order(customer, source, bob_account, D("600.00"),
                                frequency=Frequency.WEEKLY, start_on=tomorrow(),
                                today=ledger.bank_today())
    ledger.run_due(tomorrow() + timedelta(days=7))
    html = text(customer_client.get(f"/accounts/scheduled/{order.id}/"))
    assert html.count("occurrence-posted") == 1 and html.count("occurrence-failed") == 1
    assert "Insufficient funds" in html


def test_a_failed_payment_says_why_in_french_on_a_french_page(customer_client, customer,
                                                               source, bob_account):
    order = ledger.create_order(customer, source, bob_account, D("1500.00"),
                                frequency=Frequency.ONCE, start_on=tomorrow(),
                                today=ledger.bank_today())
    ledger.run_due(tomorrow())  # a job: no page, no language
    html = text(customer_client.get(f"/accounts/scheduled/{order.id}/",
                                    headers={"Accept-Language": "fr"}))
    assert "Provision insuffisante\xa0: le solde ne couvre pas ce montant." in html
    assert "Insufficient funds" not in html


def test_a_payment_paused_by_its_frozen_account_says_so_in_french(customer_client, customer,
                                                                   source, bob_account,
                                                                   make_user):
    order = _made(customer, source, bob_account)
    ledger.freeze_account(source, "Checked by the bank", make_user(role="admin"))
    ledger.run_due(order.next_due_on)
    html = text(customer_client.get(f"/accounts/scheduled/{order.id}/",
                                    headers={"Accept-Language": "fr"}))
    assert "Ce compte est gelé et ne peut pas faire circuler d’argent." in html
    assert "Suspendu\xa0: le compte qui paie n’est pas actif." in html


def test_an_order_paused_by_its_customer_says_so_in_french(customer_client, customer, source,
                                                            bob_account):
    order = _made(customer, source, bob_account)
    page = f"/accounts/scheduled/{order.id}/"
    customer_client.post(f"{page}pause/", data=form_fields(text(customer_client.get(page))))
    assert "Suspendu par vous." in text(customer_client.get(
        page, headers={"Accept-Language": "fr"}))


# ---------------------------------------------------------------- CLI and cron


def test_run_scheduled_posts_what_is_due_by_the_given_date(runner, customer, source,
                                                           bob_account):
    _made(customer, source, bob_account)
    as_of = (tomorrow() + timedelta(days=14)).isoformat()
    result = runner.invoke(args=["run-scheduled", "--as-of", as_of])
    assert result.exit_code == 0, result.output
    assert "3 posted, 0 failed" in result.output and balance(bob_account) == D("150.00")
    again = runner.invoke(args=["run-scheduled", "--as-of", as_of])
    assert "0 posted" in again.output and balance(bob_account) == D("150.00")


def test_run_scheduled_defaults_to_today(runner, customer, source, bob_account):
    _made(customer, source, bob_account)
    result = runner.invoke(args=["run-scheduled"])
    assert "0 posted" in result.output and ledger.bank_today().isoformat() in result.output


@pytest.mark.parametrize("as_of", ["2026-13-01", "tomorrow", "2026-02-30"])
def test_run_scheduled_refuses_a_date_that_is_not_one(runner, as_of):
    result = runner.invoke(args=["run-scheduled", "--as-of", as_of])
    assert result.exit_code == 2 and "does not match the format '%Y-%m-%d'" in result.output
    assert audit_rows(Action.SCHEDULED_RUN) == []


def test_the_cron_route_is_not_there_without_a_secret(app, client):
    app.config["CRON_SECRET"] = None
    assert client.post(CRON).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer ", "cron-secret-123",
                                    "bearer cron-secret-123"])
def test_the_cron_route_refuses_a_wrong_secret(app, client, header):
    app.config["CRON_SECRET"] = "cron-secret-123"
    headers = {"Authorization": header} if header is not None else {}
    assert client.post(CRON, headers=headers).status_code == 401
    assert audit_rows(Action.SCHEDULED_RUN) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_cron_route_runs_what_is_due_today(app, client, customer, source, bob_account,
                                               method):
    app.config["CRON_SECRET"] = "cron-secret-123"
    response = getattr(client, method)(CRON, headers={"Authorization": "Bearer cron-secret-123"})
    assert response.status_code == 200
    assert response.get_json()["as_of"] == ledger.bank_today().isoformat()
    [run] = audit_rows(Action.SCHEDULED_RUN)
    assert run.details["trigger"] == "cron"

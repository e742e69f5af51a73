"""Holds (available balance) and daily outgoing limits, enforced by the ledger."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from babel.dates import format_date

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import Account, AccountStatus, DailyOutgoing, Hold, JournalEntry, now_utc
from bankapp.platform.formatting import day_start_utc
from support.backoffice import (  # noqa: F401  (fixtures)
    account,
    admin,
    assert_clean_book,
    audit_rows,
    balance,
    post_with_csrf,
    teller,
    teller_client,
)
from support.users import enrol_totp, log_in_as, totp_now
from support.web import post_form

D = Decimal
UTC = timezone.utc


def in_days(days: float) -> datetime:
    return now_utc() + timedelta(days=days)


def entries() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


# ---------------------------------------------------------------- holds


def test_withdrawals_and_transfers_cannot_spend_held_money(customer, account, teller,  # noqa: F811
                                                             funded_account):
    other = funded_account(customer, "0.00", "CHECKING")
    ledger.place_hold(account, D("200.00"), "Disputed card payment", in_days(7), teller)
    before = entries()

    with pytest.raises(ledger.InsufficientFunds, match="200.00 of the balance is on hold"):
        ledger.withdraw(account, D("300.01"), "Cash", customer)
    with pytest.raises(ledger.InsufficientFunds, match="300.00 is available"):
        ledger.transfer(account, other, D("300.01"), "Move", customer)

    assert entries() == before and balance(account) == D("500.00")
    ledger.withdraw(account, D("300.00"), "Cash", customer)
    assert ledger.available_balance(account) == D("0.00")
    assert_clean_book()


def test_a_hold_larger_than_the_balance_leaves_nothing_available(customer, account, teller):  # noqa: F811
    ledger.place_hold(account, D("800.00"), "Court order", in_days(30), teller)

    assert ledger.available_balance(account) == D("0.00")
    with pytest.raises(ledger.InsufficientFunds):
        ledger.withdraw(account, D("0.01"), "Cash", customer)
    ledger.deposit(account, D("400.00"), "Salary", customer)  # money still comes in
    assert ledger.available_balance(account) == D("100.00")


def test_an_expired_hold_stops_counting_without_any_job(customer, account, teller):  # noqa: F811
    hold = ledger.place_hold(account, D("500.00"), "Check clearing", in_days(1), teller)
    # The expiry passes (as time would): nothing runs, the checks compare it with now.
    db.session.execute(sa.update(Hold).where(Hold.id == hold.id)
                       .values(expires_at=now_utc() - timedelta(seconds=1)))
    db.session.commit()

    assert ledger.available_balance(account) == D("500.00") and ledger.active_holds(account) == []
    ledger.withdraw(account, D("500.00"), "Cash", customer)


def test_a_released_hold_stops_counting_and_the_release_is_audited(customer, account, teller):  # noqa: F811
    hold = ledger.place_hold(account, D("500.00"), "Check clearing", in_days(1), teller)
    ledger.release_hold(hold.id, teller)

    assert ledger.available_balance(account) == D("500.00")
    assert [row.details["hold"] for row in audit_rows("hold.place")] == [hold.id]
    assert [row.details["hold"] for row in audit_rows("hold.release")] == [hold.id]


def test_a_hold_is_released_once(account, teller):  # noqa: F811
    hold = ledger.place_hold(account, D("50.00"), "Check", in_days(1), teller)
    ledger.release_hold(hold.id, teller)
    with pytest.raises(ledger.HoldError, match="already released"):
        ledger.release_hold(hold.id, teller)
    assert len(audit_rows("hold.release")) == 1


def test_an_expired_hold_cannot_be_released(account, teller):  # noqa: F811
    hold = ledger.place_hold(account, D("50.00"), "Check", in_days(1), teller)
    db.session.execute(sa.update(Hold).where(Hold.id == hold.id).values(expires_at=now_utc()))
    db.session.commit()
    with pytest.raises(ledger.HoldError, match="expired"):
        ledger.release_hold(hold.id, teller)
    assert audit_rows("hold.release") == []


def test_a_hold_on_a_closed_account_is_refused(account, teller):  # noqa: F811
    db.session.execute(sa.update(Account).where(Account.id == account.id)
                       .values(status=AccountStatus.CLOSED))
    db.session.commit()
    with pytest.raises(ledger.AccountNotActive, match="closed"):
        ledger.place_hold(account, D("10.00"), "Late fee", in_days(1), teller)
    assert db.session.scalar(sa.select(sa.func.count(Hold.id))) == 0


@pytest.mark.parametrize("amount, expires, error", [
    (D("-1"), 1, ledger.InvalidAmount),
    (D("0"), 1, ledger.InvalidAmount),
    (D("1E+9"), 1, ledger.LimitExceeded),
    (D("10.001"), 1, ledger.InvalidAmount),
    (D("10.00"), -1, ledger.HoldError),
    (D("10.00"), 400, ledger.HoldError),
])
def test_bad_holds_are_refused_and_change_nothing(account, teller, amount, expires, error):  # noqa: F811
    with pytest.raises(error):
        ledger.place_hold(account, amount, "Reason", in_days(expires), teller)
    assert db.session.scalar(sa.select(sa.func.count(Hold.id))) == 0 and audit_rows("hold.place") == []


def test_teller_places_and_releases_a_hold_on_the_holds_page(teller_client, account):  # noqa: F811
    url = f"/teller/accounts/{account.account_number}/holds/"
    until = (date.today() + timedelta(days=5)).isoformat()
    page = post_form(teller_client, url, {"amount": "120.00", "reason": "Card dispute",
                                          "until": until}, follow_redirects=True)
    assert "120.00 is on hold" in page.get_data(as_text=True)
    hold = db.session.scalar(sa.select(Hold))
    assert hold.reason == "Card dispute"

    response = post_with_csrf(teller_client, teller_client.application,
                              f"/teller/holds/{hold.id}/release/", follow_redirects=True)
    assert response.status_code == 200 and "is released" in response.get_data(as_text=True)
    assert ledger.active_holds(account) == []


@pytest.mark.parametrize("data, message", [
    ({"amount": "-1", "reason": "x", "until": "2999-01-01"}, "greater than zero"),
    ({"amount": "1e9", "reason": "x", "until": "2999-01-01"}, "Enter an amount"),
    ({"amount": "10", "reason": "", "until": "2999-01-01"}, "Give a reason"),
    ({"amount": "10", "reason": "x", "until": "tomorrow"}, "YYYY-MM-DD"),
    ({"amount": "10", "reason": "x", "until": "2000-01-01"}, "in the future"),
])
def test_the_holds_page_rerenders_bad_input(teller_client, account, data, message):  # noqa: F811
    response = post_form(teller_client, f"/teller/accounts/{account.account_number}/holds/", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Hold.id))) == 0


def test_the_hold_end_date_is_a_native_date_picker(teller_client, account):  # noqa: F811
    page = teller_client.get(f"/teller/accounts/{account.account_number}/holds/")
    [tag] = re.findall(r'<input[^>]*name="until"[^>]*>', page.get_data(as_text=True))
    assert 'type="date"' in tag
    assert "YYYY-MM-DD" not in page.get_data(as_text=True)


def test_a_hold_until_the_end_of_a_day_is_shown_as_that_day_to_the_teller(
        teller_client, account):  # noqa: F811
    """Kept "until the end of" a day, a hold ends at the next midnight: the page shows the
    day itself (``Dec 31, 2026``), not ``Jan 1, 2027, 00:00``."""
    last_day = ledger.bank_today() + timedelta(days=5)
    url = f"/teller/accounts/{account.account_number}/holds/"
    post_form(teller_client, url, {"amount": "120.00", "reason": "Card dispute",
                                   "until": last_day.isoformat()})
    page = teller_client.get(url).get_data(as_text=True)
    [shown] = re.findall(r"<time datetime=[^>]*>([^<]*)</time></td>", page)
    assert shown == format_date(last_day, "medium", locale="en")


def test_a_hold_until_the_end_of_a_day_is_shown_as_that_day_to_the_customer(
        customer_client, account, teller):  # noqa: F811
    last_day = ledger.bank_today() + timedelta(days=5)
    ledger.place_hold(account, D("120.00"), "Card dispute", day_start_utc(
        last_day + timedelta(days=1)), teller)
    page = customer_client.get(f"/accounts/{account.account_number}/").get_data(as_text=True)
    [shown] = re.findall(r'<tr class="hold">.*?<time datetime=[^>]*>([^<]*)</time>', page)
    assert shown == format_date(last_day, "medium", locale="en")


def test_customers_cannot_reach_the_holds_page(customer_client, account):  # noqa: F811
    assert customer_client.get(f"/teller/accounts/{account.account_number}/holds/").status_code == 403


def test_the_customer_sees_balance_available_balance_and_each_holds_reason(
        customer_client, account, teller):  # noqa: F811
    ledger.place_hold(account, D("120.00"), "Card dispute #4411", in_days(3), teller)

    page = customer_client.get(f"/accounts/{account.account_number}/").get_data(as_text=True)

    assert "500.00" in page and 'id="available-balance">$380.00<' in page
    assert "Card dispute #4411" in page


# ---------------------------------------------------------------- daily limits


@pytest.fixture
def limit_1000(app):
    app.config["DAILY_TRANSFER_LIMIT"] = D("1000.00")


@pytest.fixture
def payee(make_user, funded_account):
    return funded_account(make_user(email="bob@example.com"), "0.00")


def outgoing(user) -> Decimal:
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(DailyOutgoing.amount), 0))
                             .where(DailyOutgoing.user_id == user.id))


def test_the_bank_daily_limit_refuses_what_would_pass_it(limit_1000, customer, funded_account,
                                                         payee):
    source = funded_account(customer, "5000.00")
    ledger.withdraw(source, D("600.00"), "Cash", customer)
    before = entries()

    with pytest.raises(ledger.DailyLimitExceeded, match="400.00 is left today"):
        ledger.transfer(source, payee, D("400.01"), "Rent", customer)

    assert entries() == before and balance(source) == D("4400.00") and outgoing(customer) == 600
    ledger.transfer(source, payee, D("400.00"), "Rent", customer)
    assert outgoing(customer) == D("1000.00")
    assert_clean_book()


def test_cash_paid_at_the_counter_does_not_count(limit_1000, customer, funded_account, teller,  # noqa: F811
                                                 admin):
    source = funded_account(customer, "5000.00")
    till = ledger.till_for(teller)
    ledger.allocate_cash(till, D("3000.00"), admin)
    ledger.withdraw(source, D("2500.00"), "Counter cash", teller, channel="teller",
                    cash_account=till)
    assert outgoing(customer) == 0
    with pytest.raises(ledger.DailyLimitExceeded):  # online, the limit still applies
        ledger.withdraw(source, D("1000.01"), "Cash", customer)


def test_transfers_between_ones_own_accounts_do_not_count(limit_1000, customer, funded_account):
    source = funded_account(customer, "5000.00")
    other = funded_account(customer, "0.00", "CHECKING")
    ledger.transfer(source, other, D("3000.00"), "Savings", customer)
    assert outgoing(customer) == 0


def test_the_limit_counts_per_day_in_the_bank_time_zone(app, limit_1000, customer,
                                                        funded_account):
    app.config["BANK_TIMEZONE"] = "America/New_York"
    source = funded_account(customer, "5000.00")
    today = now_utc().astimezone(ledger.limits.bank_timezone()).date()
    # 03:00 UTC today is still yesterday evening in New York: yesterday's limit.
    yesterday_evening = datetime(today.year, today.month, today.day, 3, tzinfo=UTC)
    if yesterday_evening > now_utc():
        yesterday_evening -= timedelta(days=1)
    ledger.withdraw(source, D("1000.00"), "Cash", customer, posted_at=yesterday_evening)
    ledger.withdraw(source, D("1000.00"), "Cash", customer)  # today: a fresh 1,000.00
    assert db.session.scalar(sa.select(sa.func.count(DailyOutgoing.day))) == 2


def test_a_replayed_payment_is_not_counted_twice(limit_1000, customer, funded_account, payee):
    source = funded_account(customer, "5000.00")
    first = ledger.transfer(source, payee, D("700.00"), "Rent", customer, idempotency_key="k" * 20)
    again = ledger.transfer(source, payee, D("700.00"), "Rent", customer, idempotency_key="k" * 20)
    assert again.replayed and again.reference == first.reference
    assert outgoing(customer) == D("700.00")


def test_lowering_ones_limit_applies_at_once(limit_1000, customer, funded_account):
    source = funded_account(customer, "5000.00")
    change = ledger.set_own_limit(customer, D("100.00"))
    assert change.at_once
    with pytest.raises(ledger.DailyLimitExceeded, match=r"limit of \$100\.00"):
        ledger.withdraw(source, D("100.01"), "Cash", customer)


def test_raising_ones_limit_waits_24_hours_without_step_up(limit_1000, customer):
    ledger.set_own_limit(customer, D("100.00"))
    change = ledger.set_own_limit(customer, D("900.00"))

    assert not change.at_once
    assert ledger.daily_limit(customer.id) == D("100.00")
    assert ledger.daily_limit(customer.id, change.applies_at - timedelta(seconds=1)) == D("100.00")
    assert ledger.daily_limit(customer.id, change.applies_at) == D("900.00")
    assert audit_rows("limits.change")[-1].details["step_up"] is False


def test_a_raise_with_a_fresh_code_applies_at_once(client, make_user, limit_1000):
    user = make_user(second_factor=True)
    log_in_as(client, user)
    ledger.set_own_limit(user, D("100.00"))

    response = post_form(client, "/accounts/limits/",
                         {"daily_limit": "900", "code": totp_now(user.totp_secret)},
                         follow_redirects=True)

    assert "becomes $900.00 now" in response.get_data(as_text=True)
    assert ledger.daily_limit(user.id) == D("900.00")
    assert audit_rows("step_up.success")[-1].details["for"] == "daily limit"


def test_a_raise_the_bank_refuses_leaves_the_code_unused(client, make_user, limit_1000):
    """The typed limit is checked before the code: a refused one neither spends the code
    nor audits a step-up."""
    user = make_user(second_factor=True)
    log_in_as(client, user)
    code = totp_now(user.totp_secret)
    response = post_form(client, "/accounts/limits/", {"daily_limit": "1000.01", "code": code})
    assert response.status_code == 200 and "daily limit is $1,000.00" in response.get_data(
        as_text=True)
    assert audit_rows("step_up.success") == []
    post_form(client, "/accounts/limits/", {"daily_limit": "900", "code": code})
    assert ledger.daily_limit(user.id) == D("900.00")


def test_a_raise_with_a_wrong_code_changes_nothing(client, make_user, limit_1000):
    user = make_user(second_factor=True)
    log_in_as(client, user)
    ledger.set_own_limit(user, D("100.00"))
    response = post_form(client, "/accounts/limits/", {"daily_limit": "900", "code": "000000"})
    assert response.status_code == 200
    assert ledger.daily_limit(user.id) == D("100.00")
    assert ledger.limit_status(user).pending is None


@pytest.mark.parametrize("typed, message", [
    ("-1", "greater than zero"),
    ("1e9", "Enter an amount"),
    ("1000.01", "bank&#39;s daily limit is $1,000.00"),
    ("0", "greater than zero"),
    ("abc", "Enter an amount"),
])
def test_the_limits_page_rerenders_bad_input(customer_client, customer, limit_1000, typed,
                                             message):
    response = post_form(customer_client, "/accounts/limits/", {"daily_limit": typed})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert audit_rows("limits.change") == []


def test_the_limits_page_shows_what_is_left_today(customer_client, customer, funded_account,
                                                  limit_1000):
    source = funded_account(customer, "5000.00")
    ledger.withdraw(source, D("250.00"), "Cash", customer)
    page = customer_client.get("/accounts/limits/").get_data(as_text=True)
    assert 'id="left-today">$750.00<' in page and 'id="used-today">$250.00<' in page


@pytest.mark.parametrize("value", ["-1", "0", "1e9x", "abc", "10.001", "NaN"])
def test_an_invalid_daily_transfer_limit_refuses_to_start(value):
    from bankapp import create_app
    from config import TestingConfig

    with pytest.raises(SystemExit) as stopped:
        create_app(type("LimitConfig", (TestingConfig,), {"DAILY_TRANSFER_LIMIT": value}))
    assert "DAILY_TRANSFER_LIMIT" in stopped.value.code

"""The accounts and balances counted after the close: the daily count records the book at
one moment, and the bank report of a past period shows the first count after it closed."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import ClosingBalance
from bankapp.reports import service
from support.reports import deposit_at
from support.users import log_in_as

UTC = timezone.utc
D = Decimal
APRIL = service.Period(date(2026, 4, 1), date(2026, 4, 30))
AFTER_APRIL = datetime(2026, 5, 1, 0, 5, tzinfo=UTC)


def counted_rows() -> list[tuple]:
    return [(r.account_type, r.status, r.accounts, r.balance) for r in db.session.scalars(
        sa.select(ClosingBalance).order_by(ClosingBalance.account_type, ClosingBalance.status))]


def test_a_count_records_each_type_and_status_with_its_balances(customer, funded_account):
    funded_account(customer, "100.00")
    funded_account(customer, "25.50", account_type="CHECKING")
    ledger.freeze_account(funded_account(customer, "4.50"), "Lost card", customer)

    assert ledger.count_balances(AFTER_APRIL) == 4
    assert counted_rows() == [("CHECKING", "active", 1, D("25.50")),
                              ("SAVINGS", "active", 1, D("100.00")),
                              ("SAVINGS", "frozen", 1, D("4.50")),
                              ("VAULT", "active", 1, D("-130.00"))]


def test_a_count_is_the_whole_book_so_it_sums_to_zero(customer, make_user, funded_account):
    funded_account(customer, "310.25")
    funded_account(make_user(), "89.75", account_type="CHECKING")
    ledger.count_balances(AFTER_APRIL)
    assert sum(balance for *_, balance in counted_rows()) == D("0.00")


def test_a_past_periods_report_shows_the_first_count_after_its_close(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "100.00", datetime(2026, 4, 10, tzinfo=UTC))
    ledger.count_balances(AFTER_APRIL)
    ledger.count_balances(datetime(2026, 5, 2, 0, 5, tzinfo=UTC))
    ledger.deposit(account, D("50.00"), "After the count", customer)

    report = service.bank_report(APRIL)

    assert not report.counted_for_report and report.counted_at == AFTER_APRIL
    assert report.held.customer_total == D("100.00") and report.held.customer_accounts == 1
    assert [(g.account_type, g.balance) for g in report.groups
            if g.account_type == "SAVINGS"] == [("SAVINGS", D("100.00"))]


def test_a_count_taken_before_the_close_is_not_the_periods(customer, funded_account):
    account = funded_account(customer, "100.00")
    ledger.count_balances(datetime(2026, 4, 30, 23, 59, tzinfo=UTC))
    ledger.deposit(account, D("50.00"), "After the count", customer)

    report = service.bank_report(APRIL)

    assert report.counted_for_report
    assert report.held.customer_total == D("150.00")


def test_a_period_not_closed_yet_counts_the_accounts_as_they_stand(customer, funded_account):
    account = funded_account(customer, "100.00")
    ledger.count_balances()
    ledger.deposit(account, D("50.00"), "After the count", customer)
    today = ledger.bank_today()

    report = service.bank_report(service.Period(today.replace(day=1), today))

    assert report.counted_for_report
    assert report.held.customer_total == D("150.00")


def test_the_bank_report_page_says_when_its_balances_were_counted(client, make_user, customer,
                                                                  funded_account):
    funded_account(customer, "100.00")
    ledger.count_balances(AFTER_APRIL)
    log_in_as(client, make_user(role="teller"))

    past = client.get("/reports/bank/?preset=custom&start=2026-04-01&end=2026-04-30")
    today = client.get("/reports/bank/")

    assert "As counted at May 1, 2026, 00:05, after the period closed." in past.get_data(as_text=True)
    assert "As they stand now" in today.get_data(as_text=True)


def test_the_balances_csv_says_when_they_were_counted(client, make_user, customer,
                                                      funded_account):
    funded_account(customer, "100.00")
    ledger.count_balances(AFTER_APRIL)
    log_in_as(client, make_user(role="teller"))
    csv = client.get("/reports/bank/?preset=custom&start=2026-04-01&end=2026-04-30"
                     "&format=csv&table=balances").get_data(as_text=True)
    assert "counted_at,2026-05-01T00:05:00+00:00" in csv.splitlines()

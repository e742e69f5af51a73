"""The collections run: instalments collected on their dates, short funds, late fees, notices."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.lending import collections, services
from bankapp.lending.errors import LendingError
from bankapp.models import JournalEntry, LoanStatus, OutboxMessage
from support.backoffice import assert_clean_book, audit_rows, balance
from support.lending import active_loan, owed_in_book

PAID_OUT = date(2027, 1, 15)


@pytest.fixture
def loan(customer, account, product, teller):
    """1,200.00 over 12 months at 12 %, paid out on 15 January 2027 into an account that then
    holds 1,690.00; instalments of 106.62."""
    return active_loan(customer, account, product, teller, on=PAID_OUT)


def repayment_entries() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)).where(
        JournalEntry.entry_type == "LOAN_REPAYMENT"))


def test_three_months_on_three_instalments_are_collected_in_order(loan, account):
    report = collections.run_loans(date(2027, 4, 15))
    rows = services.instalments_of(loan, fresh=True)
    assert [row.outstanding for row in rows[:3]] == [D("0.00")] * 3
    assert rows[3].total_paid == 0
    assert report.collections == 3
    assert balance(account) == D("1690.00") - 3 * D("106.62")
    assert owed_in_book(loan) == D("1200.00") - sum(row.principal_due for row in rows[:3])
    assert_clean_book()


def test_running_the_same_day_again_collects_nothing_twice(loan, account):
    collections.run_loans(date(2027, 2, 15))
    collections.run_loans(date(2027, 2, 15))
    assert repayment_entries() == 1
    assert balance(account) == D("1690.00") - D("106.62")


def test_a_run_before_the_last_run_is_refused(loan):
    collections.run_loans(date(2027, 2, 15))
    with pytest.raises(LendingError, match="cannot go back"):
        collections.run_loans(date(2027, 2, 14))


def test_short_of_funds_the_run_takes_what_is_available(loan, account, customer):
    ledger.withdraw(account, D("1650.00"), "Cash", customer)  # 40.00 left
    collections.run_loans(date(2027, 2, 15))
    first = services.instalments_of(loan, fresh=True)[0]
    assert first.total_paid == D("40.00")
    assert first.interest_paid == first.interest_due  # interest first
    assert balance(account) == D("0.00")
    assert_clean_book()


def test_held_money_is_not_collected(loan, account, admin):
    ledger.place_hold(account, D("1650.00"), "Card authorisation",
                      datetime.now(timezone.utc) + timedelta(days=30), admin)
    collections.run_loans(date(2027, 2, 15))
    assert balance(account) == D("1650.00")  # 40.00 collected, the held money untouched
    assert services.instalments_of(loan, fresh=True)[0].total_paid == D("40.00")


def test_the_late_fee_is_charged_once_after_the_grace_days(loan, account, customer):
    ledger.withdraw(account, D("1690.00"), "Cash", customer)  # nothing left
    collections.run_loans(date(2027, 2, 20))  # due 15 Feb, 5 grace days: not yet late
    assert services.instalments_of(loan, fresh=True)[0].fee_due == 0
    collections.run_loans(date(2027, 2, 21))
    collections.run_loans(date(2027, 3, 1))
    first = services.instalments_of(loan, fresh=True)[0]
    assert first.fee_due == D("15.00") and first.late_fee_on == date(2027, 2, 21)
    assert len(audit_rows("loan.late_fee")) == 1


def test_an_overdue_instalment_is_collected_with_its_fee_when_money_arrives(loan, account,
                                                                            customer):
    ledger.withdraw(account, D("1690.00"), "Cash", customer)
    collections.run_loans(date(2027, 2, 25))
    ledger.deposit(account, D("200.00"), "Salary", customer)
    collections.run_loans(date(2027, 2, 26))
    first = services.instalments_of(loan, fresh=True)[0]
    assert first.outstanding == 0 and first.fee_paid == D("15.00")
    assert balance(services.fee_income_account()) == D("25.00")  # 10.00 + 15.00
    assert balance(account) == D("200.00") - D("106.62") - D("15.00")
    assert_clean_book()


def test_a_percent_late_fee_is_a_share_of_the_overdue_amount(customer, account, teller,
                                                             funded_account):
    from support.lending import make_product

    product = make_product(name="Percent", late_fee_kind="percent", late_fee="10")
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    ledger.withdraw(account, D("1690.00"), "Cash", customer)
    collections.run_loans(date(2027, 2, 21))
    assert services.instalments_of(loan, fresh=True)[0].fee_due == D("10.66")  # of 106.62


def test_the_borrower_is_reminded_before_a_due_date_and_told_when_overdue(loan, account,
                                                                          customer):
    collections.run_loans(date(2027, 2, 12))
    subjects = list(db.session.scalars(sa.select(OutboxMessage.subject)))
    assert "A loan instalment is due soon" in subjects
    ledger.withdraw(account, D("1690.00"), "Cash", customer)
    collections.run_loans(date(2027, 2, 16))
    collections.run_loans(date(2027, 2, 17))
    subjects = list(db.session.scalars(sa.select(OutboxMessage.subject)))
    assert subjects.count("A loan instalment is overdue") == 1
    assert subjects.count("A loan instalment is due soon") == 1


def test_the_last_collection_pays_the_loan_off(loan, account):
    collections.run_loans(date(2028, 1, 15))
    db.session.refresh(loan)
    assert loan.status == LoanStatus.PAID_OFF
    assert owed_in_book(loan) == D("0.00")
    assert repayment_entries() == 12
    assert_clean_book()


def test_the_command_runs_the_collections(runner, loan):
    result = runner.invoke(args=["run-loans", "--as-of", "2027-02-15"])
    assert result.exit_code == 0, result.output
    assert "1 collections" in result.output


def test_the_command_refuses_a_date_before_the_last_run(runner, loan):
    runner.invoke(args=["run-loans", "--as-of", "2027-02-15"])
    result = runner.invoke(args=["run-loans", "--as-of", "2027-01-31"])
    assert result.exit_code != 0 and "cannot go back" in result.output


def test_after_a_run_ahead_the_book_is_reckoned_on_the_runs_date(loan, account, customer):
    collections.run_loans(date(2030, 3, 1))  # far ahead of today: the loan is over by then
    assert services.lending_today() == date(2030, 3, 1)
    db.session.refresh(loan)
    assert loan.status == LoanStatus.PAID_OFF


def test_the_cron_route_runs_the_collections_for_today(app, client, loan):
    app.config["CRON_SECRET"] = "cron-secret-123"
    response = client.post("/internal/cron/run-loans",
                           headers={"Authorization": "Bearer cron-secret-123"})
    assert response.status_code == 200
    assert response.get_json()["as_of"] == ledger.bank_today().isoformat()


def test_the_cron_route_says_when_a_run_went_past_today(app, client, loan):
    app.config["CRON_SECRET"] = "cron-secret-123"
    collections.run_loans(ledger.bank_today() + timedelta(days=3))
    response = client.post("/internal/cron/run-loans",
                           headers={"Authorization": "Bearer cron-secret-123"})
    # A failed job: recorded as such, and a 500 that the scheduler's log shows.
    answer = response.get_json()
    assert response.status_code == 500 and answer["outcome"] == "failed"
    assert "cannot go back" in answer["error"]

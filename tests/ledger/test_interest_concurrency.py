"""Interest runs at once (two hosts, two cron calls) and while customers post: each account's
month is paid once and nothing deadlocks. PostgreSQL, real concurrent transactions."""
from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import AccountType, InterestPosting, Transaction, TransactionType
from support.backoffice import balance
from support.concurrency import flask_commands_at_once
from support.database import POSTGRES

pytestmark = pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL")

NOVEMBER = date(2025, 11, 1)
OPENED = datetime(2025, 11, 1, tzinfo=timezone.utc)
ACCOUNTS = 7


@pytest.fixture
def savings(customer):
    """Seven savings accounts holding 1,000.00 all November, at 2.5 %: 2.05 each."""
    made = []
    for _ in range(ACCOUNTS):
        account = ledger.open_account(customer, AccountType.SAVINGS)
        account.created_at = OPENED
        db.session.commit()
        ledger.deposit(account, D("1000.00"), "Savings", customer, posted_at=OPENED)
        made.append(account)
    ledger.set_rate(AccountType.SAVINGS, D("2.5"), date(2025, 1, 1), None,
                    today=date(2025, 1, 1))
    return made


def _paid() -> tuple[int, list[int]]:
    db.session.expire_all()
    rows = db.session.scalar(sa.select(sa.func.count(InterestPosting.id)))
    legs = db.session.execute(
        sa.select(Transaction.account_id, sa.func.count())
        .where(Transaction.transaction_type == TransactionType.INTEREST,
               Transaction.side == "credit")
        .group_by(Transaction.account_id).order_by(Transaction.account_id)).all()
    return rows, [count for _, count in legs]


def test_runs_in_parallel_threads_pay_each_month_once_while_customers_post(app, customer,
                                                                          savings):
    barrier = threading.Barrier(6)
    errors = []

    def interest():
        ledger.post_interest(NOVEMBER, batch_size=3)

    def deposits():
        for account in reversed(savings):  # the other way round from the job: no deadlock
            ledger.deposit(db.session.get(type(account), account.id), D("1.00"), "Top-up",
                           None)

    def worker(job):
        with app.app_context():
            try:
                barrier.wait()
                job()
            except Exception as error:  # reported below; a thread cannot fail the test
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(job,))
               for job in (interest, interest, interest, interest, deposits, deposits)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _paid() == (ACCOUNTS, [1] * ACCOUNTS)
    assert [balance(account) for account in savings] == [D("1004.05")] * ACCOUNTS
    assert balance(ledger.interest_account()) == D("-2.05") * ACCOUNTS
    assert ledger.reconcile().clean


def test_two_post_interest_commands_at_once_pay_each_month_once(app, savings):
    outcomes = flask_commands_at_once(app, "post-interest", "--month", "2025-11")
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    assert _paid() == (ACCOUNTS, [1] * ACCOUNTS)
    assert [balance(account) for account in savings] == [D("1002.05")] * ACCOUNTS
    assert ledger.reconcile().clean

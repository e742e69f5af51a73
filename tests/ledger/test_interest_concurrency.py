"""Interest runs at once (two hosts, two cron calls) and while customers post: each account's
month is paid once and nothing deadlocks. PostgreSQL, real concurrent transactions.

Where a test needs the job's batch *stopped* holding its locks, a ``RowLocks`` transaction
holds the last account the batch locks (they go in ascending id): the batch takes all the
others and waits for that one, and ``wait_for_lock_waits`` says when it does."""
from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from flask import current_app

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger import InsufficientFunds
from bankapp.models import (Account, AccountType, InterestPosting, Transaction,
                            TransactionType)
from support.api import new_key, send
from support.backoffice import balance
from support.concurrency import (InBackground, RowLocks, flask_commands_at_once,
                                 transfer_by_ids, wait_for_lock_waits)
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


# ---------------------------------------------------------------- a batch stopped at its locks


@pytest.fixture(params=["ledger_post", "generic"])
def workers(request):
    """The worker app, on PostgreSQL's ledger_post() and on the generic path."""
    return request.getfixturevalue("worker_app" if request.param == "ledger_post"
                                   else "generic_worker_app")


@pytest.fixture
def gate(app):
    """A ``RowLocks`` transaction on the test database, released at the end in any case."""
    locks = RowLocks(app.config["SQLALCHEMY_DATABASE_URI"])
    yield locks
    locks.release()


def _last_lock(savings: list) -> int:
    """The account the interest batch locks last: the highest id of its accounts and
    ``GL-INTEREST``."""
    expense = ledger.interest_account()
    db.session.commit()
    return max([account.id for account in savings] + [expense.id])


def _batch_waiting_on(gate: RowLocks, app, workers, savings) -> InBackground:
    """November's interest job, started once ``gate`` holds the batch's last account: returned
    when the batch holds every other one and waits for it."""
    gate.lock(_last_lock(savings))
    job = InBackground(workers, ledger.post_interest, NOVEMBER)
    wait_for_lock_waits(app.config["SQLALCHEMY_DATABASE_URI"], 1)
    return job


def _api_transfer(source_id: int, destination_id: int, amount: str) -> tuple[int, dict]:
    source = db.session.get(Account, source_id)
    destination = db.session.get(Account, destination_id)
    response = send(current_app.test_client(), "POST", "/api/v1/transfers", source.owner,
                    {"from_account": source.account_number,
                     "to_account": destination.account_number, "amount": amount},
                    key=new_key())
    return response.status_code, response.get_json()


def _withdraw(account_id: int, amount: D) -> int:
    account = db.session.get(Account, account_id)
    return ledger.withdraw(account, amount, "Cash", account.owner).entry_id


def _balance_after_of(entry_id: int, account_id: int) -> D:
    return db.session.scalar(sa.select(Transaction.balance_after).where(
        Transaction.entry_id == entry_id, Transaction.account_id == account_id))


def _book_total() -> D:
    return db.session.scalar(sa.select(sa.func.sum(Account.balance)))


def assert_each_account_paid_once_and_the_book_whole() -> None:
    """Every account's interest paid once (one row, one credit leg each), the book summing
    to zero, reconcile clean: what a batch and the postings beside it must leave, however
    they interleaved."""
    assert _paid() == (ACCOUNTS, [1] * ACCOUNTS)
    assert _book_total() == 0
    assert ledger.reconcile().clean


def test_a_transfer_waiting_on_an_interest_batch_posts_after_it_and_loses_no_update(
        app, workers, gate, savings):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    job = _batch_waiting_on(gate, app, workers, savings)
    transfer = InBackground(workers, transfer_by_ids, savings[0].id,
                            savings[1].account_number, D("300.00"))
    wait_for_lock_waits(url, 2)  # the transfer waits for the batch's lock
    gate.release()

    run, entry_id = job.outcome(), transfer.outcome()
    assert isinstance(run, ledger.InterestRun), run
    assert (run.credited, run.total) == (ACCOUNTS, D("2.05") * ACCOUNTS), run
    assert isinstance(entry_id, int), entry_id
    # The transfer saw the interest the batch committed before it: 1,002.05 − 300.00.
    assert _balance_after_of(entry_id, savings[0].id) == D("702.05")
    assert [balance(account) for account in savings] == (
        [D("702.05"), D("1302.05")] + [D("1002.05")] * (ACCOUNTS - 2))
    assert_each_account_paid_once_and_the_book_whole()


def test_an_api_transfer_waiting_on_an_interest_batch_is_answered_once_it_commits(
        app, workers, gate, savings):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    job = _batch_waiting_on(gate, app, workers, savings)
    transfer = InBackground(workers, _api_transfer, savings[0].id, savings[1].id, "300.00")
    wait_for_lock_waits(url, 2)
    gate.release()

    run, (status, body) = job.outcome(), transfer.outcome()
    assert isinstance(run, ledger.InterestRun), run
    assert run.credited == ACCOUNTS, run
    assert (status, body["balance_after"]) == (201, "702.05"), body
    assert [balance(account) for account in savings[:2]] == [D("702.05"), D("1302.05")]
    assert_each_account_paid_once_and_the_book_whole()


def test_withdrawals_waiting_on_an_interest_batch_never_overdraw(app, workers, gate,
                                                                   savings):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    job = _batch_waiting_on(gate, app, workers, savings)
    withdrawals = [InBackground(workers, _withdraw, savings[0].id, D("600.00"))
                   for _ in range(2)]
    wait_for_lock_waits(url, 3)
    gate.release()

    run = job.outcome()
    outcomes = [withdrawal.outcome() for withdrawal in withdrawals]
    assert isinstance(run, ledger.InterestRun), run
    assert run.credited == ACCOUNTS, run
    # 1,002.05 after the interest: one withdrawal of 600.00 fits, the other is refused.
    refused = [outcome for outcome in outcomes if isinstance(outcome, InsufficientFunds)]
    posted = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert (len(posted), len(refused)) == (1, 1), outcomes
    assert balance(savings[0]) == D("402.05")
    assert_each_account_paid_once_and_the_book_whole()


def test_a_batch_that_loses_a_deadlock_runs_again_and_pays_each_account_once(
        app, workers, gate, savings, caplog):
    caplog.set_level(logging.INFO, logger="bankapp.ledger")
    # The gate waits a minute before it looks for a deadlock, the batch the server's 1 s: the
    # batch is the one PostgreSQL finds in the cycle and aborts.
    job = _batch_waiting_on(gate, app, workers, savings)
    gate.lock_meanwhile(savings[0].id)  # locked by the batch, which waits for the gate: a cycle
    gate.release()  # once granted: the batch was rolled back

    run = job.outcome()
    assert isinstance(run, ledger.InterestRun), run
    assert "deadlock detected" in caplog.text
    assert (run.credited, run.already) == (ACCOUNTS, 0), run
    assert [balance(account) for account in savings] == [D("1002.05")] * ACCOUNTS
    assert_each_account_paid_once_and_the_book_whole()


def test_a_batch_that_loses_a_deadlock_inside_its_postings_runs_again_and_pays_each_once(
        app, workers, gate, savings, caplog):
    caplog.set_level(logging.INFO, logger="bankapp.ledger")
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    # The batch locks every account, then stops at its first entry, whose key is in flight.
    gate.claim_system_key(f"interest:{savings[0].id}:2025-11")
    job = InBackground(workers, ledger.post_interest, NOVEMBER)
    wait_for_lock_waits(url, 1)
    gate.lock_meanwhile(savings[0].id)  # locked by the batch, which waits for the gate: a cycle
    gate.release()  # once granted: the batch was rolled back; the key is free again

    run = job.outcome()
    assert isinstance(run, ledger.InterestRun), run
    # Lost once and run again once: not retried entry by entry in the same transaction, which
    # still holds the accounts of the cycle.
    assert caplog.text.count("deadlock detected") == 1, caplog.text
    assert "retrying interest after deadlock detected" in caplog.text
    assert (run.credited, run.already) == (ACCOUNTS, 0), run
    assert [balance(account) for account in savings] == [D("1002.05")] * ACCOUNTS
    assert_each_account_paid_once_and_the_book_whole()

"""The ledger under real concurrency: many workers, each on its own database connection.

Every worker is a thread inside its own ``app.app_context()`` (Flask-SQLAlchemy scopes a
session, and so a pooled connection, to each app context); a ``threading.Barrier`` releases
them together so their transactions overlap on the same rows. Workers receive ids and account
numbers, never ORM objects, and load what they need in their own session.

The PostgreSQL cases need ``TEST_DATABASE_URL``; the SQLite case uses a file database, since
an in-memory one cannot be shared between connections.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import event

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger import InsufficientFunds
from bankapp.models import Account, JournalEntry, Transaction, TransactionType, User
from support.concurrency import make_worker_app, postgres_only, run_together

D = Decimal

def withdraw_task(account_id: int, actor_id: int, amount: Decimal, key: str | None = None):
    account = db.session.get(Account, account_id)
    actor = db.session.get(User, actor_id)
    posting = ledger.withdraw(account, amount, "Concurrent withdrawal", actor,
                              idempotency_key=key)
    return posting.entry.id, posting.replayed


def transfer_task(source_id: int, destination_number: str, actor_id: int, amount: Decimal):
    source = db.session.get(Account, source_id)
    actor = db.session.get(User, actor_id)
    return ledger.transfer(source, destination_number, amount, "Concurrent transfer",
                           actor).entry.id


def balance_of(account_id: int) -> Decimal:
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account_id))


def customer_total() -> Decimal:
    return db.session.scalar(sa.select(sa.func.sum(Account.balance))
                             .where(Account.owner_id.is_not(None)))


def legs(account_id: int, transaction_type: str) -> int:
    return db.session.scalar(sa.select(sa.func.count(Transaction.id)).where(
        Transaction.account_id == account_id, Transaction.transaction_type == transaction_type))


def errors_in(outcomes: list) -> list[BaseException]:
    return [o for o in outcomes if isinstance(o, BaseException)]


# ---------------------------------------------------------------- PostgreSQL

@postgres_only
def test_concurrent_withdrawals_never_overdraw(worker_app, customer, funded_account):
    account = funded_account(customer, "1000.00")
    account_id, actor_id = account.id, customer.id
    db.session.remove()

    outcomes = run_together(worker_app, withdraw_task,
                            [(account_id, actor_id, D("30.00"))] * 50)

    errors = errors_in(outcomes)
    assert all(isinstance(e, InsufficientFunds) for e in errors), Counter(map(repr, errors))
    assert len(outcomes) - len(errors) == 33
    assert balance_of(account_id) == D("10.00")
    assert legs(account_id, TransactionType.WITHDRAWAL) == 33
    assert ledger.reconcile().problems == []


@postgres_only
def test_concurrent_transfers_in_both_directions_conserve_money(worker_app, customer, make_user,
                                                                funded_account):
    bob = make_user(email="bob@example.com")
    a, b = funded_account(customer, "10000.00"), funded_account(bob, "10000.00")
    ids = {a.account_number: a.id, b.account_number: b.id}
    owners = {a.id: customer.id, b.id: bob.id}
    draw = random.Random(3)
    jobs, expected = [], {a.id: D("10000.00"), b.id: D("10000.00")}
    for i in range(100):
        source, destination = (a, b) if i % 2 == 0 else (b, a)
        amount = D(draw.randint(1, 5000)) / 100  # at most 50.00: neither side can run dry
        jobs.append((source.id, destination.account_number, owners[source.id], amount))
        expected[source.id] -= amount
        expected[ids[destination.account_number]] += amount
    db.session.remove()

    outcomes = run_together(worker_app, transfer_task, jobs)

    assert errors_in(outcomes) == []
    assert len(set(outcomes)) == 100
    assert {i: balance_of(i) for i in expected} == expected
    assert customer_total() == D("20000.00")
    assert ledger.reconcile().problems == []


@postgres_only
def test_concurrent_transfers_around_a_ring_neither_deadlock_nor_lose_money(
        worker_app, make_user, funded_account):
    owners = [make_user() for _ in range(5)]
    ring = [funded_account(owner, "5000.00") for owner in owners]
    draw = random.Random(5)
    jobs, expected = [], {account.id: D("5000.00") for account in ring}
    for i in range(100):
        source, destination = ring[i % 5], ring[(i + 1) % 5]
        amount = D(draw.randint(1, 10000)) / 100
        jobs.append((source.id, destination.account_number, source.owner_id, amount))
        expected[source.id] -= amount
        expected[destination.id] += amount
    db.session.remove()

    outcomes = run_together(worker_app, transfer_task, jobs)

    assert errors_in(outcomes) == []
    assert {i: balance_of(i) for i in expected} == expected
    assert customer_total() == D("25000.00")
    assert ledger.reconcile().problems == []


@postgres_only
def test_concurrent_replays_of_one_idempotency_key_post_once(worker_app, customer,
                                                             funded_account):
    account = funded_account(customer, "100.00")
    account_id, actor_id = account.id, customer.id
    db.session.remove()

    outcomes = run_together(worker_app, withdraw_task,
                            [(account_id, actor_id, D("10.00"), "double-click")] * 20)

    assert errors_in(outcomes) == []
    assert len({entry_id for entry_id, _ in outcomes}) == 1
    assert sorted(replayed for _, replayed in outcomes) == [False] + [True] * 19
    assert balance_of(account_id) == D("90.00")
    assert db.session.scalar(sa.select(sa.func.count(JournalEntry.id))
                             .where(JournalEntry.idempotency_key == "double-click")) == 1
    assert ledger.reconcile().problems == []


@postgres_only
def test_concurrent_replays_that_drain_the_account_all_get_the_one_posting(
        worker_app, customer, funded_account):
    # The twins that wait for the first to commit find the balance spent: they must still
    # answer with its posting, not with "insufficient funds".
    account = funded_account(customer, "100.00")
    account_id, actor_id = account.id, customer.id
    db.session.remove()

    outcomes = run_together(worker_app, withdraw_task,
                            [(account_id, actor_id, D("100.00"), "drain-click")] * 12)

    assert errors_in(outcomes) == []
    assert len({entry_id for entry_id, _ in outcomes}) == 1
    assert sorted(replayed for _, replayed in outcomes) == [False] + [True] * 11
    assert balance_of(account_id) == D("0.00")
    assert ledger.reconcile().problems == []


@postgres_only
def test_concurrent_first_deposits_create_one_vault(worker_app, make_user, funded_account):
    owners = [make_user() for _ in range(10)]
    accounts = [(funded_account(owner).id, owner.id) for owner in owners]
    db.session.remove()

    def deposit_task(account_id, actor_id):
        account = db.session.get(Account, account_id)
        return ledger.deposit(account, D("1.00"), "", db.session.get(User, actor_id)).entry.id

    outcomes = run_together(worker_app, deposit_task, accounts)

    assert errors_in(outcomes) == []
    assert db.session.scalar(sa.select(sa.func.count(Account.id))
                             .where(Account.owner_id.is_(None))) == 1
    assert ledger.reconcile().problems == []


@postgres_only
def test_accounts_opened_at_once_stop_at_the_banks_maximum(app, worker_app, customer):
    worker_app.config["MAX_OPEN_ACCOUNTS"] = 3
    owner_id = customer.id
    db.session.remove()

    def open_task(owner_id):
        try:
            return ledger.open_account(db.session.get(User, owner_id), "SAVINGS").id
        except ledger.LedgerError:
            return "refused"

    outcomes = run_together(worker_app, open_task, [(owner_id,)] * 8)

    assert errors_in(outcomes) == []
    assert outcomes.count("refused") == 5
    assert db.session.scalar(sa.select(sa.func.count(Account.id))
                             .where(Account.owner_id == owner_id)) == 3


@postgres_only
def test_a_refusal_names_the_state_that_refused_it(generic_worker_app, customer,
                                                  funded_account):
    """A withdrawal refused for lack of funds, racing a deposit that lands in between the
    refused update and the ledger's look at why, is never reported as some other error.

    The interleaving is forced: when the withdrawal's conditional UPDATE matches no row, a
    deposit from another connection commits before the withdrawal goes on. Generic path
    only: ledger_post() decides under the row lock, where no deposit can land in between.
    """
    worker_app = generic_worker_app
    account = funded_account(customer, "20.00")
    account_id, actor_id = account.id, customer.id
    db.session.remove()
    worker_thread_ids = set()
    fired = threading.Event()

    def deposit_from_elsewhere():
        with worker_app.app_context():
            ledger.deposit(db.session.get(Account, account_id), D("50.00"), "Salary",
                           db.session.get(User, actor_id))
            db.session.remove()

    def after_execute(conn, cursor, statement, parameters, context, executemany):
        if (threading.get_ident() in worker_thread_ids and not fired.is_set()
                and statement.startswith("UPDATE accounts") and cursor.rowcount == 0):
            fired.set()
            depositor = threading.Thread(target=deposit_from_elsewhere)
            depositor.start()
            depositor.join(timeout=60)

    def withdraw_racing_a_deposit():
        worker_thread_ids.add(threading.get_ident())
        return withdraw_task(account_id, actor_id, D("30.00"))

    with worker_app.app_context():
        engine = db.engine
    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        [outcome] = run_together(worker_app, withdraw_racing_a_deposit, [()])
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)

    assert fired.is_set()
    # Either verdict is honest (refused at 20.00, or served once the deposit landed); the
    # ledger serves it, since the money is there by the time it looks again.
    assert not isinstance(outcome, BaseException), repr(outcome)
    assert balance_of(account_id) == D("40.00")
    assert ledger.reconcile().problems == []


# ---------------------------------------------------------------- SQLite

def test_concurrent_withdrawals_never_overdraw_on_sqlite(tmp_path):
    """SQLite has one writer at a time (WAL, busy timeout): the others wait, none overdraws."""
    sqlite_app = make_worker_app(f"sqlite:///{tmp_path / 'concurrency.db'}")
    with sqlite_app.app_context():
        db.create_all()
        owner = User(email="saver@example.com", password_hash="x")
        db.session.add(owner)
        db.session.commit()
        account = ledger.open_account(owner, "SAVINGS")
        ledger.deposit(account, D("1000.00"), "Opening deposit", owner)
        account_id, actor_id = account.id, owner.id
        db.session.remove()

    outcomes = run_together(sqlite_app, withdraw_task, [(account_id, actor_id, D("300.00"))] * 8)

    with sqlite_app.app_context():
        errors = errors_in(outcomes)
        assert all(isinstance(e, InsufficientFunds) for e in errors), Counter(map(repr, errors))
        assert len(outcomes) - len(errors) == 3
        assert balance_of(account_id) == D("100.00")
        assert legs(account_id, TransactionType.WITHDRAWAL) == 3
        assert ledger.reconcile().problems == []
        db.session.remove()
        db.engine.dispose()

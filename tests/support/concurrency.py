"""Real concurrency for the ledger's race tests: worker apps with pools of their own, and
threads released together by a barrier so their transactions overlap on the same rows."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bankapp import create_app, ledger
from bankapp.extensions import db
from bankapp.ledger import fast
from bankapp.models import Account
from config import TestingConfig
from support.database import POSTGRES

postgres_only = pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")

# Enough connections for real overlap without crowding a shared server's max_connections.
WORKER_POOL = {"pool_size": 20, "max_overflow": 0, "pool_timeout": 120}


def make_worker_app(database_url: str, **settings):
    """A second application on the test database whose pool serves the worker threads."""
    config = type("WorkerConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": dict(WORKER_POOL),
        **settings,
    })
    return create_app(config)


@contextmanager
def running_worker_app(database_url: str, **settings):
    """``make_worker_app`` for the block (a fixture's life), its pools' connections closed
    after it (the session's engine and the lean one the fast path and the API's look-ups
    use)."""
    workers = make_worker_app(database_url, **settings)
    try:
        yield workers
    finally:
        with workers.app_context():
            fast.dispose(workers)
            db.engine.dispose()


def run_together(app, task, jobs: list[tuple]) -> list:
    """Run ``task(*job)`` for every job at once, one thread and app context each.

    Returns, in job order, what each call returned or the exception it raised.
    """
    barrier = threading.Barrier(len(jobs))
    outcomes: list = [None] * len(jobs)

    def worker(index: int, job: tuple) -> None:
        try:
            barrier.wait(timeout=60)
            with app.app_context():
                try:
                    outcomes[index] = task(*job)
                finally:
                    db.session.remove()
        except Exception as exc:  # reported to the test, which checks every outcome
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return outcomes


def flask_commands_at_once(app, *args: str, copies: int = 2) -> list:
    """Start ``flask <args>`` ``copies`` times at once on the app's test database (as two
    hosts running the same job would); ``(returncode, stdout, stderr)`` of each."""
    import subprocess
    import sys
    from pathlib import Path

    env = {"BANKAPP_ENV": "testing", "TEST_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "FLASK_APP": "wsgi", "PATH": "/usr/bin:/bin"}
    commands = [subprocess.Popen([sys.executable, "-m", "flask", *args],
                                 cwd=Path(__file__).resolve().parents[2], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(copies)]
    outputs = [command.communicate(timeout=120) for command in commands]
    return [(command.returncode, *output) for command, output in zip(commands, outputs)]


def transfer_by_ids(source_id: int, destination_number: str, amount) -> int:
    """A transfer by the source account's owner, in the calling thread's app context (its
    own session): the journal entry's id."""
    source = db.session.get(Account, source_id)
    return ledger.transfer(source, destination_number, amount, "Rent", source.owner).entry_id


class RowLocks:
    """A PostgreSQL transaction of its own that takes account row locks when told and holds
    them until ``release()``: how a test stops another transaction at a lock it chose.

    Its ``deadlock_timeout`` is a minute, the server's 1 s for everyone else: in a deadlock
    with it, the other side is the one PostgreSQL aborts (the backend whose timeout runs out
    first looks for the cycle and fails its own transaction).
    """

    def __init__(self, database_url: str, *, deadlock_timeout: str = "60s"):
        self._engine = sa.create_engine(database_url, poolclass=NullPool)
        self._connection = self._engine.connect()
        # In the transaction: undone with it on release.
        self._connection.execute(sa.text("SELECT set_config('deadlock_timeout', :timeout, true)"),
                                 {"timeout": deadlock_timeout})
        self._waiting: threading.Thread | None = None
        self._error: BaseException | None = None

    def lock(self, *account_ids: int) -> None:
        """Lock these accounts' rows (waiting for them if another transaction holds one)."""
        self._connection.execute(
            sa.text("SELECT id FROM accounts WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
            {"ids": list(account_ids)}).all()

    def claim_system_key(self, key: str) -> None:
        """Insert a journal entry row under the bank's idempotency ``key`` and keep it
        uncommitted, as a posting of that key in flight would: another transaction writing
        the key waits for this one (a unique index) in the middle of its posting."""
        self._connection.execute(sa.text(
            "INSERT INTO journal_entries (reference, entry_type, description, actor_id, "
            "channel, idempotency_key, created_at) "
            "VALUES (md5(random()::text), 'INTEREST', 'In flight', NULL, 'system', :key, now())"),
            {"key": key})

    def lock_meanwhile(self, *account_ids: int) -> None:
        """``lock()`` in a thread, for when the lock is held by the transaction under test:
        ``release()`` waits for it and raises what it raised."""

        def take() -> None:
            try:
                self.lock(*account_ids)
            except BaseException as error:  # raised by release(), in the test's thread
                self._error = error

        self._waiting = threading.Thread(target=take)
        self._waiting.start()

    def release(self) -> None:
        """Roll the transaction back (nothing it did stays) and close the connection; once."""
        if self._connection.closed:
            return
        try:
            if self._waiting is not None:
                self._waiting.join(timeout=120)
                assert not self._waiting.is_alive(), "a lock was never granted"
            self._connection.rollback()
        finally:
            self._connection.close()
            self._engine.dispose()
        if self._error is not None:
            raise self._error


def wait_for_lock_waits(database_url: str, count: int, timeout: float = 30.0) -> None:
    """Return once ``count`` sessions of the database are waiting for a lock (a test's
    transactions stopped where it means them to be); fail after ``timeout`` seconds."""
    engine = sa.create_engine(database_url, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                waiting = connection.scalar(sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"))
            if waiting >= count:
                return
            assert time.monotonic() < deadline, f"{waiting} of {count} lock waits after {timeout} s"
            time.sleep(0.02)
    finally:
        engine.dispose()


@contextmanager
def a_transfer_waiting_for_its_account(workers, database_url: str, source_id: int,
                                       destination_number: str, amount):
    """Inside the block, a transfer from ``source_id`` (``transfer_by_ids`` on ``workers``)
    waits for the account's lock, held by another transaction; leaving the block releases it.
    Yields the transfer's ``InBackground``."""
    gate = RowLocks(database_url)
    try:
        gate.lock(source_id)
        posting = InBackground(workers, transfer_by_ids, source_id, destination_number, amount)
        wait_for_lock_waits(database_url, 1)
        yield posting
    finally:
        gate.release()


class InBackground:
    """``task(*args)`` in a thread of its own, inside an app context of ``app`` (so on a
    connection of its own); ``outcome()`` waits for it."""

    def __init__(self, app, task, *args):
        self._outcome = None

        def run() -> None:
            try:
                with app.app_context():
                    try:
                        self._outcome = task(*args)
                    finally:
                        db.session.remove()
            except Exception as error:  # handed to the test by outcome()
                self._outcome = error

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def outcome(self, timeout: float = 120.0):
        """What the task returned, or the exception it raised."""
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), "a background task hung"
        return self._outcome

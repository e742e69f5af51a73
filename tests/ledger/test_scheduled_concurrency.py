"""Two runs of the scheduled-payments job at once (two hosts, two cron calls) post each
occurrence once: PostgreSQL, real concurrent transactions."""
from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import Frequency, JournalEntry, ScheduledOccurrence
from support.backoffice import balance
from support.concurrency import flask_commands_at_once
from support.database import POSTGRES

pytestmark = pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL")


@pytest.fixture
def orders(customer, make_user, funded_account):
    """Five monthly orders from one account that can pay only some of what falls due."""
    source = funded_account(customer, "1000.00", "CHECKING")
    payees = [funded_account(make_user()) for _ in range(5)]
    made = [ledger.create_order(customer, source, payee, D("70.00"),
                                frequency=Frequency.MONTHLY, start_on=date(2026, 1, 1),
                                day_of_month=day, today=date(2025, 12, 31))
            for day, payee in zip(range(1, 6), payees)]
    return source, payees, made


def _counts():
    db.session.expire_all()
    occurrences = db.session.scalar(sa.select(sa.func.count(ScheduledOccurrence.id)))
    transfers = db.session.scalar(sa.select(sa.func.count(JournalEntry.id))
                                  .where(JournalEntry.entry_type == "TRANSFER"))
    return occurrences, transfers


def test_two_runs_in_parallel_threads_post_each_occurrence_once(app, orders):
    source, payees, made = orders
    barrier = threading.Barrier(4)
    errors = []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                ledger.run_due(date(2026, 4, 30))
            except Exception as error:  # reported below; a thread cannot fail the test
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    occurrences, transfers = _counts()
    # 5 orders × 4 months = 20 due; 1000.00 pays 14 of 70.00: the other 6 failed, once each.
    assert occurrences == 20 and transfers == 14
    assert balance(source) == D("20.00")
    assert sum(balance(p) for p in payees) == D("980.00")
    assert ledger.reconcile().clean


def test_two_run_scheduled_commands_at_once_post_each_occurrence_once(app, orders):
    source, payees, made = orders
    outcomes = flask_commands_at_once(app, "run-scheduled", "--as-of", "2026-04-30")
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    occurrences, transfers = _counts()
    assert occurrences == 20 and transfers == 14
    assert balance(source) == D("20.00")

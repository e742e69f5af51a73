"""When a posting happens: once it holds its accounts' locks, by the database's clock
(PostgreSQL, real concurrent transactions; migration 0029 for ``ledger_post()``).

What depends on it: a statement is issued as of ``ledger.settled_time``, and its verification
recomputes it as of that moment (tests/reports/test_statement_concurrency.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger import fast, totals
from bankapp.models import DailyOutgoing, JournalEntry, LedgerTotal
from support.concurrency import (InBackground, RowLocks, a_transfer_waiting_for_its_account,
                                 postgres_only, transfer_by_ids, wait_for_lock_waits)

pytestmark = postgres_only


def _database_now(url: str) -> datetime:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT clock_timestamp()"))
    finally:
        engine.dispose()


def test_a_posting_that_waits_for_its_account_is_timed_once_it_holds_the_lock(
        app, workers_on_each_path, customer, funded_account):
    source, destination = funded_account(customer, "100.00"), funded_account(customer)
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with a_transfer_waiting_for_its_account(workers_on_each_path, url, source.id,
                                            destination.account_number, D("30.00")) as posting:
        still_waiting = _database_now(url)
    entry_id = posting.outcome()
    assert isinstance(entry_id, int), entry_id
    assert db.session.get(JournalEntry, entry_id).created_at > still_waiting


def test_a_statements_time_leaves_its_account_free_for_postings(app, customer,
                                                                 funded_account):
    account = funded_account(customer, "100.00")
    db.session.commit()
    ledger.settled_time(account.id)  # the session's transaction stays open
    locker = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    try:
        with locker.begin() as connection:
            connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            locked = connection.scalar(sa.text(
                "SELECT id FROM accounts WHERE id = :id FOR UPDATE"), {"id": account.id})
    finally:
        locker.dispose()
    assert locked == account.id


def test_a_statements_time_waits_while_a_transaction_holds_the_account(app, customer,
                                                                        funded_account):
    account = funded_account(customer, "100.00")
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    gate = RowLocks(url)  # as a posting in flight holds it
    try:
        gate.lock(account.id)
        timing = InBackground(app, ledger.settled_time, account.id)
        wait_for_lock_waits(url, 1)  # fails unless it waits
    finally:
        gate.release()
    moment = timing.outcome()
    assert isinstance(moment, datetime), moment
    assert moment.tzinfo is not None


def test_a_statements_time_of_an_unknown_account_is_refused(app):
    with pytest.raises(ledger.UnknownAccount):
        ledger.settled_time(987654321)


def _zone_whose_day_is_not_utcs() -> str:
    """A time zone whose date differs from UTC's for the next hour or so, whatever the hour:
    a posting counted on UTC's day instead would be seen."""
    return "Pacific/Kiritimati" if datetime.now(timezone.utc).hour >= 10 else "Pacific/Pago_Pago"


def test_the_function_counts_a_posting_on_the_bank_day_and_in_the_bucket_of_its_time(
        app, customer, funded_account, make_user):
    app.config["BANK_TIMEZONE"] = _zone_whose_day_is_not_utcs()
    source = funded_account(customer, "100.00")
    payee = funded_account(make_user(email="payee@example.com"))
    db.session.commit()
    entry_id = transfer_by_ids(source.id, payee.account_number, D("30.00"))
    created_at = db.session.get(JournalEntry, entry_id).created_at
    day = db.session.scalar(sa.select(DailyOutgoing.day).where(
        DailyOutgoing.user_id == customer.id))
    buckets = db.session.scalars(sa.select(LedgerTotal.bucket).where(
        LedgerTotal.kind == "transfer")).all()
    assert day == created_at.astimezone(ZoneInfo(app.config["BANK_TIMEZONE"])).date()
    assert [totals.as_utc(bucket) for bucket in buckets] == [totals.bucket_of(created_at)]


def test_the_function_refuses_to_time_a_posting_without_the_banks_time_zone(
        customer, funded_account):
    account = funded_account(customer, "100.00")
    vault = ledger.internal_account()
    db.session.commit()
    entries = db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))
    params = fast.parameters(
        entry_type="DEPOSIT", description="", actor_id=customer.id, channel="web",
        idempotency_key=None, reference="no-time-zone", at=None,
        legs=[fast.FastLeg(account.id, "DEPOSIT", D("5.00"), D("0.00"), ledger.MAX_BALANCE,
                           None, 0),
              fast.FastLeg(vault.id, "DEPOSIT", D("-5.00"), -ledger.MAX_BALANCE,
                           ledger.MAX_BALANCE, None, 0)],
        bucket=None, audit=None, answer=None, charge=None, timezone=None)
    with pytest.raises(sa.exc.DBAPIError, match="p_timezone is needed"):
        fast.call(db.session.connection(), params)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(JournalEntry.id))) == entries

"""Holds and daily limits under real concurrency (PostgreSQL; see test_ledger_concurrency)."""
from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import Account, DailyOutgoing, Hold, User, now_utc
from support.backoffice import assert_clean_book, audit_rows, balance, teller  # noqa: F401
from support.concurrency import postgres_only, run_together

D = Decimal
pytestmark = postgres_only


def _transfer(source_number: str, payee_number: str, owner_id: int) -> str:
    owner = db.session.get(User, owner_id)
    source = ledger.find_customer_account(source_number)
    ledger.transfer(source, payee_number, D("300.00"), "Parallel", owner)
    return "posted"


def test_fifty_parallel_transfers_cannot_together_pass_the_daily_limit(
        worker_app, customer, make_user, funded_account):
    sources = [funded_account(customer, "3000.00") for _ in range(5)]
    payee = funded_account(make_user(email="bob@example.com"), "0.00")
    jobs = [(sources[i % 5].account_number, payee.account_number, customer.id)
            for i in range(50)]

    outcomes = run_together(worker_app, _transfer, jobs)

    kinds = Counter(type(o).__name__ if isinstance(o, Exception) else o for o in outcomes)
    # 10,000.00 a day: 33 transfers of 300.00 fit (9,900.00), the other 17 are refused.
    assert kinds == {"posted": 33, "DailyLimitExceeded": 17}, outcomes
    db.session.expire_all()
    assert balance(payee) == D("9900.00")
    assert db.session.scalar(sa.select(DailyOutgoing.amount)) == D("9900.00")
    assert_clean_book()


def _withdraw(number: str, owner_id: int) -> str:
    ledger.withdraw(ledger.find_customer_account(number), D("50.00"), "Cash",
                    db.session.get(User, owner_id))
    return "posted"


def test_parallel_withdrawals_never_spend_held_money(worker_app, customer, teller,  # noqa: F811
                                                     funded_account):
    account = funded_account(customer, "500.00")
    ledger.place_hold(account, D("300.00"), "Dispute", now_utc() + timedelta(days=1), teller)

    outcomes = run_together(worker_app, _withdraw, [(account.account_number, customer.id)] * 10)

    kinds = Counter(type(o).__name__ if isinstance(o, Exception) else o for o in outcomes)
    assert kinds == {"posted": 4, "InsufficientFunds": 6}, outcomes
    db.session.expire_all()
    assert balance(account) == D("300.00") and ledger.available_balance(account) == D("0.00")


def _release(hold_id: int, teller_id: int, wait_until: float) -> str:
    time.sleep(max(0.0, wait_until - time.time()))
    ledger.release_hold(hold_id, db.session.get(User, teller_id))
    return "released"


@pytest.mark.parametrize("offset", [-0.05, 0.0, 0.05])
def test_a_hold_released_as_it_expires_is_released_once_or_not_at_all(
        worker_app, account_with_hold, teller, offset):  # noqa: F811
    hold_id, expires = account_with_hold
    jobs = [(hold_id, teller.id, expires + offset)] * 8

    outcomes = run_together(worker_app, _release, jobs)

    kinds = Counter(type(o).__name__ if isinstance(o, Exception) else o for o in outcomes)
    assert set(kinds) <= {"released", "HoldError"} and kinds["released"] <= 1, outcomes
    db.session.expire_all()
    hold = db.session.get(Hold, hold_id)
    assert (hold.released_at is not None) == (kinds["released"] == 1)
    assert len(audit_rows("hold.release")) == kinds["released"]
    if hold.released_at is not None:
        assert hold.released_at < hold.expires_at


@pytest.fixture
def account_with_hold(customer, teller, funded_account):  # noqa: F811
    account = funded_account(customer, "100.00")
    expires = now_utc() + timedelta(seconds=2)
    hold = ledger.place_hold(account, D("100.00"), "Short hold", expires, teller)
    return hold.id, expires.timestamp()

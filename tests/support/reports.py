"""Helpers for the report tests: post ledger movements at chosen moments."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from bankapp import ledger


@contextmanager
def ledger_clock(monkeypatch, moment: datetime):
    """Make the ledger stamp postings with ``moment`` (its core stamps ``now_utc()`` otherwise)."""
    with monkeypatch.context() as patch:
        patch.setattr(ledger.core, "now_utc", lambda: moment)
        yield


def deposit_at(monkeypatch, account, amount, when: datetime, description="Deposit", actor=None):
    with ledger_clock(monkeypatch, when):
        return ledger.deposit(account, Decimal(amount), description, actor)


def withdraw_at(monkeypatch, account, amount, when: datetime, description="Withdrawal",
                actor=None):
    with ledger_clock(monkeypatch, when):
        return ledger.withdraw(account, Decimal(amount), description, actor)


def transfer_at(monkeypatch, source, destination, amount, when: datetime,
                description="Transfer", actor=None):
    with ledger_clock(monkeypatch, when):
        return ledger.transfer(source, destination.account_number, Decimal(amount),
                               description, actor)

"""The accounts by type and status and what they hold, counted once a day after the close.

The bank report of a past period shows these figures as the first count after the period
closed (``first_count_after``), so opening it does not sum every account row of the bank,
and its figures are the period's, not today's. The daily ``count-balances`` job counts them
(``count_balances``) in one statement: one moment of the book, whose rows sum to zero.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import Account, ClosingBalance, now_utc


def count_balances(moment: datetime | None = None) -> int:
    """Count the accounts by type and status as they stand, under ``moment`` (now by
    default), and commit; how many rows (groups) it wrote."""
    moment = moment or now_utc()
    counted = (
        sa.select(sa.literal(moment, ClosingBalance.counted_at.type), Account.account_type,
                  Account.status, sa.func.count(),
                  # round(): SQLite adds NUMERIC values in binary floating point.
                  sa.func.round(sa.func.sum(Account.balance), 2))
        .group_by(Account.account_type, Account.status))
    result = db.session.execute(
        sa.insert(ClosingBalance).from_select(
            ["counted_at", "account_type", "status", "accounts", "balance"], counted))
    db.session.commit()
    return result.rowcount


def first_count_after(moment: datetime) -> list[ClosingBalance]:
    """The rows of the first count taken at or after ``moment`` (one query); none when no
    count was."""
    first = (sa.select(sa.func.min(ClosingBalance.counted_at))
             .where(ClosingBalance.counted_at >= moment).scalar_subquery())
    return list(db.session.scalars(
        sa.select(ClosingBalance).where(ClosingBalance.counted_at == first)
        .order_by(ClosingBalance.account_type, ClosingBalance.status)))

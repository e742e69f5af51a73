"""Deleting what has outlived its use: stored API answers, ended sessions, forgotten browsers,
and the report buckets' shard rows of past quarter hours (folded into one row each).

Each kind is deleted in batches of at most ``PRUNE_BATCH_SIZE`` rows (oldest ids first), each
batch its own transaction, so a large backlog never holds one long transaction or its locks.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.ledger import totals
from bankapp.models import (ApiIdempotencyKey, KnownBrowser, LedgerTotal, UserSession,
                            now_utc)

PRUNE_BATCH_SIZE = 1000


def delete_in_batches(model, condition, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete ``model``'s rows matching ``condition``, batch by batch; return how many."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    # Old rows have the lowest ids, so each batch walks the primary key from the start; only
    # the last one reads on through the rows still inside the window.
    batch = sa.select(model.id).where(condition).order_by(model.id).limit(batch_size)
    deleted = 0
    while True:
        result = db.session.connection().execute(
            sa.delete(model).where(model.id.in_(batch.scalar_subquery())))
        db.session.commit()
        deleted += result.rowcount
        if result.rowcount < batch_size:
            return deleted


def _cutoff(older_than: timedelta):
    if older_than <= timedelta(0):
        raise ValueError("older_than must be positive")
    return now_utc() - older_than


def prune_idempotency_keys(older_than: timedelta, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete the API's stored answers (refusals) created more than ``older_than`` ago."""
    return delete_in_batches(ApiIdempotencyKey,
                             ApiIdempotencyKey.created_at < _cutoff(older_than), batch_size)


def prune_sessions(older_than: timedelta) -> int:
    """Delete sessions ended, or last seen, more than ``older_than`` ago (the security page
    lists open sessions only; sign-in history lives in the audit trail)."""
    cutoff = _cutoff(older_than)
    return delete_in_batches(UserSession,
                             sa.func.coalesce(UserSession.ended_at,
                                              UserSession.last_seen_at) < cutoff)


def prune_known_browsers(older_than: timedelta) -> int:
    """Forget browsers not seen for ``older_than``: their next sign-in is announced as new."""
    return delete_in_batches(KnownBrowser, KnownBrowser.last_seen_at < _cutoff(older_than))


def fold_ledger_totals(before: datetime) -> int:
    """Fold the shard rows of every bucket that starts before ``before`` into one row per
    bucket and kind (shard 0), one day of buckets per transaction; how many rows it removed.

    The shards only spare concurrent postings a queue on one row while their quarter hour
    is current; afterwards they are sixteen rows where one does: a month's report reads
    about 140,000 bucket rows of a 100,000-customer bank instead of about 9,000. Totals,
    counts and largest movements stay the same (``ledger.totals.problems`` sums the
    shards). A posting that still lands in a folded bucket simply adds a shard row again.
    """
    moved = 0
    folded = (LedgerTotal.bucket < before, LedgerTotal.shard != 0)
    while True:
        first = db.session.scalar(sa.select(sa.func.min(LedgerTotal.bucket)).where(*folded))
        if first is None:
            db.session.commit()
            return moved
        first = totals.as_utc(first)
        day_end = min(before, first + timedelta(days=1))
        rows = db.session.execute(
            sa.delete(LedgerTotal).where(*folded, LedgerTotal.bucket >= first,
                                         LedgerTotal.bucket < day_end)
            .returning(LedgerTotal.bucket, LedgerTotal.kind, LedgerTotal.amount,
                       LedgerTotal.movements, LedgerTotal.max_amount)).all()
        merged: dict[tuple, dict] = {}
        for row in rows:
            into = merged.setdefault((totals.as_utc(row.bucket), row.kind), {
                "bucket": totals.as_utc(row.bucket), "kind": row.kind, "shard": 0,
                "amount": Decimal("0.00"), "movements": 0, "max_amount": Decimal("0.00")})
            into["amount"] += Decimal(row.amount)
            into["movements"] += row.movements
            into["max_amount"] = (None if into["max_amount"] is None or row.max_amount is None
                                  else max(into["max_amount"], Decimal(row.max_amount)))
        totals.add_to_buckets(list(merged.values()))
        db.session.commit()
        moved += len(rows)

"""Deleting what has outlived its use: stored API answers, ended sessions, forgotten browsers.

Each kind is deleted in batches of at most ``PRUNE_BATCH_SIZE`` rows (oldest ids first), each
batch its own transaction, so a large backlog never holds one long transaction or its locks.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import ApiIdempotencyKey, KnownBrowser, UserSession, now_utc

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
    """Delete the API's stored answers created more than ``older_than`` ago."""
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

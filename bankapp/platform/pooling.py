"""Pooled database connections: checked before use only when they sat idle.

``pool_pre_ping`` sends ``SELECT 1`` before every checkout: a round trip per request. Under
load nearly every connection is reused within milliseconds of its last statement, and one
that dies while busy fails its statement however it was checked. Restarts, failovers and
idle cuts by a firewall leave connections unused for longer than that: those are pinged.
"""
from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

# A pooled connection idle longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 2.0


def wants_idle_ping(options: dict) -> bool:
    """Whether an engine made with these options is to ping its idle connections: a pool of
    its own without ``pool_pre_ping`` (``create_app`` turns that off for PostgreSQL)."""
    return options.get("pool_pre_ping") is False and options.get("poolclass") is not NullPool


def ping_idle_connections(engine) -> None:
    """Check a pooled connection with ``SELECT 1`` before use if it sat idle in the pool for
    more than PING_AFTER_IDLE_SECONDS; a dead one is replaced, and with it every connection
    older than it (a database restart kills them all)."""

    @event.listens_for(engine, "checkin")
    def stamp(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since <= PING_AFTER_IDLE_SECONDS:
            return  # new, or just used
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except engine.dialect.loaded_dbapi.Error as error:
            # The whole pool, as on any disconnect: a restart killed its siblings too.
            raise sa_exc.InvalidatePoolError(f"idle connection is dead: {error}") from error

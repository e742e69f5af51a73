"""Reads from a streaming replica (``DATABASE_REPLICA_URL``), with the primary as fallback.

Only reports read there: statements, monthly summaries, the bank-wide report and the API's
transaction lists, through ``read(function, …)``. Everything that writes or decides (postings
and their balance checks, logins, sessions, statement verification, a statement's issue
time: ``ledger.settled_time``) stays on the primary.

How: the app's session routes every query made inside ``read()`` to the ``replica`` engine
(``RoutingSession.get_bind``), except a flush, which always writes to the primary. Outside
``read()`` nothing changes.

Read-your-writes and consistent pages: a replica replays the primary's changes a little
later, so it may lack a posting the primary already shows. Two checks, each one small query on
each server before a read, send the read to the primary while the replica is behind:

- the user's own last write: every successful write request (POST, PUT, PATCH, DELETE answered
  below 400) records the primary's WAL position (``pg_current_wal_insert_lsn()``, past the
  request's commit) for its user in the rate-limit store (Redis in production, the database
  while Redis is down: every host sees it) for ``READ_YOUR_WRITES_SECONDS``; that user's reads
  use the replica only once ``pg_last_wal_replay_lsn()`` there has reached it. A store that
  cannot be reached sends the reads to the primary.
- the accounts the page is about (``fresh=``): every posting updates its accounts' rows, so
  the replica has every posting of an account exactly when its row there is the primary's
  version (the same ``xmin``, the transaction that wrote it). A recipient's statement or
  transaction list thus never misses the transfer whose balance the primary already shows,
  and a customer's own posting never disappears, however long the replica lags.

A read sent to the primary because the replica was behind or down is counted
(``bankapp_replica_fallback_reads_total`` by reason); each check sets
``bankapp_replica_lag_bytes`` (the primary's WAL position minus the replica's replayed one).

When the replica fails (refused, timed out, cancelled by recovery), the read runs again on the
primary, a warning is logged, and the replica is left alone for ``REPLICA_RETRY_SECONDS``: a
page never shows an error for it.
"""
from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from flask import current_app, g, request
from flask_login import current_user
from sqlalchemy import exc as sa_exc

from bankapp.extensions import REPLICA, READ_FROM_REPLICA, db, limiter
from bankapp.platform import database, metrics, pooling
from config import normalize_database_url

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Seconds the replica is not tried again after it failed.
REPLICA_RETRY_SECONDS = 30

log = logging.getLogger("bankapp.replica")


def engine() -> sa.engine.Engine:
    """The replica's engine (``DATABASE_REPLICA_URL`` is set)."""
    return current_app.extensions[REPLICA]["engine"]


def init_app(app) -> None:
    """Create the replica's engine when ``DATABASE_REPLICA_URL`` is set.

    Its own engine, not a Flask-SQLAlchemy bind: no model lives there, and ``db.create_all``
    or migrations must never touch a read-only server. Same pool settings as the primary's,
    plus a short connect timeout, so that a replica that does not answer costs a read a few
    seconds at most.
    """
    url = app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    database.bound_connect_time(options, url, app.config["DATABASE_CONNECT_TIMEOUT"])
    replica = sa.create_engine(normalize_database_url(url), **options)
    if pooling.wants_idle_ping(options):
        pooling.ping_idle_connections(replica)
    app.extensions[REPLICA] = {"engine": replica, "down_until": 0.0}


def _state() -> dict:
    return current_app.extensions[REPLICA]


def _writer_key(user_id: int) -> str:
    return f"bankapp-wrote/{user_id}"


def _acting_user_id() -> int | None:
    api_user = g.get("api_user")
    if api_user is not None:
        return api_user.id
    if current_user and current_user.is_authenticated:
        return current_user.id
    return None


def mark_write(response):
    """``after_request``: remember where the primary's WAL stood after this user's write."""
    if (request.method in WRITE_METHODS and response.status_code < 400
            and REPLICA in current_app.extensions):
        user_id = _acting_user_id()
        if user_id is not None:
            window = current_app.config["READ_YOUR_WRITES_SECONDS"]
            try:
                with db.engine.connect() as connection:
                    position = connection.execute(sa.text(
                        "SELECT pg_current_wal_insert_lsn() - '0/0'")).scalar_one()
                # Cleared first: a counter store holds the latest position, not a sum.
                limiter.storage.clear(_writer_key(user_id))
                limiter.storage.incr(_writer_key(user_id), window, int(position))
            except Exception:  # the limits storage raises its backend's own errors
                log.warning("could not record user %s's write for read-your-writes; their "
                            "reads use the primary only while the store answers", user_id)
    return response


def _last_write_position() -> int | None:
    """The WAL position of this user's last write (0: none lately); None when unknown."""
    user_id = _acting_user_id()
    if user_id is None:
        return 0
    try:
        return limiter.storage.get(_writer_key(user_id))
    except Exception:  # unknown: the primary is always up to date
        return None


def replica_usable() -> bool:
    """A replica is configured and did not fail lately."""
    return (REPLICA in current_app.extensions
            and time.monotonic() >= _state()["down_until"])


def _row_versions(connection, rows) -> dict:
    """{(table, id): xmin} of ``rows`` (ORM objects) as ``connection``'s server has them."""
    versions = {}
    for row in rows:
        table = sa.inspect(row).mapper.local_table
        version = connection.execute(
            sa.text(f"SELECT xmin::text FROM {table.name} WHERE id = :id"),
            {"id": row.id}).scalar()
        versions[(table.name, row.id)] = version
    return versions


def _replica_caught_up(fresh) -> bool:
    """Whether the replica has this user's last write and the current version of ``fresh``
    (sets the lag gauge on the way)."""
    wanted = _last_write_position()
    if wanted is None:
        return False
    primary = db.session.connection()
    primary_position = int(primary.execute(
        sa.text("SELECT pg_current_wal_insert_lsn() - '0/0'")).scalar_one())
    primary_versions = _row_versions(primary, fresh)
    with engine().connect() as connection:
        replayed = connection.execute(
            sa.text("SELECT pg_last_wal_replay_lsn() - '0/0'")).scalar_one()
        replayed = int(replayed) if replayed is not None else None
        replica_versions = _row_versions(connection, fresh)
    metrics.REPLICA_LAG_BYTES.set(max(0, primary_position - (replayed or 0)))
    return (replayed is not None and replayed >= wanted
            and replica_versions == primary_versions)


def read(function, *args, fresh=(), **kwargs):
    """``function(*args, **kwargs)`` with its queries on the replica when it may serve them.

    ``function`` only reads. ``fresh``: rows (accounts) whose every posting the read must
    show; the replica serves it only if it has their current versions and this user's last
    write. Should the replica fail, the read runs again on the primary.
    """
    session = db.session
    # Changes not yet committed would be lost by the rollback a replica failure needs.
    if not replica_usable() or session.new or session.dirty or session.deleted:
        return function(*args, **kwargs)
    try:
        caught_up = _replica_caught_up(fresh)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as failure:
        _replica_failed(failure)
        return function(*args, **kwargs)
    if not caught_up:
        metrics.REPLICA_FALLBACKS.labels("behind").inc()
        return function(*args, **kwargs)
    session.info[READ_FROM_REPLICA] = True
    try:
        return function(*args, **kwargs)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as failure:
        session.info.pop(READ_FROM_REPLICA, None)
        session.rollback()
        _replica_failed(failure)
        return function(*args, **kwargs)
    finally:
        session.info.pop(READ_FROM_REPLICA, None)


def _replica_failed(failure: Exception) -> None:
    _state()["down_until"] = time.monotonic() + REPLICA_RETRY_SECONDS
    metrics.REPLICA_FALLBACKS.labels("down").inc()
    log.warning("read replica unavailable, reading from the primary for %s s: %s",
                REPLICA_RETRY_SECONDS, str(getattr(failure, "orig", failure)).strip())

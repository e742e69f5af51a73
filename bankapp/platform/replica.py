"""Reads from a streaming replica (``DATABASE_REPLICA_URL``), with the primary as fallback.

Only reports read there: statements, monthly summaries, the bank-wide report and the API's
transaction lists, through ``read(function, …)``. Everything that writes or decides (postings
and their balance checks, logins, sessions, statement verification) stays on the primary.

How: the app's session routes every query made inside ``read()`` to the ``replica`` engine
(``RoutingSession.get_bind``), except a flush, which always writes to the primary. Outside
``read()`` nothing changes.

Read-your-writes: a replica replays the primary's changes a little later, so a customer who
has just posted could open a statement without their posting. Every successful write request
(POST, PUT, PATCH, DELETE answered below 400) stamps its user in the rate-limit store (Redis in
production, so every host sees it) for ``READ_YOUR_WRITES_SECONDS``; while the stamp lasts that
user's reads go to the primary. A window rather than waiting for the replica to replay the
commit's LSN: it costs no extra query on the replica or the primary, works the same for the
web and the token API (no cookie needed), and a reader who wrote nothing lately never waits.
Its limit: a replica lagging longer than the window serves that user stale pages, so alert on
replication lag well below it (docs/deployment.md, "Deploying beyond one machine"). A store
that cannot be reached sends the reads to the primary.

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
from bankapp.platform import database, pooling
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
    """``after_request``: a user whose write succeeded reads from the primary for a while."""
    if (request.method in WRITE_METHODS and response.status_code < 400
            and REPLICA in current_app.extensions):
        user_id = _acting_user_id()
        if user_id is not None:
            window = current_app.config["READ_YOUR_WRITES_SECONDS"]
            try:
                # Cleared first: the window counts from the latest write, not the first.
                limiter.storage.clear(_writer_key(user_id))
                limiter.storage.incr(_writer_key(user_id), window)
            except Exception:  # the limits storage raises its backend's own errors
                log.warning("could not record user %s's write for read-your-writes; their "
                            "reads use the primary only while the store answers", user_id)
    return response


def _wrote_recently() -> bool:
    user_id = _acting_user_id()
    if user_id is None:
        return False
    try:
        return limiter.storage.get(_writer_key(user_id)) > 0
    except Exception:  # unknown: the primary is always up to date
        return True


def replica_usable() -> bool:
    """A replica is configured, did not fail lately, and this user wrote nothing lately."""
    if REPLICA not in current_app.extensions:
        return False
    if time.monotonic() < _state()["down_until"]:
        return False
    return not _wrote_recently()


def read(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with its queries on the replica when it may serve them.

    ``function`` only reads. Should the replica fail, it runs again on the primary.
    """
    session = db.session
    # Changes not yet committed would be lost by the rollback a replica failure needs.
    if not replica_usable() or session.new or session.dirty or session.deleted:
        return function(*args, **kwargs)
    session.info[READ_FROM_REPLICA] = True
    try:
        return function(*args, **kwargs)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as failure:
        session.info.pop(READ_FROM_REPLICA, None)
        session.rollback()
        _state()["down_until"] = time.monotonic() + REPLICA_RETRY_SECONDS
        log.warning("read replica unavailable, reading from the primary for %s s: %s",
                    REPLICA_RETRY_SECONDS, str(getattr(failure, "orig", failure)).strip())
        return function(*args, **kwargs)
    finally:
        session.info.pop(READ_FROM_REPLICA, None)

"""The rate limiter's store: Redis, and the database while Redis does not answer.

Flask-Limiter's own answer to a Redis outage is ``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``: it
then counts in a ``MemoryStorage`` of each process. Under gunicorn every worker (and every
host, every serverless instance) would count on its own, so "5 sign-ins a minute" becomes 5
per worker; without it, every limited request fails (a 500 on each sign-in). Neither ``limits``
nor Flask-Limiter has a store other than memory, Redis, Memcached or MongoDB, so the one thing
every worker already shares, the database, is a ``limits`` storage of our own here:

- ``DatabaseStorage`` (``bankapp+database://``): fixed-window counters in the
  ``rate_limit_counters`` table, each hit one upsert on a connection of its own (committed at
  once, whatever the request later does).
- ``RedisWithDatabaseFallback`` (``bankapp+redis://…``, ``bankapp+rediss://…``): Redis as
  configured; when a Redis call fails it logs a warning, counts in the database for
  ``REDIS_RETRY_SECONDS`` (each operation there adds one to
  ``bankapp_rate_limit_fallback_operations_total``), then tries Redis again.

``load_settings`` turns a ``redis://`` ``RATELIMIT_STORAGE_URI`` into the second form. The
counts made in the database while Redis was away are not carried back: a window that started
in one store starts afresh in the other (at worst a client gets one more window's allowance
at the switch).
"""
from __future__ import annotations

import functools
import logging
import time

import sqlalchemy as sa
from limits import RateLimitItem
from limits import parse as parse_limit
from limits.storage import RedisStorage, Storage
from sqlalchemy.dialects import postgresql, sqlite

from bankapp.extensions import db
from bankapp.platform import metrics

log = logging.getLogger("bankapp.ratelimit")

# The table is declared with the models (bankapp/models/counters.py), which the platform may
# not import: it is found in the shared metadata by name.
TABLE = "rate_limit_counters"
FALLBACK_PREFIX = "bankapp+"
# Seconds Redis is left alone after it failed, so a dead Redis costs one timeout, not one per
# request.
REDIS_RETRY_SECONDS = 15
# A hung Redis must not hold a sign-in for long: each connect and each reply has this long.
REDIS_SOCKET_TIMEOUT_SECONDS = 0.5


@functools.lru_cache(maxsize=64)
def parsed_limit(text: str) -> RateLimitItem:
    """A limit from its setting's text ("600 per minute"), parsed once per text: the
    per-call and per-look-up limits are read on every request that spends them."""
    return parse_limit(text)


def shared_store_uri(uri: str) -> str:
    """The storage URI the limiter is given: a Redis URL gets the database as its fallback."""
    if uri.startswith(("redis://", "rediss://")):
        return FALLBACK_PREFIX + uri
    return uri


def redis_url(uri: str) -> str:
    """The Redis URL inside a storage URI ('' when the store is not Redis)."""
    uri = uri.removeprefix(FALLBACK_PREFIX)
    return uri if uri.startswith(("redis://", "rediss://")) else ""


def _table() -> sa.Table:
    return db.metadata.tables[TABLE]


class DatabaseStorage(Storage):
    """Fixed-window counters in the app's database (the ``fixed-window`` strategy's needs:
    ``incr``, ``get``, ``get_expiry``, ``clear``)."""

    STORAGE_SCHEME = ["bankapp+database"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self):
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to ``key``'s count, starting a window of ``expiry`` seconds when
        there is none (or it ended); the new count."""
        table = _table()
        now = time.time()
        with db.engine.begin() as connection:
            insert = (postgresql.insert if connection.dialect.name == "postgresql"
                      else sqlite.insert)(table)
            statement = insert.values(key=key, count=amount, expires_at=now + expiry)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"count": sa.case((table.c.expires_at <= now, amount),
                                       else_=table.c.count + amount),
                      "expires_at": sa.case((table.c.expires_at <= now, now + expiry),
                                            else_=table.c.expires_at)},
            ).returning(table.c.count)
            count = connection.execute(statement).scalar_one()
            # Windows that ended: nobody reads them again.
            connection.execute(sa.delete(table).where(table.c.expires_at <= now))
        return count

    def _live(self, key: str):
        table = _table()
        with db.engine.connect() as connection:
            return connection.execute(
                sa.select(table.c.count, table.c.expires_at)
                .where(table.c.key == key, table.c.expires_at > time.time())).first()

    def get(self, key: str) -> int:
        row = self._live(key)
        return row.count if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._live(key)
        return row.expires_at if row else time.time()

    def check(self) -> bool:
        try:
            with db.engine.connect() as connection:
                connection.execute(sa.select(sa.func.count()).select_from(_table()))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with db.engine.begin() as connection:
            return connection.execute(sa.delete(_table())).rowcount

    def clear(self, key: str) -> None:
        table = _table()
        with db.engine.begin() as connection:
            connection.execute(sa.delete(table).where(table.c.key == key))


class RedisWithDatabaseFallback(Storage):
    """Redis while it answers; the database (``DatabaseStorage``) for a while after it fails."""

    STORAGE_SCHEME = ["bankapp+redis", "bankapp+rediss"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        options.setdefault("socket_connect_timeout", REDIS_SOCKET_TIMEOUT_SECONDS)
        options.setdefault("socket_timeout", REDIS_SOCKET_TIMEOUT_SECONDS)
        self.redis = RedisStorage(redis_url(uri), **options)
        self.database = DatabaseStorage()
        self.redis_down_until = 0.0

    @property
    def base_exceptions(self):
        return sa.exc.SQLAlchemyError

    def _call(self, operation: str, *args):
        if time.monotonic() >= self.redis_down_until:
            try:
                return getattr(self.redis, operation)(*args)
            except self.redis.base_exceptions as failure:
                self.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning("rate-limit store: Redis did not answer (%s: %s); counting in the "
                            "database for %s s", type(failure).__name__, failure,
                            REDIS_RETRY_SECONDS)
        metrics.RATE_LIMIT_FALLBACKS.inc()
        return getattr(self.database, operation)(*args)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call("incr", key, expiry, amount)

    def get(self, key: str) -> int:
        return self._call("get", key)

    def get_expiry(self, key: str) -> float:
        return self._call("get_expiry", key)

    def check(self) -> bool:
        return self.redis.check() or self.database.check()

    def reset(self) -> int | None:
        try:
            self.redis.reset()
        except self.redis.base_exceptions:
            pass  # down: what it holds is gone with it or stale by the time it returns
        return self.database.reset()

    def clear(self, key: str) -> None:
        self._call("clear", key)

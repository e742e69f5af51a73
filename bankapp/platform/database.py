"""The database connection: engine options per kind of server, SQLite's pragmas, the refusal
of NUL characters, the end-of-request rollback that survives a connection the server
dropped, commits that keep what a request read, ``days_between`` (date arithmetic both
servers understand) and ``whole_number``."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from flask import Flask
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.pool import NullPool
from werkzeug.exceptions import BadRequest

from bankapp.extensions import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def configure_database(app: Flask) -> None:
    """Set ``SQLALCHEMY_ENGINE_OPTIONS`` for SQLite, a pooler in front (``DATABASE_NULLPOOL``)
    or a PostgreSQL reached directly."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("sqlite"):
        if ":memory:" not in uri and "mode=memory" not in uri:
            _ensure_sqlite_dir(uri)
        options.setdefault("connect_args", {}).setdefault("timeout", 15)
    elif app.config.get("DATABASE_NULLPOOL"):
        # A connection per use and nothing kept: the pooler in front of PostgreSQL pools.
        # Queue-pool settings (pool_size, …) have no meaning then and NullPool refuses them.
        for name in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                     "pool_pre_ping"):
            options.pop(name, None)
        options["poolclass"] = NullPool
    else:
        # Not a ping before every use: only a connection idle for a while is checked
        # (``bankapp.platform.pooling``). A deployment may still set pool_pre_ping itself.
        options.setdefault("pool_pre_ping", False)
        options.setdefault("pool_recycle", 600)
    if uri.startswith("postgresql"):
        bound_connect_time(options, uri, app.config["DATABASE_CONNECT_TIMEOUT"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def bound_connect_time(options: dict, uri: str, seconds: int) -> None:
    """Give up connecting to PostgreSQL after ``seconds`` (libpq's ``connect_timeout``; 2 at
    the least): without it, a server that accepts and never answers holds a request, or a
    readiness probe, for as long as the kernel keeps the socket. A ``connect_timeout`` in the
    URL itself wins."""
    if "connect_timeout=" in uri.partition("?")[2]:
        return
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault("connect_timeout", seconds)
    options["connect_args"] = connect_args


def _ensure_sqlite_dir(uri: str) -> None:
    path = uri.split("sqlite:///", 1)[-1].split("?", 1)[0]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, wait for the writer lock, let readers run beside it (WAL)."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class days_between(FunctionElement):  # noqa: N801 - used as a SQL function
    """``days_between(later, earlier)``: whole days from one DATE expression to another, as an
    integer (PostgreSQL subtracts dates; SQLite keeps them as ISO text, so their Julian day
    numbers are subtracted)."""

    type = sa.Integer()
    name = "days_between"
    inherit_cache = True


@compiles(days_between)
def _days_between(element, compiler, **kw):
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({later} - {earlier})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


class whole_number(FunctionElement):  # noqa: N801 - used as a SQL function
    """``whole_number(amount)``: a decimal amount with no fraction (cents × 100, say) as a
    BIGINT. PostgreSQL casts an exact NUMERIC with nothing to round; SQLite's binary REAL may
    lie a hair off the integer (1.15 × 100 = 114.999…), so it is rounded first there."""

    type = sa.BigInteger()
    name = "whole_number"
    inherit_cache = True


@compiles(whole_number)
def _whole_number(element, compiler, **kw):
    (amount,) = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(round({amount}) AS BIGINT)"


@compiles(whole_number, "postgresql")
def _whole_number_postgresql(element, compiler, **kw):
    # No round(): one NUMERIC operation fewer for each amount (the loan portfolio converts
    # some 40,000 a statement at 10,000 loans).
    (amount,) = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST({amount} AS BIGINT)"


class NulCharacterRefused(BadRequest):
    """A value bound for the database holds a NUL character: answered 400, nothing written."""

    description = "The request holds a NUL character, which cannot be stored."


@event.listens_for(Engine, "before_cursor_execute")
def _refuse_nul_characters(conn, cursor, statement, parameters, context, executemany):
    """No text column can hold a NUL (PostgreSQL refuses it: the request ended in a 500; SQLite
    stored it). One guard where every value meets the database, whatever page, query string
    or form it came from: a form that already refuses the value re-renders as before, and
    anything that would reach a query is answered 400 before the statement runs."""
    if _holds_nul(parameters):
        raise NulCharacterRefused()


def _holds_nul(parameters) -> bool:
    # One row (a tuple or a dict) or many (a list of them), whichever the dialect passes.
    # Every statement passes here: plain strings and scalars are answered in the loop, only
    # containers (and str subclasses) recurse.
    if isinstance(parameters, str):
        return "\x00" in parameters
    if isinstance(parameters, dict):
        parameters = parameters.values()
    elif not isinstance(parameters, (list, tuple)):
        return False
    for value in parameters:
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                return True
        elif kind not in _SCALARS and _holds_nul(value):
            return True
    return False


_SCALARS = frozenset({int, float, bool, type(None), Decimal, datetime, date, bytes})


def session_made() -> bool:
    """Whether this app context has made its ORM session yet. A request that never used it (an
    API posting reads and posts on the lean engine) has nothing in it to roll back, commit or
    send, and need not make one (~30 µs, bench/README.md "Item 5: worker CPU under gunicorn,
    again") just to find that out."""
    return db.session.registry.has()


@contextmanager
def objects_kept_after_commit():
    """Commits inside keep what the session has loaded instead of expiring it.

    A request that commits part-way (a posting, a look-up's audit line) then goes on with
    what it read before: without this, each object it touches again is read again, one
    query each. Nothing after the commit may rely on a balance read before it: postings
    check balances in SQL, under the row's lock.
    """
    session = db.session()
    expiring, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = expiring


def register_teardown(app: Flask) -> None:
    """Roll back whatever a request left open. Registered after Flask-SQLAlchemy's own
    teardown, so it runs first (teardowns run in reverse order)."""

    @app.teardown_appcontext
    def end_transaction_quietly(error):
        """Roll back what the request left open, tolerating a connection that died.

        The answer is already built by then; if PostgreSQL restarted since the last query,
        the rollback fails (the server has dropped the transaction anyway) and the pool
        discards the connection. Raising here would turn a served answer into a 500.
        """
        if not session_made():
            return
        try:
            db.session.rollback()
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as lost:
            # The request context is already gone here: no path to name.
            app.logger.warning("database connection lost at the end of a request: %s",
                               lost.orig)

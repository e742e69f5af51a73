"""The run's database: a throwaway PostgreSQL database (TEST_DATABASE_URL) or in-memory SQLite."""
from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bankapp import create_app
from bankapp.extensions import db
from config import TestingConfig, normalize_database_url

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "")
POSTGRES = SERVER_URL.startswith(("postgres://", "postgresql"))
# A PgBouncer in transaction mode in front of that server (`make test-pgbouncer` starts it).
POOLER_URL = os.environ.get("TEST_POOLER_URL", "") if POSTGRES else ""


class SuiteConfig(TestingConfig):
    """TestingConfig pointed at this run's database."""

    # Rate-limit counters of this run only: limiter.reset() then leaves concurrent runs
    # sharing the Redis database alone.
    RATELIMIT_STORAGE_OPTIONS = {"key_prefix": f"LIMITS-{uuid.uuid4().hex[:10]}"}


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the run's server, dropped afterwards: its URL."""
    server = make_url(normalize_database_url(SERVER_URL))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def database_owner(prefix: str, createdb: bool = True) -> Iterator[str]:
    """A new role as a managed host (Supabase, RDS, Cloud SQL) gives its main user: LOGIN,
    NOSUPERUSER, CREATEDB unless ``createdb`` is false, owning a new empty database of its
    own. Its URL (as that role, on that database). Afterwards every database the role owns
    (also those it made itself) is dropped, then the role."""
    server = make_url(normalize_database_url(SERVER_URL))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEROLE '
            f"{'CREATEDB' if createdb else 'NOCREATEDB'} PASSWORD '{password}'")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{name}"')
        yield server.set(username=name, password=password, database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            for database in databases_owned_by(conn, name):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


def databases_owned_by(conn, role: str) -> list[str]:
    """The names of the databases ``role`` owns, sorted (``conn``: any database's)."""
    return sorted(conn.exec_driver_sql(
        "SELECT datname FROM pg_database WHERE datdba = "
        "(SELECT oid FROM pg_roles WHERE rolname = %(role)s)", {"role": role}).scalars())


def migrate(url: str) -> None:
    """Build the schema at ``url`` with the real migrations."""
    from flask_migrate import upgrade

    SuiteConfig.SQLALCHEMY_DATABASE_URI = url
    app = create_app(SuiteConfig)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def empty_tables() -> None:
    """Empty every table of the PostgreSQL database and restart its sequences, as a freshly
    migrated database has them.

    As a superuser (the suite's own connection), the rows are deleted with triggers and
    foreign-key checks off (``session_replication_role``: the audit trail refuses DELETE).
    On the few rows a test leaves that takes under a millisecond, where a TRUNCATE of every
    table takes 60-80 ms (new files for each table), and the suite empties them twice a test.
    Another role may not turn triggers off, so it truncates.
    """
    tables = [t.name for t in db.metadata.sorted_tables]
    with db.engine.begin() as conn:
        if conn.exec_driver_sql("SHOW is_superuser").scalar() != "on":
            names = ", ".join(f'"{name}"' for name in tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            return
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("; ".join(f'DELETE FROM "{name}"' for name in tables))
        conn.exec_driver_sql(
            "SELECT setval((quote_ident(schemaname) || '.' || quote_ident(sequencename))"
            "::regclass, start_value, false) FROM pg_sequences"
            " WHERE schemaname = current_schema()")


# The schema as create_all builds it, kept in an in-memory SQLite database of this process.
_sqlite_schema: sqlite3.Connection | None = None


def new_sqlite_schema() -> None:
    """Give the app's in-memory SQLite database the whole schema, empty, in place of what it
    holds. ``create_all`` builds it once a process (about 30 ms); every later test gets a copy
    of that by SQLite's backup API, which takes well under a millisecond."""
    global _sqlite_schema
    with db.engine.connect() as conn:
        database = conn.connection.driver_connection
        if _sqlite_schema is None:
            # drop_all first: the first caller may be a test with rows already (empty_database).
            db.metadata.drop_all(conn)
            db.metadata.create_all(conn)
            conn.commit()
            _sqlite_schema = sqlite3.connect(":memory:", check_same_thread=False)
            database.backup(_sqlite_schema)
        else:
            _sqlite_schema.backup(database)


def empty_database() -> None:
    """Start again from an empty schema (audit rows refuse DELETE, so no row-by-row wipe)."""
    db.session.remove()
    if POSTGRES:
        empty_tables()
    else:
        new_sqlite_schema()

"""The run's database: a throwaway PostgreSQL database (TEST_DATABASE_URL) or in-memory SQLite."""
from __future__ import annotations

import os
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


def truncate_all() -> None:
    """Empty every table of the PostgreSQL database, identities restarted."""
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def empty_database() -> None:
    """Start again from an empty schema (audit rows refuse DELETE, so no row-by-row wipe)."""
    db.session.remove()
    if POSTGRES:
        truncate_all()
    else:
        db.drop_all()
        db.create_all()

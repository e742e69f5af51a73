"""Running behind a transaction-mode pooler (PgBouncer, Supabase's port 6543).

In transaction mode each transaction may run on a different server connection, so nothing may
rely on state that outlives a transaction: session-level ``SET``, advisory locks taken with
``pg_advisory_lock`` (not ``…_xact_lock``), ``LISTEN``, ``PREPARE`` / server-side prepared
statements, ``WITH HOLD`` cursors, temporary tables. ``make test-pgbouncer`` runs the ledger and
API tests through a real PgBouncer; these tests check the wiring and guard the code.
"""
from __future__ import annotations

import os
import re
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bankapp import create_app
from bankapp.extensions import db
from config import TestingConfig

POOLER_URL = os.environ.get("TEST_POOLER_URL", "")
through_pooler = pytest.mark.skipif(not POOLER_URL, reason="needs TEST_POOLER_URL "
                                                           "(make test-pgbouncer)")
BANKAPP = Path(__file__).resolve().parents[2] / "bankapp"

# Statements whose effect outlives the transaction that runs them.
SESSION_STATE = {
    # A statement string that starts with SET name = / TO (the code writes SQL in capitals),
    # other than SET LOCAL.
    "session-level SET": re.compile(r"""["']\s*SET\s+(?!LOCAL\b)(SESSION\s+)?\w+\s*(=|TO\b)"""),
    "set_config(…, false)": re.compile(r"set_config\([^)]*,\s*false\s*\)", re.I),
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I),
    "LISTEN": re.compile(r"""["']\s*LISTEN\s""", re.I),
    "PREPARE": re.compile(r"""["']\s*PREPARE\s""", re.I),
    "cursor WITH HOLD": re.compile(r"WITH\s+HOLD", re.I),
    "temporary table": re.compile(r"CREATE\s+TEMP(ORARY)?\s+TABLE", re.I),
}


def test_nothing_in_the_app_keeps_session_state_a_transaction_pooler_would_lose():
    found = []
    for path in sorted(BANKAPP.rglob("*.py")):
        text = path.read_text()
        for what, pattern in SESSION_STATE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(BANKAPP.parent)}:{line}: {what}")
    assert not found, "state a transaction-mode pooler loses between transactions:\n" + \
        "\n".join(found)


def test_the_guard_recognises_session_state():
    samples = {"session-level SET": "'SET statement_timeout = 5'",
               "session advisory lock": "SELECT pg_advisory_lock(42)",
               "LISTEN": "'LISTEN outbox'"}
    for what, sample in samples.items():
        assert SESSION_STATE[what].search(sample), what
    assert not SESSION_STATE["session-level SET"].search('"SET LOCAL lock_timeout = 2000"')
    assert not SESSION_STATE["session-level SET"].search('"UPDATE accounts SET balance = 1"')
    assert not SESSION_STATE["session advisory lock"].search("pg_advisory_xact_lock(1)")


def test_nullpool_leaves_out_queue_pool_settings():
    """DATABASE_NULLPOOL with pool sizes configured (tests' worker apps set them) still builds."""
    config = type("PooledConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://postgres@127.0.0.1:1/none",
        "DATABASE_NULLPOOL": True,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 0, "pool_timeout": 5},
    })
    app = create_app(config)
    with app.app_context():
        assert isinstance(db.engine.pool, NullPool)


@through_pooler
def test_the_app_connects_through_the_pooler_with_no_pool_of_its_own(app):
    pooler = make_url(POOLER_URL)
    assert db.engine.url.port == pooler.port
    assert isinstance(db.engine.pool, NullPool)
    database = db.engine.url.database
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        admin = psycopg2.connect(host="127.0.0.1", port=pooler.port, user=pooler.username,
                                 dbname="pgbouncer")
        admin.autocommit = True
        with closing(admin), admin.cursor() as cur:
            cur.execute("SHOW CLIENTS")
            names = [column.name for column in cur.description]
            clients = [dict(zip(names, row)) for row in cur.fetchall()]
            cur.execute("SHOW CONFIG")
            settings = {row[0]: row[1] for row in cur.fetchall()}
    assert any(client["database"] == database for client in clients)
    assert settings["pool_mode"] == "transaction"


@through_pooler
def test_a_session_level_set_leaks_to_another_client_through_the_pooler(app):
    """Why the guard above exists: the server connection, with what was SET on it, goes back
    to PgBouncer's pool after each transaction and serves the next client (not reset in
    transaction mode)."""
    with db.engine.connect() as first:
        first.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "SET statement_timeout = '4321ms'")
    try:
        with db.engine.connect() as second:
            assert second.exec_driver_sql("SHOW statement_timeout").scalar() == "4321ms"
    finally:
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("RESET ALL")

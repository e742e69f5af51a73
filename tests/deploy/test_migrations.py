"""Migrations build the schema the models describe, on SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from bankapp import create_app
from bankapp.extensions import db
from bankapp.models.base import compared_with_models
from config import TestingConfig
from support import releases
from support.database import POSTGRES, scratch_database

REPO = Path(__file__).resolve().parents[2]


def _pending_changes(connection) -> list:
    """What `flask db migrate` would generate: empty when migrations and models agree."""
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True,
                          "include_object": compared_with_models}
    )
    return compare_metadata(context, db.metadata)


def _script_heads(app) -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return set(ScriptDirectory.from_config(config).get_heads())


def test_migrations_match_models_on_sqlite(tmp_path):
    config = type("SQLiteFileConfig", (TestingConfig,),
                  {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrated.db'}"})
    app = create_app(config)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads()
            assert _pending_changes(connection) == []
        db.engine.dispose()


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_migrations_match_models_on_postgresql(app):
    # The session's PostgreSQL database was built by `upgrade()` (support.database), not create_all.
    with db.engine.connect() as connection:
        applied = set(MigrationContext.configure(connection).get_current_heads())
        assert applied == _script_heads(app)
        assert _pending_changes(connection) == []


# What a CREATE INDEX CONCURRENTLY stopped half-way leaves behind, for each migration that
# builds one: the revision before it, the index's name and a plain build of it.
INTERRUPTED_BUILDS = {
    "0021_search_indexes": (
        "0020_lending", "ix_users_email_trgm",
        "CREATE INDEX ix_users_email_trgm ON users USING gin ((lower(email)) gin_trgm_ops)"),
    "0024_unsettled_instalments": (
        "0023_bucket_largest_movement", "ix_loan_instalments_unsettled_due_on",
        "CREATE INDEX ix_loan_instalments_unsettled_due_on ON loan_instalments (due_on) "
        "WHERE principal_paid < principal_due"),
    "0025_audit_lines_by_actor": (
        "0024_unsettled_instalments", "ix_journal_entries_audit_actor_created_at",
        "CREATE INDEX ix_journal_entries_audit_actor_created_at ON journal_entries (actor_id)"),
    "0027_portfolio_covering_indexes": (
        "0026_closing_balances", "ix_loan_instalments_due_on_amounts",
        "CREATE INDEX ix_loan_instalments_due_on_amounts ON loan_instalments (due_on)"),
}


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
@pytest.mark.parametrize("migration", sorted(INTERRUPTED_BUILDS))
def test_upgrade_run_again_replaces_an_index_an_interrupted_concurrent_build_left_invalid(
        migration):
    with scratch_database("bankapp_migrations") as url:
        valid = _valid_after_an_interrupted_build(url, migration, *INTERRUPTED_BUILDS[migration])
    assert valid is True


def _valid_after_an_interrupted_build(url: str, migration: str, before: str, index: str,
                                      build: str) -> bool:
    app = create_app(type("ScratchConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    with app.app_context():
        upgrade(revision=before)
        with db.engine.begin() as connection:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            connection.exec_driver_sql(build)
            connection.exec_driver_sql("UPDATE pg_index SET indisvalid = false "
                                       f"WHERE indexrelid = '{index}'::regclass")
        # Up to that migration: a later one may replace the index (0027 does 0024's).
        upgrade(revision=migration)
        with db.engine.connect() as connection:
            valid = connection.exec_driver_sql(
                f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{index}'::regclass"
            ).scalar()
        db.engine.dispose()
    return valid


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_the_portfolio_indexes_downgrade_to_the_due_date_indexes_they_replaced_and_back():
    with scratch_database("bankapp_migrations") as url:
        config = type("ScratchConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url})
        with create_app(config).app_context():
            upgrade()
            downgrade(revision="0026_closing_balances")
            downgraded = _loan_indexes()
            upgrade()
            upgraded = _loan_indexes()
            with db.engine.connect() as connection:
                pending = _pending_changes(connection)
            db.engine.dispose()
    assert downgraded == {"ix_loan_instalments_due_on", "ix_loan_instalments_unsettled_due_on"}
    assert upgraded == {"ix_loan_instalments_due_on_amounts",
                        "ix_loan_instalments_unsettled_amounts", "ix_loan_repayments_paid_on"}
    assert pending == []


def _loan_indexes() -> set[str]:
    """The indexes on the instalments' and repayments' dates (valid ones only)."""
    with db.engine.connect() as connection:
        return set(connection.exec_driver_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a "
            "ON a.attrelid = t.oid AND a.attnum = i.indkey[0] "
            "WHERE t.relname IN ('loan_instalments', 'loan_repayments') "
            "AND a.attname IN ('due_on', 'paid_on') AND i.indisvalid").scalars())


def test_flask_db_upgrade_builds_a_fresh_sqlite_database(tmp_path):
    database = tmp_path / "fresh.db"
    env = {**os.environ, "FLASK_APP": "wsgi", "BANKAPP_ENV": "development",
           "DATABASE_URL": f"sqlite:///{database}"}
    env.pop("FLASK_ENV", None)
    result = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"users", "accounts", "journal_entries", "transactions"} <= tables
    assert {row[0] for row in version} == _script_heads(create_app(TestingConfig))


# ---------------------------------------------------------------- expand → migrate → contract


def test_migrations_since_the_previous_release_only_expand_the_schema():
    commit, version = releases.previous_release()
    assert releases.has_commit(commit), (
        f"the previous release {version} ({commit}) is not in this clone: "
        "git fetch --unshallow")
    for name in releases.migrations_since(commit):
        source = (releases.VERSIONS / name).read_text()
        operation = releases.contract_operation(source)
        assert operation is None or releases.marked_contract(source), (
            f"{name} runs {operation} while release {version} may still be serving: move it "
            "to a later release's migration marked CONTRACT = True")


def test_the_contract_rule_sees_a_dropped_column_and_a_rename():
    dropped = ("def upgrade():\n    with op.batch_alter_table('users') as batch_op:\n"
               "        batch_op.drop_column('phone_number')\n\ndef downgrade():\n    pass\n")
    renamed = "def upgrade():\n    op.alter_column('users', 'email', new_column_name='mail')\n"
    added = ("def upgrade():\n    op.add_column('users', sa.Column('nickname', sa.String(40)))"
             "\n\ndef downgrade():\n    op.drop_column('users', 'nickname')\n")
    assert releases.contract_operation(dropped) == "batch_op.drop_column"
    assert releases.contract_operation(renamed).startswith("new_column_name")
    assert releases.contract_operation(added) is None


def test_the_previous_release_is_older_than_this_version():
    from bankapp import __version__

    _, previous = releases.previous_release()
    as_tuple = lambda version: tuple(int(part) for part in version.split("."))  # noqa: E731
    assert as_tuple(previous) < as_tuple(__version__)
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## {__version__}" in changelog and f"## {previous}" in changelog

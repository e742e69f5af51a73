"""`flask backup`, `flask restore-check` and `flask restore` as a database user that is not a
superuser: what every managed host (Supabase, RDS, Cloud SQL) gives the app. The role is made
for the test (LOGIN, CREATEDB, NOSUPERUSER) and owns its database, migrated as that role, so
it owns the tables, the functions, the triggers and the pg_trgm extension.

Each role and every database it owns (also a scratch database a failed check left) is dropped
when its fixture ends (``support.database.database_owner``)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bankapp import create_app
from bankapp.extensions import db, limiter
from support.backups import backup, backup_of_an_older_schema, manifest_of, small_bank
from support.database import (POSTGRES, SuiteConfig, database_owner, databases_owned_by,
                              empty_tables, migrate)

pytestmark = pytest.mark.skipif(not POSTGRES, reason="pg_dump backups are PostgreSQL's "
                                "(TEST_DATABASE_URL=postgresql://…)")


@pytest.fixture(scope="module")
def owner_url():
    """A CREATEDB, NOSUPERUSER role's own database, migrated as that role: its URL."""
    with database_owner("bankapp_owner") as url:
        migrate(url)
        yield url


@pytest.fixture
def app(owner_url):
    """The app and its CLI connected as that role (overrides conftest's)."""
    application = create_app(type("OwnerConfig", (SuiteConfig,), {
        "SQLALCHEMY_DATABASE_URI": owner_url}))
    with application.app_context():
        empty_tables()
        limiter.reset()
        yield application
        db.session.remove()
        empty_tables()
        db.engine.dispose()


@pytest.fixture
def bank(make_user, funded_account):
    return small_bank(make_user, funded_account)


@pytest.fixture
def new_database(owner_url):
    """A new empty database the role made itself (``createdb`` as the deployer would): its
    URL, dropped afterwards (else with the role's other databases when the module ends)."""
    name = f"{make_url(owner_url).database}_new"
    engine = sa.create_engine(owner_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(owner_url).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def without_createdb_url():
    """A NOCREATEDB, NOSUPERUSER role's own database, migrated as that role: its URL."""
    with database_owner("bankapp_nocreatedb", createdb=False) as url:
        migrate(url)
        yield url


@pytest.fixture
def empty_without_createdb_url():
    """A NOCREATEDB, NOSUPERUSER role's own empty database (an operator made it for the
    role): its URL."""
    with database_owner("bankapp_nocreatedb", createdb=False) as url:
        yield url


@contextmanager
def cli_as(url: str):
    """A CLI runner of an app on ``url`` (another user or database than the test's app)."""
    application = create_app(type("OtherConfig", (SuiteConfig,), {
        "SQLALCHEMY_DATABASE_URI": url}))
    # Its own app context: the CLI would run in the test's app's, already pushed.
    with application.app_context():
        try:
            yield application.test_cli_runner()
        finally:
            db.session.remove()
            db.engine.dispose()


def stated_figures(manifest: dict) -> dict:
    return {name: manifest[name] for name in (
        "migration_head", "journal_entries", "customer_balance_total", "last_journal_entry_id")}


def figures_at(url: str) -> dict:
    """The manifest's figures, read by plain SQL at ``url``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            head, entries, total, last = conn.exec_driver_sql(
                "SELECT (SELECT version_num FROM alembic_version), "
                "(SELECT count(*) FROM journal_entries), "
                "(SELECT coalesce(sum(balance), 0) FROM accounts "
                " WHERE account_type IN ('SAVINGS', 'CHECKING')), "
                "(SELECT max(id) FROM journal_entries)").one()
    finally:
        engine.dispose()
    return {"migration_head": head, "journal_entries": entries,
            "customer_balance_total": f"{total:.2f}", "last_journal_entry_id": last}


def tables_at(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").scalar()
    finally:
        engine.dispose()


def owned_databases(url: str) -> list[str]:
    role = make_url(url).username
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return databases_owned_by(conn, role)
    finally:
        engine.dispose()


def test_the_role_is_no_superuser_and_owns_the_schema(owner_url):
    """What the other tests rely on: they run as a managed host's main user would."""
    engine = sa.create_engine(owner_url)
    try:
        with engine.connect() as conn:
            superuser, createdb = conn.exec_driver_sql(
                "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user").one()
            foreign = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                "AND tableowner <> current_user").scalar()
    finally:
        engine.dispose()
    assert (superuser, createdb, foreign) == (False, True, 0)


def test_backup_as_the_owner_writes_the_dump_and_its_manifest(runner, bank, tmp_path):
    dump = backup(runner, tmp_path)
    manifest = manifest_of(dump)
    assert manifest["dump_bytes"] == dump.stat().st_size > 0
    assert (manifest["journal_entries"], manifest["customer_balance_total"]) == (3, "525.50")


def test_restore_check_as_the_owner_matches_and_reconciles_then_drops_its_scratch_copy(
        runner, bank, tmp_path, owner_url):
    result = runner.invoke(args=["restore-check", str(backup(runner, tmp_path))])
    assert result.exit_code == 0, result.output
    assert "manifest matches" in result.output and "ledger clean" in result.output
    # The role's own databases only: this worker's tests alone use this role.
    assert owned_databases(owner_url) == [make_url(owner_url).database]


def test_restore_as_the_owner_into_a_new_database_it_made_matches_the_manifest(
        runner, bank, tmp_path, new_database):
    dump = backup(runner, tmp_path)
    manifest = manifest_of(dump)
    with cli_as(new_database) as restorer:
        result = restorer.invoke(args=["restore", str(dump)])
    assert result.exit_code == 0, result.output
    assert "Restored" in result.output
    assert figures_at(new_database) == stated_figures(manifest)


def test_restore_check_without_createdb_says_to_give_it_or_pass_a_scratch_url(
        without_createdb_url, tmp_path):
    with cli_as(without_createdb_url) as runner:
        dump = backup(runner, tmp_path)  # a backup needs no CREATEDB
        result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 1
    assert "cannot create a scratch database" in result.output
    assert "Give the user CREATEDB" in result.output and "--scratch-url" in result.output
    assert owned_databases(without_createdb_url) == [make_url(without_createdb_url).database]


def test_restore_check_without_createdb_passes_with_a_scratch_url_where_it_may(
        without_createdb_url, owner_url, tmp_path):
    with cli_as(without_createdb_url) as runner:
        dump = backup(runner, tmp_path)
        result = runner.invoke(args=["restore-check", str(dump), "--scratch-url", owner_url])
    assert result.exit_code == 0, result.output
    assert "manifest matches" in result.output and "ledger clean" in result.output


def test_restore_check_as_the_owner_of_an_older_schemas_backup_migrates_the_copy(
        runner, bank, tmp_path):
    """The copy is migrated as the role: pg_trgm (0021), plpgsql functions, CONCURRENTLY."""
    dump = backup_of_an_older_schema(runner, tmp_path)
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 0, result.output
    assert "migrated to this release's head" in result.output and "ledger clean" in result.output


def test_a_superusers_backup_restores_as_the_owner_into_a_new_database(
        database_url, tmp_path, new_database):
    """compose's backup (made as the postgres superuser) restored on a managed host."""
    with cli_as(database_url) as superuser:
        dump = backup(superuser, tmp_path)
    with cli_as(new_database) as restorer:
        result = restorer.invoke(args=["restore", str(dump)])
    assert result.exit_code == 0, result.output
    assert figures_at(new_database) == stated_figures(manifest_of(dump))


def test_restore_without_createdb_says_to_give_it_or_pass_a_scratch_url_and_restores_nothing(
        runner, bank, tmp_path, empty_without_createdb_url):
    dump = backup(runner, tmp_path)
    with cli_as(empty_without_createdb_url) as restorer:
        result = restorer.invoke(args=["restore", str(dump)])
    assert result.exit_code == 1
    assert "Give the user CREATEDB" in result.output and "--scratch-url" in result.output
    assert "Nothing was restored" in result.output
    assert tables_at(empty_without_createdb_url) == 0


def test_restore_without_createdb_checks_on_a_scratch_url_then_restores(
        runner, bank, tmp_path, owner_url, empty_without_createdb_url):
    dump = backup(runner, tmp_path)
    with cli_as(empty_without_createdb_url) as restorer:
        result = restorer.invoke(args=["restore", str(dump), "--scratch-url", owner_url])
    assert result.exit_code == 0, result.output
    assert figures_at(empty_without_createdb_url) == stated_figures(manifest_of(dump))

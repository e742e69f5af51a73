"""`flask backup`, `flask restore-check` and `flask restore`: a dump with its manifest, proven by
restoring it; a wrong file, a newer schema or a wrong key is refused with nothing restored."""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from bankapp.cli.backups import MANIFEST_SUFFIX
from bankapp.extensions import db
from support.backups import backup, backup_of_an_older_schema, manifest_of, small_bank
from support.database import POSTGRES

on_postgres = pytest.mark.skipif(not POSTGRES, reason="pg_dump backups are PostgreSQL's "
                                 "(TEST_DATABASE_URL=postgresql://…)")
OTHER_FIELD_KEY = "mTzVfWq0bGm4T1q3l8Y8Q2x9Jm6gq0yQm8lR7n1b2cE="


@pytest.fixture
def bank(make_user, funded_account):
    return small_bank(make_user, funded_account)


def _scratch_databases() -> list[str]:
    return list(db.session.scalars(sa.text(
        "SELECT datname FROM pg_database WHERE datname LIKE 'bankapp_restore_check_%'")))


@on_postgres
def test_backup_manifest_states_the_bank_figures(runner, bank, tmp_path):
    manifest = manifest_of(backup(runner, tmp_path))
    last_entry = db.session.scalar(sa.text("SELECT max(id) FROM journal_entries"))
    assert (manifest["journal_entries"], manifest["customer_balance_total"],
            manifest["last_journal_entry_id"]) == (3, "525.50", last_entry)
    assert manifest["migration_head"] == db.session.scalar(
        sa.text("SELECT version_num FROM alembic_version"))
    assert manifest["app_version"] and manifest["dump_bytes"] > 0


@on_postgres
def test_restore_check_of_a_fresh_backup_matches_and_reconciles(runner, bank, tmp_path):
    result = runner.invoke(args=["restore-check", str(backup(runner, tmp_path))])
    assert result.exit_code == 0, result.output
    assert "manifest matches" in result.output and "ledger clean" in result.output


@on_postgres
def test_restore_check_refuses_a_truncated_dump_and_restores_nothing(runner, bank, tmp_path):
    dump = backup(runner, tmp_path)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 1
    assert "truncated" in result.output and "Nothing was restored" in result.output
    # Refused before any scratch database is made (one made says so, with its name). Not by
    # listing them: other test workers make and drop scratch databases meanwhile.
    assert "scratch database" not in result.output


@on_postgres
def test_restore_check_refuses_a_backup_of_a_newer_schema(runner, bank, tmp_path):
    dump = backup(runner, tmp_path)
    manifest_file = dump.with_name(dump.name + MANIFEST_SUFFIX)
    manifest = manifest_of(dump)
    manifest.update(migration_head="0099_from_the_future", app_version="9.0.0")
    manifest_file.write_text(json.dumps(manifest))
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 1
    assert "0099_from_the_future" in result.output and "newer release (9.0.0)" in result.output


@on_postgres
def test_restore_check_refuses_a_manifest_whose_figures_differ(runner, bank, tmp_path):
    dump = backup(runner, tmp_path)
    manifest_file = dump.with_name(dump.name + MANIFEST_SUFFIX)
    manifest = manifest_of(dump)
    manifest["customer_balance_total"] = "999.99"
    manifest_file.write_text(json.dumps(manifest))
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 1
    assert "customer_balance_total: manifest says '999.99'" in result.output
    assert "525.50" in result.output
    # By its name: other test workers make and drop scratch databases of their own meanwhile.
    scratch = re.search(r"scratch database (bankapp_restore_check_\w+) was dropped",
                        result.output)
    assert scratch and scratch.group(1) not in _scratch_databases()


@on_postgres
def test_restore_check_refuses_a_dump_replaced_under_its_manifest(runner, bank, tmp_path):
    dump = backup(runner, tmp_path)
    content = bytearray(dump.read_bytes())
    content[-10] ^= 0xFF
    dump.write_bytes(bytes(content))
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 1 and "SHA-256" in result.output


@on_postgres
def test_restore_check_names_a_field_key_that_cannot_read_the_backup(app, runner, bank,
                                                                    tmp_path):
    dump = backup(runner, tmp_path)
    app.config["FIELD_ENCRYPTION_KEY"] = OTHER_FIELD_KEY
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 1
    assert "field key" in result.output and "FIELD_ENCRYPTION_KEY" in result.output


@on_postgres
def test_restore_refuses_a_database_that_is_not_empty(runner, bank, tmp_path):
    result = runner.invoke(args=["restore", str(backup(runner, tmp_path))])
    assert result.exit_code == 1
    assert "is not empty" in result.output and "Nothing was restored" in result.output


@on_postgres
@pytest.mark.parametrize("command", ["restore-check", "restore"])
def test_a_scratch_url_that_is_not_a_database_url_is_a_usage_error(runner, bank, tmp_path,
                                                                    command):
    result = runner.invoke(args=[command, "--scratch-url", "not a url",
                                 str(backup(runner, tmp_path))])
    assert result.exit_code == 2
    assert "Invalid value for '--scratch-url'" in result.output
    assert "'not a url' is not a database URL" in result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback


@on_postgres
def test_a_scratch_url_of_another_database_kind_is_a_usage_error(runner, bank, tmp_path):
    result = runner.invoke(args=["restore-check", "--scratch-url", "mysql://root@localhost/x",
                                 str(backup(runner, tmp_path))])
    assert result.exit_code == 2
    assert "backups are for PostgreSQL, not mysql (mysql://root@localhost/x)" in result.output


@on_postgres
def test_a_scratch_server_that_refuses_the_login_is_named_without_its_password(
        runner, bank, tmp_path):
    dump = backup(runner, tmp_path)
    server = db.engine.url.set(username="no_such_user_for_restore", password="hunter2")
    result = runner.invoke(args=["restore-check", "--scratch-url",
                                 server.render_as_string(hide_password=False), str(dump)])
    assert result.exit_code == 1
    assert re.search(r"cannot connect to postgresql\S*://no_such_user_for_restore:\*\*\*@",
                     result.output)
    assert 'role "no_such_user_for_restore" does not exist' in result.output
    assert "hunter2" not in result.output
    assert isinstance(result.exception, SystemExit)


@on_postgres
def test_backup_of_a_server_that_refuses_the_login_says_so_in_a_sentence(app, runner,
                                                                          tmp_path):
    url = db.engine.url.set(username="no_such_user_for_backup", password="hunter2")
    app.config["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
    result = runner.invoke(args=["backup", "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert re.search(r"cannot connect to postgresql\S*://no_such_user_for_backup:\*\*\*@",
                     result.output)
    assert "hunter2" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert not list(tmp_path.iterdir())


@on_postgres
def test_backup_keep_deletes_all_but_the_newest(runner, bank, tmp_path):
    for stamp in ("20200101T000000Z", "20200102T000000Z"):
        (tmp_path / f"bankapp-{stamp}.dump").write_bytes(b"old")
        (tmp_path / f"bankapp-{stamp}.dump{MANIFEST_SUFFIX}").write_text("{}")
    result = runner.invoke(args=["backup", "--output", str(tmp_path), "--keep", "2"])
    assert result.exit_code == 0, result.output
    kept = sorted(path.name for path in tmp_path.glob("bankapp-*.dump"))
    assert len(kept) == 2 and kept[0] == "bankapp-20200102T000000Z.dump"
    assert not (tmp_path / f"bankapp-20200101T000000Z.dump{MANIFEST_SUFFIX}").exists()


@pytest.mark.skipif(POSTGRES, reason="the SQLite refusal")
def test_backup_on_sqlite_says_how_to_copy_the_file(runner, tmp_path):
    result = runner.invoke(args=["backup", "--output", str(tmp_path)])
    assert result.exit_code == 1 and "sqlite3" in result.output


@on_postgres
def test_restore_check_of_an_older_schemas_backup_migrates_the_copy_then_reconciles(
        runner, bank, tmp_path):
    dump = backup_of_an_older_schema(runner, tmp_path)
    result = runner.invoke(args=["restore-check", str(dump)])
    assert result.exit_code == 0, result.output
    assert "migrated to this release's head" in result.output and "ledger clean" in result.output

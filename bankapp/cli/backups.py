"""``flask backup``, ``flask restore-check`` and ``flask restore``: logical backups of the
PostgreSQL database (``pg_dump -Fc``) with a manifest, proven by restoring them.

The manifest (``<dump>.manifest.json`` next to the dump) says what the dump holds, read in the
same snapshot as the dump (``pg_export_snapshot`` then ``pg_dump --snapshot``): time, migration
head, app version, journal entries, the sum of customer balances and the last journal entry
id, plus the dump's size and SHA-256. A restore refuses before touching anything when the file
is not the one the manifest describes (truncated, replaced), when its schema is newer than
this code, or when the target is not empty; the dump is first restored into a scratch database
and compared with its manifest and reconciled there, and only then into the target, in one
transaction. docs/operations.md ("Backups and restores") is the operator's side.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import click
import psycopg2
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
# What the manifest states about the bank, compared after every restore.
FIGURES = ("migration_head", "journal_entries", "customer_balance_total", "last_journal_entry_id")
FIGURES_SQL = """
SELECT (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version),
       (SELECT count(*) FROM journal_entries),
       (SELECT coalesce(sum(balance), 0) FROM accounts
         WHERE account_type IN ('SAVINGS', 'CHECKING')),
       (SELECT max(id) FROM journal_entries)
"""
PG_BIN = Path("/usr/lib/postgresql")


class BackupError(click.ClickException):
    """A backup or restore that must stop; the message says why and what to do."""


@dataclass(frozen=True)
class Server:
    """A PostgreSQL database as libpq's environment variables name it (no password in argv)."""

    url: URL

    @classmethod
    def from_sqlalchemy(cls, uri) -> "Server":
        try:
            url = make_url(uri)
        except ArgumentError:
            raise BackupError(f"{str(uri)!r} is not a database URL: write it as "
                              "postgresql://USER:PASSWORD@HOST:PORT/DATABASE.") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            raise BackupError(
                "backups are for PostgreSQL; this app uses sqlite. Copy a SQLite file with "
                "`sqlite3 instance/bankapp.db '.backup copy.db'` instead.")
        if backend != "postgresql":
            raise BackupError(f"backups are for PostgreSQL, not {backend} "
                              f"({url.render_as_string(hide_password=True)}).")
        return cls(url)

    @property
    def database(self) -> str:
        return self.url.database or "postgres"

    def on(self, database: str) -> "Server":
        return Server(self.url.set(database=database))

    def env(self) -> dict:
        env = dict(os.environ)
        for name, value in (("PGHOST", self.url.host), ("PGPORT", self.url.port),
                            ("PGUSER", self.url.username), ("PGPASSWORD", self.url.password),
                            ("PGDATABASE", self.database),
                            ("PGSSLMODE", self.url.query.get("sslmode"))):
            if value is not None:
                env[name] = str(value)
        return env

    def connect(self, database: str | None = None):
        url = self.url if database is None else self.url.set(database=database)
        arguments = {key: value for key, value in {
            "host": url.host, "port": url.port, "user": url.username,
            "password": url.password, "dbname": url.database or "postgres",
            "connect_timeout": 10, **{k: v for k, v in url.query.items() if isinstance(v, str)},
        }.items() if value is not None}
        try:
            return psycopg2.connect(**arguments)
        except psycopg2.OperationalError as error:  # down, unknown, refused: say which
            raise BackupError(f"cannot connect to {Server(url).shown()}: "
                              f"{str(error).strip()}") from None

    def shown(self) -> str:
        return self.url.render_as_string(hide_password=True)


def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: ``PG_BIN_DIR`` if set, else the newest under
    /usr/lib/postgresql (Debian), else the one on PATH. It must be at least the server's major
    version (pg_dump refuses an older one with its own clear message)."""
    candidates = []
    if os.environ.get("PG_BIN_DIR"):
        candidates.append(Path(os.environ["PG_BIN_DIR"]) / name)
    if PG_BIN.is_dir():
        versions = sorted((p for p in PG_BIN.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates += [p / "bin" / name for p in versions]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client of the "
                          "server's major version (Debian: postgresql-client-16).")
    return found


def _run(command: list[str], server: Server, what: str) -> str:
    result = subprocess.run(command, env=server.env(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-1500:]
        raise BackupError(f"{what} failed (exit {result.returncode}): {detail}")
    return result.stdout


def read_figures(connection) -> dict:
    """The manifest's figures, read in ``connection``'s current transaction."""
    with connection.cursor() as cursor:
        cursor.execute(FIGURES_SQL)
        head, entries, customer_total, last_id = cursor.fetchone()
    return {"migration_head": head, "journal_entries": int(entries),
            "customer_balance_total": f"{Decimal(customer_total):.2f}",
            "last_journal_entry_id": last_id}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + MANIFEST_SUFFIX)


def app_version() -> str:
    # The package's own attribute; imported here, when the package has finished loading.
    from bankapp import __version__

    return __version__


def make_backup(server: Server, directory: Path) -> tuple[Path, dict]:
    """Dump ``server``'s ``public`` schema to ``directory`` with its manifest; both or neither."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stamp = datetime.now(timezone.utc)
    dump = directory / f"bankapp-{stamp:%Y%m%dT%H%M%SZ}.dump"
    partial = dump.with_name(dump.name + ".partial")
    connection = server.connect()
    try:
        connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot(), now()")
            snapshot, taken_at = cursor.fetchone()
            # A schema-only dump leaves out the extensions its indexes need (pg_trgm):
            # named, they are dumped as CREATE EXTENSION IF NOT EXISTS.
            cursor.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' "
                           "ORDER BY extname")
            extensions = [f"--extension={name}" for (name,) in cursor.fetchall()]
        figures = read_figures(connection)
        # The dump sees exactly what the figures were read from: the same snapshot.
        _run([pg_tool("pg_dump"), "--format=custom", "--schema=public", *extensions,
              "--no-owner", "--no-privileges", f"--snapshot={snapshot}", f"--file={partial}"],
             server, "pg_dump")
    except psycopg2.Error as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot read {server.shown()}: {str(error).strip()}") from None
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    finally:
        connection.close()
    manifest = {
        "format": MANIFEST_FORMAT,
        "created_at": taken_at.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "app_version": app_version(),
        **figures,
        "dump_file": dump.name,
        "dump_bytes": partial.stat().st_size,
        "dump_sha256": sha256_of(partial),
        "seconds": round(time.monotonic() - started, 2),
    }
    # The manifest first: a dump without one cannot be restored, a stray manifest is harmless.
    manifest_path(dump).write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(dump)
    return dump, manifest


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups (dump and manifest) in ``directory``."""
    dumps = sorted(directory.glob("bankapp-*.dump"), reverse=True)
    removed = []
    for dump in dumps[keep:]:
        dump.unlink(missing_ok=True)
        manifest_path(dump).unlink(missing_ok=True)
        removed.append(dump)
    return removed


def load_manifest(dump: Path) -> dict:
    """The manifest of ``dump``, after checking that the file is the one it describes."""
    if not dump.is_file():
        raise BackupError(f"{dump} does not exist.")
    path = manifest_path(dump)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"{path.name} is missing: a dump is restored with the manifest "
                          "`flask backup` wrote next to it.") from None
    except ValueError as error:
        raise BackupError(f"{path.name} is not a manifest (not JSON: {error}).") from None
    missing = [key for key in (*FIGURES, "dump_bytes", "dump_sha256") if key not in manifest]
    if not isinstance(manifest, dict) or missing:
        raise BackupError(f"{path.name} is not a bankapp manifest (missing {missing}).")
    size = dump.stat().st_size
    if size != manifest["dump_bytes"]:
        raise BackupError(f"{dump.name} is {size} bytes but its manifest says "
                          f"{manifest['dump_bytes']}: the file is truncated or not this "
                          "manifest's dump. Nothing was restored.")
    if sha256_of(dump) != manifest["dump_sha256"]:
        raise BackupError(f"{dump.name} does not match its manifest's SHA-256: the file was "
                          "changed or the manifest belongs to another dump. Nothing was "
                          "restored.")
    return manifest


def check_schema_known(manifest: dict) -> None:
    """Refuse a backup made by a newer release: this code cannot run its schema."""
    # The migrations are the app's; imported here to keep `flask --help` light.
    from bankapp.cli.checks import _script_directory

    scripts = _script_directory()
    for revision in (manifest["migration_head"] or "").split(","):
        if not _known(scripts, revision):
            heads = ", ".join(scripts.get_heads())
            raise BackupError(
                f"the backup's schema is at migration {revision or '(none)'}, which this "
                f"release (version {app_version()}, head {heads}) does not know: it was made "
                f"by a newer release ({manifest.get('app_version', 'unknown version')}). "
                "Restore it with that release's code. Nothing was restored.")


def _known(scripts, revision: str) -> bool:
    if not revision:
        return False
    try:
        return scripts.get_revision(revision) is not None
    except (ResolutionError, CommandError):
        return False


def restore_list(server: Server, dump: Path, directory: Path) -> Path:
    """pg_restore's table of contents without the ``public`` schema itself, which every
    new database already has (restoring it would fail on "schema public already exists"),
    and without the extensions' comments, which only a superuser may set."""
    listing = _run([pg_tool("pg_restore"), "--list", str(dump)], server, "pg_restore --list")
    kept = [line for line in listing.splitlines()
            if " SCHEMA - public " not in line and "COMMENT - SCHEMA public " not in line
            and "COMMENT - EXTENSION " not in line]
    path = directory / "restore.list"
    path.write_text("\n".join(kept) + "\n")
    return path


def restore_into(server: Server, dump: Path) -> float:
    """Restore ``dump`` into ``server``'s (empty) database in one transaction; seconds taken."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bankapp-restore-") as work:
        listing = restore_list(server, dump, Path(work))
        _run([pg_tool("pg_restore"), "--exit-on-error", "--single-transaction", "--no-owner",
              "--no-privileges", f"--use-list={listing}", f"--dbname={server.database}",
              str(dump)], server, f"pg_restore into {server.database}")
    return time.monotonic() - started


def compare(manifest: dict, found: dict) -> list[str]:
    return [f"{name}: manifest says {manifest[name]!r}, the restored database has "
            f"{found[name]!r}" for name in FIGURES if manifest[name] != found[name]]


def figures_of(server: Server) -> dict:
    connection = server.connect()
    try:
        return read_figures(connection)
    finally:
        connection.close()


def public_tables(server: Server) -> list[str]:
    connection = server.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return sorted(row[0] for row in cursor.fetchall())
    finally:
        connection.close()


@contextlib.contextmanager
def scratch_database(server: Server, keep: bool = False):
    """A new empty database next to ``server``'s, dropped when the block ends."""
    name = f"bankapp_restore_check_{secrets.token_hex(4)}"
    admin = server.connect()
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    except psycopg2.Error as error:
        admin.close()
        raise BackupError(f"cannot create a scratch database on {server.shown()}: "
                          f"{str(error).strip()}. Give the user CREATEDB, or pass "
                          "--scratch-url with a server where it may. Nothing was "
                          "restored.") from None
    try:
        yield server.on(name)
    finally:
        if not keep:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def check_restored(server: Server) -> tuple[list[str], str]:
    """Reconcile the ledger and try the field key on a restored database (an app of its own),
    after migrating it to this release's head when the backup is older.

    Returns the problems found and the reconciliation's summary.
    """
    # The app factory and the domain code, built for the restored copy; imported here, when
    # the package has finished loading.
    from flask_migrate import upgrade
    from bankapp import create_app, ledger
    from bankapp.cli.checks import CheckFailed, check_field_key, check_migrations
    from bankapp.extensions import db

    overrides = {key: current_app.config[key] for key in (
        "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "BANK_CURRENCY", "BANK_TIMEZONE")}
    overrides.update(SQLALCHEMY_DATABASE_URI=server.url.render_as_string(hide_password=False),
                     DATABASE_REPLICA_URL="", DATABASE_NULLPOOL=True)
    restored = create_app(overrides)
    problems = []
    with restored.app_context():
        try:
            try:
                check_migrations()
                upgraded = ""
            except CheckFailed:
                upgrade()  # an older backup: reconcile with this release's code and schema
                upgraded = f"migrated to this release's head ({check_migrations()}); "
            result = ledger.reconcile()
            problems += [f"reconcile: {problem}" for problem in result.problems]
            try:
                check_field_key()
            except CheckFailed as error:
                problems.append(f"field key: {error}")
            summary = upgraded + result.summary()
        finally:
            db.session.remove()
            db.engine.dispose()
    return problems, summary


def verify(dump: Path, manifest: dict, server: Server, keep: bool) -> str:
    """Restore into a scratch database on ``server``, compare, reconcile; the report line."""
    with scratch_database(server, keep) as scratch:
        seconds = restore_into(scratch, dump)
        problems = compare(manifest, figures_of(scratch))
        if not problems:
            found, summary = check_restored(scratch)
            problems += found
        if problems:
            raise BackupError("the restored copy does not match: " + "; ".join(problems)
                              + (f" (kept as {scratch.database})" if keep else
                                 f" (the scratch database {scratch.database} was dropped)."))
        return (f"{dump.name} restored into scratch database {scratch.database} in "
                f"{seconds:.1f} s; manifest matches ({manifest['journal_entries']} entries, "
                f"customer balances {manifest['customer_balance_total']}, last entry "
                f"{manifest['last_journal_entry_id']}); {summary}"
                + (f"; kept as {scratch.database}" if keep else ""))


def _server() -> Server:
    return Server.from_sqlalchemy(current_app.config["SQLALCHEMY_DATABASE_URI"])


@click.command("backup")
@with_appcontext
@click.option("--output", "output", type=click.Path(file_okay=False, path_type=Path),
              default=lambda: os.environ.get("BACKUP_DIR", "backups"), show_default="BACKUP_DIR "
              "or ./backups", help="Directory the dump and its manifest are written to.")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Then delete all but the newest KEEP backups in that directory.")
def backup(output, keep):
    """Write a consistent pg_dump of the database and its manifest."""
    dump, manifest = make_backup(_server(), output)
    click.echo(f"Backup {dump} ({manifest['dump_bytes']} bytes, {manifest['seconds']} s): "
               f"migration {manifest['migration_head']}, {manifest['journal_entries']} journal "
               f"entries, last entry {manifest['last_journal_entry_id']}, customer balances "
               f"{manifest['customer_balance_total']}, app {manifest['app_version']}.")
    if keep:
        for removed in prune_backups(output, keep):
            click.echo(f"Removed old backup {removed.name}.")


def _scratch_server(ctx, param, value) -> Server | None:
    """``--scratch-url``, read when the command line is (a wrong one is a usage error)."""
    if value is None:
        return None
    try:
        return Server.from_sqlalchemy(value)
    except BackupError as error:
        raise click.BadParameter(error.message) from None


@click.command("restore-check")
@with_appcontext
@click.argument("dump", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scratch-url", "scratch", default=None, callback=_scratch_server,
              help="Server to make the scratch database on [default: DATABASE_URL's].")
@click.option("--keep-scratch", is_flag=True, help="Leave the scratch database to look at.")
def restore_check(dump, scratch, keep_scratch):
    """Restore a backup into a scratch database, compare its manifest, reconcile; drop it."""
    manifest = load_manifest(dump)
    check_schema_known(manifest)
    server = scratch or _server()
    click.echo("OK  " + verify(dump, manifest, server, keep_scratch))


@click.command("restore")
@with_appcontext
@click.argument("dump", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scratch-url", "scratch", default=None, callback=_scratch_server,
              help="Server to make the check's scratch database on [default: DATABASE_URL's]"
                   " (for a user without CREATEDB).")
def restore(dump, scratch):
    """Restore a backup into DATABASE_URL's empty database, after a restore-check."""
    manifest = load_manifest(dump)
    check_schema_known(manifest)
    target = _server()
    existing = public_tables(target)
    if existing:
        raise BackupError(
            f"{target.shown()} is not empty ({len(existing)} tables, e.g. {existing[0]}): "
            "restore into a new empty database (createdb) and point DATABASE_URL at it. "
            "Nothing was restored.")
    click.echo("OK  " + verify(dump, manifest, scratch or target, keep=False))
    seconds = restore_into(target, dump)
    problems = compare(manifest, figures_of(target))
    if problems:  # the file was checked twice before; a concurrent writer could explain it
        raise BackupError("restored, but the database does not match the manifest: "
                          + "; ".join(problems))
    click.echo(f"Restored {dump.name} into {target.shown()} in {seconds:.1f} s. Next: "
               "`flask db upgrade` if the backup predates this release, then `flask check`.")

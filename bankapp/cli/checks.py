"""``flask check``: every configured dependency (database, migrations, Redis, SMTP, keys,
public URL) tried in turn, OK or FAIL with how to fix it.
"""
from __future__ import annotations

import smtplib
import socket
from functools import partial
from pathlib import Path

import click
import redis
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from config import DEV_SECRET_KEY
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bankapp.extensions import db
from bankapp.models import TotpDevice, User
from bankapp.platform import mail, ratelimit
from bankapp.platform.crypto import FieldKeyError, decrypt_field

CHECK_TIMEOUT_SECONDS = 5
# The oldest PostgreSQL bankapp runs on: date_bin(), which the report buckets use (migrations
# 0004 and 0023, ``ledger_post()`` since 0029, the reconciliation), came in PostgreSQL 14.
OLDEST_POSTGRES = 14


class CheckFailed(Exception):
    """A dependency is not usable; the message says what is wrong and how to fix it."""


def _report(name: str, ok: bool, detail: str) -> bool:
    click.echo(f"{'OK  ' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def _safe_url(url) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is reported as such by the check itself
        return "<unparseable URL>"


def _check_engine():
    """The app's engine; for PostgreSQL a copy that gives up after a few seconds.

    psycopg2 waits for the operating system's TCP timeout (minutes) on an unreachable host.
    """

    engine = db.engine
    if engine.dialect.name != "postgresql":
        return engine
    return sa.create_engine(engine.url, poolclass=NullPool,
                            connect_args={"connect_timeout": CHECK_TIMEOUT_SECONDS})


def postgres_too_old(version: tuple[int, ...]) -> str | None:
    """Why a PostgreSQL server of ``version`` (as SQLAlchemy reads it) cannot serve bankapp,
    with the fix; None when it can."""
    if version[0] >= OLDEST_POSTGRES:
        return None
    shown = ".".join(str(part) for part in version)
    return (f"PostgreSQL {shown} is too old: bankapp needs {OLDEST_POSTGRES} or newer "
            f"(date_bin). Fix: upgrade the server (pg_upgrade, or your host's major-version "
            f"upgrade) before `flask db upgrade`.")


def check_database() -> str:
    """SELECT 1, the server's version on PostgreSQL, and whether SSL is in use when the URL
    asks for it."""
    engine = _check_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            detail = f"connected to {_safe_url(engine.url)}"
            if engine.dialect.name == "postgresql":
                version = conn.dialect.server_version_info
                too_old = postgres_too_old(version)
                if too_old:
                    raise CheckFailed(too_old)
                detail += f", PostgreSQL {version[0]}"
            sslmode = engine.url.query.get("sslmode")
            if engine.dialect.name == "postgresql" and sslmode:
                in_use = conn.execute(sa.text(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                )).scalar()
                if sslmode in ("require", "verify-ca", "verify-full") and not in_use:
                    raise CheckFailed(
                        f"sslmode={sslmode} was asked for but the connection is not encrypted"
                    )
                detail += f" (sslmode={sslmode}, SSL {'in use' if in_use else 'not in use'})"
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0].rstrip(".")
        if "SSL" in reason or "ssl" in reason:
            fix = ("the server and DATABASE_URL disagree about SSL: hosted PostgreSQL (Supabase, "
                   "Neon, RDS) needs ?sslmode=require; a local server without SSL needs no "
                   "sslmode (or sslmode=prefer)")
        else:
            fix = ("check DATABASE_URL (host, port, user, password, database name), that the "
                   "server is running and reachable from here, and for hosted PostgreSQL add "
                   "?sslmode=require")
        raise CheckFailed(f"cannot connect to {_safe_url(engine.url)}: {reason}. Fix: {fix}.") from None
    return detail


def _script_directory():
    directory = current_app.extensions["migrate"].directory
    config = AlembicConfig(str(Path(directory) / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    return ScriptDirectory.from_config(config)


def check_migrations() -> str:
    """The database is at the newest migration (alembic current == head)."""
    heads = set(_script_directory().get_heads())
    with _check_engine().connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        shown = ", ".join(sorted(current)) or "no migration applied"
        raise CheckFailed(
            f"database is at {shown}, the code expects {', '.join(sorted(heads))}. "
            "Fix: run `flask db upgrade` against this DATABASE_URL."
        )
    return f"at head {', '.join(sorted(heads))}"


def _redis_url() -> str:
    storage = ratelimit.redis_url(current_app.config.get("RATELIMIT_STORAGE_URI") or "")
    return storage or current_app.config.get("REDIS_URL") or ""


def check_redis(url: str) -> str:
    client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                  socket_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        client.ping()
    except redis.RedisError as error:
        raise CheckFailed(
            f"PING to {_safe_url(url)} failed: {str(error).rstrip('.')}. Fix: check REDIS_URL "
            "(redis://[:password@]host:port/db, rediss:// for TLS) and that Redis is running; "
            "unset REDIS_URL to fall back to per-process in-memory rate limits."
        ) from None
    finally:
        client.close()
    return f"PING answered by {_safe_url(url)}"


def check_smtp() -> str:
    cfg = current_app.config
    host, port = cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"])
    steps = []
    try:
        context = mail.tls_context()
        connection = (partial(smtplib.SMTP_SSL, context=context) if cfg.get("MAIL_USE_SSL")
                      else smtplib.SMTP)
        with connection(host, port, timeout=CHECK_TIMEOUT_SECONDS) as server:
            server.ehlo()
            steps.append("EHLO")
            if cfg.get("MAIL_USE_TLS") and not cfg.get("MAIL_USE_SSL"):
                server.starttls(context=context)
                server.ehlo()
                steps.append("STARTTLS")
            if cfg.get("MAIL_USERNAME"):
                server.login(cfg["MAIL_USERNAME"], cfg.get("MAIL_PASSWORD") or "")
                steps.append("LOGIN")
    except (smtplib.SMTPException, OSError, socket.timeout) as error:
        raise CheckFailed(
            f"{host}:{port} failed after {' + '.join(steps) or 'connecting'}: "
            f"{str(error).rstrip('.')}. "
            "Fix: check MAIL_SERVER, MAIL_PORT (587 with MAIL_USE_TLS=1, 465 with "
            "MAIL_USE_SSL=1), MAIL_USERNAME/MAIL_PASSWORD, that outbound SMTP is allowed, "
            "and, for a certificate the system does not trust, MAIL_CA_FILE."
        ) from None
    return f"{host}:{port} answered ({' + '.join(steps)})"


def check_secret_key() -> str:
    key = current_app.config.get("SECRET_KEY") or ""
    production = current_app.config.get("ENV_NAME") == "production"
    if production and (not key or key == DEV_SECRET_KEY):
        raise CheckFailed(
            "SECRET_KEY is the development default. Fix: set SECRET_KEY to a long random "
            "value, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    if key == DEV_SECRET_KEY:
        return "development default (fine outside production)"
    return "set"


def check_public_url() -> str:
    """Where absolute links point, and which hosts production answers."""
    public_url = current_app.config.get("PUBLIC_URL")
    if not public_url:
        return "not set: links follow each request's host (fine outside production)"
    hosts = current_app.config.get("TRUSTED_HOSTS")
    answered = f"; answers only Host {', '.join(hosts)}" if hosts else ""
    return f"links are built on {public_url}{answered}"


def check_field_key() -> str:
    """A stored authenticator secret decrypts with FIELD_ENCRYPTION_KEY (when one exists)."""
    stored = db.session.scalar(db.select(TotpDevice.secret_encrypted).limit(1))
    where = "FIELD_ENCRYPTION_KEY" if current_app.config.get("FIELD_ENCRYPTION_KEY") else \
        "the key derived from SECRET_KEY (FIELD_ENCRYPTION_KEY unset)"
    if stored is None:
        return f"no stored secret yet; new ones will use {where}"
    try:
        decrypt_field(stored)
    except FieldKeyError:
        raise CheckFailed(f"stored authenticator secrets do not decrypt with {where}. Fix: put "
                          "the key they were made with back into FIELD_ENCRYPTION_KEY (after "
                          "the new one, comma-separated), then run `flask rotate-field-key`.")
    return f"stored secrets decrypt with {where}"


def check_user(email: str) -> str:
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise CheckFailed(f"no user {email}. Fix: `flask create-user --email {email} --role …`.")
    if not user.is_active:
        raise CheckFailed(f"{user.email} is deactivated; an admin must reactivate the account.")
    if not user.is_verified:
        raise CheckFailed(
            f"{user.email} has not verified their email, so login is refused. Fix: they can "
            f"resend the link from the login page, or run `flask verify-user {user.email}`."
        )
    return f"{user.email} is active and verified ({user.role})"


@click.command("check")
@with_appcontext
@click.option("--user", "user_email", default=None,
              help="Also say whether this user can log in (exists, active, verified).")
def check(user_email):
    """Check every configured dependency; print OK/FAIL and how to fix; exit 1 on failure."""
    results = []

    def run(name, function, *args):
        try:
            results.append(_report(name, True, function(*args)))
            return True
        except CheckFailed as error:
            results.append(_report(name, False, str(error)))
            return False
        except Exception as error:  # noqa: BLE001  (one broken check must not hide the rest)
            results.append(_report(name, False, f"unexpected {type(error).__name__}: {error}"))
            return False

    database_ok = run("database", check_database)
    if database_ok:
        run("migrations", check_migrations)
    else:
        _report("migrations", False, "skipped: the database is not reachable")
        results.append(False)
    redis_url = _redis_url()
    if redis_url:
        run("redis", check_redis, redis_url)
    else:
        click.echo("SKIP  redis: REDIS_URL not set; rate limits are counted per process")
    if current_app.config.get("MAIL_SERVER"):
        run("smtp", check_smtp)
    elif current_app.config.get("ENV_NAME") == "production":
        results.append(_report("smtp", False, "MAIL_SERVER is not set, so no confirmation or "
                               "reset email can be sent. Fix: set MAIL_SERVER and the other "
                               "MAIL_* variables."))
    else:
        click.echo("SKIP  smtp: MAIL_SERVER not set; emails are written to the log")
    run("secret key", check_secret_key)
    run("public url", check_public_url)
    if database_ok:
        run("field key", check_field_key)
    if user_email:
        if database_ok:
            run("user", check_user, user_email)
        else:
            _report("user", False, "skipped: the database is not reachable")
            results.append(False)
    if not all(results):
        click.echo("Some checks failed; see the Fix: hints above.")
        raise click.exceptions.Exit(1)
    click.echo("All checks passed.")

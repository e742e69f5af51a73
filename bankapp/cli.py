"""``flask`` commands for deployers: users, demo data, ledger reconciliation, health checks,
pruning old API idempotency records."""
from __future__ import annotations

import signal
import smtplib
import socket
import threading
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import exc as sa_exc

from bankapp.auth.validators import (
    InvalidInput,
    normalize_email,
    normalize_phone,
    password_problems,
)
from bankapp.extensions import db
from bankapp.models import Role, User

CHECK_TIMEOUT_SECONDS = 5


def register(app: Flask) -> None:
    """Attach the bankapp commands to ``app.cli``."""
    app.cli.add_command(create_user)
    app.cli.add_command(set_role)
    app.cli.add_command(verify_user)
    app.cli.add_command(seed_demo)
    app.cli.add_command(check)
    app.cli.add_command(reconcile)
    app.cli.add_command(prune_idempotency_keys)
    app.cli.add_command(reset_2fa)
    app.cli.add_command(rotate_field_key)
    app.cli.add_command(deliver_mail)
    app.cli.add_command(run_scheduled)
    app.cli.add_command(set_rate)
    app.cli.add_command(post_interest)


# ---------------------------------------------------------------- users


def _validated(normalize, value: str, what: str) -> str:
    """Run one of the sign-up form's rules; its message becomes the command's error."""
    try:
        return normalize(value)
    except InvalidInput as error:
        raise click.ClickException(f"invalid {what} {value!r}: {error}") from None


def _user_by_email(email: str) -> User:
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user with email {email!r}")
    return user


@click.command("create-user")
@with_appcontext
@click.option("--email", required=True, help="Login email (stored lower-cased).")
@click.option("--role", type=click.Choice(Role.ALL), default=Role.CUSTOMER, show_default=True)
@click.option("--password", help="For scripts; prompted for (hidden) when omitted.")
@click.option("--first-name", default=None)
@click.option("--last-name", default=None)
@click.option("--phone", default=None, help="International form, e.g. +442071838750.")
def create_user(email, role, password, first_name, last_name, phone):
    """Create a verified, active user (staff accounts are made this way)."""
    from bankapp.security import hash_password

    email = _validated(normalize_email, email, "email")
    if db.session.scalar(db.select(User.id).where(User.email == email)) is not None:
        raise click.ClickException(f"a user with email {email} already exists")
    phone = _validated(normalize_phone, phone, "phone number") if phone else None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = password_problems(password, email)
    if problems:
        raise click.ClickException(f"weak password: {' '.join(problems)}")
    user = User(email=email, password_hash=hash_password(password), role=role,
                is_verified=True, is_active=True, first_name=first_name, last_name=last_name,
                phone_number=phone)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {email} (verified, active).")


@click.command("set-role")
@with_appcontext
@click.argument("email")
@click.argument("role")
def set_role(email, role):
    """Change a user's role (customer, teller or admin)."""
    if role not in Role.ALL:
        raise click.ClickException(f"unknown role {role!r}; use one of {', '.join(Role.ALL)}")
    user = _user_by_email(email)
    previous = user.role
    user.role = role
    # A new role must not ride on sessions granted under the old one.
    user.rotate_session_token()
    db.session.commit()
    click.echo(f"{user.email}: role {previous} -> {role}.")


@click.command("verify-user")
@with_appcontext
@click.argument("email")
def verify_user(email):
    """Mark a user's email as verified (when the verification email never arrived)."""
    user = _user_by_email(email)
    if user.is_verified:
        click.echo(f"{user.email} is already verified.")
        return
    user.is_verified = True
    db.session.commit()
    click.echo(f"{user.email} is now verified and can log in.")


@click.command("reset-2fa")
@with_appcontext
@click.argument("email")
def reset_2fa(email):
    """Remove a user's second factors (after checking who they are); ends their sessions."""
    from bankapp.auth.factors import reset_second_factors

    user = _user_by_email(email)
    if not user.mfa_enabled:
        click.echo(f"{user.email} has no second factor; nothing to reset.")
        return
    from bankapp.email import deliver_committed

    reset_second_factors(user)
    report = deliver_committed()
    click.echo(f"Second factors of {user.email} removed; every session and API token ended. "
               + ("The owner was emailed." if report and report.sent else
                  "The email to the owner is queued (`flask deliver-mail` retries it)."))


@click.command("rotate-field-key")
@with_appcontext
def rotate_field_key():
    """Re-encrypt stored secrets under the first key of FIELD_ENCRYPTION_KEY."""
    from bankapp.auth.factors import reencrypt_secrets
    from bankapp.crypto import FieldKeyError

    from bankapp.email import reencrypt_bodies

    try:
        count = reencrypt_bodies() + reencrypt_secrets()  # the latter commits both
    except FieldKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{count} stored secret(s) re-encrypted with the first FIELD_ENCRYPTION_KEY; the "
               "other keys can now be removed from the setting.")


# ---------------------------------------------------------------- demo data


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has any user.")
def seed_demo(if_empty):
    """Create demo users (a customer, a teller, an admin); refuses in production."""
    from bankapp.auth.factors import enrol_totp_without_code
    from bankapp.demo import DEMO_USERS, DemoRefused, seed_demo_history, seed_demo_users

    if current_app.config.get("ENV_NAME") == "production":
        raise click.ClickException(
            "seed-demo refuses to run in production: demo users have published passwords. "
            "Create real staff with `flask create-user --role admin`."
        )
    if if_empty and db.session.scalar(db.select(User.id).limit(1)) is not None:
        click.echo("The database already has users; no demo data added.")
        return
    try:
        users = seed_demo_users()
    except DemoRefused as error:
        raise click.ClickException(str(error)) from None
    accounts = seed_demo_history(users[Role.CUSTOMER])
    click.echo("Demo users (for development only):")
    passwords = {spec["email"]: spec["password"] for spec in DEMO_USERS}
    for role, user in users.items():
        line = f"  {role:<9} {user.email:<22} password: {passwords[user.email]}"
        if role in Role.STAFF:
            # Staff must have a second factor: add this key to an authenticator app.
            line += f"  authenticator key: {enrol_totp_without_code(user)}"
        click.echo(line)
    click.echo("Staff sign in with a code from an authenticator app holding that key (or: "
               ".venv/bin/python -c \"import pyotp; print(pyotp.TOTP('KEY').now())\").")
    numbers = ", ".join(account.account_number for account in accounts)
    click.echo(f"The demo customer has accounts {numbers} with a few months of history.")


# ---------------------------------------------------------------- health checks


class CheckFailed(Exception):
    """A dependency is not usable; the message says what is wrong and how to fix it."""


def _report(name: str, ok: bool, detail: str) -> bool:
    click.echo(f"{'OK  ' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def _safe_url(url) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is reported as such by the check itself
        return "<unparseable URL>"


def _check_engine():
    """The app's engine; for PostgreSQL a copy that gives up after a few seconds.

    psycopg2 waits for the operating system's TCP timeout (minutes) on an unreachable host.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = db.engine
    if engine.dialect.name != "postgresql":
        return engine
    return sa.create_engine(engine.url, poolclass=NullPool,
                            connect_args={"connect_timeout": CHECK_TIMEOUT_SECONDS})


def check_database() -> str:
    """SELECT 1, and on PostgreSQL whether SSL is in use when the URL asks for it."""
    import sqlalchemy as sa

    engine = _check_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            detail = f"connected to {_safe_url(engine.url)}"
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
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    directory = current_app.extensions["migrate"].directory
    config = AlembicConfig(str(Path(directory) / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    return ScriptDirectory.from_config(config)


def check_migrations() -> str:
    """The database is at the newest migration (alembic current == head)."""
    from alembic.runtime.migration import MigrationContext

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
    storage = current_app.config.get("RATELIMIT_STORAGE_URI") or ""
    if storage.startswith(("redis://", "rediss://")):
        return storage
    return current_app.config.get("REDIS_URL") or ""


def check_redis(url: str) -> str:
    import redis

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
    smtp_class = smtplib.SMTP_SSL if cfg.get("MAIL_USE_SSL") else smtplib.SMTP
    steps = []
    try:
        with smtp_class(host, port, timeout=CHECK_TIMEOUT_SECONDS) as server:
            server.ehlo()
            steps.append("EHLO")
            if cfg.get("MAIL_USE_TLS") and not cfg.get("MAIL_USE_SSL"):
                server.starttls()
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
            "MAIL_USE_SSL=1), MAIL_USERNAME/MAIL_PASSWORD, and that outbound SMTP is allowed."
        ) from None
    return f"{host}:{port} answered ({' + '.join(steps)})"


def check_secret_key() -> str:
    from config import DEV_SECRET_KEY

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
    from bankapp.crypto import FieldKeyError, decrypt_field
    from bankapp.models import TotpDevice

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


# ---------------------------------------------------------------- ledger


@click.command("reconcile")
@with_appcontext
def reconcile():
    """Check every ledger invariant; list each mismatch and exit 1, or print a summary."""
    from bankapp import ledger

    result = ledger.reconcile()
    for problem in result.problems:
        click.echo(f"MISMATCH {problem}", err=True)
    click.echo(result.summary())
    if not result.clean:
        raise SystemExit(1)


@click.command("run-scheduled")
@with_appcontext
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Post what is due up to this date (YYYY-MM-DD) [default: today in "
                   "BANK_TIMEZONE].")
def run_scheduled(as_of):
    """Post every scheduled payment due (missed days too, oldest first); safe to repeat."""
    from bankapp import ledger
    from bankapp.email import deliver_committed

    report = ledger.run_due(as_of.date() if as_of else ledger.bank_today(), trigger="cli")
    deliver_committed()  # the failed-payment alerts, now; the mail worker retries what fails
    click.echo(f"Scheduled payments due by {report.as_of.isoformat()}: {report.posted} posted, "
               f"{report.failed} failed ({report.paused} orders paused), {report.skipped} "
               "handled by another run.")


@click.command("set-rate")
@with_appcontext
@click.argument("account_type", type=click.Choice(["SAVINGS", "CHECKING"]))
@click.argument("rate")
@click.option("--from", "effective_from", default=None,
              help="First day it applies, YYYY-MM-DD [default: today in BANK_TIMEZONE].")
def set_rate(account_type, rate, effective_from):
    """Set the annual interest rate (percent) of an account type from a day on."""
    from bankapp import ledger
    from bankapp.ledger.interest import local_today

    try:
        day = ledger.parse_rate_date(effective_from) if effective_from else local_today()
        row = ledger.set_rate(account_type, ledger.parse_rate(rate), day, None)
    except ledger.InterestError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{account_type}: {row.annual_rate.normalize():f} % a year from "
               f"{row.effective_from.isoformat()}.")


@click.command("post-interest")
@with_appcontext
@click.option("--month", required=True, help="The month that ended, YYYY-MM.")
def post_interest(month):
    """Post a month's interest (idempotent: each account and month is paid once)."""
    from bankapp import ledger

    try:
        run = ledger.post_interest(ledger.parse_month(month))
    except ledger.InterestError as error:
        raise click.ClickException(str(error)) from None
    click.echo(run.summary())


# ---------------------------------------------------------------- API idempotency records


@click.command("prune-idempotency-keys")
@with_appcontext
@click.option("--older-than-days", type=int, default=None,
              help="Delete records older than this many days "
                   "[default: API_IDEMPOTENCY_RETENTION_DAYS, 30].")
def prune_idempotency_keys(older_than_days):
    """Delete stored API answers past the retention window (run daily)."""
    from bankapp.api.idempotency import prune_records

    days = older_than_days
    if days is None:
        days = current_app.config["API_IDEMPOTENCY_RETENTION_DAYS"]
    if days < 1:
        raise click.ClickException(
            f"--older-than-days must be at least 1, not {days}: a client's retry within the "
            "window must still find its answer")
    deleted = prune_records(timedelta(days=days))
    click.echo(f"Deleted {deleted} idempotency records older than {days} days.")


# ---------------------------------------------------------------- outgoing mail


@click.command("deliver-mail")
@with_appcontext
@click.option("--once", is_flag=True, help="One pass over due mail, then exit (for cron).")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True,
              help="Seconds to wait when nothing is due.")
@click.option("--batch", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="At most this many messages per pass.")
def deliver_mail(once, interval, batch):
    """Send queued email: retries with backoff, dead after MAIL_MAX_ATTEMPTS (see /admin/mail/).

    Without --once it keeps running; Ctrl-C or SIGTERM stops it after the message in hand.
    """
    from bankapp import email

    if once:
        click.echo(f"Mail: {email.deliver(limit=batch)}.")
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Delivering mail (every {interval:g} s when idle); Ctrl-C stops.")
    while not stop.is_set():
        try:
            report = email.deliver(limit=batch, should_stop=stop.is_set)
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
            # The database restarting must not end the worker; the next pass tries again.
            db.session.rollback()
            click.echo(f"Database unavailable ({error.orig}); retrying.", err=True)
            report = email.DeliveryReport()
        if report.attempted:
            click.echo(f"Mail: {report}.")
        if report.attempted < batch or report.failed:
            stop.wait(interval)
    click.echo("Stopped.")

"""Fixtures: an app on a real database, clients that behave like browsers, users to act as.

SQLite (in memory) by default. With ``TEST_DATABASE_URL=postgresql://…/anyname`` the suite
creates a fresh database named after the run on that server, migrates it, empties it between
tests and drops it at the end, so no run depends on what an earlier one left behind.

With ``TEST_POOLER_URL`` too (a PgBouncer in transaction mode in front of that server, as
``make test-pgbouncer`` starts it), the database is created, migrated and dropped over the
direct connection, as an operator would, and the app under test talks to it through the pooler.
"""
from __future__ import annotations

import os
import re
import socket
import uuid
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bankapp import create_app
from bankapp.extensions import db, limiter, mail
from bankapp.ledger import fast
from bankapp.models import Role, User
from config import TestingConfig, normalize_database_url

TEST_PASSWORD = "complexpassword123"
PRODUCTION_SECRET = "a-production-secret-key-that-is-long-enough-0123456789"
PUBLIC_URL = "https://bank.example"
# A fixed Fernet key, so production tests can read what they stored.
FIELD_ENCRYPTION_KEY = "q1vOQm3Xh2mQmS0t3f3qk3B2cHk0c1J5dEx4b0ZkR1k="

_server_url = os.environ.get("TEST_DATABASE_URL", "")
POSTGRES = _server_url.startswith(("postgres://", "postgresql"))
_pooler_url = os.environ.get("TEST_POOLER_URL", "") if POSTGRES else ""


def pytest_report_header(config):
    if not POSTGRES:
        return "bankapp database: SQLite (in memory)"
    via = f" through the pooler {_pooler_url}" if _pooler_url else ""
    return f"bankapp database: PostgreSQL {_server_url}{via}"


@pytest.fixture(scope="session")
def database_url():
    """The URL tests run against: a throwaway PostgreSQL database, or in-memory SQLite."""
    if not POSTGRES:
        yield "sqlite:///:memory:"
        return
    server = make_url(normalize_database_url(_server_url))
    name = f"bankapp_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    if _pooler_url:
        url = (make_url(normalize_database_url(_pooler_url)).set(database=name)
               .render_as_string(hide_password=False))
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class _TestConfig(TestingConfig):
    """TestingConfig pointed at this run's database."""

    # Rate-limit counters of this run only: limiter.reset() then leaves concurrent runs
    # sharing the Redis database alone.
    RATELIMIT_STORAGE_OPTIONS = {"key_prefix": f"LIMITS-{uuid.uuid4().hex[:10]}"}


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    _TestConfig.SQLALCHEMY_DATABASE_URI = url
    app = create_app(_TestConfig)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture
def app(database_url):
    """A fresh application on an empty database."""
    _TestConfig.SQLALCHEMY_DATABASE_URI = database_url
    application = create_app(_TestConfig)
    # The app context below stays open for the whole test and Flask reuses it for each test
    # request, so ``g`` would outlive a request: Flask-Login's cached ``current_user`` would
    # survive a rotated session token, and Flask-WTF's CSRF token a ``session.clear()``.
    # Empty it first thing in every request, as a real server's fresh context would be.
    application.before_request_funcs.setdefault(None, []).insert(0, _empty_g)
    with application.app_context():
        if POSTGRES:
            _truncate_all()
        else:
            db.create_all()
        limiter.reset()
        yield application
        db.session.remove()
        fast.dispose(application)  # the API's own pool (bankapp/ledger/fast.py)
        if POSTGRES:
            _truncate_all()
        db.engine.dispose()


def _empty_g() -> None:
    from flask import g

    g.__dict__.clear()


def empty_database() -> None:
    """Start again from an empty schema (audit rows refuse DELETE, so no row-by-row wipe)."""
    db.session.remove()
    if POSTGRES:
        _truncate_all()
    else:
        db.drop_all()
        db.create_all()


def _truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_down(app):
    """Real sending (no suppression) to a local port where nothing listens."""
    deliver_mail_to(app, "127.0.0.1", free_port())
    return app


@pytest.fixture
def smtp_sink():
    """A real SMTP server on loopback that keeps every message it is given."""
    from mail_sink import running_mail_sink

    with running_mail_sink() as sink:
        yield sink


def deliver_mail_to(app, host: str, port: int) -> None:
    """Make ``app`` really send its email over plain SMTP to ``host:port``."""
    app.config.update(MAIL_SERVER=host, MAIL_PORT=port, MAIL_USE_TLS=False,
                      MAIL_USE_SSL=False, MAIL_SUPPRESS_SEND=False)
    mail.init_app(app)  # Flask-Mail reads its settings when bound


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """The environment of a correctly configured production host (SQLite file as its DB)."""
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'production.db'}")
    monkeypatch.setenv("PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)
    for name in ("DATABASE_NULLPOOL", "DATABASE_REPLICA_URL", "REDIS_URL", "TRUST_PROXY_HOPS",
                 "TRUSTED_HOSTS", "CUSTOMER_2FA"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    """Fetch ``url`` like a browser and return the CSRF token its form carries."""
    response = client.get(url)
    match = _CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token in the form at {url} (status {response.status_code})"
    return match.group(1)


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (csrf token, idempotency key), as a browser would send them."""
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


def post_form(client, url: str, data: dict, **kwargs):
    """GET the form at ``url``, then POST ``data`` with its hidden fields, like a browser."""
    page = client.get(url)
    fields = form_fields(page.get_data(as_text=True))
    fields.update(data)
    return client.post(url, data=fields, **kwargs)


@pytest.fixture
def make_user(app):
    """Create users directly in the database (the sign-up form has its own tests)."""
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str = TEST_PASSWORD, role: str = Role.CUSTOMER,
             verified: bool = True, second_factor: bool | None = None, **fields) -> User:
        from bankapp.identity.security import hash_password

        n = next(counter)
        user = User(
            email=(email or f"user{n}@example.com").lower(),
            password_hash=hash_password(password),
            role=role,
            is_verified=verified,
            phone_number=fields.pop("phone_number", "+442071838750"),
            date_of_birth=fields.pop("date_of_birth", date(1990, 1, 1)),
            first_name=fields.pop("first_name", "Test"),
            last_name=fields.pop("last_name", f"User{n}"),
            **fields,
        )
        db.session.add(user)
        db.session.commit()
        # Staff must have a second factor (bankapp.identity.factors): give them one, as an
        # operator's enrolment would, unless the test is about not having one.
        if second_factor if second_factor is not None else role in Role.STAFF:
            enrol_totp(user)
        return user

    return make


def enrol_totp(user: User) -> str:
    """Give ``user`` a confirmed authenticator app; its secret (``totp_now`` makes codes)."""
    from bankapp.identity.factors import enrol_totp_without_code

    secret = enrol_totp_without_code(user)
    user.totp_secret = secret  # for the test only; not a column
    return secret


def totp_now(secret: str, step_offset: int = 0) -> str:
    """The code an authenticator app shows now (or ``step_offset`` 30-second steps away)."""
    import pyotp

    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(timezone.utc)) + step_offset)


def log_in_as(client, user: User) -> None:
    """Give ``client`` a logged-in session for ``user`` without going through the form.

    Like a real login it opens the session's row (bankapp.identity.devices); the cookie holds its key.
    """
    import secrets

    from bankapp.identity.devices import SESSION_KEY, hash_key
    from bankapp.models import UserSession

    key = secrets.token_urlsafe(32)
    db.session.add(UserSession(user_id=user.id, key_hash=hash_key(key), ip_address="127.0.0.1",
                               browser="Test client"))
    db.session.commit()
    now = datetime.now(timezone.utc).timestamp()
    with client.session_transaction() as session:
        session[SESSION_KEY] = key
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["auth_at"] = session["seen_at"] = now
        session.permanent = True


@pytest.fixture
def customer(make_user):
    return make_user(email="alice@example.com", first_name="Alice", last_name="Archer")


@pytest.fixture
def customer_client(client, customer):
    log_in_as(client, customer)
    return client


@pytest.fixture
def funded_account(app):
    """Open a customer account and deposit ``amount`` into it through the ledger."""
    from decimal import Decimal

    from bankapp import ledger

    def make(owner: User, amount: str = "0.00", account_type: str = "SAVINGS"):
        account = ledger.open_account(owner, account_type)
        if Decimal(amount) > 0:
            ledger.deposit(account, Decimal(amount), "Opening deposit", owner)
        return account

    return make


# The real-browser tests start a server and Chromium: only `make e2e` (E2E=1) collects them.
collect_ignore = [] if os.environ.get("E2E") else ["e2e"]

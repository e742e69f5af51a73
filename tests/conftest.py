"""Fixtures: an app on a real database, clients that behave like browsers, users to act as.

SQLite (in memory) by default. With ``TEST_DATABASE_URL=postgresql://…/anyname`` the suite
creates a fresh database named after the run on that server, migrates it, empties it between
tests and drops it at the end, so no run depends on what an earlier one left behind.

With ``TEST_POOLER_URL`` too (a PgBouncer in transaction mode in front of that server, as
``make test-pgbouncer`` starts it), the database is created, migrated and dropped over the
direct connection, as an operator would, and the app under test talks to it through the pooler.

Only fixtures and hooks live here; the helpers tests import are in ``support/``.
"""
from __future__ import annotations

import os
from datetime import date

import pytest
from sqlalchemy.engine import make_url

from bankapp import create_app
from bankapp.extensions import db, limiter
from bankapp.ledger import fast
from bankapp.models import Role, User
from config import ProductionConfig, normalize_database_url
from support.compiled import compile_once
from support.concurrency import running_worker_app
from support.database import (POOLER_URL, POSTGRES, SERVER_URL, SuiteConfig, empty_database,
                              empty_tables, migrate, scratch_database)
from support.net import free_port
from support.settings import (FIELD_ENCRYPTION_KEY, PRODUCTION_SECRET, PUBLIC_URL,
                              deliver_mail_to)
from support.users import TEST_PASSWORD, enrol_totp, log_in_as
from support.web import ClosingClient


def pytest_configure(config):
    compile_once()


def pytest_report_header(config):
    if not POSTGRES:
        return "bankapp database: SQLite (in memory)"
    via = f" through the pooler {POOLER_URL}" if POOLER_URL else ""
    return f"bankapp database: PostgreSQL {SERVER_URL}{via}"


@pytest.fixture(scope="session")
def database_url():
    """The URL tests run against: a throwaway PostgreSQL database, or in-memory SQLite."""
    if not POSTGRES:
        yield "sqlite:///:memory:"
        return
    with scratch_database("bankapp_test") as url:
        migrate(url)
        if POOLER_URL:
            name = make_url(url).database
            url = (make_url(normalize_database_url(POOLER_URL)).set(database=name)
                   .render_as_string(hide_password=False))
        yield url


@pytest.fixture
def app(database_url):
    """A fresh application on an empty database."""
    from flask import g

    def empty_g() -> None:
        g.__dict__.clear()

    SuiteConfig.SQLALCHEMY_DATABASE_URI = database_url
    application = create_app(SuiteConfig)
    application.test_client_class = ClosingClient
    # The app context below stays open for the whole test and Flask reuses it for each test
    # request, so ``g`` would outlive a request: Flask-Login's cached ``current_user`` would
    # survive a rotated session token, and Flask-WTF's CSRF token a ``session.clear()``.
    # Empty it first thing in every request, as a real server's fresh context would be.
    application.before_request_funcs.setdefault(None, []).insert(0, empty_g)
    with application.app_context():
        empty_database()
        limiter.reset()
        yield application
        db.session.remove()
        fast.dispose(application)  # the API's own pool (bankapp/ledger/fast.py)
        # Emptied after as well as before: a few tests use the database without this
        # fixture (``flask check``'s) and must not find another test's rows.
        if POSTGRES:
            empty_tables()
        db.engine.dispose()


@pytest.fixture
def smtp_down(app):
    """Real sending (no suppression) to a local port where nothing listens."""
    deliver_mail_to(app, "127.0.0.1", free_port())
    return app


@pytest.fixture
def smtp_sink():
    """A real SMTP server on loopback that keeps every message it is given."""
    from support.mail_sink import running_mail_sink

    with running_mail_sink() as sink:
        yield sink


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """The environment of a correctly configured production host (SQLite file as its DB,
    which production itself refuses: the suite lifts that one rule to test the others)."""
    monkeypatch.setattr(ProductionConfig, "SQLITE_ALLOWED", True)
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


@pytest.fixture(params=["ledger_post", "generic"])
def workers_on_each_path(request, app):
    """A second app on the test database for a race's threads, posting through PostgreSQL's
    ledger_post() and then the generic path (the test runs once with each)."""
    with running_worker_app(app.config["SQLALCHEMY_DATABASE_URI"],
                            LEDGER_FAST_PATH=request.param == "ledger_post") as workers:
        yield workers


# The real-browser tests start a server and Chromium: only `make e2e` (E2E=1) collects them.
collect_ignore = [] if os.environ.get("E2E") else ["e2e"]

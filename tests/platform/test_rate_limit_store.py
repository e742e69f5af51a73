"""Rate limits while Redis is down: sign-ins and payments keep working, the limits still hold,
counted in the database that every worker shares, with a warning and a metric.

Each test starts a redis-server of its own and kills it (``support.redis_server``).
"""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from bankapp import create_app
from bankapp.extensions import db, limiter
from bankapp.models import RateLimitCounter
from bankapp.platform import metrics
from support.database import POSTGRES, SuiteConfig, empty_database, empty_tables
from support.redis_server import private_redis
from support.users import TEST_PASSWORD
from support.web import form_fields, post_form

LOGIN = "/accounts/login/"


@pytest.fixture
def redis_server(tmp_path):
    with private_redis(tmp_path) as server:
        yield server


@pytest.fixture
def app(database_url, redis_server):
    """The suite's app with the private Redis as its rate-limit store (overrides conftest's)."""
    config = type("PrivateRedisConfig", (SuiteConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_STORAGE_URI": redis_server.url,
        "LOGIN_RATE_LIMIT": "3 per minute"})
    application = create_app(config)
    with application.app_context():
        empty_database()
        limiter.reset()
        yield application
        db.session.remove()
        # Emptied after too, as conftest's app is (and why).
        if POSTGRES:
            empty_tables()
        db.engine.dispose()


def log_in(client, email, password=TEST_PASSWORD):
    return post_form(client, LOGIN, {"email": email, "password": password})


def fallbacks() -> float:
    return metrics.RATE_LIMIT_FALLBACKS._value.get()


def test_a_customer_logs_in_while_redis_is_stopped(client, customer, redis_server):
    redis_server.stop()
    response = log_in(client, "alice@example.com")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/dashboard/")


def test_a_customer_adds_a_payee_while_redis_is_stopped(customer_client, redis_server,
                                                         make_user, funded_account):
    bob = funded_account(make_user(email="bob@example.com", first_name="Bob"))
    redis_server.stop()
    # The look-up's budget (PAYEE_LOOKUP_LIMIT) is counted from the audit trail: no Redis.
    page = post_form(customer_client, "/accounts/payees/",
                     {"account_number": bob.account_number, "nickname": "Bob"})
    assert page.status_code == 200
    saved = customer_client.post("/accounts/payees/confirm/",
                                 data=form_fields(page.get_data(as_text=True)))
    assert saved.status_code == 302


def test_while_redis_is_stopped_the_login_limit_is_counted_in_the_database(
        client, customer, redis_server):
    redis_server.stop()
    answers = [log_in(client, "alice@example.com", "wrong-password").status_code
               for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    counted = db.session.scalars(sa.select(RateLimitCounter.count)).all()
    assert counted and max(counted) >= 3


def test_falling_back_logs_one_warning_and_counts_in_a_metric(client, customer, redis_server,
                                                              caplog):
    before = fallbacks()
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="bankapp.ratelimit"):
        for _ in range(2):
            log_in(client, "alice@example.com", "wrong-password")
    warnings = [record for record in caplog.records
                if "Redis did not answer" in record.getMessage()]
    assert len(warnings) == 1  # then Redis is left alone for a while
    assert fallbacks() > before


def test_while_redis_answers_nothing_is_counted_in_the_database(client, customer):
    assert log_in(client, "alice@example.com").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter)) == 0

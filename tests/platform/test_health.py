"""/healthz and /readyz: what a load balancer asks an instance before sending it customers."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import event

from bankapp import create_app
from bankapp.extensions import db, limiter
from bankapp.models import Role
from config import ProductionConfig, TestingConfig
from support.net import free_port, silent_server
from support.users import log_in_as


def migration_scripts(app) -> ScriptDirectory:
    return ScriptDirectory(app.extensions["migrate"].directory)


@contextmanager
def alembic_at(*revisions: str):
    """The database's ``alembic_version`` holds ``revisions`` during the block, then what it
    held before (the PostgreSQL test database is migrated and shared by every test)."""
    table = "alembic_version"

    def write(connection, values):
        connection.exec_driver_sql(f"DELETE FROM {table}")
        for value in values:
            connection.execute(sa.text(f"INSERT INTO {table} VALUES (:v)"), {"v": value})

    db.session.commit()
    with db.engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {table} "
                                   "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        before = list(connection.scalars(sa.text(f"SELECT version_num FROM {table}")))
        write(connection, revisions)
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            write(connection, before)


@pytest.fixture
def at_head(app):
    with alembic_at(*migration_scripts(app).get_heads()):
        yield


def expected_redis(app) -> str:
    uri = app.config["RATELIMIT_STORAGE_URI"]
    return "ok" if uri.startswith(("redis://", "bankapp+redis://")) else "skipped"


def unreachable_database_app():
    """An app whose PostgreSQL is a loopback port where nothing listens."""
    url = f"postgresql://bankapp@127.0.0.1:{free_port()}/nowhere"
    return create_app(type("DatabaseDown", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2" + url[len("postgresql"):]}))


# ---------------------------------------------------------------- /healthz


def test_healthz_answers_ok_without_a_database_statement(app, client):
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []


def test_healthz_answers_ok_while_the_database_is_unreachable():
    down = unreachable_database_app()
    assert down.test_client().get("/healthz").status_code == 200


def test_healthz_answers_head_requests(client):
    response = client.head("/healthz")
    assert response.status_code == 200 and response.data == b""


# ---------------------------------------------------------------- /readyz


def test_readyz_is_ready_when_database_migrations_and_redis_answer(app, client, at_head):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "redis": expected_redis(app)}}


def test_readyz_is_unavailable_when_the_database_is_down():
    down = unreachable_database_app()
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert response.get_json()["checks"]["database"] == "fail"
    assert response.get_json()["checks"]["migrations"] == "unknown"


def test_readyz_does_not_tell_the_public_where_the_database_is():
    down = unreachable_database_app()
    body = down.test_client().get("/readyz").get_data(as_text=True)
    assert "127.0.0.1" not in body and "nowhere" not in body


def test_readyz_is_unavailable_when_migrations_are_behind_the_code(app, client):
    scripts = migration_scripts(app)
    [head] = scripts.get_heads()
    with alembic_at(scripts.get_revision(head).down_revision):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "fail",
                                             "redis": expected_redis(app)}


def test_readyz_is_unavailable_when_no_migration_was_ever_applied(app, client):
    with alembic_at():
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == "fail"


def test_readyz_is_unavailable_when_redis_does_not_answer(app, client, at_head):
    app.config["RATELIMIT_STORAGE_URI"] = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "ok",
                                             "redis": "fail"}


def timed_readyz(app, patience: float = 10.0) -> tuple[float, object]:
    """(seconds taken, the answer) of GET /readyz; fails if none comes within ``patience``."""
    answers = []

    def probe():
        started = time.monotonic()
        response = app.test_client().get("/readyz")
        answers.append((time.monotonic() - started, response))

    threading.Thread(target=probe, daemon=True).start()
    deadline = time.monotonic() + patience
    while not answers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answers, f"/readyz did not answer within {patience} s"
    return answers[0]


def test_readyz_answers_503_within_3_seconds_when_the_database_hangs(caplog):
    with silent_server() as port:
        hung = create_app(type("DatabaseHung", (TestingConfig,), {
            "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg2://bankapp@127.0.0.1:{port}/x"}))
        with caplog.at_level(logging.WARNING, logger="bankapp.health"):
            seconds, response = timed_readyz(hung)
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "fail"
    assert seconds < 3
    # The probe gave up on its own clock, not because the server refused.
    assert any("did not answer within" in record.getMessage() for record in caplog.records)


def test_readyz_answers_503_within_3_seconds_when_redis_hangs(app, at_head, caplog):
    with silent_server() as port:
        app.config["REDIS_URL"] = app.config["RATELIMIT_STORAGE_URI"] = \
            f"redis://127.0.0.1:{port}/0"
        with caplog.at_level(logging.WARNING, logger="bankapp.health"):
            seconds, response = timed_readyz(app)
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "fail"
    assert seconds < 3
    assert any("Redis" in record.getMessage() and "Timeout" in record.getMessage()
               for record in caplog.records)


def test_readyz_answers_503_within_3_seconds_when_database_and_redis_both_hang():
    with silent_server() as database_port, silent_server() as redis_port:
        hung = create_app(type("BothHung", (TestingConfig,), {
            "SQLALCHEMY_DATABASE_URI":
                f"postgresql+psycopg2://bankapp@127.0.0.1:{database_port}/x",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{redis_port}/0"}))
        seconds, response = timed_readyz(hung)
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "fail", "migrations": "unknown",
                                             "redis": "fail"}
    assert seconds < 3


# ---------------------------------------------------------------- what probes never do


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_set_no_cookie_even_for_a_logged_in_browser(client, customer, path):
    assert "Set-Cookie" not in client.get(path).headers
    log_in_as(client, customer)
    assert "Set-Cookie" not in client.get(path).headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_not_sent_to_second_factor_enrolment(client, make_user, path):
    # Staff without a second factor can open nothing but enrolment; a probe is not them.
    log_in_as(client, make_user(role=Role.TELLER, second_factor=False))
    assert client.get("/dashboard/").status_code == 302
    assert client.get(path).status_code in (200, 503)


def test_probes_are_not_rate_limited_even_by_an_app_wide_limit():
    limited = create_app(type("Limited", (TestingConfig,), {
        "RATELIMIT_DEFAULT": "2 per minute", "RATELIMIT_STORAGE_URI": "memory://"}))
    client = limited.test_client()
    try:
        assert [client.get("/accounts/login/").status_code for _ in range(3)][-1] == 429
        assert {client.get("/healthz").status_code for _ in range(5)} == {200}
        assert {client.get("/readyz").status_code for _ in range(5)} <= {200, 503}
    finally:
        # The limiter is one object for every app and keeps a default limit once given one.
        limiter.limit_manager.set_default_limits([])


# ---------------------------------------------------------------- production's host check


@pytest.fixture
def production_app(production_env):
    application = create_app(ProductionConfig)
    yield application
    with application.app_context():
        db.engine.dispose()


def test_a_probe_by_ip_over_plain_http_is_answered_in_production(production_app):
    # Load balancers probe each instance by its address, not PUBLIC_URL's host, and over HTTP.
    client = production_app.test_client()
    assert client.get("/accounts/login/", base_url="http://10.0.0.7").status_code == 400
    response = client.get("/healthz", base_url="http://10.0.0.7")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    # Answered, not refused for its host nor redirected: 503 as this database is empty.
    response = client.get("/readyz", base_url="http://10.0.0.7")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == "fail"


def test_only_get_and_head_are_answered_by_the_probe(client):
    assert client.post("/healthz").status_code in (404, 405)

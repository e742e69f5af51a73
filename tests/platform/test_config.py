"""Configuration: database URLs, production's refusals and protections, pools and limiter storage."""
from __future__ import annotations

import os

import psycopg2
import pytest
import sqlalchemy as sa
from flask import request, session
from limits.storage import RedisStorage
from sqlalchemy.pool import NullPool

from bankapp import create_app
from bankapp.platform import pooling
from bankapp.platform import replica
from bankapp.platform.ratelimit import DatabaseStorage, RedisWithDatabaseFallback
from bankapp.extensions import db, limiter
from config import ProductionConfig, TestingConfig, normalize_database_url
from support.database import POSTGRES
from support.settings import PRODUCTION_SECRET
from support.tls import self_signed_certificate

UNREACHABLE_POSTGRES = "postgres://nobody@127.0.0.1:1/x"


@pytest.mark.parametrize("url, expected", [
    ("postgres://u:p@db.example.com:5432/bank",
     "postgresql+psycopg2://u:p@db.example.com:5432/bank"),
    ("postgresql://u:p@db.example.com:6543/bank?sslmode=require",
     "postgresql+psycopg2://u:p@db.example.com:6543/bank?sslmode=require"),
    ("postgresql+psycopg2://u@localhost/bank", "postgresql+psycopg2://u@localhost/bank"),
    ("sqlite:////var/lib/bankapp/bank.db", "sqlite:////var/lib/bankapp/bank.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
])
def test_database_url_forms_map_to_psycopg2(url, expected):
    assert normalize_database_url(url) == expected


def test_heroku_style_postgres_url_uses_the_psycopg2_driver(production_env):
    production_env.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)
    app = create_app(ProductionConfig)
    with app.app_context():
        # Building the engine needs no connection; the dialect shows which driver it loaded.
        assert db.engine.dialect.driver == "psycopg2"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "PUBLIC_URL",
                                     "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_required_setting(production_env, missing):
    production_env.delenv(missing)
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    # sys.exit(str) exits with status 1 and prints the message.
    assert isinstance(stopped.value.code, str)
    assert missing in stopped.value.code


def test_production_without_either_setting_names_both(production_env):
    production_env.delenv("SECRET_KEY")
    production_env.delenv("DATABASE_URL")
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert "SECRET_KEY" in stopped.value.code and "DATABASE_URL" in stopped.value.code


@pytest.mark.parametrize("url", ["sqlite:////var/lib/bankapp/bank.db", "sqlite:///:memory:"])
def test_production_refuses_a_sqlite_database(production_env, url):
    production_env.setattr(ProductionConfig, "SQLITE_ALLOWED", False, raising=False)
    production_env.setenv("DATABASE_URL", url)
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert "DATABASE_URL names a SQLite database; production needs PostgreSQL" in \
        stopped.value.code


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_production_refuses_a_mail_ca_file_it_cannot_use(production_env, tmp_path, content):
    ca_file = tmp_path / "relay-ca.pem"
    if content is not None:
        ca_file.write_text(content)
    production_env.setenv("MAIL_CA_FILE", str(ca_file))
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert f"MAIL_CA_FILE={ca_file} cannot be read" in stopped.value.code


def test_production_takes_a_mail_ca_file_of_certificates(production_env, tmp_path):
    ca_file, _ = self_signed_certificate(tmp_path)
    production_env.setenv("MAIL_CA_FILE", str(ca_file))
    assert create_app(ProductionConfig).config["MAIL_CA_FILE"] == str(ca_file)


def test_production_uses_the_secret_key_from_its_environment(production_env):
    app = create_app(ProductionConfig)
    assert app.config["SECRET_KEY"] == PRODUCTION_SECRET


def test_customer_self_deposits_are_off_in_production_unless_turned_on(production_env):
    assert create_app(ProductionConfig).config["CUSTOMER_SELF_DEPOSITS"] is False
    production_env.setenv("CUSTOMER_SELF_DEPOSITS", "true")
    assert create_app(ProductionConfig).config["CUSTOMER_SELF_DEPOSITS"] is True


def test_customer_self_deposits_are_on_in_development_for_the_demo(monkeypatch):
    from config import DevelopmentConfig

    monkeypatch.delenv("CUSTOMER_SELF_DEPOSITS", raising=False)
    assert create_app(DevelopmentConfig).config["CUSTOMER_SELF_DEPOSITS"] is True


@pytest.fixture
def production_app(production_env):
    """A production app with a probe view that writes the session and reports the request."""
    app = create_app(ProductionConfig)

    def probe():
        session["probe"] = True
        return {"scheme": request.scheme, "remote_addr": request.remote_addr}

    app.add_url_rule("/_probe", "probe", probe)
    return app


def test_production_redirects_http_to_https(production_app):
    response = production_app.test_client().get("/_probe", base_url="http://bank.example")
    assert response.status_code in (301, 302)
    assert response.headers["Location"].startswith("https://bank.example/_probe")


def test_plain_http_redirect_goes_to_public_url_whatever_port_the_host_names(production_app):
    response = production_app.test_client().get("/_probe?x=1",
                                                 base_url="http://bank.example:8443")
    assert response.status_code in (301, 302)
    assert response.headers["Location"] == "https://bank.example/_probe?x=1"


def test_production_sends_hsts_for_at_least_a_year(production_app):
    response = production_app.test_client().get("/_probe", base_url="https://bank.example")
    assert response.status_code == 200
    hsts = response.headers["Strict-Transport-Security"]
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= 31536000


def test_production_session_cookie_is_host_prefixed_secure_httponly_lax(production_app):
    response = production_app.test_client().get("/_probe", base_url="https://bank.example")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert not any(part.startswith("domain=") for part in attributes)


def test_production_trusts_one_proxy_hop_for_scheme_and_client_address(production_app):
    response = production_app.test_client().get(
        "/_probe",
        base_url="http://bank.example",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.status_code == 200  # no redirect: the proxy already spoke HTTPS
    assert response.get_json() == {"scheme": "https", "remote_addr": "203.0.113.9"}


def test_nullpool_setting_switches_the_engine_to_nullpool(production_env):
    production_env.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)
    production_env.setenv("DATABASE_NULLPOOL", "1")
    app = create_app(ProductionConfig)
    with app.app_context():
        assert isinstance(db.engine.pool, NullPool)


def test_engine_keeps_a_pool_without_the_nullpool_setting(production_env):
    production_env.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)
    app = create_app(ProductionConfig)
    with app.app_context():
        assert not isinstance(db.engine.pool, NullPool)
        # Idle connections are pinged before use (bankapp.platform.pooling), not all.
        assert db.engine.pool._pre_ping is False
        assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is False


def test_replica_url_gives_reports_a_second_engine_with_a_short_connect_timeout(production_env):
    production_env.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)
    production_env.setenv("DATABASE_REPLICA_URL", "postgres://reader@replica.internal:5432/x")
    app = create_app(ProductionConfig)
    with app.app_context():
        engine = replica.engine()
        assert engine.url.render_as_string() == \
            "postgresql+psycopg2://reader@replica.internal:5432/x"
        assert engine.dialect.create_connect_args(engine.url)[1]["host"] == "replica.internal"
        assert engine.pool._pre_ping is False  # its idle connections are pinged, as the primary's
        assert db.engine.url.host == "127.0.0.1"  # everything else stays on the primary


def test_without_a_replica_url_there_is_one_engine(production_env):
    production_env.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)
    production_env.delenv("DATABASE_REPLICA_URL", raising=False)
    app = create_app(ProductionConfig)
    with app.app_context():
        assert not replica.replica_usable()


def test_redis_url_becomes_the_rate_limit_storage(production_env):
    # Nothing connects while the app is built, so no Redis server is needed here.
    production_env.setenv("REDIS_URL", "redis://127.0.0.1:6379/7")
    app = create_app(ProductionConfig)
    with app.app_context():
        assert app.config["RATELIMIT_STORAGE_URI"] == "bankapp+redis://127.0.0.1:6379/7"
        assert isinstance(limiter.storage, RedisWithDatabaseFallback)
        assert isinstance(limiter.storage.redis, RedisStorage)
        pool_settings = limiter.storage.redis.storage.connection_pool.connection_kwargs
        assert (pool_settings["port"], pool_settings["db"]) == (6379, 7)
        # A hung Redis holds a request half a second, then the database counts.
        assert pool_settings["socket_timeout"] <= 1


def test_without_redis_production_counts_rate_limits_in_the_database(production_env):
    # Memory would be each worker's (each serverless instance's) own count.
    app = create_app(ProductionConfig)
    with app.app_context():
        assert isinstance(limiter.storage, DatabaseStorage)


@pytest.mark.parametrize("environment, expected", [
    ({}, "development"),
    ({"BANKAPP_ENV": "testing"}, "testing"),
    ({"FLASK_ENV": "production"}, "production"),
    ({"BANKAPP_ENV": "Production", "FLASK_ENV": "development"}, "production"),
    # Vercel sets VERCEL=1: a deployment that forgot BANKAPP_ENV must not run as development.
    ({"VERCEL": "1"}, "production"),
    ({"VERCEL": "1", "BANKAPP_ENV": "development"}, "development"),
])
def test_environment_variable_chooses_the_config(monkeypatch, environment, expected):
    from config import config_from_environment

    for name in ("BANKAPP_ENV", "FLASK_ENV", "VERCEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert config_from_environment().ENV_NAME == expected


def test_unknown_environment_name_refuses_to_start(monkeypatch):
    from config import config_from_environment

    monkeypatch.setenv("BANKAPP_ENV", "staging")
    with pytest.raises(SystemExit) as stopped:
        config_from_environment()
    assert "staging" in stopped.value.code


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "UTC+1"])
def test_an_unknown_bank_timezone_refuses_to_start(zone):
    with pytest.raises(SystemExit) as stopped:
        create_app(type("ZoneConfig", (TestingConfig,), {"BANK_TIMEZONE": zone}))
    assert "BANK_TIMEZONE" in stopped.value.code and zone in stopped.value.code


def test_bank_timezone_defaults_to_utc_when_empty():
    app = create_app(type("ZoneConfig", (TestingConfig,), {"BANK_TIMEZONE": ""}))
    assert app.config["BANK_TIMEZONE"] == "UTC"


# ---------------------------------------------------------------- pooled connections


def _pooled_connection_killed() -> None:
    """Use a pooled connection, give it back, then terminate its server process from another
    connection (as a restart or a firewall's idle cut would)."""
    with db.engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with psycopg2.connect(os.environ["TEST_DATABASE_URL"]) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(app, monkeypatch):
    monkeypatch.setattr(pooling, "PING_AFTER_IDLE_SECONDS", 0.0)  # any pause counts as idle
    with app.app_context():
        _pooled_connection_killed()
        with db.engine.connect() as connection:  # the same pooled connection, pinged: replaced
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_a_connection_reused_at_once_is_not_pinged(app, monkeypatch):
    """The price of the idle rule, shown: a connection that died the moment it was checked
    in fails its next statement (as a busy one would), and the pool then starts afresh."""
    monkeypatch.setattr(pooling, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with app.app_context():
        _pooled_connection_killed()
        with pytest.raises(sa.exc.OperationalError), db.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1


@pytest.mark.parametrize("steps", [-1, 2, 10])
def test_totp_drift_beyond_one_step_refuses_to_start(steps):
    with pytest.raises(SystemExit) as stopped:
        create_app(type("DriftConfig", (TestingConfig,), {"TOTP_DRIFT_STEPS": steps}))
    assert "TOTP_DRIFT_STEPS" in stopped.value.code

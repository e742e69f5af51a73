"""The `flask` commands deployers use: users, roles, demo data and `flask check`."""
from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from flask_migrate import upgrade

from bankapp import create_app
from bankapp.cli.checks import postgres_too_old
from bankapp.extensions import db
from bankapp.models import Role, User
from bankapp.identity.security import check_password
from config import ProductionConfig, TestingConfig
from support.database import POSTGRES
from support.mail_sink import running_mail_sink
from support.settings import FIELD_ENCRYPTION_KEY
from support.tls import self_signed_certificate
from support.users import TEST_PASSWORD

STRONG_PASSWORD = "correct-horse-battery-staple"


def _user(email: str) -> User | None:
    return db.session.scalar(db.select(User).where(User.email == email))


def _create(runner, *args):
    return runner.invoke(args=["create-user", *args])


# ---------------------------------------------------------------- create-user


@pytest.mark.parametrize("role", [Role.TELLER, Role.ADMIN])
def test_create_user_makes_a_verified_active_staff_member(runner, role):
    result = _create(runner, "--email", "Staff@Example.COM", "--role", role,
                     "--password", STRONG_PASSWORD, "--first-name", "Sam")
    assert result.exit_code == 0, result.output
    user = _user("staff@example.com")
    assert (user.role, user.is_verified, user.is_active, user.first_name) == (role, True, True, "Sam")
    assert user.password_hash.startswith("$argon2id$")
    assert check_password(user, STRONG_PASSWORD)


def test_create_user_prompts_for_a_hidden_confirmed_password(runner):
    result = runner.invoke(
        args=["create-user", "--email", "prompted@example.com", "--role", "teller"],
        input=f"{STRONG_PASSWORD}\n{STRONG_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert STRONG_PASSWORD not in result.output  # hidden input is not echoed
    assert check_password(_user("prompted@example.com"), STRONG_PASSWORD)


def test_create_user_stores_the_phone_number_in_e164(runner):
    result = _create(runner, "--email", "phone@example.com", "--password", STRONG_PASSWORD,
                     "--phone", "+44 20 7183 8750")
    assert result.exit_code == 0, result.output
    assert _user("phone@example.com").phone_number == "+442071838750"


def test_create_user_refuses_a_duplicate_email_in_any_case(runner, make_user):
    make_user(email="taken@example.com")
    result = _create(runner, "--email", "TAKEN@example.com", "--role", "admin",
                     "--password", STRONG_PASSWORD)
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


@pytest.mark.parametrize("args, message", [
    (["--email", "new@example.com", "--password", "short-pass"], "Use at least 12 characters"),
    (["--email", "new@example.com", "--password", "123456789012345"], "cannot be only digits"),
    (["--email", "new@example.com", "--password", "passwordpassword"], "weak password"),
    (["--email", "not-an-email", "--password", STRONG_PASSWORD], "invalid email"),
    (["--email", "new@example.com", "--password", STRONG_PASSWORD, "--phone", "12345"],
     "invalid phone number"),
    (["--email", "new@example.com", "--password", STRONG_PASSWORD, "--role", "king"],
     "Invalid value for '--role'"),
])
def test_create_user_refuses_bad_input(runner, args, message):
    result = _create(runner, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_the_seed_test_password_is_accepted(runner):
    result = _create(runner, "--email", "seed@example.com", "--password", TEST_PASSWORD)
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- set-role and verify-user


def test_set_role_changes_the_role_and_ends_old_sessions(runner, make_user):
    user = make_user(email="promote@example.com")
    old_session_token = user.session_token
    result = runner.invoke(args=["set-role", "promote@example.com", "teller"])
    assert result.exit_code == 0, result.output
    db.session.refresh(user)
    assert user.role == Role.TELLER
    assert user.session_token != old_session_token


@pytest.mark.parametrize("email, role, message", [
    ("nobody@example.com", "teller", "no user with email"),
    ("promote@example.com", "king", "unknown role"),
])
def test_set_role_refuses_unknown_user_or_role(runner, make_user, email, role, message):
    user = make_user(email="promote@example.com")
    result = runner.invoke(args=["set-role", email, role])
    assert result.exit_code != 0
    assert message in result.output
    db.session.refresh(user)
    assert user.role == Role.CUSTOMER


def test_verify_user_lets_an_unverified_user_log_in(runner, make_user):
    user = make_user(email="late@example.com", verified=False)
    result = runner.invoke(args=["verify-user", "late@example.com"])
    assert result.exit_code == 0, result.output
    db.session.refresh(user)
    assert user.is_verified


# ---------------------------------------------------------------- seed-demo


def test_seed_demo_creates_a_verified_customer_teller_and_admin(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    roles = {email: _user(email).role for email in
             ("customer@example.com", "teller@example.com", "admin@example.com")}
    assert roles == {"customer@example.com": "customer", "teller@example.com": "teller",
                     "admin@example.com": "admin"}
    assert all(_user(email).is_verified for email in roles)
    assert "demo-customer-password" in result.output


def test_seed_demo_passwords_printed_are_the_real_ones(runner):
    from bankapp.cli.demo import DEMO_USERS

    runner.invoke(args=["seed-demo"])
    for spec in DEMO_USERS:
        assert check_password(_user(spec["email"]), spec["password"])


def test_seed_demo_if_empty_does_nothing_the_second_time(runner):
    assert runner.invoke(args=["seed-demo", "--if-empty"]).exit_code == 0
    second = runner.invoke(args=["seed-demo", "--if-empty"])
    assert second.exit_code == 0
    assert "no demo data added" in second.output
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 3


def test_seed_demo_if_empty_leaves_a_database_with_real_users_alone(runner, make_user):
    make_user(email="real@example.com")
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0
    assert _user("customer@example.com") is None


def test_seed_demo_twice_without_if_empty_is_refused(runner):
    runner.invoke(args=["seed-demo"])
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "already exist" in result.output


def test_seed_demo_refuses_in_production(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-key-that-is-long-enough")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'production.db'}")
    monkeypatch.setattr(ProductionConfig, "SQLITE_ALLOWED", True)  # production's other rules
    monkeypatch.setenv("PUBLIC_URL", "https://bank.example")
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app(ProductionConfig)
    with app.app_context():
        db.create_all()
        result = app.test_cli_runner().invoke(args=["seed-demo"])
        assert result.exit_code != 0
        assert "refuses to run in production" in result.output
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0
        db.engine.dispose()


# ---------------------------------------------------------------- flask check


@pytest.fixture
def file_app(tmp_path):
    """Build an app on a SQLite file (migrated unless told not to) with config overrides."""
    apps = []

    def build(migrated: bool = True, **overrides):
        settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'check.db'}", **overrides}
        application = create_app(type("CheckConfig", (TestingConfig,), settings))
        if migrated:
            with application.app_context():
                upgrade()
        apps.append(application)
        return application

    yield build
    for application in apps:
        with application.app_context():
            db.engine.dispose()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_passes_on_a_migrated_database(file_app):
    result = file_app().test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    assert "OK    database" in result.output
    assert "OK    migrations" in result.output
    assert "FAIL" not in result.output


def test_check_fails_when_migrations_are_not_applied(file_app):
    result = file_app(migrated=False).test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  migrations" in result.output
    assert "flask db upgrade" in result.output


def test_check_fails_when_the_database_is_unreachable(file_app):
    app = file_app(migrated=False,
                   SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://nobody@127.0.0.1:1/x")
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  database" in result.output
    assert "DATABASE_URL" in result.output


def test_check_fails_when_smtp_is_configured_to_a_closed_port(file_app):
    app = file_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=_closed_port(), MAIL_USE_TLS=False)
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  smtp" in result.output
    assert "MAIL_SERVER" in result.output


def test_check_fails_when_the_smtp_servers_certificate_is_not_trusted(file_app, tmp_path):
    with running_mail_sink(certificate=self_signed_certificate(tmp_path)) as server:
        app = file_app(MAIL_SERVER=server.host, MAIL_PORT=server.port, MAIL_USE_TLS=True)
        result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  smtp" in result.output
    assert "CERTIFICATE_VERIFY_FAILED" in result.output
    assert "MAIL_CA_FILE" in result.output


def test_check_fails_when_redis_is_unreachable(file_app):
    app = file_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_closed_port()}/0")
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  redis" in result.output


def test_check_user_explains_why_an_unverified_user_cannot_log_in(file_app):
    app = file_app()
    with app.app_context():
        db.session.add(User(email="unverified@example.com", password_hash="x",
                            is_verified=False))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["check", "--user", "unverified@example.com"])
    assert result.exit_code == 1
    assert "FAIL  user" in result.output
    assert "flask verify-user unverified@example.com" in result.output


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_check_names_the_postgresql_version(database_url):
    app = create_app(type("PostgresConfig", (TestingConfig,),
                          {"SQLALCHEMY_DATABASE_URI": database_url}))
    result = app.test_cli_runner().invoke(args=["check"])
    assert re.search(r"OK  +database: connected to .*, PostgreSQL 1[4-9]", result.output), \
        result.output


def test_check_refuses_a_postgresql_older_than_14():
    assert "PostgreSQL 13.11 is too old: bankapp needs 14 or newer" in postgres_too_old((13, 11))
    assert postgres_too_old((14, 0)) is None


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_check_reports_whether_ssl_is_in_use_when_the_url_asks(database_url):
    app = create_app(type("SSLConfig", (TestingConfig,),
                          {"SQLALCHEMY_DATABASE_URI": f"{database_url}?sslmode=prefer"}))
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    assert "sslmode=prefer, SSL" in result.output


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_check_fails_with_an_ssl_hint_when_required_ssl_is_unavailable(database_url):
    import sqlalchemy as sa

    probe = sa.create_engine(database_url)
    with probe.connect() as connection:
        server_has_ssl = connection.execute(sa.text("SHOW ssl")).scalar() == "on"
    probe.dispose()
    if server_has_ssl:
        pytest.skip("this PostgreSQL server offers SSL, so sslmode=require succeeds")
    app = create_app(type("SSLConfig", (TestingConfig,),
                          {"SQLALCHEMY_DATABASE_URI": f"{database_url}?sslmode=require"}))
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  database" in result.output
    assert "sslmode" in result.output


def test_check_fails_in_production_with_the_development_secret_key(monkeypatch, tmp_path):
    from config import DEV_SECRET_KEY

    monkeypatch.setenv("SECRET_KEY", DEV_SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'production.db'}")
    monkeypatch.setattr(ProductionConfig, "SQLITE_ALLOWED", True)  # production's other rules
    monkeypatch.setenv("PUBLIC_URL", "https://bank.example")
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MAIL_SERVER", raising=False)
    app = create_app(ProductionConfig)
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  secret key" in result.output
    assert "secrets.token_hex" in result.output


# ---------------------------------------------------------------- reconcile and demo history


def test_reconcile_exits_0_with_a_summary_on_a_clean_book(runner, customer, funded_account):
    funded_account(customer, "25.00")
    result = runner.invoke(args=["reconcile"])
    assert result.exit_code == 0, result.output
    assert "ledger clean" in result.output and "customer balances 25.00" in result.output


def test_reconcile_exits_1_listing_each_mismatch(runner, customer, funded_account):
    import sqlalchemy as sa

    from bankapp.models import Account

    account = funded_account(customer, "25.00")
    db.session.execute(sa.update(Account).where(Account.id == account.id).values(balance=1))
    db.session.commit()
    result = runner.invoke(args=["reconcile"])
    assert result.exit_code == 1
    assert f"MISMATCH account {account.account_number}" in result.output
    assert "book out of balance" in result.output


def test_seed_demo_gives_the_customer_two_accounts_with_months_of_history(runner):
    import sqlalchemy as sa

    from bankapp import ledger
    from bankapp.models import Account, Transaction, User

    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    customer = db.session.scalar(sa.select(User).where(User.email == "customer@example.com"))
    accounts = db.session.scalars(sa.select(Account).where(Account.owner_id == customer.id)).all()
    assert sorted(a.account_type for a in accounts) == ["CHECKING", "SAVINGS"]
    first, last = db.session.execute(
        sa.select(sa.func.min(Transaction.timestamp), sa.func.max(Transaction.timestamp))
    ).one()
    assert (last - first).days >= 90
    assert ledger.reconcile().clean


# ---------------------------------------------------------------- prune-idempotency-keys


def _stored_answer(user, key: str, days_old: int) -> None:
    from datetime import timedelta

    from bankapp.models import ApiIdempotencyKey, now_utc

    moment = now_utc() - timedelta(days=days_old)
    db.session.add(ApiIdempotencyKey(
        user_id=user.id, key=key, operation="deposit", request_fingerprint="f" * 64,
        response_status=422, response_body={"status": 422}, created_at=moment,
        completed_at=moment))
    db.session.commit()


def _stored_keys() -> list[str]:
    from bankapp.models import ApiIdempotencyKey

    return sorted(db.session.scalars(db.select(ApiIdempotencyKey.key)))


def test_prune_idempotency_keys_deletes_answers_past_the_window_and_prints_the_count(
        runner, customer):
    for key, days in [("a", 8), ("b", 100), ("c", 6)]:
        _stored_answer(customer, key, days)
    result = runner.invoke(args=["prune-idempotency-keys", "--older-than-days", "7"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 idempotency records older than 7 days." in result.output
    assert _stored_keys() == ["c"]


def test_prune_idempotency_keys_defaults_to_the_configured_retention(app, runner, customer):
    assert app.config["API_IDEMPOTENCY_RETENTION_DAYS"] == 30
    app.config["API_IDEMPOTENCY_RETENTION_DAYS"] = 10
    for key, days in [("a", 11), ("b", 9)]:
        _stored_answer(customer, key, days)
    result = runner.invoke(args=["prune-idempotency-keys"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 idempotency records older than 10 days." in result.output
    assert _stored_keys() == ["b"]


@pytest.mark.parametrize("args, configured", [
    (["--older-than-days", "0"], 30),
    (["--older-than-days=-1"], 30),
    ([], 0),
])
def test_prune_idempotency_keys_refuses_a_window_under_one_day(app, runner, customer, args,
                                                               configured):
    app.config["API_IDEMPOTENCY_RETENTION_DAYS"] = configured
    _stored_answer(customer, "a", 100)
    result = runner.invoke(args=["prune-idempotency-keys", *args])
    assert result.exit_code != 0
    assert "must be at least 1" in result.output
    assert _stored_keys() == ["a"]


def test_check_says_where_links_point_in_production(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-key-that-is-long-enough")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'production.db'}")
    monkeypatch.setattr(ProductionConfig, "SQLITE_ALLOWED", True)  # production's other rules
    monkeypatch.setenv("PUBLIC_URL", "https://bank.example/")
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)
    monkeypatch.setenv("TRUSTED_HOSTS", "bank-eu.example")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MAIL_SERVER", raising=False)
    app = create_app(ProductionConfig)
    result = app.test_cli_runner().invoke(args=["check"])
    assert ("OK    public url: links are built on https://bank.example; answers only Host "
            "bank.example, bank-eu.example") in result.output


def test_check_fails_in_production_without_a_mail_server(production_env):
    production_env.delenv("MAIL_SERVER", raising=False)
    app = create_app(ProductionConfig)
    app.config["MAIL_SERVER"] = ""
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  smtp: MAIL_SERVER is not set" in result.output


def test_check_fails_when_stored_secrets_do_not_decrypt_with_the_field_key(app, runner,
                                                                           make_user):
    from cryptography.fernet import Fernet

    make_user(role=Role.TELLER)  # staff get an authenticator secret, encrypted
    app.config["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert "FAIL  field key: stored authenticator secrets do not decrypt" in result.output


def test_flask_check_in_production_names_every_missing_setting_at_once(tmp_path):
    import os
    import subprocess
    import sys

    required = ("SECRET_KEY", "DATABASE_URL", "PUBLIC_URL", "FIELD_ENCRYPTION_KEY")
    env = {key: value for key, value in os.environ.items()
           if key not in required and key not in ("FLASK_ENV", "VERCEL")}
    env.update(BANKAPP_ENV="production", FLASK_APP="wsgi")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "flask", "check"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    (line,) = [text for text in result.stderr.splitlines() if "refusing to start" in text]
    assert all(name in line for name in required), line

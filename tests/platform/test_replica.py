"""Reports read from a real streaming replica; postings, balance checks and logins do not.

The harness (``tests/support/pg_services.py``) makes a private primary with ``initdb`` and a
replica of it with ``pg_basebackup -R``, each on a free loopback port. To show which server a
page read, the tests pause the replica's replay (``pg_wal_replay_pause()``): a posting made
meanwhile is on the primary only; the queries the replica's engine ran show what it served.
Runs with ``TEST_REPLICA=1`` (``make test-replica``; CI runs it).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import closing, contextmanager
from decimal import Decimal

import psycopg2
import pytest
from flask import g
from sqlalchemy import event

from bankapp import create_app, ledger
from bankapp.platform import metrics, replica
from bankapp.extensions import db, limiter
from bankapp.models import Role
from support.api import new_key, send
from support.database import SuiteConfig, empty_tables, migrate
from support.users import log_in_as
from support.web import post_form

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_REPLICA"),
                                reason="needs TEST_REPLICA=1 (make test-replica)")

D = Decimal
MARK = "Replica probe"  # the description of postings a page shows or not


@pytest.fixture(scope="module")
def servers():
    from support.pg_services import PrimaryWithReplica

    with PrimaryWithReplica() as pair:
        yield pair


@pytest.fixture(scope="module")
def database(servers):
    name = f"bankapp_replica_{uuid.uuid4().hex[:8]}"
    with closing(psycopg2.connect(servers.primary.url())) as conn:
        conn.autocommit = True
        conn.cursor().execute(f'CREATE DATABASE "{name}"')
    migrate(servers.primary.sqlalchemy_url(name))
    return name


def _sql(url: str, statement: str):
    with closing(psycopg2.connect(url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone() if cur.description else None


def wait_for_replay(servers, timeout: float = 30.0) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    (target,) = _sql(servers.primary.url(), "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (caught_up,) = _sql(servers.replica.url(),
                            f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
        if caught_up:
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up within 30 s")


@contextmanager
def replay_paused(servers):
    """The replica keeps answering, with what it had replayed when this block began."""
    wait_for_replay(servers)
    _sql(servers.replica.url(), "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        _sql(servers.replica.url(), "SELECT pg_wal_replay_resume()")


@contextmanager
def replica_reads():
    """The ledger reads (queries on ``transactions``) the replica's engine runs in the block."""
    seen: list[str] = []

    def keep(conn, cursor, statement, *args):
        if "transactions" in statement:
            seen.append(statement)

    event.listen(replica.engine(), "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(replica.engine(), "before_cursor_execute", keep)


def api_balance(client, account, user) -> str:
    db.session.expire_all()  # a real request starts with a fresh session
    return send(client, "GET", f"/api/v1/accounts/{account.account_number}", user
                ).get_json()["balance"]


def api_history(client, account, user) -> list[str]:
    listed = send(client, "GET", f"/api/v1/accounts/{account.account_number}/transactions",
                  user).get_json()["transactions"]
    return [leg["description"] for leg in listed]


@pytest.fixture
def app(servers, database):
    """The app on the primary, reading reports from the replica (overrides conftest's)."""
    config = type("ReplicaConfig", (SuiteConfig,), {
        "SQLALCHEMY_DATABASE_URI": servers.primary.sqlalchemy_url(database),
        "DATABASE_REPLICA_URL": servers.replica.sqlalchemy_url(database),
    })
    application = create_app(config)
    # As conftest's app: each request starts with an empty ``g`` (no user cached from the
    # previous request of another client).
    application.before_request_funcs.setdefault(None, []).insert(0, lambda: g.__dict__.clear())
    with application.app_context():
        empty_tables()
        limiter.reset()
        wait_for_replay(servers)
        yield application
        db.session.remove()
        db.engine.dispose()
        replica.engine().dispose()


@pytest.fixture
def teller(make_user):
    return make_user(email="teller@example.com", role=Role.TELLER)


def deposit_behind_the_customers_back(account, teller, amount: str = "123.45"):
    """A teller's counter deposit: a write the customer did not make."""
    ledger.deposit(account, D(amount), MARK, teller)


def statement_page(client, account) -> str:
    return client.get(f"/reports/statement/{account.account_number}/?preset=this-month"
                      ).get_data(as_text=True)


def test_a_statement_reads_from_the_replica(app, servers, customer_client, customer,
                                            funded_account):
    account = funded_account(customer, "100.00")
    wait_for_replay(servers)
    with replica_reads() as reads:
        assert "Opening deposit" in statement_page(customer_client, account)
    assert reads


def test_the_monthly_summary_reads_from_the_replica(app, servers, customer_client, customer,
                                                    funded_account):
    funded_account(customer, "100.00")
    wait_for_replay(servers)
    with replica_reads() as reads:
        page = customer_client.get("/reports/summary/?account=all").get_data(as_text=True)
    assert "100.00" in page and reads


def test_a_statement_shows_a_deposit_the_replica_has_not_replayed(
        app, servers, customer_client, customer, funded_account, teller):
    account = funded_account(customer, "100.00")
    with replay_paused(servers):
        deposit_behind_the_customers_back(account, teller)
        with replica_reads() as reads:
            assert MARK in statement_page(customer_client, account)
    assert reads == []  # the primary served it


def test_the_bank_report_reads_from_the_replica(app, servers, client, customer, funded_account,
                                                teller, make_user):
    account = funded_account(customer, "100.00")
    staff = make_user(email="admin@example.com", role=Role.ADMIN)
    log_in_as(client, staff)
    with replay_paused(servers):
        deposit_behind_the_customers_back(account, teller, "4444.44")
        assert "4,444.44" not in client.get("/reports/bank/").get_data(as_text=True)
    wait_for_replay(servers)
    assert "4,444.44" in client.get("/reports/bank/").get_data(as_text=True)


def test_a_tellers_own_deposit_shows_in_the_bank_report_while_the_replica_lags(
        app, servers, client, customer, funded_account, make_user):
    account = funded_account(customer, "100.00")
    staff = make_user(email="admin@example.com", role=Role.ADMIN)
    log_in_as(client, staff)
    with replay_paused(servers):
        response = post_form(client, f"/teller/accounts/{account.account_number}/deposit/",
                             {"amount": "4444.44", "description": MARK})
        assert response.status_code == 303
        assert "4,444.44" in client.get("/reports/bank/").get_data(as_text=True)


def test_a_customer_sees_their_own_posting_at_once_while_the_replica_lags(
        app, servers, customer_client, customer, funded_account):
    account = funded_account(customer, "100.00")
    with replay_paused(servers):
        response = post_form(customer_client, f"/accounts/{account.account_number}/deposit/",
                             {"amount": "55.55", "description": MARK})
        assert response.status_code == 302
        assert MARK in statement_page(customer_client, account)


def test_the_customers_own_posting_stays_visible_after_the_window_while_the_replica_lags(
        app, servers, customer_client, customer, funded_account):
    app.config["READ_YOUR_WRITES_SECONDS"] = 1
    account = funded_account(customer, "100.00")
    with replay_paused(servers):
        post_form(customer_client, f"/accounts/{account.account_number}/deposit/",
                  {"amount": "55.55", "description": MARK})
        assert MARK in statement_page(customer_client, account)
        time.sleep(1.5)
        assert MARK in statement_page(customer_client, account)


def test_another_users_posting_does_not_send_this_customer_to_the_primary(
        app, servers, customer_client, customer, funded_account, make_user):
    account = funded_account(customer, "100.00")
    other = make_user(email="bob@example.com")
    other_account = funded_account(other, "10.00")
    other_client = app.test_client()
    log_in_as(other_client, other)
    with replay_paused(servers):
        response = post_form(other_client, f"/accounts/{other_account.account_number}/deposit/",
                             {"amount": "1.00", "description": "Bob's"})
        assert response.status_code == 302
        with replica_reads() as reads:
            page = statement_page(customer_client, account)
        assert "Opening deposit" in page
    assert reads


def test_a_recipients_history_shows_the_transfer_its_balance_shows_while_the_replica_lags(
        app, client, servers, customer, funded_account, make_user):
    account = funded_account(customer, "100.00")
    sender = make_user(email="bob@example.com")
    source = funded_account(sender, "500.00")
    with replay_paused(servers):
        sent = send(client, "POST", "/api/v1/transfers", sender,
                    {"from_account": source.account_number,
                     "to_account": account.account_number, "amount": "25.00",
                     "description": MARK}, key=new_key())
        assert sent.status_code == 201
        assert api_balance(client, account, customer) == "125.00"
        assert api_history(client, account, customer) == [MARK, "Opening deposit"]


def test_the_api_transaction_list_reads_from_the_replica_once_it_caught_up(
        app, client, servers, customer, funded_account, teller):
    account = funded_account(customer, "100.00")
    with replay_paused(servers):
        deposit_behind_the_customers_back(account, teller)
        assert api_history(client, account, customer) == [MARK, "Opening deposit"]
    wait_for_replay(servers)
    with replica_reads() as reads:
        assert api_history(client, account, customer) == [MARK, "Opening deposit"]
    assert reads


def test_a_read_the_primary_serves_for_a_lagging_replica_is_counted_with_the_lag(
        app, servers, customer_client, customer, funded_account, teller):
    account = funded_account(customer, "100.00")
    behind = metrics.REPLICA_FALLBACKS.labels("behind")
    with replay_paused(servers):
        deposit_behind_the_customers_back(account, teller)
        before = behind._value.get()
        statement_page(customer_client, account)
        assert behind._value.get() == before + 1
        assert metrics.REPLICA_LAG_BYTES._value.get() > 0


def test_a_withdrawal_is_checked_against_the_primary_balance_while_the_replica_lags(
        app, servers, customer_client, customer, funded_account, teller):
    account = funded_account(customer, "100.00")
    with replay_paused(servers):
        deposit_behind_the_customers_back(account, teller, "100.00")
        response = post_form(customer_client, f"/accounts/{account.account_number}/withdraw/",
                             {"amount": "150.00", "description": "Rent"})
        assert response.status_code == 302
    db.session.refresh(account)
    assert account.balance == D("50.00")


def test_pages_fall_back_to_the_primary_when_the_replica_is_down(
        app, servers, customer_client, customer, funded_account, teller, caplog):
    account = funded_account(customer, "100.00")
    deposit_behind_the_customers_back(account, teller)
    servers.replica.stop("immediate")
    try:
        with caplog.at_level(logging.WARNING, logger="bankapp.replica"):
            statement = customer_client.get(
                f"/reports/statement/{account.account_number}/?preset=this-month")
            summary = customer_client.get("/reports/summary/?account=all")
            listed = send(customer_client, "GET",
                          f"/api/v1/accounts/{account.account_number}/transactions", customer)
        assert statement.status_code == 200 and MARK in statement.get_data(as_text=True)
        assert summary.status_code == 200 and "223.45" in summary.get_data(as_text=True)
        assert listed.status_code == 200
        assert [leg["description"] for leg in listed.get_json()["transactions"]] == \
            [MARK, "Opening deposit"]
        warnings = [r for r in caplog.records if "read replica unavailable" in r.getMessage()]
        assert len(warnings) == 1  # then the replica is left alone for a while
    finally:
        servers.replica.start()

"""/metrics: Prometheus' text format behind a bearer token, and what moves each counter."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bankapp import create_app, ledger
from bankapp.notifications import outbox
from bankapp.platform import metrics
from bankapp.extensions import db
from bankapp.models import now_utc
from config import ProductionConfig
from support.backoffice import admin, stocked_till, teller  # noqa: F401  (fixtures)
from support.users import TEST_PASSWORD, enrol_totp
from support.web import post_form

TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def scraper(app, client):
    """``scrape()``: the metrics /metrics shows now, as {(sample name, labels): value}."""
    app.config["METRICS_TOKEN"] = TOKEN

    def scrape() -> dict:
        response = client.get("/metrics", headers=AUTH)
        assert response.status_code == 200
        return {(sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(response.get_data(as_text=True))
                for sample in family.samples}

    return scrape


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(scrape, action, name: str, **labels) -> float:
    """How much ``action()`` moved one sample."""
    before = value(scrape(), name, **labels)
    action()
    return value(scrape(), name, **labels) - before


# ---------------------------------------------------------------- access


def test_metrics_does_not_exist_without_a_token(app, client):
    app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics", headers=AUTH).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", TOKEN, f"Basic {TOKEN}",
                                           f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer é"])
def test_metrics_refuses_a_missing_or_wrong_token(app, client, authorization):
    app.config["METRICS_TOKEN"] = TOKEN
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"bankapp_" not in response.data


def test_metrics_answers_prometheus_text_with_bankapp_names_only(app, client, scraper):
    client.get("/accounts/login/")
    response = client.get("/metrics", headers=AUTH)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "Set-Cookie" not in response.headers
    names = [family.name for family in
             text_string_to_metric_families(response.get_data(as_text=True))]
    assert names and all(name.startswith("bankapp_") for name in names)


def test_metrics_is_answered_by_ip_over_plain_http_in_production(production_env):
    # Prometheus scrapes each instance by its address: no host check, no HTTPS redirect.
    production_env.setenv("METRICS_TOKEN", TOKEN)
    client = create_app(ProductionConfig).test_client()
    assert client.get("/metrics", base_url="http://10.0.0.7", headers=AUTH).status_code == 200
    assert client.get("/metrics", base_url="http://10.0.0.7").status_code == 401


def test_production_refuses_a_short_metrics_token(production_env):
    production_env.setenv("METRICS_TOKEN", "short")
    with pytest.raises(SystemExit, match="METRICS_TOKEN"):
        create_app(ProductionConfig)


# ---------------------------------------------------------------- requests


def test_a_request_is_counted_by_endpoint_and_status_with_its_latency(client, scraper):
    labels = {"endpoint": "auth.login", "method": "GET", "status": "200"}
    assert moved(scraper, lambda: client.get("/accounts/login/"),
                 "bankapp_http_requests_total", **labels) == 1
    assert moved(scraper, lambda: client.get("/accounts/login/"),
                 "bankapp_http_request_duration_seconds_count", endpoint="auth.login") == 1


def test_an_unknown_path_is_counted_as_unmatched_not_by_its_path(client, scraper):
    assert moved(scraper, lambda: client.get("/no/such/ACC-123456789/"),
                 "bankapp_http_requests_total", endpoint="unmatched", method="GET",
                 status="404") == 1


def test_an_invented_method_is_counted_as_other(client, scraper):
    assert moved(scraper, lambda: client.open("/accounts/login/", method="BREW"),
                 "bankapp_http_requests_total", endpoint="unmatched", method="OTHER",
                 status="405") == 1


# ---------------------------------------------------------------- postings


def test_a_posting_counts_as_posted(scraper, customer, funded_account):
    account = funded_account(customer)
    assert moved(scraper, lambda: ledger.deposit(account, Decimal("10.00"), "cash", customer,
                                                 idempotency_key="k-posted"),
                 "bankapp_postings_total", type="DEPOSIT", outcome="posted", reason="") == 1


def test_a_replayed_key_counts_as_replayed_not_posted(scraper, customer, funded_account):
    account = funded_account(customer)
    ledger.deposit(account, Decimal("10.00"), "cash", customer, idempotency_key="k-replay")

    def replay():
        assert ledger.deposit(account, Decimal("10.00"), "cash", customer,
                              idempotency_key="k-replay").replayed

    before = scraper()
    replay()
    after = scraper()
    labels = {"type": "DEPOSIT", "reason": ""}
    assert value(after, "bankapp_postings_total", outcome="replayed", **labels) - value(
        before, "bankapp_postings_total", outcome="replayed", **labels) == 1
    assert value(after, "bankapp_postings_total", outcome="posted", **labels) == value(
        before, "bankapp_postings_total", outcome="posted", **labels)


def test_a_refusal_counts_with_its_reason(scraper, customer, funded_account):
    account = funded_account(customer, "5.00")

    def overdraw():
        with pytest.raises(ledger.InsufficientFunds):
            ledger.withdraw(account, Decimal("6.00"), "cash", customer)

    assert moved(scraper, overdraw, "bankapp_postings_total", type="WITHDRAWAL",
                 outcome="refused", reason="insufficient_funds") == 1


def test_a_refused_transfer_to_a_frozen_account_counts_its_reason(scraper, customer,
                                                                  funded_account, make_user):
    source = funded_account(customer, "50.00")
    frozen = funded_account(make_user())
    ledger.freeze_account(frozen, "Suspected fraud", make_user(role="teller"))

    def transfer():
        with pytest.raises(ledger.AccountNotActive):
            ledger.transfer(source, frozen, Decimal("1.00"), "rent", customer)

    assert moved(scraper, transfer, "bankapp_postings_total", type="TRANSFER",
                 outcome="refused", reason="account_not_active") == 1


def test_closing_a_shift_counts_once(scraper, stocked_till, teller):
    assert moved(scraper, lambda: ledger.close_shift(stocked_till, Decimal("990.00"), teller),
                 "bankapp_postings_total", type="SHIFT_CLOSE", outcome="posted",
                 reason="") == 1


# ---------------------------------------------------------------- sign-in failures


def test_a_wrong_password_counts_as_a_login_failure(client, scraper, customer):
    def wrong_password():
        post_form(client, "/accounts/login/", {"email": customer.email, "password": "nope" * 4})

    assert moved(scraper, wrong_password, "bankapp_login_failures_total",
                 reason="bad_credentials") == 1


def test_a_wrong_password_on_the_api_counts_as_a_sign_in_failure(client, scraper, customer):
    def wrong_password():
        client.post("/api/v1/token", json={"email": customer.email, "password": "nope" * 4})

    assert moved(scraper, wrong_password, "bankapp_login_failures_total",
                 reason="bad_credentials") == 1


def test_a_wrong_second_factor_code_counts_as_a_second_factor_failure(client, scraper,
                                                                      customer):
    enrol_totp(customer)
    post_form(client, "/accounts/login/", {"email": customer.email, "password": TEST_PASSWORD})
    assert moved(scraper, lambda: post_form(client, "/accounts/login/2fa/", {"code": "000000"}),
                 "bankapp_second_factor_failures_total", factor="code") == 1


# ---------------------------------------------------------------- pool and messages


def test_the_pool_gauge_follows_checked_out_connections(scraper):
    # The gauge alone: the outbox's and the jobs' readers borrow a connection at each scrape.
    metrics.register_outbox_reader(None)
    metrics.register_jobs_reader(None)
    name = "bankapp_db_pool_checked_out_connections"
    before = value(scraper(), name)
    connection = db.engine.connect()
    try:
        assert value(scraper(), name) == before + 1
    finally:
        connection.close()
    assert value(scraper(), name) == before


def test_the_outbox_reports_its_pending_mail_and_the_age_of_the_oldest(app, scraper):
    # Queued and committed outside a request: nothing delivers it, so it stays pending.
    message = outbox.queue_email("waiting@example.com", "Waiting", "body")
    message.created_at = now_utc() - timedelta(minutes=5)
    db.session.commit()
    db.session.info.clear()
    samples = scraper()
    assert value(samples, "bankapp_outbox_pending_messages") == 1
    assert 300 <= value(samples, "bankapp_outbox_oldest_pending_age_seconds") < 600


def test_outbox_metrics_are_absent_without_a_reader(scraper):
    metrics.register_outbox_reader(None)
    assert ("bankapp_outbox_pending_messages", frozenset()) not in scraper()


def test_outbox_metrics_show_what_the_reader_returns(scraper):
    metrics.register_outbox_reader(lambda: (3, 42.5))
    try:
        samples = scraper()
    finally:
        metrics.register_outbox_reader(None)
    assert value(samples, "bankapp_outbox_pending_messages") == 3
    assert value(samples, "bankapp_outbox_oldest_pending_age_seconds") == 42.5


def test_a_failing_outbox_reader_leaves_the_rest_of_the_scrape(scraper):
    def broken():
        raise RuntimeError("no outbox table")

    metrics.register_outbox_reader(broken)
    try:
        samples = scraper()
    finally:
        metrics.register_outbox_reader(None)
    assert ("bankapp_outbox_pending_messages", frozenset()) not in samples
    assert any(name == "bankapp_db_pool_checked_out_connections" for name, _ in samples)


# ---------------------------------------------------------------- counters at 0, jobs, alerts


@pytest.mark.parametrize("name, labels", [
    ("bankapp_mail_messages_total", {"outcome": "dead"}),
    ("bankapp_mail_messages_total", {"outcome": "failed"}),
    ("bankapp_mail_messages_total", {"outcome": "sent"}),
    ("bankapp_postings_total", {"type": "TRANSFER", "outcome": "posted", "reason": ""}),
    ("bankapp_postings_total", {"type": "INTEREST", "outcome": "posted", "reason": ""}),
    ("bankapp_login_failures_total", {"reason": "bad_credentials"}),
    ("bankapp_second_factor_failures_total", {"factor": "code"}),
    ("bankapp_job_runs_total", {"job": "reconcile", "outcome": "failed"}),
])
def test_labelled_counters_are_exported_before_their_first_event(scraper, name, labels):
    assert (name, frozenset(labels.items())) in scraper()


def test_a_dead_message_is_counted(app, scraper, smtp_down):
    app.config["MAIL_MAX_ATTEMPTS"] = 1

    def queue_and_fail():
        outbox.queue_email("alice@example.com", "Hello", "Body")
        db.session.commit()
        outbox.deliver()

    assert moved(scraper, queue_and_fail, "bankapp_mail_messages_total", outcome="dead") == 1


def test_each_jobs_last_success_is_exported_and_a_job_never_run_is_late(runner, scraper):
    assert runner.invoke(args=["reconcile"]).exit_code == 0
    samples = scraper()
    last = value(samples, "bankapp_job_last_success_timestamp_seconds", job="reconcile")
    assert abs(last - now_utc().timestamp()) < 60
    assert value(samples, "bankapp_job_late", job="reconcile") == 0
    assert value(samples, "bankapp_job_last_success_timestamp_seconds", job="prune-sessions") == 0
    assert value(samples, "bankapp_job_late", job="prune-sessions") == 1


def test_the_last_reconciliation_outcome_is_exported(runner, scraper):
    runner.invoke(args=["reconcile"])
    assert ("bankapp_reconcile_problems", frozenset()) in scraper()
    assert value(scraper(), "bankapp_reconcile_problems") == 0


def test_build_info_is_exported(scraper):
    [labels] = [dict(key) for name, key in scraper() if name == "bankapp_build_info"]
    assert {"version", "commit", "python"} <= set(labels)


def test_every_metric_the_alert_rules_name_is_exported(scraper, runner):
    import re
    from pathlib import Path

    import yaml

    runner.invoke(args=["reconcile"])  # a job run: every job metric is there
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
                            / "alerts.yml").read_text())
    named = {name for group in rules["groups"] for rule in group["rules"]
             for name in re.findall(r"\bbankapp_[a-z0-9_]+", rule["expr"])}
    exported = {name for name, _ in scraper()}
    assert named and not named - exported, f"not exported: {sorted(named - exported)}"
    assert all(rule["annotations"]["runbook"].startswith("docs/operations.md#")
               for group in rules["groups"] for rule in group["rules"])

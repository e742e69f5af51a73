"""The periodic jobs: one list, each a flask command and a cron route, each run recorded with
its counts, a failure exits non-zero, and a job that stops running is noticed."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bankapp import schedule
from bankapp.extensions import db
from bankapp.models import JobOutcome, JobRun, KnownBrowser, Role, UserSession, now_utc
from bankapp.notifications import outbox
from support.backoffice import admin, admin_client  # noqa: F401
from support.users import log_in_as

CRON_SECRET = "a-cron-secret-of-32-characters-x"
EXPECTED_JOBS = {"deliver-mail", "run-scheduled", "run-loans", "post-interest",
                 "prune-idempotency-keys", "prune-sessions", "fold-ledger-totals", "count-balances",
                 "reconcile"}


def runs(job: str | None = None) -> list[JobRun]:
    db.session.expire_all()
    query = sa.select(JobRun).order_by(JobRun.id)
    if job:
        query = query.where(JobRun.job == job)
    return list(db.session.scalars(query))


def test_the_list_holds_every_periodic_job():
    assert {job.name for job in schedule.JOBS} == EXPECTED_JOBS


@pytest.mark.parametrize("name", sorted(EXPECTED_JOBS))
def test_every_job_is_a_flask_command(runner, name):
    result = runner.invoke(args=[name, "--help"])
    assert result.exit_code == 0, result.output


def test_a_run_is_recorded_with_its_start_end_outcome_and_counts(runner, customer):
    result = runner.invoke(args=["reconcile"])
    assert result.exit_code == 0, result.output
    [run] = runs("reconcile")
    assert run.outcome == JobOutcome.SUCCEEDED and run.trigger == "cli"
    assert run.started_at <= run.finished_at
    assert run.counts["problems"] == 0 and "accounts" in run.counts


def test_a_failing_job_exits_1_and_its_run_says_why(smtp_down, runner):
    outbox.queue_email("alice@example.com", "Hello", "Body")
    db.session.commit()
    result = runner.invoke(args=["deliver-mail", "--once"])
    assert result.exit_code == 1
    [run] = runs("deliver-mail")
    assert run.outcome == JobOutcome.FAILED and run.error == "1 failed, 0 dead"
    assert run.counts == {"sent": 0, "failed": 1, "dead": 0}


def test_run_jobs_due_runs_every_job_once_then_waits_for_their_interval(runner):
    first = runner.invoke(args=["run-jobs", "--due"])
    assert first.exit_code == 0, first.output
    assert {run.job for run in runs()} == EXPECTED_JOBS
    runner.invoke(args=["run-jobs", "--due"])
    assert len(runs()) == len(EXPECTED_JOBS)


def test_prune_sessions_deletes_old_sessions_and_forgotten_browsers(app, runner, customer):
    old = now_utc() - timedelta(days=app.config["SESSION_RETENTION_DAYS"] + 1)
    forgotten = now_utc() - timedelta(days=app.config["KNOWN_BROWSER_RETENTION_DAYS"] + 1)
    db.session.add_all([
        UserSession(user_id=customer.id, key_hash="a" * 64, created_at=old, last_seen_at=old,
                    ended_at=old),
        UserSession(user_id=customer.id, key_hash="b" * 64),
        KnownBrowser(user_id=customer.id, browser_key_hash="c" * 64, last_seen_at=forgotten),
        KnownBrowser(user_id=customer.id, browser_key_hash="d" * 64),
    ])
    db.session.commit()
    result = runner.invoke(args=["prune-sessions"])
    assert result.exit_code == 0, result.output
    assert [row.key_hash for row in db.session.scalars(sa.select(UserSession))] == ["b" * 64]
    assert [row.browser_key_hash for row in db.session.scalars(sa.select(KnownBrowser))] \
        == ["d" * 64]
    assert runs("prune-sessions")[0].counts == {"sessions": 1, "browsers": 1}


@pytest.mark.parametrize("name", sorted(EXPECTED_JOBS))
def test_each_job_has_a_cron_route_that_records_its_run(app, client, name):
    app.config["CRON_SECRET"] = CRON_SECRET
    response = client.get(f"/internal/cron/{name}",
                          headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["outcome"] == "succeeded"
    [run] = runs(name)
    assert run.trigger == "cron"


def test_the_cron_route_answers_500_when_its_job_failed(app, client, smtp_down):
    app.config["CRON_SECRET"] = CRON_SECRET
    outbox.queue_email("alice@example.com", "Hello", "Body")
    db.session.commit()
    response = client.get("/internal/cron/deliver-mail",
                          headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert response.status_code == 500
    assert response.get_json()["outcome"] == "failed"


def test_the_jobs_page_marks_a_job_that_missed_its_window(admin_client):
    long_ago = now_utc() - timedelta(days=3)
    db.session.add(JobRun(job="reconcile", trigger="cli", started_at=long_ago,
                          finished_at=long_ago, outcome=JobOutcome.SUCCEEDED, counts={}))
    db.session.commit()
    page = admin_client.get("/admin/jobs/").get_data(as_text=True)
    row = page[page.index("<code>reconcile</code>"):]
    row = row[:row.index("</tr>")]
    assert "Missed its window" in row


def test_a_job_that_succeeded_within_its_window_is_on_time(admin_client, runner):
    runner.invoke(args=["reconcile"])
    [status] = [s for s in schedule.job_statuses() if s.job.name == "reconcile"]
    assert not status.late
    assert [s.job.name for s in schedule.job_statuses() if s.late] == sorted(
        EXPECTED_JOBS - {"reconcile"}, key=[j.name for j in schedule.JOBS].index)


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.TELLER])
def test_only_admins_open_the_jobs_page(client, make_user, role):
    log_in_as(client, make_user(role=role))
    assert client.get("/admin/jobs/").status_code == 403

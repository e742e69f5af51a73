"""Running a job and recording the run; each job's last success and whether it is late."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import JobOutcome, JobRun, now_utc
from bankapp.platform import metrics
from bankapp.schedule.catalogue import JOBS, Job, job_named, late_after
from bankapp.schedule.tasks import Outcome

log = logging.getLogger("bankapp.jobs")


def run_job(name: str, trigger: str, **options) -> tuple[JobRun, Outcome]:
    """Run the job ``name`` and record the run (committed before it starts and when it ends).

    Whatever the job raises is caught: the run is recorded as failed with the error, so a
    broken job shows on the Jobs page instead of vanishing with its process.
    """
    job = job_named(name)
    if job is None:
        raise KeyError(name)
    db.session.rollback()
    run = JobRun(job=name, trigger=trigger, started_at=now_utc(), outcome=JobOutcome.RUNNING)
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    try:
        outcome = job.run(trigger=trigger, **options)
    except Exception as error:  # noqa: BLE001 - recorded on the run, then reported
        log.exception("job %s failed", name)
        reason = f"{type(error).__name__}: {error}"[:500]
        outcome = Outcome({}, reason, failed=reason)
    db.session.rollback()  # nothing the job left uncommitted is ours to commit
    return finish(db.session.get(JobRun, run_id), outcome), outcome


def finish(run: JobRun, outcome: Outcome, started_at: datetime | None = None) -> JobRun:
    """Record ``outcome`` on ``run`` (a new run when it has no id yet) and commit."""
    if started_at is not None:
        run.started_at = started_at
    run.finished_at = now_utc()
    run.outcome = JobOutcome.FAILED if outcome.failed else JobOutcome.SUCCEEDED
    run.counts = outcome.counts
    run.error = outcome.failed[:500] if outcome.failed else None
    db.session.add(run)
    db.session.commit()
    metrics.count_job_run(run.job, run.outcome)
    if outcome.failed:
        log.error("job %s failed: %s", run.job, outcome.failed)
    return run


def record_worker_pass(name: str, started_at: datetime, outcome: Outcome) -> JobRun:
    """Record a stretch of a long-running worker's passes as one run (``trigger`` worker)."""
    return finish(JobRun(job=name, trigger="worker"), outcome, started_at=started_at)


def last_successes() -> dict[str, datetime | None]:
    """When each job last finished successfully (None: never)."""
    found = dict(db.session.execute(
        sa.select(JobRun.job, sa.func.max(JobRun.finished_at))
        .where(JobRun.outcome == JobOutcome.SUCCEEDED).group_by(JobRun.job)).all())
    return {job.name: found.get(job.name) for job in JOBS}


@dataclass
class JobStatus:
    """One job as the Jobs page shows it."""

    job: Job
    last_success: datetime | None
    last_run: JobRun | None
    late: bool


def job_statuses(now: datetime | None = None) -> list[JobStatus]:
    """Every job with its last success, its latest run, and whether it missed its window."""
    now = now or now_utc()
    successes = last_successes()
    latest_ids = sa.select(sa.func.max(JobRun.id)).group_by(JobRun.job).scalar_subquery()
    latest = {run.job: run for run in db.session.scalars(
        sa.select(JobRun).where(JobRun.id.in_(latest_ids)))}
    statuses = []
    for job in JOBS:
        success = successes[job.name]
        statuses.append(JobStatus(job, success, latest.get(job.name),
                                  late=success is None or now - success > late_after(job)))
    return statuses


def recent_runs(limit: int = 50):
    """The latest runs of every job, newest first, as a select (for the admins' page)."""
    return sa.select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)


def _metrics_reading() -> dict:
    """What ``/metrics`` reports of the jobs, read from the database at scrape time."""
    try:
        statuses = job_statuses()
        last_reconcile = db.session.scalar(
            sa.select(JobRun).where(JobRun.job == "reconcile",
                                    JobRun.outcome != JobOutcome.RUNNING)
            .order_by(JobRun.id.desc()).limit(1))
        problems = (last_reconcile.counts or {}).get("problems", 0) if last_reconcile else 0
        return {"jobs": {status.job.name: (status.last_success, status.late)
                         for status in statuses},
                "reconcile_problems": problems}
    finally:
        db.session.rollback()


def init_app(app) -> None:
    """Let ``/metrics`` report each job's last success and lateness, and start every run
    counter at 0."""
    metrics.register_jobs_reader(_metrics_reading)
    metrics.start_job_counters([job.name for job in JOBS])

"""``flask run-jobs``: the periodic jobs (``bankapp.schedule``) by name, or those due; and the
helper every job command runs through, so each run is recorded and a failure exits 1."""
from __future__ import annotations

import threading
import signal

import click
from flask.cli import with_appcontext

from bankapp import schedule
from bankapp.extensions import db
from bankapp.models import now_utc


def run_and_report(name: str, **options) -> None:
    """Run one job as a command: its summary on stdout, what went wrong on stderr, exit 1 when
    it failed (the run is recorded either way)."""
    run, outcome = schedule.run_job(name, "cli", **options)
    for line in outcome.details:
        click.echo(line, err=True)
    click.echo(outcome.summary)
    if outcome.failed:
        click.echo(f"{name} failed: {outcome.failed}", err=True)
        raise SystemExit(1)


def _due(skip: tuple[str, ...]) -> list[str]:
    """The jobs whose last run started longer ago than their interval (or never ran)."""
    now = now_utc()
    statuses = schedule.job_statuses(now)
    db.session.rollback()
    return [status.job.name for status in statuses
            if status.job.name not in skip
            and (status.last_run is None
                 or now - status.last_run.started_at >= schedule.interval(status.job))]


@click.command("run-jobs")
@with_appcontext
@click.argument("names", nargs=-1)
@click.option("--due", is_flag=True, help="Run every job whose interval has passed.")
@click.option("--skip", multiple=True, help="Leave this job out (with --due); repeatable.")
@click.option("--loop", "loop_seconds", type=click.FloatRange(1, 3600), default=None,
              help="Keep running: look for due jobs every this many seconds (a scheduler).")
@click.option("--list", "list_jobs", is_flag=True, help="List the jobs, their schedule and "
              "last success, and exit.")
def run_jobs(names, due, skip, loop_seconds, list_jobs):
    """Run periodic jobs by name, or --due ones; exits 1 when any of them failed."""
    if list_jobs:
        for status in schedule.job_statuses():
            last = status.last_success.isoformat(timespec="seconds") if status.last_success \
                else "never"
            mark = "  LATE" if status.late else ""
            click.echo(f"{status.job.name:24} {status.job.cron:14} last success {last}{mark}")
        return
    unknown = [name for name in names if schedule.job_named(name) is None]
    if unknown or not (names or due):
        raise click.UsageError(f"name jobs ({', '.join(job.name for job in schedule.JOBS)}) "
                               "or give --due" + (f"; unknown: {', '.join(unknown)}"
                                                  if unknown else ""))
    stop = threading.Event()
    if loop_seconds:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    while True:
        failed = []
        for name in (list(names) if names else _due(skip)):
            run, outcome = schedule.run_job(name, "cli")
            click.echo(f"{name}: {run.outcome}: {outcome.summary}")
            if outcome.failed:
                failed.append(name)
        if not loop_seconds:
            if failed:
                raise SystemExit(1)
            return
        if stop.wait(loop_seconds):
            return

"""The list of periodic jobs: name, how often each runs, and the function that does it.

``cron`` is the schedule a host's crontab, the compose scheduler (``flask run-jobs --due``)
and Vercel Pro use; a Vercel Hobby project may only run each once a day (docs/operations.md).
Holds need no job: a hold stops counting when it expires (``bankapp.ledger.holds``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app

from bankapp.platform.i18n import N_
from bankapp.schedule import tasks

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    cron: str
    summary: str
    run: Callable[..., tasks.Outcome]


JOBS: tuple[Job, ...] = (
    Job("deliver-mail", timedelta(minutes=5), "*/5 * * * *",
        N_("Send due mail from the outbox (retries, dead letters)."), tasks.deliver_mail),
    Job("run-scheduled", DAY, "0 5 * * *",
        N_("Post the scheduled payments due today."), tasks.run_scheduled),
    Job("run-loans", DAY, "15 5 * * *",
        N_("Collect due loan instalments, charge late fees, send loan notices."),
        tasks.run_loans),
    Job("post-interest", DAY, "30 5 * * *",
        N_("Post last month's interest (once; later runs find it done)."), tasks.post_interest),
    Job("prune-idempotency-keys", DAY, "0 3 * * *",
        N_("Delete stored API answers past their retention."), tasks.prune_idempotency_keys),
    Job("prune-sessions", DAY, "15 3 * * *",
        N_("Delete old sessions and forgotten browsers."), tasks.prune_sessions),
    Job("fold-ledger-totals", DAY, "45 3 * * *",
        N_("Fold the report buckets' shard rows of past quarter hours into one row each."),
        tasks.fold_ledger_totals),
    Job("count-balances", DAY, "5 0 * * *",
        N_("Count the accounts and balances by type and status after the day's close."),
        tasks.count_balances),
    Job("reconcile", DAY, "0 4 * * *",
        N_("Check every ledger invariant."), tasks.reconcile),
)
_BY_NAME = {job.name: job for job in JOBS}


def job_named(name: str) -> Job | None:
    return _BY_NAME.get(name)


def interval(job: Job) -> timedelta:
    """How often ``job`` is scheduled here: mail's follows ``MAIL_JOB_MINUTES`` (1440 on a
    Vercel Hobby project, whose crons run once a day)."""
    if job.name == "deliver-mail":
        return timedelta(minutes=current_app.config["MAIL_JOB_MINUTES"])
    return job.every


def late_after(job: Job) -> timedelta:
    """How long after its last success a job counts as missed: its interval, a tenth more,
    and an hour (Vercel Hobby runs a daily cron anywhere within its hour)."""
    every = interval(job)
    return every + every / 10 + timedelta(hours=1)

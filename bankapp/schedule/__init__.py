"""The periodic jobs: one list (``JOBS``), each run recorded, each job watched.

Every job is a function in ``bankapp.schedule.tasks`` that returns an ``Outcome`` (counts,
a one-line summary, and why it failed, if it did). ``run_job`` runs one and records the run
in ``job_runs`` (``bankapp.schedule.runs``): start, end, outcome, counts. What calls it:

- a ``flask`` command per job (``flask reconcile``, ``flask deliver-mail --once`` …), and
  ``flask run-jobs --due`` for every job whose interval has passed (a cron line or the
  compose scheduler service);
- ``/internal/cron/<job>`` (bankapp.jobs) for Vercel Cron.

The admins' Jobs page and ``/metrics`` read each job's last success; a job with none within
its window (``late_after``) is marked missed. docs/operations.md lists the schedule on each
target.
"""
from bankapp.schedule.catalogue import JOBS, Job, interval, job_named, late_after
from bankapp.schedule.runs import (
    JobStatus,
    init_app,
    job_statuses,
    last_successes,
    recent_runs,
    run_job,
)
from bankapp.schedule.tasks import Outcome

__all__ = ["JOBS", "Job", "JobStatus", "Outcome", "init_app", "interval", "job_named", "job_statuses", "late_after",
           "last_successes", "recent_runs", "run_job"]

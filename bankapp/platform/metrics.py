"""Prometheus metrics, exposed at ``/metrics`` (see ``bankapp.platform.health``); every name starts
with ``bankapp_``.

One process (``flask run``, Vercel, tests) keeps its values in memory. Under gunicorn with
several workers, each worker counts only what it served, so ``PROMETHEUS_MULTIPROC_DIR`` must
name an empty directory before the server starts: every worker then writes its values to files
there and a scrape answered by any worker adds them all up (prometheus_client's multiprocess
mode; ``gunicorn.conf.py`` empties the directory at start and marks dead workers).

What is counted, and where:
- requests by endpoint, method and status, with a latency histogram (``bankapp.platform.logs``);
- postings by entry type and outcome: ``posted``, ``replayed``, ``refused`` with the ledger's
  reason, ``failed`` (the database gave up) — the ``counts_postings`` decorator on
  ``ledger.core.post`` and ``ledger.cash.close_shift``;
- refused sign-ins by reason, second-factor failures by factor and lockouts — from the audit
  trail as it records them (``count_audited``, called by ``bankapp.audit.record``);
- database connections checked out of SQLAlchemy's pool (``watch_pool``);
- the mail outbox's pending rows and the age of the oldest: read at scrape time by the function
  the outbox registers with ``register_outbox_reader`` (absent until one is registered);
  delivery attempts by outcome (sent, failed, dead: ``count_mail``);
- the periodic jobs: runs by job and outcome (``count_job_run``), and, read from the database
  at scrape time (``register_jobs_reader``), each job's last success, whether it missed its
  window, and the mismatches the last reconciliation found;
- the build: version and commit (``bankapp_build_info``, always 1).

Every counter whose labels are known in advance starts at 0 (``start_*``), so a rate or an
``increase()`` alert works from the first scrape after a restart instead of staying silent
until the first event.
"""
from __future__ import annotations

import functools
import logging
import os
import platform
import re
from datetime import datetime
from typing import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

log = logging.getLogger("bankapp.metrics")

if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not os.path.isdir(
        os.environ["PROMETHEUS_MULTIPROC_DIR"]):
    # prometheus_client would fail on the first value it writes, far from the cause.
    raise SystemExit("bankapp: PROMETHEUS_MULTIPROC_DIR names no directory; create it (empty) "
                     "before starting the server (see docs/configuration.md).")

# Our own registry: the exposition holds bankapp_ metrics only (no process_ or python_ ones).
REGISTRY = CollectorRegistry()

REQUESTS = Counter("bankapp_http_requests", "HTTP requests answered, by endpoint, method and "
                   "status.", ["endpoint", "method", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("bankapp_http_request_duration_seconds", "Time from the first "
                            "request hook to the answer, by endpoint.", ["endpoint"],
                            registry=REGISTRY)
POSTINGS = Counter("bankapp_postings", "Ledger postings by entry type and outcome (posted, "
                   "replayed, refused, failed); reason says why one was refused or failed.",
                   ["type", "outcome", "reason"], registry=REGISTRY)
LOGIN_FAILURES = Counter("bankapp_login_failures", "Refused sign-ins, by reason.", ["reason"],
                         registry=REGISTRY)
SECOND_FACTOR_FAILURES = Counter("bankapp_second_factor_failures", "Wrong second-factor codes "
                                 "and refused passkey assertions, by factor.", ["factor"],
                                 registry=REGISTRY)
SECOND_FACTOR_LOCKOUTS = Counter("bankapp_second_factor_lockouts", "Accounts whose "
                                 "second-factor checks were locked after too many wrong codes.",
                                 registry=REGISTRY)
MAIL_MESSAGES = Counter("bankapp_mail_messages", "Outbox delivery attempts by outcome: sent, "
                        "failed (retried later) and dead (given up).", ["outcome"],
                        registry=REGISTRY)
MAIL_OUTCOMES = ("sent", "failed", "dead")
JOB_RUNS = Counter("bankapp_job_runs", "Periodic job runs by job and outcome (succeeded, "
                   "failed).", ["job", "outcome"], registry=REGISTRY)
JOB_OUTCOMES = ("succeeded", "failed")
# livesum: under gunicorn, the sum over the workers alive now.
# bankapp.platform.ratelimit: operations the database served because Redis did not answer.
RATE_LIMIT_FALLBACKS = Counter("bankapp_rate_limit_fallback_operations", "Rate-limit store "
                               "operations counted in the database because Redis did not "
                               "answer.", registry=REGISTRY)
# bankapp.platform.replica: reads the primary served because the replica was behind or down,
# and how far behind it was at the last check.
REPLICA_FALLBACKS = Counter("bankapp_replica_fallback_reads", "Reads meant for the replica "
                            "that the primary served, by reason (behind, down).", ["reason"],
                            registry=REGISTRY)
REPLICA_LAG_BYTES = Gauge("bankapp_replica_lag_bytes", "WAL the replica had not replayed at "
                          "the last check (primary position minus replayed position).",
                          multiprocess_mode="mostrecent", registry=REGISTRY)
for _reason in ("behind", "down"):
    REPLICA_FALLBACKS.labels(_reason)  # present at 0 from the start: an alert sees a rise
POOL_CHECKED_OUT = Gauge("bankapp_db_pool_checked_out_connections", "Database connections "
                         "checked out of SQLAlchemy's pool now.", multiprocess_mode="livesum",
                         registry=REGISTRY)


# ---------------------------------------------------------------- requests


# The method is the client's to choose: any other becomes OTHER, so no client can mint series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(endpoint, method if method in _METHODS else "OTHER", str(status)).inc()
    REQUEST_SECONDS.labels(endpoint).observe(seconds)


# ---------------------------------------------------------------- postings


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _posting_outcome(error: Exception, refusals: tuple[type[Exception], ...]) -> tuple[str, str]:
    if isinstance(error, (*refusals, IntegrityError)):
        return "refused", _snake(type(error).__name__)  # a closed set of classes
    return "failed", _snake(type(error).__name__)


def counts_postings(entry_type: str | None = None, *,
                    refusals: tuple[type[Exception], ...] = ()):
    """Decorate a posting function (``post``; ``close_shift``) to count each call's outcome.

    The entry type is ``entry_type`` or the function's first argument; the function returns an
    object with ``replayed``, or raises why it did not post: one of ``refusals`` (or a
    constraint the database enforced) is counted as refused, anything else as failed.
    """

    def decorate(posting_function):
        @functools.wraps(posting_function)
        def counted(*args, **kwargs):
            kind = entry_type or str(args[0])
            try:
                result = posting_function(*args, **kwargs)
            except Exception as error:
                POSTINGS.labels(kind, *_posting_outcome(error, refusals)).inc()
                raise
            POSTINGS.labels(kind, "replayed" if result.replayed else "posted", "").inc()
            return result

        return counted

    return decorate


# ---------------------------------------------------------------- sign-in failures

_LOGIN_REASONS = {"bad credentials": "bad_credentials", "inactive": "inactive",
                  "unverified": "unverified"}


def count_audited(action: str, details: dict | None) -> None:
    """Count the sign-in failures the audit trail records (called by ``audit.record``)."""
    if action in ("auth.login.failure", "auth.api_token.failure"):  # the form or the API
        reason = (details or {}).get("reason")
        LOGIN_FAILURES.labels(_LOGIN_REASONS.get(reason, "other")).inc()
    elif action == "mfa.failure":
        SECOND_FACTOR_FAILURES.labels("code").inc()
    elif action == "passkey.failure":
        SECOND_FACTOR_FAILURES.labels("passkey").inc()
    elif action == "mfa.locked":
        SECOND_FACTOR_LOCKOUTS.inc()


# ---------------------------------------------------------------- mail


def count_mail(outcome: str) -> None:
    """Count one delivery attempt's outcome (one of ``MAIL_OUTCOMES``)."""
    MAIL_MESSAGES.labels(outcome).inc()


# ---------------------------------------------------------------- counters at 0

# Sign-in refusals and second-factor failures have closed sets of labels: known here.
for _outcome in MAIL_OUTCOMES:
    MAIL_MESSAGES.labels(_outcome)
for _reason in (*_LOGIN_REASONS.values(), "other"):
    LOGIN_FAILURES.labels(_reason)
for _factor in ("code", "passkey"):
    SECOND_FACTOR_FAILURES.labels(_factor)


def start_posting_counters(entry_types) -> None:
    """Start the posted and replayed counts of each entry type at 0 (the ledger's types)."""
    for entry_type in entry_types:
        for outcome in ("posted", "replayed"):
            POSTINGS.labels(entry_type, outcome, "")


def start_job_counters(job_names) -> None:
    """Start each job's run counts at 0."""
    for name in job_names:
        for outcome in JOB_OUTCOMES:
            JOB_RUNS.labels(name, outcome)


def count_job_run(job: str, outcome: str) -> None:
    JOB_RUNS.labels(job, outcome).inc()


# ---------------------------------------------------------------- jobs (a seam)

JobsReader = Callable[[], dict]
_jobs_reader: JobsReader | None = None


def register_jobs_reader(reader: JobsReader | None) -> None:
    """Let the job runner report itself: ``reader()`` runs at each scrape, in an app context,
    and returns ``{"jobs": {name: (last success or None, late)}, "reconcile_problems": n}``."""
    global _jobs_reader
    _jobs_reader = reader


def _timestamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


class JobsCollector(Collector):
    """Each job's last success and lateness, read from the database (the same from every
    worker, and right after a restart)."""

    def collect(self):
        if _jobs_reader is None:
            return
        try:
            reading = _jobs_reader()
        except Exception:  # noqa: BLE001 - a broken reader must not fail the whole scrape
            log.exception("reading the job runs for /metrics failed")
            return
        success = GaugeMetricFamily(
            "bankapp_job_last_success_timestamp_seconds", "When each periodic job last "
            "succeeded (Unix time; 0: never).", labels=["job"])
        late = GaugeMetricFamily("bankapp_job_late", "1 when a job has not succeeded within "
                                 "its window (docs/operations.md), else 0.", labels=["job"])
        for name, (last_success, is_late) in sorted(reading["jobs"].items()):
            success.add_metric([name], _timestamp(last_success))
            late.add_metric([name], 1.0 if is_late else 0.0)
        yield success
        yield late
        yield GaugeMetricFamily("bankapp_reconcile_problems", "Mismatches the last "
                                "reconciliation found (0: clean, or none run yet).",
                                value=reading["reconcile_problems"])


class BuildCollector(Collector):
    """``bankapp_build_info``: the version and commit being served (from the environment)."""

    def collect(self):
        info = GaugeMetricFamily("bankapp_build_info", "The build being served: version, "
                                 "commit and Python version (always 1).",
                                 labels=["version", "commit", "python"])
        commit = (os.environ.get("BANKAPP_COMMIT") or os.environ.get("VERCEL_GIT_COMMIT_SHA")
                  or "unknown")
        info.add_metric([os.environ.get("BANKAPP_VERSION", "dev"), commit[:12],
                         platform.python_version()], 1.0)
        yield info


# ---------------------------------------------------------------- database pool


def watch_pool(engine) -> None:
    """Keep ``bankapp_db_pool_checked_out_connections`` in step with ``engine``'s pool."""

    event.listen(engine, "checkout", lambda *args: POOL_CHECKED_OUT.inc())
    event.listen(engine, "checkin", lambda *args: POOL_CHECKED_OUT.dec())


# ---------------------------------------------------------------- mail outbox (a seam)

OutboxReader = Callable[[], tuple[int, float | None]]
_outbox_reader: OutboxReader | None = None


def register_outbox_reader(reader: OutboxReader | None) -> None:
    """Let the mail outbox report itself: ``reader()`` runs at each scrape, inside an app
    context, and returns (rows pending, age in seconds of the oldest pending row or None).

    The outbox registers its reader when it is set up (``register_outbox_reader(None)`` takes
    it away); until then the two outbox metrics are absent rather than a false zero.
    """
    global _outbox_reader
    _outbox_reader = reader


class OutboxCollector(Collector):
    """Reads the outbox at scrape time (a database fact, the same seen from every worker)."""

    def collect(self):
        if _outbox_reader is None:
            return
        try:
            pending, oldest_age = _outbox_reader()
        except Exception:  # noqa: BLE001 - a broken reader must not fail the whole scrape
            log.exception("reading the mail outbox for /metrics failed")
            return
        yield GaugeMetricFamily("bankapp_outbox_pending_messages",
                                "Outbox messages not yet sent.", value=pending)
        yield GaugeMetricFamily("bankapp_outbox_oldest_pending_age_seconds",
                                "Age of the oldest unsent outbox message (0 when none).",
                                value=oldest_age or 0.0)


REGISTRY.register(OutboxCollector())
REGISTRY.register(JobsCollector())
REGISTRY.register(BuildCollector())


# ---------------------------------------------------------------- exposition


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def exposition() -> tuple[bytes, str]:
    """The text format of every metric: this process's, or all workers' in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in (OutboxCollector(), JobsCollector(), BuildCollector()):
            registry.register(collector)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST

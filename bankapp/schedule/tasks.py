"""What each periodic job does; each returns an ``Outcome`` and leaves nothing uncommitted.

Options come from the caller: ``seconds`` (a time budget, for HTTP-triggered runs that must
end within the host's limit), ``limit`` (mail per pass), and the job's own (``month``,
``older_than_days``, ``as_of``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app

from bankapp import ledger
from bankapp.ledger.interest import local_today
from bankapp.ledger.totals import bucket_of
from bankapp.lending import collections as loan_collections
from bankapp.lending.errors import LendingError
from bankapp.models import now_utc
from bankapp.notifications import outbox
from bankapp.schedule import housekeeping


@dataclass
class Outcome:
    """What one run did: its counts (stored with the run), a line for people, and, when the
    run failed, why (then ``details`` may list what went wrong, one item a line)."""

    counts: dict
    summary: str
    failed: str | None = None
    details: list[str] = field(default_factory=list)


def deliver_mail(limit: int = 200, seconds: float | None = None, **_) -> Outcome:
    """One pass over due mail; failed when any message failed, went dead, or cannot go."""
    try:
        report = outbox.deliver(limit=limit, seconds=seconds)
    except outbox.MailServerMissing as missing:
        return Outcome({}, str(missing), failed=str(missing))
    failed = None if report.ok else f"{report.failed} failed, {report.dead} dead"
    return Outcome(report.as_dict(), f"Mail: {report}.", failed=failed)


def run_scheduled(as_of: date | None = None, seconds: float | None = None,
                  trigger: str = "cli", **_) -> Outcome:
    """Post every scheduled payment due (a payment refused for money is the customer's
    outcome, not the job's: the run succeeds)."""
    report = ledger.run_due(as_of or ledger.bank_today(), trigger=trigger, seconds=seconds)
    summary = (f"Scheduled payments due by {report.as_of.isoformat()}: {report.posted} posted, "
               f"{report.failed} failed ({report.paused} orders paused), {report.skipped} "
               "handled by another run.")
    return Outcome(report.summary(), summary)


def post_interest(month: date | None = None, **_) -> Outcome:
    """Post the interest of ``month``, by default the month that ended last (daily: a no-op
    once it is posted, each account and month is paid once)."""
    if month is None:
        month = (local_today().replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        run = ledger.post_interest(month)
    except ledger.InterestError as error:
        return Outcome({"month": f"{month:%Y-%m}"}, str(error), failed=str(error))
    counts = {"month": f"{month:%Y-%m}", "credited": run.credited, "total": str(run.total),
              "already": run.already, "nothing": run.nothing, "held": run.held,
              "refused": run.refused, "caught_up": run.caught_up}
    return Outcome(counts, run.summary())


def prune_idempotency_keys(older_than_days: int | None = None, **_) -> Outcome:
    """Delete stored API answers past ``API_IDEMPOTENCY_RETENTION_DAYS``."""
    days = older_than_days or current_app.config["API_IDEMPOTENCY_RETENTION_DAYS"]
    deleted = housekeeping.prune_idempotency_keys(timedelta(days=days))
    return Outcome({"deleted": deleted, "days": days},
                   f"Deleted {deleted} idempotency records older than {days} days.")


def prune_sessions(**_) -> Outcome:
    """Delete sessions over ``SESSION_RETENTION_DAYS`` old and browsers not seen for
    ``KNOWN_BROWSER_RETENTION_DAYS``."""
    config = current_app.config
    sessions = housekeeping.prune_sessions(timedelta(days=config["SESSION_RETENTION_DAYS"]))
    browsers = housekeeping.prune_known_browsers(
        timedelta(days=config["KNOWN_BROWSER_RETENTION_DAYS"]))
    return Outcome({"sessions": sessions, "browsers": browsers},
                   f"Deleted {sessions} old sessions and {browsers} forgotten browsers.")


def fold_ledger_totals(**_) -> Outcome:
    """Fold the report buckets' shard rows of every quarter hour that ended over 45 minutes
    ago into one row per bucket and kind (``housekeeping.fold_ledger_totals``)."""
    before = bucket_of(now_utc()) - timedelta(hours=1)
    removed = housekeeping.fold_ledger_totals(before)
    return Outcome({"rows_folded": removed},
                   f"Folded {removed} shard rows of the report buckets before "
                   f"{before.isoformat()}.")


def count_balances(**_) -> Outcome:
    """Count the accounts by type and status and what they hold, as they stand (the bank
    report of a past period shows the first count after its close)."""
    groups = ledger.count_balances()
    return Outcome({"groups": groups}, f"Counted the accounts and balances: {groups} groups "
                                       "by type and status.")


def reconcile(**_) -> Outcome:
    """Check every ledger invariant; failed, with each mismatch, when the book is not clean."""
    result = ledger.reconcile()
    counts = {"accounts": result.accounts, "entries": result.entries, "legs": result.legs,
              "problems": len(result.problems)}
    failed = None if result.clean else f"{len(result.problems)} mismatch(es)"
    return Outcome(counts, result.summary(), failed=failed,
                   details=[f"MISMATCH {problem}" for problem in result.problems])


def run_loans(as_of: date | None = None, trigger: str = "cli", **_) -> Outcome:
    """Collect the loan instalments due up to today, charge late fees and send notices (each
    once); failed when a run has already gone past that day (``flask run-loans --as-of``)."""
    day = as_of or ledger.bank_today()
    try:
        report = loan_collections.run_loans(day, trigger=trigger)
    except LendingError as refusal:
        return Outcome({}, str(refusal), failed=str(refusal))
    counts = report.summary()
    return Outcome(counts, f"Loans up to {day.isoformat()}: {report.collections} collections "
                           f"({report.collected}), {report.late_fees} late fees, "
                           f"{report.notices} notices.")

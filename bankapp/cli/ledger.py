"""``flask`` commands for the ledger and its jobs: reconcile, scheduled payments, interest rates
and postings, pruning stored API answers.
"""
from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from bankapp import ledger
from bankapp.api.idempotency import prune_records
from bankapp.ledger.interest import local_today
from bankapp.notifications.outbox import deliver_committed


@click.command("reconcile")
@with_appcontext
def reconcile():
    """Check every ledger invariant; list each mismatch and exit 1, or print a summary."""
    result = ledger.reconcile()
    for problem in result.problems:
        click.echo(f"MISMATCH {problem}", err=True)
    click.echo(result.summary())
    if not result.clean:
        raise SystemExit(1)


@click.command("run-scheduled")
@with_appcontext
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Post what is due up to this date (YYYY-MM-DD) [default: today in "
                   "BANK_TIMEZONE].")
def run_scheduled(as_of):
    """Post every scheduled payment due (missed days too, oldest first); safe to repeat."""
    report = ledger.run_due(as_of.date() if as_of else ledger.bank_today(), trigger="cli")
    deliver_committed()  # the failed-payment alerts, now; the mail worker retries what fails
    click.echo(f"Scheduled payments due by {report.as_of.isoformat()}: {report.posted} posted, "
               f"{report.failed} failed ({report.paused} orders paused), {report.skipped} "
               "handled by another run.")


@click.command("set-rate")
@with_appcontext
@click.argument("account_type", type=click.Choice(["SAVINGS", "CHECKING"]))
@click.argument("rate")
@click.option("--from", "effective_from", default=None,
              help="First day it applies, YYYY-MM-DD [default: today in BANK_TIMEZONE].")
def set_rate(account_type, rate, effective_from):
    """Set the annual interest rate (percent) of an account type from a day on."""
    try:
        day = ledger.parse_rate_date(effective_from) if effective_from else local_today()
        row = ledger.set_rate(account_type, ledger.parse_rate(rate), day, None)
    except ledger.InterestError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{account_type}: {row.annual_rate.normalize():f} % a year from "
               f"{row.effective_from.isoformat()}.")


@click.command("post-interest")
@with_appcontext
@click.option("--month", required=True, help="The month that ended, YYYY-MM.")
def post_interest(month):
    """Post a month's interest (idempotent: each account and month is paid once)."""
    try:
        run = ledger.post_interest(ledger.parse_month(month))
    except ledger.InterestError as error:
        raise click.ClickException(str(error)) from None
    click.echo(run.summary())


@click.command("prune-idempotency-keys")
@with_appcontext
@click.option("--older-than-days", type=int, default=None,
              help="Delete records older than this many days "
                   "[default: API_IDEMPOTENCY_RETENTION_DAYS, 30].")
def prune_idempotency_keys(older_than_days):
    """Delete stored API answers past the retention window (run daily)."""
    days = older_than_days
    if days is None:
        days = current_app.config["API_IDEMPOTENCY_RETENTION_DAYS"]
    if days < 1:
        raise click.ClickException(
            f"--older-than-days must be at least 1, not {days}: a client's retry within the "
            "window must still find its answer")
    deleted = prune_records(timedelta(days=days))
    click.echo(f"Deleted {deleted} idempotency records older than {days} days.")

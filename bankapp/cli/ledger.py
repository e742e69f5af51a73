"""``flask`` commands for the ledger and its jobs: reconcile, scheduled payments, interest rates
and postings, pruning stored API answers and old sessions. The jobs among them run through
``bankapp.schedule`` (each run recorded; a failure exits 1).
"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from bankapp import ledger
from bankapp.cli.jobs import run_and_report
from bankapp.ledger.interest import local_today


@click.command("reconcile")
@with_appcontext
def reconcile():
    """Check every ledger invariant; list each mismatch and exit 1, or print a summary."""
    run_and_report("reconcile")


@click.command("run-scheduled")
@with_appcontext
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Post what is due up to this date (YYYY-MM-DD) [default: today in "
                   "BANK_TIMEZONE].")
def run_scheduled(as_of):
    """Post every scheduled payment due (missed days too, oldest first); safe to repeat."""
    run_and_report("run-scheduled", as_of=as_of.date() if as_of else None)


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
@click.option("--month", default=None,
              help="The month that ended, YYYY-MM [default: the last month that ended].")
def post_interest(month):
    """Post a month's interest (idempotent: each account and month is paid once)."""
    try:
        chosen = ledger.parse_month(month) if month else None
    except ledger.InterestError as error:
        raise click.ClickException(str(error)) from None
    run_and_report("post-interest", month=chosen)


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
    run_and_report("prune-idempotency-keys", older_than_days=days)


@click.command("fold-ledger-totals")
@with_appcontext
def fold_ledger_totals():
    """Fold the report buckets' shard rows of past quarter hours into one row (run daily)."""
    run_and_report("fold-ledger-totals")


@click.command("count-balances")
@with_appcontext
def count_balances():
    """Count the accounts and balances by type and status (run daily, after the close)."""
    run_and_report("count-balances")


@click.command("prune-sessions")
@with_appcontext
def prune_sessions():
    """Delete old sessions (SESSION_RETENTION_DAYS) and forgotten browsers (run daily)."""
    run_and_report("prune-sessions")

"""``flask deliver-mail``: the outbox worker (once, or in a loop).
"""
from __future__ import annotations

import signal
import threading
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import exc as sa_exc

from bankapp.cli.jobs import run_and_report
from bankapp.extensions import db
from bankapp.models import now_utc
from bankapp.notifications import outbox
from bankapp.schedule import Outcome
from bankapp.schedule.runs import record_worker_pass

# The looping worker records its passes as one run of the mail job this often.
RECORD_EVERY_SECONDS = 60


@click.command("deliver-mail")
@with_appcontext
@click.option("--once", is_flag=True, help="One pass over due mail, then exit (for cron).")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True,
              help="Seconds to wait when nothing is due.")
@click.option("--batch", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="At most this many messages per pass.")
def deliver_mail(once, interval, batch):
    """Send queued email: retries with backoff, dead after MAIL_MAX_ATTEMPTS (see /admin/mail/).

    With --once: one pass, recorded as a run of the mail job; exits 1 when any message failed
    or went dead, or no MAIL_SERVER is set in production. Without: keeps running (recording
    its passes once a minute); Ctrl-C or SIGTERM stops it after the message in hand.
    """
    if once:
        run_and_report("deliver-mail", limit=batch)
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Delivering mail (every {interval:g} s when idle); Ctrl-C stops.")
    stretch, stretch_started, recorded_at = outbox.DeliveryReport(), now_utc(), time.monotonic()
    while not stop.is_set():
        try:
            report = outbox.deliver(limit=batch, should_stop=stop.is_set)
        except outbox.MailServerMissing as error:
            raise click.ClickException(str(error)) from None
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
            # The database restarting must not end the worker; the next pass tries again.
            db.session.rollback()
            click.echo(f"Database unavailable ({error.orig}); retrying.", err=True)
            report = outbox.DeliveryReport()
        if report.attempted:
            click.echo(f"Mail: {report}.")
        for name in ("sent", "failed", "dead"):
            setattr(stretch, name, getattr(stretch, name) + getattr(report, name))
        if time.monotonic() - recorded_at >= RECORD_EVERY_SECONDS:
            _record(stretch, stretch_started)
            stretch, stretch_started, recorded_at = (outbox.DeliveryReport(), now_utc(),
                                                     time.monotonic())
        if report.attempted < batch or report.failed:
            stop.wait(interval)
    _record(stretch, stretch_started)  # the last stretch, up to the stop
    click.echo("Stopped.")


def _record(stretch: outbox.DeliveryReport, started_at) -> None:
    """One run of the mail job for the worker's last stretch of passes."""
    failed = None if stretch.ok else f"{stretch.failed} failed, {stretch.dead} dead"
    try:
        record_worker_pass("deliver-mail", started_at,
                           Outcome(stretch.as_dict(), f"Mail: {stretch}.", failed=failed))
    except (sa_exc.OperationalError, sa_exc.InterfaceError):
        db.session.rollback()  # unrecorded this time; the worker goes on

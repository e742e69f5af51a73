"""``flask deliver-mail``: the outbox worker (once, or in a loop).
"""
from __future__ import annotations

import signal
import threading

import click
from flask.cli import with_appcontext
from sqlalchemy import exc as sa_exc

from bankapp.extensions import db
from bankapp.notifications import outbox


@click.command("deliver-mail")
@with_appcontext
@click.option("--once", is_flag=True, help="One pass over due mail, then exit (for cron).")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True,
              help="Seconds to wait when nothing is due.")
@click.option("--batch", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="At most this many messages per pass.")
def deliver_mail(once, interval, batch):
    """Send queued email: retries with backoff, dead after MAIL_MAX_ATTEMPTS (see /admin/mail/).

    Without --once it keeps running; Ctrl-C or SIGTERM stops it after the message in hand.
    With --once it exits 1 when any message failed or went dead, or no MAIL_SERVER is set
    in production.
    """

    if once:
        try:
            report = outbox.deliver(limit=batch)
        except outbox.MailServerMissing as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Mail: {report}.")
        if not report.ok:
            raise SystemExit(1)
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Delivering mail (every {interval:g} s when idle); Ctrl-C stops.")
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
        if report.attempted < batch or report.failed:
            stop.wait(interval)
    click.echo("Stopped.")

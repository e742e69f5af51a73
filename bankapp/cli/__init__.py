"""``flask`` commands for deployers, a module per audience: users and keys (``users``), the
ledger and its jobs (``ledger``), loans (``lending``), mail (``mail``), the job runner
(``jobs``), checks (``checks``), demo data (``demo``), backups and restores (``backups``)."""
from __future__ import annotations

from flask import Flask

from bankapp.cli import backups, checks, demo, jobs, ledger, lending, mail, users


def register(app: Flask) -> None:
    """Attach the bankapp commands to ``app.cli``."""
    for command in (users.create_user, users.set_role, users.verify_user, demo.seed_demo,
                    checks.check, ledger.reconcile, ledger.prune_idempotency_keys,
                    users.reset_2fa, users.rotate_field_key, mail.deliver_mail,
                    ledger.run_scheduled, ledger.set_rate, ledger.post_interest,
                    ledger.prune_sessions, ledger.fold_ledger_totals, ledger.count_balances,
                    jobs.run_jobs,
                    backups.backup, backups.restore_check, backups.restore,
                    lending.create_loan_product, lending.run_loans):
        app.cli.add_command(command)

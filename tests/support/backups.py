"""Helpers of the backup tests: a backup through the CLI, its manifest, an older one."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from bankapp import ledger
from bankapp.cli.backups import MANIFEST_SUFFIX
from bankapp.extensions import db

OLDER_SCHEMA = "0014_fast_posting"


def small_bank(make_user, funded_account):
    """A customer with an authenticator app, two accounts and a transfer between them
    (3 journal entries, customer balances 525.50); the customer."""
    owner = make_user(email="backup@example.com", second_factor=True)
    checking = funded_account(owner, "500.00", "CHECKING")
    savings = funded_account(owner, "25.50")
    ledger.transfer(checking, savings, Decimal("100.00"), "to savings", owner)
    db.session.commit()
    return owner


def backup(runner, directory: Path) -> Path:
    """``flask backup --output directory`` through ``runner``; the dump it wrote."""
    result = runner.invoke(args=["backup", "--output", str(directory)])
    assert result.exit_code == 0, result.output
    (dump,) = directory.glob("bankapp-*.dump")
    return dump


def manifest_of(dump: Path) -> dict:
    return json.loads(dump.with_name(dump.name + MANIFEST_SUFFIX).read_text())


def backup_of_an_older_schema(runner, directory: Path) -> Path:
    """A backup of the app's database taken at ``OLDER_SCHEMA``; the database is upgraded
    back to the head afterwards."""
    from flask_migrate import downgrade, upgrade

    db.session.remove()
    downgrade(revision=OLDER_SCHEMA)
    try:
        dump = backup(runner, directory)
    finally:
        upgrade()
    assert manifest_of(dump)["migration_head"] == OLDER_SCHEMA
    return dump

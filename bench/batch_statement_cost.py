"""What it costs to call ``ledger_post()`` for a batch in order: the batch statement of
``fast.call_many`` as a recursive query (each call a step after the one before) against the
join it replaced (one call per row of ``jsonb_to_recordset``, in an order SQL does not
promise), side by side on one database, taking turns.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/batch_statement_cost.py [--batch 200] [--rounds 10]

Creates a scratch database (dropped at the end) with ``2 × batch`` customer accounts, then
posts ``rounds`` batches of ``batch`` transfers (account i to account i + batch, 0.01 each)
through ``core.post_each`` in ``core.in_batch`` with each statement in turn, and prints the
median time per batch and per posting of each, and their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402

from bankapp import create_app, ledger  # noqa: E402
from bankapp.extensions import db  # noqa: E402
from bankapp.ledger import core, fast  # noqa: E402
from bankapp.models import Channel, EntryType, TransactionType, User  # noqa: E402
from support.database import SuiteConfig, migrate, scratch_database  # noqa: E402


def _join_statement() -> sa.TextClause:
    """The batch statement before: a join calling ledger_post() for each row."""
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in
                        [("position", "integer"), *fast._PARAMETERS])
    arguments = ", ".join(f"p.{name}" for name, _ in fast._PARAMETERS)
    return sa.text(f"SELECT p.position, r.* FROM jsonb_to_recordset(CAST(:postings AS jsonb)) "
                   f"AS p({columns}) CROSS JOIN LATERAL ledger_post({arguments}) AS r "
                   f"ORDER BY p.position")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    statements = {"join (before)": _join_statement(), "recursive (after)": fast._many_statement()}
    with scratch_database("bankapp_bench_batchorder") as url:
        migrate(url)
        SuiteConfig.SQLALCHEMY_DATABASE_URI = url
        app = create_app(SuiteConfig)
        with app.app_context():
            owners = [User(email=f"bench{index}@example.com", first_name="B", last_name="Ench",
                           password_hash="x") for index in range(options.batch // 5)]
            db.session.add_all(owners)
            db.session.commit()
            accounts = [ledger.open_account(owners[index % len(owners)], "SAVINGS")
                        for index in range(2 * options.batch)]  # 10 each, the bank's most
            for account in accounts[:options.batch]:
                ledger.deposit(account, Decimal("100.00"), "Bench", None)
            lock = sorted(account.id for account in accounts)
            times = {name: [] for name in statements}
            for round_ in range(options.rounds):
                for name, statement in statements.items():
                    entries = [core.EntryToPost(
                        EntryType.TRANSFER,
                        (core.Leg(payer, TransactionType.TRANSFER_OUT, Decimal("-0.01")),
                         core.Leg(payee, TransactionType.TRANSFER_IN, Decimal("0.01"))),
                        "Bench", None, Channel.SYSTEM, None)
                        for payer, payee in zip(accounts[:options.batch],
                                                accounts[options.batch:])]
                    fast._many_statement = lambda statement=statement: statement
                    started = time.perf_counter()
                    results = core.in_batch(lambda: core.post_each(entries), "bench", lock=lock)
                    times[name].append(time.perf_counter() - started)
                    assert all(isinstance(result, core.Posting) for result in results)
            db.session.remove()
            db.engine.dispose()
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:18} {median * 1000:8.1f} ms per batch of {options.batch}, "
              f"{median / options.batch * 1000:.3f} ms per posting")
    before, after = medians.values()
    print(f"after / before: {after / before:.2f}")


if __name__ == "__main__":
    main()

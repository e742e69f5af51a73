"""Benchmark the ledger: N transfers through ``bankapp.ledger.transfer`` from K processes.

    python bench/ledger_bench.py                 # 5,000 transfers, 4 workers, 1,000 accounts
    python bench/ledger_bench.py --hot           # the same over 10 accounts (row contention)
    python bench/ledger_bench.py -n 20000 -k 8   # more of both

Runs on PostgreSQL only (``BENCH_DATABASE_URL``, default
postgresql://postgres@127.0.0.1:5432/postgres): it creates a fresh database
``bankapp_bench_ledger`` on that server, migrates it, funds the accounts through
``ledger.deposit``, lets K worker processes (each its own app, engine and connection, released
together by a barrier) post random transfers between random pairs, then prints throughput,
latency, refusals, SQL statements per transfer, the money before and after, and the result of
``reconcile``, and drops the database. It exits 1 if the book is not clean or money moved in
or out of the customers' total. This is a measurement, not a test: figures depend on the host.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from config import Config, normalize_database_url  # noqa: E402

DATABASE_NAME = "bankapp_bench_ledger"
OPENING_BALANCE = Decimal("10000.00")
OWNERS = 100


def bench_config(url: str) -> type:
    """A plain config on the bench database (quiet logs, in-memory rate limits)."""
    return type("BenchConfig", (Config,), {
        "SQLALCHEMY_DATABASE_URI": url,
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_SUPPRESS_SEND": True,
    })


# ---------------------------------------------------------------- database lifecycle


def create_database(server_url: str) -> str:
    server = make_url(normalize_database_url(server_url))
    if not server.drivername.startswith("postgresql"):
        sys.exit("ledger_bench: BENCH_DATABASE_URL must point at a PostgreSQL server")
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE_NAME}"')
    admin.dispose()
    return server.set(database=DATABASE_NAME).render_as_string(hide_password=False)


def drop_database(server_url: str) -> None:
    server = make_url(normalize_database_url(server_url))
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
    admin.dispose()


def migrate_and_fund(url: str, accounts: int) -> list[tuple[int, str, int]]:
    """Migrate, open ``accounts`` funded accounts; return (account id, number, owner id)."""
    from flask_migrate import upgrade

    from bankapp import create_app, ledger
    from bankapp.extensions import db
    from bankapp.models import User

    app = create_app(bench_config(url))
    with app.app_context():
        upgrade()
        owners = [User(email=f"bench{i}@example.com", password_hash="not-a-login",
                       first_name="Bench", last_name=f"Owner{i}")
                  for i in range(min(OWNERS, accounts))]
        db.session.add_all(owners)
        db.session.commit()
        funded = []
        for i in range(accounts):
            owner = owners[i % len(owners)]
            account = ledger.open_account(owner, "SAVINGS" if i % 2 else "CHECKING")
            ledger.deposit(account, OPENING_BALANCE, "Bench opening deposit", owner,
                           channel="system")
            funded.append((account.id, account.account_number, owner.id))
        db.session.remove()
        db.engine.dispose()
    return funded


def book_state(url: str):
    """(customer total, total of all balances, reconcile result) as the ledger sees them."""
    from bankapp import create_app, ledger
    from bankapp.extensions import db
    from bankapp.models import Account

    app = create_app(bench_config(url))
    with app.app_context():
        total = db.session.scalar(sa.select(sa.func.sum(Account.balance))) or Decimal("0")
        result = ledger.reconcile()
        db.session.remove()
        db.engine.dispose()
    return result.customer_total, total, result


# ---------------------------------------------------------------- workers


def worker(index: int, url: str, jobs: list, barrier, results) -> None:
    """Post ``jobs`` (source id, owner id, destination number, amount) as fast as it can."""
    from sqlalchemy import event

    from bankapp import create_app, ledger
    from bankapp.extensions import db
    from bankapp.models import Account, User

    retries = []

    class RetryCounter(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("retrying"):
                retries.append(1)

    ledger_log = logging.getLogger("bankapp.ledger")
    app = create_app(bench_config(url))
    ledger_log.setLevel(logging.INFO)  # create_app set WARNING; the retry notes are INFO
    ledger_log.addHandler(RetryCounter())
    ledger_log.propagate = False
    statements = {"all": 0, "in_transfer": 0}
    inside_transfer = [False]
    with app.app_context():
        if index == 0:
            def count(conn, cursor, statement, parameters, context, executemany):
                statements["all"] += 1
                statements["in_transfer"] += inside_transfer[0]
            event.listen(db.engine, "before_cursor_execute", count)
        db.session.execute(sa.text("SELECT 1"))  # connect before the clock starts
        db.session.commit()
        statements["all"] = statements["in_transfer"] = 0
        latencies, refused, other = [], 0, {}
        barrier.wait()
        started = time.perf_counter()
        for source_id, owner_id, destination, amount in jobs:
            began = time.perf_counter()
            # What a request does: load the account and the user, then call the ledger.
            source = db.session.get(Account, source_id)
            actor = db.session.get(User, owner_id)
            inside_transfer[0] = True
            try:
                ledger.transfer(source, destination, amount, "Bench transfer", actor,
                                channel="system")
            except ledger.InsufficientFunds:
                refused += 1
            except Exception as exc:  # reported, never hidden: the bench must show errors
                other[type(exc).__name__] = other.get(type(exc).__name__, 0) + 1
                db.session.rollback()
            finally:
                inside_transfer[0] = False
            latencies.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    results.put({"index": index, "latencies": latencies, "refused": refused, "other": other,
                 "elapsed": elapsed, "started": started, "statements": statements,
                 "retries": len(retries), "count": len(jobs)})


def plan(accounts: list[tuple[int, str, int]], transfers: int, seed: int) -> list[tuple]:
    draw = random.Random(seed)
    jobs = []
    for _ in range(transfers):
        (source_id, _, owner_id), (_, destination, _) = draw.sample(accounts, 2)
        amount = Decimal(draw.randint(100, 10000)) / 100  # 1.00 .. 100.00
        jobs.append((source_id, owner_id, destination, amount))
    return jobs


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--transfers", type=int, default=5000)
    parser.add_argument("-k", "--workers", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=None,
                        help="funded accounts (default 1,000, or 10 with --hot)")
    parser.add_argument("--hot", action="store_true", help="only 10 accounts: heavy contention")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="do not drop the bench database")
    args = parser.parse_args(argv)
    accounts_wanted = args.accounts or (10 if args.hot else 1000)
    server_url = os.environ.get("BENCH_DATABASE_URL",
                                "postgresql://postgres@127.0.0.1:5432/postgres")

    print(f"ledger bench: {args.transfers:,} transfers, {args.workers} worker processes, "
          f"{accounts_wanted:,} accounts{' (hot)' if args.hot else ''}, database "
          f"{DATABASE_NAME} on {make_url(server_url).render_as_string(hide_password=True)}")
    url = create_database(server_url)
    try:
        setup_started = time.perf_counter()
        accounts = migrate_and_fund(url, accounts_wanted)
        before_customers, before_all, _ = book_state(url)
        print(f"setup: migrated and funded {len(accounts):,} accounts with "
              f"{OPENING_BALANCE:,.2f} each in {time.perf_counter() - setup_started:.1f}s")

        jobs = plan(accounts, args.transfers, args.seed)
        context = mp.get_context("spawn")  # each worker builds its own app and engine
        barrier = context.Barrier(args.workers)
        results = context.Queue()
        processes = [context.Process(target=worker,
                                     args=(i, url, jobs[i::args.workers], barrier, results))
                     for i in range(args.workers)]
        for process in processes:
            process.start()
        reports = [results.get(timeout=3600) for _ in processes]
        for process in processes:
            process.join()

        after_customers, after_all, result = book_state(url)
    finally:
        if not args.keep:
            drop_database(server_url)

    reports.sort(key=lambda r: r["index"])
    latencies = sorted(x for r in reports for x in r["latencies"])
    wall = max(r["started"] + r["elapsed"] for r in reports) - min(r["started"] for r in reports)
    posted = sum(r["count"] for r in reports)
    refused = sum(r["refused"] for r in reports)
    other = {}
    for r in reports:
        for name, n in r["other"].items():
            other[name] = other.get(name, 0) + n
    counted = reports[0]
    per_worker = ", ".join(f"{r['count'] / r['elapsed']:,.0f}" for r in reports)
    print(f"throughput: {posted / wall:,.0f} transfers/s ({posted:,} in {wall:.2f}s wall; "
          f"per worker {per_worker}/s)")
    print(f"latency: p50 {percentile(latencies, 0.50) * 1000:.2f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms, "
          f"max {latencies[-1] * 1000:.2f} ms, mean {statistics.fmean(latencies) * 1000:.2f} ms")
    print(f"refused (insufficient funds): {refused:,}; other errors: {other or 'none'}; "
          f"deadlock/serialization retries: {sum(r['retries'] for r in reports)}")
    print(f"SQL statements per transfer (worker 0): "
          f"{counted['statements']['all'] / counted['count']:.2f} in all, "
          f"{counted['statements']['in_transfer'] / counted['count']:.2f} inside ledger.transfer")
    print(f"money: customers {before_customers:,.2f} before, {after_customers:,.2f} after; "
          f"all balances {before_all:,.2f} before, {after_all:,.2f} after")
    print(f"reconcile: {result.summary()}")
    for problem in result.problems:
        print(f"  {problem}")
    ok = (result.clean and before_customers == after_customers and after_all == 0
          and not other)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

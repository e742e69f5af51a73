"""``post-interest``'s first batches on a kept bench bank, profiled: statements and where the
time goes.

    .venv/bin/python bench/interest_profile.py --database bankapp_bench_interest --batches 20 \
        [--batch-size 50] [--app-dir /tmp/main-export] [--cprofile]

Runs ``post_interest`` for last month with the checkout ``--app-dir`` (default: this one) and
stops it before its batch ``--batches`` + 1 (the batches done commit: it pays accounts, so
use a copy of the bank: ``createdb -T``). Prints the accounts per second, the worker's CPU
and its PostgreSQL backend's CPU per account (from ``/proc``), the statements per account,
and the wall time of each kind of statement per account (``--cprofile``: the profile too).
Batches of accounts paid already are not run (they are counted and skipped by the listing on
this branch, rescanned under lock by the earlier code: give that a fresh copy).
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import sys
import time
from pathlib import Path

import apphost

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--database", required=True)
parser.add_argument("--batches", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=None,
                    help="accounts per batch (default: the checkout's own)")
parser.add_argument("--app-dir", type=Path, default=apphost.REPO_ROOT)
parser.add_argument("--cprofile", action="store_true")
args = parser.parse_args()

server_url = os.environ.get("BENCH_DATABASE_URL", apphost.DEFAULT_SERVER_URL)
db_url = apphost.database_url(server_url, args.database)
os.environ.update(apphost.app_env(args.app_dir, db_url))
sys.path.insert(0, str(args.app_dir))
os.chdir(args.app_dir)

import sqlalchemy as sa  # noqa: E402

from bankapp import create_app  # noqa: E402
from bankapp.ledger import interest  # noqa: E402


class Enough(Exception):
    """The batches asked for are done."""


seen = {"batches": 0, "accounts": 0, "statements": 0}
timings: dict[str, list] = {}
real_in_batch = interest.in_batch


def counted_batch(work, label, lock=()):
    if seen["batches"] >= args.batches:
        raise Enough
    seen["batches"] += 1
    seen["accounts"] += len(lock) - 1  # GL-INTEREST is locked too
    return real_in_batch(work, label, lock)


def before(conn, cursor, statement, parameters, context, executemany):
    seen["statements"] += 1
    context._bench_started = time.perf_counter()


def after(conn, cursor, statement, parameters, context, executemany):
    kind = timings.setdefault(" ".join(statement.split())[:90], [0, 0.0])
    kind[0] += 1
    kind[1] += time.perf_counter() - context._bench_started


interest.in_batch = counted_batch
app = create_app()
with app.app_context():
    from bankapp.extensions import db

    month = (interest.local_today().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    backend = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    db.session.rollback()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
    profile = cProfile.Profile()
    database_cpu = apphost.process_cpu_seconds(backend)
    worker_cpu, started = time.process_time(), time.perf_counter()
    profile.enable()
    try:
        interest.post_interest(month, **({"batch_size": args.batch_size}
                                         if args.batch_size else {}))
    except Enough:
        pass
    profile.disable()
    wall = time.perf_counter() - started
    worker_cpu = time.process_time() - worker_cpu
    database_cpu = apphost.process_cpu_seconds(backend) - database_cpu
    n = max(seen["accounts"], 1)
    print(f"{args.app_dir}: {seen['batches']} batches, {n} accounts, {wall:.1f} s "
          f"({n / wall:.0f}/s); per account: worker CPU {worker_cpu * 1000 / n:.2f} ms "
          f"(profiled), PostgreSQL {database_cpu * 1000 / n:.2f} ms, "
          f"{seen['statements'] / n:.2f} statements; load average {os.getloadavg()[0]:.1f}")
    for statement, (count, total) in sorted(timings.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"  {count:6d} x {total * 1000 / n:7.3f} ms/account  {statement}")
    if args.cprofile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)

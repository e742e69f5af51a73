"""What one ``ledger_post()`` call costs PostgreSQL, and which of its parts cost it.

    .venv/bin/python bench/ledger_post_cost.py [--app-dir DIR] [--duration 8] [--clients 1]

Creates ``bankapp_bench_postcost`` (the load benchmark's 10,000 funded accounts), then runs
pgbench scripts that call ``ledger_post()`` directly for random transfers between customers,
each with one more of the function's parts switched on, side by side with pgbench's own
TPC-B-like in ``bankapp_bench_pgbench`` at the same client count:

    bare         the accounts' locks and checks, the entry and its two legs
    + audit      the audit row
    + totals     the report buckets
    + answer     the look-up of an answer stored under the API key (a refusal); since
                 migration 0028 a posting's answer is not stored (the entry is the record)
    + holds      the holds of the spending leg (none are active: the look-up still runs)
    + alerts     the sender's alert settings (none set: the look-up still runs)
    + limit      the daily outgoing limit's read and upsert (an API transfer today)

It prints calls per second, mean latency and PostgreSQL CPU per call (read from the backends'
/proc entries, as ``load_bench.py`` does), and drops the database at the end. With one client
and nothing else running, latency minus the loopback round trip is the server's time per call.

``--one-statement [--before DIR]`` (issue 28) measures instead the transfer's own writes as one
SQL statement, ``bench/transfer_one_statement.sql``, at ``--clients`` (16 is the issue's
figure): this checkout's script on this checkout's schema, and, with ``--before``, the other
checkout's script on its own schema (``git worktree add /tmp/main main``), taking turns with
TPC-B-like ``--rounds`` times, so before and after come from one run:

    .venv/bin/python bench/ledger_post_cost.py --one-statement --before /tmp/main --clients 16
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apphost  # noqa: E402
import load_bench  # noqa: E402
from apphost import log  # noqa: E402

DATABASE = "bankapp_bench_postcost"
ACCOUNTS = 10_000
USERS = 500

# pgbench variables: a random transfer between two customers' accounts (ids 2..10001, id i
# owned by user (i - 2) % 500 + 1), as bench/transfer_one_statement.sql draws them.
HEADER = r"""\set src random(2, 10001)
\set dst 2 + (:src - 2 + random(1, 9999)) % 10000
\set cents random(1, 999)
\set actor (:src - 2) % 500 + 1
"""

CALL = r"""SELECT outcome FROM ledger_post(
    'TRANSFER', 'cost', :actor, 'api', {key}, md5(random()::text), {at},
    ARRAY[:src, :dst], ARRAY['TRANSFER_OUT', 'TRANSFER_IN'],
    ARRAY[-:cents / 100.0, :cents / 100.0]::numeric[],
    ARRAY[0, 0]::numeric[], ARRAY[9999999999.99, 9999999999.99]::numeric[],
    ARRAY[{spends}, false], ARRAY[{alert_owner}, NULL]::integer[], ARRAY[true, false],
    {limit_user}, :cents / 100.0, {limit_day}, 10000000.00,
    {total_kinds}, ARRAY[:src % 16, :dst % 16], {bucket},
    {audit_action}, 'account', 'ACC', '{{"amount": "1.00"}}'::json, NULL,
    {answer_key}, {answer_stored}{timezone});
"""

PARTS = ["bare", "+ audit", "+ totals", "+ answer", "+ holds", "+ alerts", "+ limit"]


def script(upto: str, stored_answer: bool = False, timed_by_function: bool = True) -> str:
    """The call with the parts up to ``upto``; ``stored_answer``: as releases before
    migration 0028 called it, with the answer's body to store; ``timed_by_function``: as
    releases since migration 0029 call it, the function taking the time after the locks
    (before, the caller gave the time, the bucket and the day)."""
    on = set(PARTS[:PARTS.index(upto) + 1])
    timing = (dict(at="NULL", limit_day="NULL", bucket="NULL", timezone=", 'UTC'")
              if timed_by_function else
              dict(at="now()", limit_day="current_date",
                   bucket="date_bin('15 minutes', now(), '2000-01-01')", timezone=""))
    return HEADER + CALL.format(
        **timing,
        key="'api:' || md5(random()::text || clock_timestamp()::text)",
        spends="true" if "+ holds" in on else "false",
        alert_owner=":actor" if "+ alerts" in on else "NULL",
        limit_user=":actor" if "+ limit" in on else "NULL",
        total_kinds=("ARRAY['transfer', NULL]::text[]" if "+ totals" in on
                     else "ARRAY[NULL, NULL]::text[]"),
        # The action a transfer records: since migration 0022 on the entry, before in a row.
        audit_action="'ledger.transfer'" if "+ audit" in on else "NULL",
        answer_key="md5(random()::text || clock_timestamp()::text)" if "+ answer" in on
        else "NULL",
        answer_stored=("'transfer', 'fingerprint', '{\"entry_type\": \"TRANSFER\"}'::jsonb, :src"
                       if stored_answer else "NULL, NULL, NULL, NULL"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=apphost.REPO_ROOT)
    parser.add_argument("--server-url", default=apphost.DEFAULT_SERVER_URL)
    parser.add_argument("--duration", type=int, default=8, help="seconds per script")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--one-statement", action="store_true",
                        help="time bench/transfer_one_statement.sql instead (see above)")
    parser.add_argument("--before", type=Path, help="with --one-statement: the checkout to "
                        "compare with (its script on its schema)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.one_statement:
        return one_statement(args)

    log(f"load average {load_bench.load_average()}")
    db_url = apphost.create_database(args.server_url, DATABASE)
    try:
        apphost.migrate(args.app_dir, db_url)
        apphost.seed(db_url, users=USERS, accounts=ACCOUNTS, balance=Decimal("10000.00"),
                     hashed="x")
        load_bench.pgbench_init(args.server_url, 16)
        rows = []
        with tempfile.TemporaryDirectory() as workdir:
            reference = load_bench.pgbench_run(args.server_url, args.clients, args.duration)
            rows.append(("pgbench TPC-B-like", reference))
            for part in PARTS:
                path = Path(workdir) / f"{PARTS.index(part)}.sql"
                path.write_text(script(part))
                result = load_bench.pgbench_run(args.server_url, args.clients, args.duration,
                                                database=DATABASE, script=["-n", "-f", str(path)])
                rows.append((f"ledger_post {part}", result))
                log(f"{part}: {result['tps']:.0f} calls/s")
    finally:
        apphost.drop_database(args.server_url, DATABASE)
        apphost.drop_database(args.server_url, load_bench.PGBENCH_DB)
    print(f"== ledger_post() cost, {args.clients} client(s), {args.duration} s each, "
          f"load average at end {load_bench.load_average()}")
    print(f"{'script':28} {'per s':>8} {'latency ms':>11} {'db cpu ms':>10}")
    for label, result in rows:
        cpu = result["db_cpu_ms"]
        print(f"{label:28} {result['tps']:8.0f} {result['latency_ms']:11.2f} "
              f"{cpu if cpu is not None else float('nan'):10.2f}")
    return 0


def one_statement(args) -> int:
    """The transfer's writes as one statement, on this checkout (and ``--before``), beside
    TPC-B-like, taking turns."""
    checkouts = [("after", args.app_dir)] + ([("before", args.before)] if args.before else [])
    log(f"load average {load_bench.load_average()}")
    scripts = {}
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for label, app_dir in checkouts:
                database = f"{DATABASE}_{label}"
                db_url = apphost.create_database(args.server_url, database)
                apphost.migrate(app_dir, db_url)
                apphost.seed(db_url, users=USERS, accounts=ACCOUNTS,
                             balance=Decimal("10000.00"), hashed="x")
                path = _script_of(app_dir, db_url, Path(workdir), label)
                scripts[label] = (database, path)
                # The same writes as the app sends them: one ledger_post() call with every
                # part an API transfer between two customers has (PARTS' last row).
                call = Path(workdir) / label / "ledger_post.sql"
                call.write_text(script(PARTS[-1], stored_answer=_stores_answers(app_dir),
                                       timed_by_function=_times_postings(app_dir)))
                scripts[f"{label} ledger_post"] = (database, call)
            load_bench.pgbench_init(args.server_url, 16)
            results: dict[str, list[dict]] = {"TPC-B-like": []}
            for round_number in range(args.rounds):
                results["TPC-B-like"].append(
                    load_bench.pgbench_run(args.server_url, args.clients, args.duration))
                for label, (database, path) in scripts.items():
                    result = load_bench.pgbench_run(args.server_url, args.clients,
                                                    args.duration, database=database,
                                                    script=["-n", "-f", str(path)])
                    results.setdefault(label, []).append(result)
                    log(f"round {round_number + 1}, {label}: {result['tps']:.0f} tps")
    finally:
        for label, _ in checkouts:
            apphost.drop_database(args.server_url, f"{DATABASE}_{label}")
        apphost.drop_database(args.server_url, load_bench.PGBENCH_DB)
    print(f"== bench/transfer_one_statement.sql, {args.clients} clients, {args.duration} s "
          f"each, {args.rounds} rounds taking turns, load average at end "
          f"{load_bench.load_average()}")
    print(f"{'script':22} {'round':>5} {'tps':>8} {'x TPC-B':>8} {'db cpu ms':>10} "
          f"{'cpu ratio':>9}")
    for round_number in range(args.rounds):
        reference = results["TPC-B-like"][round_number]
        for label, rows in results.items():
            result = rows[round_number]
            cpu = result["db_cpu_ms"]
            ratio = (reference["db_cpu_ms"] / cpu) if cpu and reference["db_cpu_ms"] else None
            print(f"{label:22} {round_number + 1:5} {result['tps']:8.0f} "
                  f"{result['tps'] / reference['tps']:8.2f} "
                  f"{cpu if cpu is not None else float('nan'):10.2f} "
                  f"{ratio if ratio is not None else float('nan'):9.2f}")
    return 0


def _stores_answers(app_dir: Path) -> bool:
    """Whether ``app_dir``'s release stores each posting's API answer (before 0028)."""
    return not (app_dir / "migrations" / "versions" / "0028_answers_from_entries.py").exists()


def _times_postings(app_dir: Path) -> bool:
    """Whether ``app_dir``'s ``ledger_post()`` takes the posting's time itself (0029)."""
    return (app_dir / "migrations" / "versions" / "0029_postings_timed_after_locks.py").exists()


def _script_of(app_dir: Path, db_url: str, workdir: Path, label: str) -> Path:
    """``app_dir``'s bench/transfer_one_statement.sql, as load_bench.py prepares it."""
    (workdir / label).mkdir()
    saved = load_bench.HERE
    load_bench.HERE = app_dir / "bench"
    try:
        source = load_bench.one_statement_script(db_url, workdir / label)
    finally:
        load_bench.HERE = saved
    return source


if __name__ == "__main__":
    sys.exit(main())

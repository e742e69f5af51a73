"""Benchmark the reports on PostgreSQL at scale: the cost must follow the window, not the table.

    .venv/bin/python bench/reports_bench.py [--accounts 1000000] [--legs 5000000] [--runs 25]
                                            [--keep] [--reuse]

Creates its own database ``bankapp_bench_reports`` on the server at ``BENCH_DATABASE_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``), builds the schema with the
project's migrations, bulk-loads users, accounts, journal entries and ledger legs with
``INSERT … SELECT generate_series`` (never the ORM), ANALYZEs, then calls the real report
functions of ``bankapp.reports.service`` several times each and prints the median and p95
and the ``EXPLAIN (ANALYZE, BUFFERS)`` plan of every query they ran. The database is
dropped at the end unless ``--keep`` (``--reuse`` skips the load when it is still there).

Data: ``--accounts`` customer accounts (two per customer) plus the vault, and ``--legs``
ledger legs spread evenly over the last two years, each journal entry with two legs (a
deposit or withdrawal against the vault, or a transfer between two accounts). The legs of
the "noise" accounts carry arbitrary ``balance_after`` values; ten measured accounts get a
realistic, consistent chain (about 2,000 legs each, about 80 a month) and their stored
balance, which is what the statement and summary read.

Targets (issue 5): one-month statement and 12-month summary < 50 ms, bank-wide day report
over one month < 500 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from config import DevelopmentConfig, normalize_database_url  # noqa: E402

DATABASE = "bankapp_bench_reports"
MEASURED = 10
LEGS_PER_MEASURED = 2000
SPAN_DAYS = 730
TARGETS_MS = {"statement (1 month)": 50, "summary (12 months)": 50,
              "bank day report (1 month)": 500}


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- database


def server_url():
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return make_url(normalize_database_url(url))


def admin_engine():
    return sa.create_engine(server_url().set(database="postgres"), isolation_level="AUTOCOMMIT")


def database_exists(admin) -> bool:
    with admin.connect() as conn:
        return bool(conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": DATABASE}).scalar())


def recreate_database(admin) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')


def drop_database(admin) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def make_app():
    from bankapp import create_app

    class BenchConfig(DevelopmentConfig):
        SQLALCHEMY_DATABASE_URI = server_url().set(database=DATABASE).render_as_string(
            hide_password=False)
        SECRET_KEY = "bench-only"
        BANK_TIMEZONE = os.environ.get("BANK_TIMEZONE", "America/New_York")
        RATELIMIT_STORAGE_URI = "memory://"
        LOG_LEVEL = "WARNING"

    return create_app(BenchConfig)


# ---------------------------------------------------------------- load

TABLES = ("users", "accounts", "journal_entries", "transactions")
ANALYZED = TABLES + ("ledger_totals",)


def has_column(conn, table: str, column: str) -> bool:
    """Does the schema the data set is loaded at have ``table.column``?"""
    return conn.execute(sa.text(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_name = :table AND column_name = :column)"),
        {"table": table, "column": column}).scalar()


def ledger_totals_from_legs(conn) -> str:
    """``LEDGER_TOTALS_FROM_LEGS``, with each bucket's largest movement where the schema keeps
    it (migration 0023). A schema from before 0023 gets every bucket's shard rows unfolded:
    no job folded them then (its upgrade backfills the maxima shard by shard)."""
    if not has_column(conn, "ledger_totals", "max_amount"):
        return LEDGER_TOTALS_FROM_LEGS.replace(
            "CASE WHEN timestamp < date_trunc('day', now()) THEN 0 ELSE account_id % :shards END",
            "account_id % :shards")
    return (LEDGER_TOTALS_FROM_LEGS.replace("amount, movements)", "amount, movements, max_amount)")
            .replace("sum(amount), count(*)", "sum(amount), count(*), max(amount)"))


# What the ledger keeps as it posts (bankapp/ledger/totals.py), built from the legs in one
# pass (also used by scale_bench.py); :shards is bankapp.ledger.totals.SHARDS. The shard rows
# of days before today are folded into one (shard 0), as the daily `fold-ledger-totals` job
# leaves them (fine for code before that job: it adds the shards up).
LEDGER_TOTALS_FROM_LEGS = """
    INSERT INTO ledger_totals (bucket, kind, shard, amount, movements)
    SELECT date_bin('15 minutes', timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           CASE transaction_type WHEN 'DEPOSIT' THEN 'deposit'
                WHEN 'WITHDRAWAL' THEN 'withdrawal' ELSE 'transfer' END,
           CASE WHEN timestamp < date_trunc('day', now()) THEN 0 ELSE account_id % :shards END,
           sum(amount), count(*)
    FROM transactions
    WHERE (transaction_type = 'DEPOSIT' AND side = 'credit')
       OR (transaction_type = 'WITHDRAWAL' AND side = 'debit')
       OR (transaction_type = 'TRANSFER_OUT' AND side = 'debit')
    GROUP BY 1, 2, 3
"""


def secondary_structures(conn, tables=TABLES):
    """Unique/foreign-key constraints and non-primary indexes of ``tables``, which a bulk load
    drops first and rebuilds once after (also used by scale_bench.py)."""
    constraints = conn.execute(sa.text("""
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c
        WHERE c.conrelid::regclass::text = ANY(:tables) AND c.contype IN ('u', 'f')
        ORDER BY c.contype DESC
    """), {"tables": list(tables)}).all()
    indexes = conn.execute(sa.text("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid::regclass::text = ANY(:tables) AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    """), {"tables": list(tables)}).all()
    return constraints, indexes


def load(engine, accounts: int, legs: int) -> dict:
    """Bulk-load the data set; return the row counts."""
    noise_accounts = accounts - MEASURED
    vault = accounts + 1
    customers = accounts // 2
    noise_entries = legs // 2
    timings = {}
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        constraints, indexes = secondary_structures(conn)
        # Bulk loads are much faster into bare tables: drop the secondary structures, load,
        # then rebuild them once (sorted builds, one validation pass per foreign key).
        for table, name, _definition, contype in constraints:
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        params = {"customers": customers, "accounts": accounts, "noise": noise_accounts,
                  "vault": vault, "entries": noise_entries, "span": SPAN_DAYS,
                  "measured": MEASURED, "per": LEGS_PER_MEASURED}
        conn.exec_driver_sql("CREATE TEMP TABLE bench_clock AS SELECT "
                             f"date_trunc('day', now()) - interval '{SPAN_DAYS} days' AS t0")

        started = time.perf_counter()
        conn.execute(sa.text("""
            INSERT INTO users (id, email, password_hash, first_name, last_name, is_verified,
                               role, is_active, session_token, created_at, updated_at)
            SELECT g, 'customer' || g || '@bench.example', 'not-a-hash', 'Bench',
                   'Customer ' || g, true, 'customer', true, md5(g::text),
                   t0 + (g::float8 / :customers) * (:span * interval '1 day'),
                   t0 + (g::float8 / :customers) * (:span * interval '1 day')
            FROM generate_series(1, :customers) g, bench_clock
        """), params)
        conn.execute(sa.text("""
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  created_at)
            SELECT g, 'ACC-' || lpad(g::text, 9, '0'),
                   CASE WHEN g % 2 = 0 THEN 'SAVINGS' ELSE 'CHECKING' END,
                   (g + 1) / 2, 0,
                   CASE WHEN g % 100 = 7 THEN 'frozen' WHEN g % 100 = 9 THEN 'closed'
                        ELSE 'active' END,
                   t0 + (g::float8 / :accounts) * (:span * interval '1 day')
            FROM generate_series(1, :accounts) g, bench_clock
        """), params)
        conn.execute(sa.text("""
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  name, created_at)
            SELECT :vault, 'GL-VAULT', 'VAULT', NULL, 0, 'active', 'Vault cash', t0
            FROM bench_clock
        """), params)
        timings["users+accounts"] = time.perf_counter() - started

        started = time.perf_counter()
        # Entries in time order, as an append-only ledger writes them: 40 % deposits,
        # 20 % withdrawals, 40 % transfers.
        conn.execute(sa.text("""
            INSERT INTO journal_entries (id, reference, entry_type, description, channel,
                                         created_at)
            SELECT g, md5(g::text),
                   CASE WHEN g % 10 < 4 THEN 'DEPOSIT' WHEN g % 10 < 6 THEN 'WITHDRAWAL'
                        ELSE 'TRANSFER' END,
                   '', 'web',
                   t0 + (g::float8 / :entries) * (:span * interval '1 day')
            FROM generate_series(1, :entries) g, bench_clock
        """), params)
        # Two legs per entry; amounts and accounts derived from the entry id so both legs
        # agree. balance_after is arbitrary here (see the module docstring).
        conn.execute(sa.text("""
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT 2 * e.id - 1 + k, e.id,
                   CASE WHEN k = 0 THEN 1 + (e.id::bigint * 2654435761) % :noise
                        WHEN e.entry_type = 'TRANSFER' THEN 1 + (e.id::bigint * 40503 + 7) % :noise
                        ELSE :vault END,
                   CASE WHEN e.entry_type <> 'TRANSFER' THEN e.entry_type
                        WHEN k = 0 THEN 'TRANSFER_OUT' ELSE 'TRANSFER_IN' END,
                   CASE WHEN (e.entry_type = 'WITHDRAWAL' OR e.entry_type = 'TRANSFER') = (k = 0)
                        THEN 'debit' ELSE 'credit' END,
                   ((e.id::bigint * 7919) % 50000 + 1) / 100.0,
                   ((e.id::bigint * 7919) % 50000 + 1) / 100.0,
                   e.created_at, ''
            FROM journal_entries e CROSS JOIN (VALUES (0), (1)) AS legs(k)
        """), params)
        timings["noise entries+legs"] = time.perf_counter() - started

        started = time.perf_counter()
        # The measured accounts: a consistent chain over two years. Every movement is its
        # own entry: a leg on the account and the counter-leg on the vault or a noise account.
        conn.execute(sa.text("""
            CREATE TEMP TABLE bench_moves AS
            SELECT m, i,
                   :entries + (m - 1) * :per + i AS entry_id,
                   :noise + m AS account_id,
                   CASE WHEN i = 1 THEN 'DEPOSIT'
                        WHEN (i * 31 + m) % 20 < 6 THEN 'DEPOSIT'
                        WHEN (i * 31 + m) % 20 < 11 THEN 'WITHDRAWAL'
                        WHEN (i * 31 + m) % 20 < 15 THEN 'TRANSFER_IN'
                        ELSE 'TRANSFER_OUT' END AS kind,
                   CASE WHEN i = 1 THEN 5000.00
                        ELSE ((i * 7919 + m * 104729) % 20000 + 1) / 100.0 END AS amount,
                   t0 + ((i - 0.5)::float8 / :per) * (:span * interval '1 day') AS ts
            FROM generate_series(1, :measured) m, generate_series(1, :per) i, bench_clock
        """), params)
        conn.exec_driver_sql("""
            INSERT INTO journal_entries (id, reference, entry_type, description, channel,
                                         created_at)
            SELECT entry_id, md5('m' || entry_id),
                   CASE WHEN kind IN ('TRANSFER_IN', 'TRANSFER_OUT') THEN 'TRANSFER' ELSE kind END,
                   'Measured ' || lower(kind), 'web', ts
            FROM bench_moves
        """)
        conn.execute(sa.text("""
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT 2 * entry_id - 1, entry_id, account_id, kind,
                   CASE WHEN kind IN ('DEPOSIT', 'TRANSFER_IN') THEN 'credit' ELSE 'debit' END,
                   amount,
                   sum(CASE WHEN kind IN ('DEPOSIT', 'TRANSFER_IN') THEN amount ELSE -amount END)
                       OVER (PARTITION BY account_id ORDER BY ts, entry_id),
                   ts, 'Measured ' || lower(kind)
            FROM bench_moves
            UNION ALL
            SELECT 2 * entry_id, entry_id,
                   CASE WHEN kind IN ('TRANSFER_IN', 'TRANSFER_OUT') THEN 1 + (entry_id * 2654435761) % :noise
                        ELSE :vault END,
                   CASE kind WHEN 'TRANSFER_IN' THEN 'TRANSFER_OUT'
                             WHEN 'TRANSFER_OUT' THEN 'TRANSFER_IN' ELSE kind END,
                   CASE WHEN kind IN ('DEPOSIT', 'TRANSFER_IN') THEN 'debit' ELSE 'credit' END,
                   amount, amount, ts, 'Measured ' || lower(kind)
            FROM bench_moves
        """), params)
        conn.execute(sa.text("""
            UPDATE accounts a SET balance = t.balance_after
            FROM (SELECT DISTINCT ON (account_id) account_id, balance_after FROM transactions
                  WHERE account_id > :noise AND account_id <= :accounts
                  ORDER BY account_id, timestamp DESC, id DESC) t
            WHERE a.id = t.account_id
        """), params)
        timings["measured chains"] = time.perf_counter() - started

        started = time.perf_counter()
        # What the ledger keeps as it posts (bankapp/ledger/totals.py), built in one pass.
        # sa.text, not exec_driver_sql: the modulo's "%" must reach psycopg2 escaped.
        from bankapp.ledger.totals import SHARDS

        conn.execute(sa.text(ledger_totals_from_legs(conn)), {"shards": SHARDS})
        timings["ledger totals"] = time.perf_counter() - started

        started = time.perf_counter()
        for name, definition in indexes:
            conn.exec_driver_sql(definition)
        for table, name, definition, contype in reversed(constraints):
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in TABLES:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))")
        timings["indexes+constraints"] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ANALYZED:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    timings["vacuum analyze"] = time.perf_counter() - started
    for step, seconds in timings.items():
        log(f"  {step:<22} {seconds:7.1f} s")
    return timings


def sizes(engine) -> None:
    with engine.connect() as conn:
        for table in ANALYZED:
            count = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            size = conn.exec_driver_sql(
                f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))").scalar()
            log(f"  {table:<16} {count:>12,} rows  {size:>9} with indexes")
        total = conn.exec_driver_sql(
            f"SELECT pg_size_pretty(pg_database_size('{DATABASE}'))").scalar()
        log(f"  database size    {total}")


# ---------------------------------------------------------------- measuring


class QueryLog:
    """Collects the SQL a report runs, to EXPLAIN it afterwards with the same parameters."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.active and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append((statement, parameters))

    def capture(self, function):
        self.statements, self.active = [], True
        try:
            function()
        finally:
            self.active = False
        return list(self.statements)


def explain(engine, statements) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for number, (statement, parameters) in enumerate(statements, 1):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            log(f"  -- query {number}:")
            for (line,) in cursor.fetchall():
                log("     " + line)
        raw.rollback()
    finally:
        raw.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure(name: str, calls, runs: int, queries: QueryLog, engine, results: dict) -> None:
    for call in calls[:2]:  # warm-up: caches and the plan of every query
        call()
    samples = []
    for run in range(runs):
        started = time.perf_counter()
        calls[run % len(calls)]()
        samples.append((time.perf_counter() - started) * 1000)
    median, p95 = statistics.median(samples), percentile(samples, 0.95)
    results[name] = (median, p95)
    target = TARGETS_MS.get(name)
    verdict = "" if target is None else (" OK" if p95 < target else f" OVER the {target} ms target")
    log(f"\n== {name}: median {median:.1f} ms, p95 {p95:.1f} ms over {runs} runs "
        f"(target < {target} ms){verdict}" if target else
        f"\n== {name}: median {median:.1f} ms, p95 {p95:.1f} ms over {runs} runs")
    explain(engine, queries.capture(calls[0]))


def run_reports(app, runs: int, accounts: int) -> dict:
    from bankapp.extensions import db
    from bankapp.models import Account
    from bankapp.reports import service

    results = {}
    with app.app_context():
        engine = db.engine
        queries = QueryLog(engine)
        measured = list(db.session.scalars(
            sa.select(Account).where(Account.id > accounts - MEASURED, Account.id <= accounts)
            .order_by(Account.id)))
        today = service.local_today()
        months = [service.add_months(today, -k) for k in range(1, 13)]
        periods = [(m, service.add_months(m, 1) - timedelta(days=1)) for m in months]

        def statement_call(i):
            account = measured[i % len(measured)]
            start, end = periods[i % len(periods)]
            return lambda: (service.statement(account, start, end), db.session.rollback())

        def summary_call(i):
            account = measured[i % len(measured)]
            return lambda: (service.monthly_summary(account, 12), db.session.rollback())

        def day_report_call(i):
            start, end = periods[i % 3]
            period = service.Period(start, end)
            return lambda: (service.daily_totals(period), db.session.rollback())

        def bank_page_call(i):
            start, end = periods[i % 3]
            period = service.Period(start, end)
            return lambda: (service.bank_report(period), db.session.rollback())

        sample = service.statement(measured[0], *periods[0])
        log(f"\nsample statement {measured[0].account_number} {periods[0][0]}..{periods[0][1]}: "
            f"{len(sample.entries)} entries, opening {sample.opening}, closing {sample.closing}, "
            f"adds up: {sample.balanced}")
        measure("statement (1 month)", [statement_call(i) for i in range(20)], runs, queries,
                engine, results)
        measure("summary (12 months)", [summary_call(i) for i in range(10)], runs, queries,
                engine, results)
        measure("bank day report (1 month)", [day_report_call(i) for i in range(3)], runs,
                queries, engine, results)
        measure("whole bank page (1 month, all five tables)",
                [bank_page_call(i) for i in range(3)], max(5, runs // 3), queries, engine,
                results)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--legs", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a kept database instead of loading it again")
    args = parser.parse_args()

    admin = admin_engine()
    app = make_app()
    reuse = args.reuse and database_exists(admin)
    try:
        if not reuse:
            from flask_migrate import upgrade

            from bankapp.extensions import db

            log(f"creating {DATABASE} and migrating it")
            recreate_database(admin)
            with app.app_context():
                upgrade()
                log(f"loading {args.accounts:,} accounts and about {args.legs:,} legs")
                started = time.perf_counter()
                load(db.engine, args.accounts, args.legs)
                log(f"  load total             {time.perf_counter() - started:7.1f} s")
        with app.app_context():
            from bankapp.extensions import db

            sizes(db.engine)
        results = run_reports(app, args.runs, args.accounts)
    finally:
        with app.app_context():
            from bankapp.extensions import db

            db.engine.dispose()
        if not args.keep:
            drop_database(admin)
            log(f"\ndropped {DATABASE} (use --keep to keep it)")
    load_average = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    log(f"\nsummary ({os.cpu_count()} CPUs, load average {load_average}; times are wall-clock in the "
        "calling process, so they include Python and the round trips):")
    failed = False
    for name, (median, p95) in results.items():
        target = TARGETS_MS.get(name)
        ok = target is None or p95 < target
        failed |= not ok
        log(f"  {name:<45} median {median:7.1f} ms  p95 {p95:7.1f} ms"
            + (f"  target < {target} ms {'OK' if ok else 'MISSED'}" if target else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

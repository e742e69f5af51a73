"""A year of a 100,000-customer bank on one PostgreSQL: every page and API read, timed.

    .venv/bin/python bench/scale_bench.py [--customers 100000] [--legs 20000000] [--runs 15]
                                          [--loans N] [--keep] [--reuse] [--skip-jobs]
                                          [--skip-posting]

``make bench-scale`` runs it at full size. A quick check: ``--customers 2000 --legs 200000``.

1. Creates ``bankapp_bench_scale`` on BENCH_DATABASE_URL's server (as ``reports_bench.py``
   does, whose helpers it reuses), migrates it, and loads in bulk SQL (``generate_series``,
   never the ORM) a year of a bank: ``--customers`` customers with a checking and a savings
   account each, about ``--legs`` ledger legs (journal entries with their legs, every
   ``balance_after`` a true running balance, every balance its last leg, the book summing
   to zero, ``ledger_totals`` built from the legs), ten busy accounts of customer 1 with
   2,500 legs each (their history has 100 pages), 1,000,000 audit rows, three payees and
   two sessions per customer, 50,000 standing orders, 20,000 holds, 500 postings waiting
   for approval, and ``--loans`` (``--customers / 10``) disbursed loans with their
   schedules, repayments and loan accounts. Prints the time of each step and the
   database's disk size.
2. Times every page as its role opens it (the Flask test client signed in as customer 1,
   a teller or an admin; the API with a bearer token): median and p95 over ``--runs``,
   the number of SQL statements it sent (an SQLAlchemy event listener), and the
   ``EXPLAIN (ANALYZE, BUFFERS)`` of its slowest statement.
3. CPU per API transfer (worker: ``time.process_time``; PostgreSQL: the backends' utime +
   stime from /proc) on this bank and on a small one (``--small-legs`` legs) made the same
   way in the same run.
4. ``flask post-interest`` for last month over every account, then ``flask run-scheduled``
   with every standing order due (they change the data, so they run last): the rows each
   added per second and the job's CPU per row; with ``--jobs-before-app-dir`` another
   checkout's jobs run first, for ``--job-seconds`` each, and this one's go on from there.

The database is dropped at the end unless ``--keep`` (``--reuse`` skips the load when a kept
one is there). Exit status 0 unless the load or a page fails outright: the 50 ms target is
reported, not enforced.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

import apphost  # noqa: E402
from apphost import log  # noqa: E402
from reports_bench import (  # noqa: E402
    has_column,
    ledger_totals_from_legs,
    secondary_structures,
)

DATABASE = "bankapp_bench_scale"
SMALL_DATABASE = "bankapp_bench_scale_small"
TARGET_MS = 50
SPAN_DAYS = 365
BUSY = 10
BUSY_MOVES = 2500
TELLERS = 5
FIRST_NAMES = ("Ada", "Bola", "Chen", "Dara", "Emeka", "Fatima", "Grace", "Hugo", "Ines", "Jomo",
               "Kofi", "Lena", "Mario", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sani", "Tomas")
LAST_NAMES = ("Smith", "Okafor", "Wang", "Mensah", "Garcia", "Kamau", "Dubois", "Novak", "Silva",
              "Haddad", "Kowalski", "Otieno", "Rossi", "Tanaka", "Moreau", "Ivanova", "Mwangi",
              "Nguyen", "Schmidt", "Adeyemi", "Bianchi", "Lopez", "Petrov", "Sato", "Dlamini")
DESCRIPTIONS = ("Rent", "Groceries", "Electricity bill", "Dinner", "Gym", "Books", "Phone bill",
                "Insurance")


# ---------------------------------------------------------------- layout of the data


class Layout:
    """Which ids hold what, derived from the scale (the SQL and the pages agree through it)."""

    def __init__(self, customers: int, legs: int, loans: int | None = None):
        self.customers = customers
        self.pairs = customers  # account a (1..P) trades with one of P+1..2P each step
        self.accounts = 2 * customers
        # Per ten steps: eight transfer steps (2 legs) and a deposit and a withdrawal step
        # (4 legs each: both accounts of the pair): 24 legs per pair.
        self.steps = max(10, -(-legs // (self.pairs * 24)) * 10)
        # Customer 1's busy accounts: 100 pages of history at full size, a few on a small bank.
        self.busy_moves = BUSY_MOVES if legs >= 1_000_000 else 50
        self.vault = self.accounts + 1
        self.busy_first = self.vault + 1  # customer 1's busy accounts
        self.counter_first = self.busy_first + BUSY  # customer 2's accounts they trade with
        self.loans = loans or max(10, customers // 10)
        self.payout_first = self.counter_first + BUSY  # a borrower's account per loan
        self.loan_account_first = self.payout_first + self.loans
        self.loan_interest = self.loan_account_first + self.loans
        self.regular_entries = 2 * (self.steps + 1) * self.pairs
        self.busy_entry_first = self.regular_entries + 1
        self.loan_entry_first = self.busy_entry_first + BUSY * (self.busy_moves + 2)
        self.tellers = [customers + 1 + i for i in range(TELLERS)]
        self.admin = customers + TELLERS + 1
        self.audit = min(1_000_000, 10 * customers)
        self.holds = min(20_000, self.accounts // 10)

    def params(self) -> dict:
        return {"customers": self.customers, "P": self.pairs, "A": self.accounts,
                "L": self.steps, "span": SPAN_DAYS, "vault": self.vault,
                "busy_first": self.busy_first, "counter_first": self.counter_first,
                "busy": BUSY, "moves": self.busy_moves, "loans": self.loans,
                "payout_first": self.payout_first, "loan_account_first": self.loan_account_first,
                "loan_interest": self.loan_interest, "busy_entry_first": self.busy_entry_first,
                "loan_entry_first": self.loan_entry_first, "teller": self.tellers[0],
                "admin": self.admin, "nfirst": len(FIRST_NAMES), "nlast": len(LAST_NAMES),
                "ndesc": len(DESCRIPTIONS), "audit": self.audit, "holds": self.holds}


LOADED = ("users", "accounts", "journal_entries", "transactions", "ledger_totals",
          "audit_events", "payees", "scheduled_orders", "holds", "user_sessions",
          "pending_postings", "loan_products", "loans", "loan_instalments", "loan_repayments",
          "interest_rates")

# The regular year: for pair (a, step j), k = (j+1)/2 picks the partner and the amount.
# Step 0 opens both accounts; j%10 = 3 deposits x into both, j%10 = 4 takes it back out;
# other odd steps send x from a to its partner, the even step after sends it back. So
# every balance_after has a closed form and each account is back at its opening at the end.
REGULAR = """
    SELECT j, a, s,
           2 * (j * :P + a - 1) + s AS entry_id,
           CASE WHEN j = 0 THEN 'open' WHEN j % 10 = 3 THEN 'deposit'
                WHEN j % 10 = 4 THEN 'withdrawal' WHEN j % 2 = 1 THEN 'out' ELSE 'back' END
               AS kind,
           CASE WHEN j = 0 THEN (CASE WHEN s = 1 THEN a ELSE :P + a END)
                WHEN s = 1 THEN a
                ELSE :P + 1 + (a - 1 + ((j + 1) / 2) * 7919) % :P END AS acc,
           :P + 1 + (a - 1 + ((j + 1) / 2) * 7919) % :P AS partner,
           ((a::bigint * 7919 + ((j + 1) / 2) * 104729) % 50000 + 100) / 100.0 AS x,
           t0 + ((j + (a - 1)::float8 / :P) / (:L + 1)) * (:span * interval '1 day') AS ts
    FROM generate_series(0, :L) j, generate_series(1, :P) a, generate_series(1, 2) s,
         bench_clock
    WHERE s = 1 OR j = 0 OR j % 10 IN (3, 4)
"""
OPENING = "(1000 + ((%s::bigint * 7919) %% 900000) / 100.0)"


def opening(column: str) -> str:
    return (OPENING % column).replace("%%", "%")


def load(engine, layout: Layout) -> None:
    """Bulk-load the bank (see the module docstring); print each step's time."""
    from bankapp.audit import Action
    from bankapp.ledger.totals import SHARDS

    params = layout.params()
    actions = sorted({value for name, value in vars(Action).items()
                      if name.isupper() and isinstance(value, str)})
    steps = []

    def step(name, sql, extra=None):
        started = time.perf_counter()
        conn.execute(sa.text(sql), {**params, **(extra or {})})
        steps.append((name, time.perf_counter() - started))
        log(f"  {name:<34} {steps[-1][1]:7.1f} s")

    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        started = time.perf_counter()
        constraints, indexes = secondary_structures(conn, LOADED)
        for table, name, _definition, _contype in constraints:
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        conn.exec_driver_sql("CREATE TEMP TABLE bench_clock AS SELECT "
                             f"date_trunc('day', now()) - interval '{SPAN_DAYS} days' AS t0, "
                             "current_date AS today")
        steps.append(("drop secondary indexes", time.perf_counter() - started))
        hashed = PASSWORD_HASH[0]
        step("users", f"""
            INSERT INTO users (id, email, password_hash, first_name, last_name, phone_number,
                               is_verified, role, is_active, session_token, created_at,
                               updated_at, token_version, mfa_enabled)
            SELECT g,
                   CASE WHEN g <= :customers THEN 'customer' || g || '@bench.example'
                        WHEN g = :admin THEN 'admin@bench.example'
                        ELSE 'teller' || g || '@bench.example' END,
                   :hash,
                   (ARRAY{list(FIRST_NAMES)!r})[1 + g % :nfirst],
                   (ARRAY{list(LAST_NAMES)!r})[1 + (g / :nfirst) % :nlast],
                   '+4477' || lpad(g::text, 8, '0'), true,
                   CASE WHEN g <= :customers THEN 'customer' WHEN g = :admin THEN 'admin'
                        ELSE 'teller' END,
                   true, md5(g::text), t0, t0, 0, false
            FROM generate_series(1, :admin) g, bench_clock
        """, {"hash": hashed})
        step("accounts", """
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  created_at)
            SELECT g, 'ACC-' || lpad(g::text, 9, '0'),
                   CASE WHEN g % 2 = 0 THEN 'SAVINGS' ELSE 'CHECKING' END, (g + 1) / 2,
                   """ + opening("g") + """, 'active', t0
            FROM generate_series(1, :A) g, bench_clock;
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  name, created_at)
            SELECT :vault, 'GL-VAULT', 'VAULT', NULL, 0, 'active', 'Vault cash', t0
            FROM bench_clock;
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  created_at)
            SELECT g, 'ACC-' || lpad(g::text, 9, '0'), 'CHECKING',
                   CASE WHEN g < :counter_first THEN 1 ELSE 2 END, 0, 'active', t0
            FROM generate_series(:busy_first, :counter_first + :busy - 1) g, bench_clock;
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  created_at)
            SELECT :payout_first + l - 1, 'ACC-' || lpad((:payout_first + l - 1)::text, 9, '0'),
                   'CHECKING', 1 + (l::bigint * 37) % :customers, 0, 'active', t0
            FROM generate_series(1, :loans) l, bench_clock;
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  name, created_at)
            SELECT :loan_account_first + l - 1, 'LN-' || lpad(l::text, 8, '0'), 'LOAN', NULL, 0,
                   'active', 'Loan ' || l, t0
            FROM generate_series(1, :loans) l, bench_clock;
            INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                  name, created_at)
            SELECT :loan_interest, 'GL-LOAN-INTEREST', 'INCOME', NULL, 0, 'active',
                   'Loan interest', t0 FROM bench_clock
        """)
        # From migration 0022 on, a customer's deposit, withdrawal or transfer is its own
        # audit line (bankapp/audit/trail.py): its entry names the action.
        entry_audit = ("" if not has_column(conn, "journal_entries", "audit_action") else """,
                   CASE kind WHEN 'open' THEN NULL WHEN 'deposit' THEN 'ledger.deposit'
                             WHEN 'withdrawal' THEN 'ledger.withdrawal'
                             WHEN 'out' THEN 'ledger.transfer' WHEN 'back' THEN 'ledger.transfer'
                   END""")
        step("journal entries (regular)", """
            INSERT INTO journal_entries (id, reference, entry_type, description, actor_id,
                                         channel, created_at""" + (", audit_action" if entry_audit
                                                                   else "") + """)
            SELECT entry_id, md5(entry_id::text),
                   CASE kind WHEN 'open' THEN 'DEPOSIT' WHEN 'deposit' THEN 'DEPOSIT'
                             WHEN 'withdrawal' THEN 'WITHDRAWAL' ELSE 'TRANSFER' END,
                   CASE WHEN kind IN ('out', 'back') THEN
                        (ARRAY['Rent','Groceries','Electricity bill','Dinner','Gym','Books',
                               'Phone bill','Insurance'])[1 + (a + j) % 8]
                        ELSE '' END,
                   CASE WHEN kind IN ('out', 'back') THEN (acc + 1) / 2 ELSE :teller END,
                   CASE WHEN kind IN ('out', 'back') THEN 'web' ELSE 'teller' END, ts""" + entry_audit + """
            FROM (""" + REGULAR + """) m
        """)
        # The customer legs: balance_after in closed form (see REGULAR).
        step("ledger legs (regular customers)", """
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT 2 * entry_id - 1 + leg, entry_id,
                   CASE WHEN leg = 0 THEN acc ELSE partner END,
                   CASE WHEN kind IN ('open', 'deposit') THEN 'DEPOSIT'
                        WHEN kind = 'withdrawal' THEN 'WITHDRAWAL'
                        WHEN (kind = 'out') = (leg = 0) THEN 'TRANSFER_OUT'
                        ELSE 'TRANSFER_IN' END,
                   CASE WHEN kind IN ('open', 'deposit') THEN 'credit'
                        WHEN kind = 'withdrawal' THEN 'debit'
                        WHEN (kind = 'out') = (leg = 0) THEN 'debit' ELSE 'credit' END,
                   CASE WHEN kind = 'open' THEN """ + opening("acc") + """ ELSE x END,
                   CASE WHEN kind IN ('open', 'withdrawal') OR kind = 'back'
                            THEN """ + opening("CASE WHEN leg = 0 THEN acc ELSE partner END") + """
                        WHEN kind = 'deposit' THEN """ + opening("acc") + """ + x
                        WHEN leg = 0 THEN """ + opening("acc") + """ - x
                        ELSE """ + opening("partner") + """ + x END,
                   ts,
                   CASE WHEN kind IN ('out', 'back') THEN
                        (ARRAY['Rent','Groceries','Electricity bill','Dinner','Gym','Books',
                               'Phone bill','Insurance'])[1 + (a + j) % 8]
                        WHEN kind = 'withdrawal' THEN 'Cash withdrawal' ELSE 'Cash deposit' END
            FROM (""" + REGULAR + """) m,
                 generate_series(0, CASE WHEN kind IN ('out', 'back') THEN 1 ELSE 0 END) leg
        """)
        # Customer 1's busy accounts trade with customer 2's counter accounts: money in on
        # odd moves, 90 % of it back out on even ones; the counter account mirrors.
        step("busy accounts (entries)", """
            CREATE TEMP TABLE bench_busy AS
            SELECT b, m, :busy_entry_first + (b - 1) * (:moves + 2) + m AS entry_id,
                   :busy_first + b - 1 AS busy, :counter_first + b - 1 AS counter,
                   CASE WHEN m = 0 THEN 5000.00 WHEN m % 2 = 1
                        THEN ((m::bigint * 7919 + b * 104729) % 20000 + 100) / 100.0
                        ELSE floor(((((m - 1)::bigint * 7919 + b * 104729) % 20000 + 100)
                                    / 100.0) * 90) / 100.0 END AS amount,
                   t0 + ((m + 0.5) / (:moves + 2)) * (:span * interval '1 day') AS ts
            FROM generate_series(1, :busy) b, generate_series(0, :moves) m, bench_clock;
            INSERT INTO journal_entries (id, reference, entry_type, description, actor_id,
                                         channel, created_at)
            SELECT entry_id, md5(entry_id::text),
                   CASE WHEN m = 0 THEN 'DEPOSIT' ELSE 'TRANSFER' END,
                   CASE WHEN m = 0 THEN '' WHEN m % 2 = 1 THEN 'Invoice ' || m
                        ELSE 'Supplier ' || m END,
                   CASE WHEN m = 0 THEN :teller WHEN m % 2 = 1 THEN 2 ELSE 1 END,
                   CASE WHEN m = 0 THEN 'teller' ELSE 'web' END, ts
            FROM bench_busy;
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT 4 * entry_id + leg, entry_id,
                   CASE WHEN leg = 0 THEN busy ELSE counter END,
                   CASE WHEN m = 0 THEN 'DEPOSIT'
                        WHEN (m % 2 = 1) = (leg = 0) THEN 'TRANSFER_IN' ELSE 'TRANSFER_OUT' END,
                   CASE WHEN m = 0 OR (m % 2 = 1) = (leg = 0) THEN 'credit' ELSE 'debit' END,
                   CASE WHEN m = 0 AND leg = 1 THEN 1000000.00 ELSE amount END,
                   CASE WHEN leg = 0 THEN running ELSE 1000000.00 - (running - 5000.00) END,
                   ts, CASE WHEN m = 0 THEN 'Cash deposit' WHEN m % 2 = 1 THEN 'Invoice ' || m
                            ELSE 'Supplier ' || m END
            FROM (SELECT *, sum(CASE WHEN m % 2 = 1 OR m = 0 THEN amount ELSE -amount END)
                              OVER (PARTITION BY b ORDER BY m) AS running
                  FROM bench_busy) r,
                 generate_series(0, 1) leg
        """)
        step("loans, schedules, repayments", """
            INSERT INTO loan_products (id, name, currency, principal_min, principal_max,
                                       term_min, term_max, frequency, annual_rate, amortisation,
                                       grace_days, late_fee_kind, late_fee, disbursement_fee,
                                       active, created_by_id, created_at)
            SELECT 1, 'Personal loan', 'USD', 500, 50000, 3, 60, 'monthly', 9.5,
                   'equal_principal', 5, 'flat', 10, 0, true, :admin, t0 FROM bench_clock;
            CREATE TEMP TABLE bench_loans AS
            SELECT l, 1 + (l::bigint * 37) % :customers AS borrower,
                   :payout_first + l - 1 AS payout, :loan_account_first + l - 1 AS loan_account,
                   (1000 + (l::bigint * 7919) % 49000)::numeric(12, 2) AS principal,
                   today - ((l * 13) % 330) AS disbursed_on,
                   :loan_entry_first + 2 * (l - 1) AS payout_entry,
                   :loan_entry_first + 2 * (l - 1) + 1 AS repayment_entry
            FROM generate_series(1, :loans) l, bench_clock;
            INSERT INTO loans (id, product_id, borrower_id, account_id, loan_account_id,
                               principal, term, purpose, frequency, annual_rate, amortisation,
                               grace_days, late_fee_kind, late_fee, disbursement_fee, status,
                               needs_admin, decided_by_id, decided_at, disbursed_on,
                               disbursement_entry_id, version, created_at)
            SELECT l, 1, borrower, payout, loan_account, principal, 12, 'Car', 'monthly', 9.5,
                   'equal_principal', 5, 'flat', 10, 0, 'active', false, :teller,
                   disbursed_on - 1, disbursed_on, payout_entry, 1, disbursed_on - 2
            FROM bench_loans;
            INSERT INTO loan_instalments (loan_id, number, due_on, principal_due, interest_due,
                                          fee_due, principal_paid, interest_paid, fee_paid)
            SELECT l, n, (disbursed_on + n * interval '1 month')::date, due, interest, 0,
                   CASE WHEN paid THEN due ELSE 0 END, CASE WHEN paid THEN interest ELSE 0 END, 0
            FROM (SELECT l, n, disbursed_on,
                         CASE WHEN n < 12 THEN round(principal / 12, 2)
                              ELSE principal - 11 * round(principal / 12, 2) END AS due,
                         round((principal - (n - 1) * round(principal / 12, 2)) * 0.095 / 12, 2)
                             AS interest,
                         (disbursed_on + n * interval '1 month')::date < today AND l % 20 <> 0
                             AS paid
                  FROM bench_loans, generate_series(1, 12) n, bench_clock) s;
            CREATE TEMP TABLE bench_paid AS
            SELECT b.*, sum(i.principal_paid) AS principal_paid,
                   sum(i.interest_paid) AS interest_paid
            FROM bench_loans b JOIN loan_instalments i ON i.loan_id = b.l GROUP BY b.l, b.borrower,
                 b.payout, b.loan_account, b.principal, b.disbursed_on, b.payout_entry,
                 b.repayment_entry;
            INSERT INTO journal_entries (id, reference, entry_type, description, actor_id,
                                         channel, created_at)
            SELECT payout_entry, md5(payout_entry::text), 'LOAN_DISBURSEMENT', 'Loan ' || l,
                   :teller, 'teller', disbursed_on + time '10:00' FROM bench_paid
            UNION ALL
            SELECT repayment_entry, md5(repayment_entry::text), 'LOAN_REPAYMENT',
                   'Loan ' || l, NULL, 'system', today - 1 + time '06:00'
            FROM bench_paid, bench_clock WHERE principal_paid > 0;
            INSERT INTO loan_repayments (loan_id, entry_id, kind, paid_on, amount, principal,
                                         interest, fees, created_at)
            SELECT l, repayment_entry, 'collection', today - 1, principal_paid + interest_paid,
                   principal_paid, interest_paid, 0, today - 1 + time '06:00'
            FROM bench_paid, bench_clock WHERE principal_paid > 0;
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT 2 * payout_entry - 1, payout_entry, payout, 'LOAN_PAYOUT', 'credit',
                   principal, principal, disbursed_on + time '10:00', 'Loan ' || l
            FROM bench_paid
            UNION ALL
            SELECT 2 * payout_entry, payout_entry, loan_account, 'LOAN_PAYOUT', 'debit',
                   principal, -principal, disbursed_on + time '10:00', 'Loan ' || l
            FROM bench_paid
            UNION ALL
            SELECT 2 * repayment_entry - 1, repayment_entry, payout, 'LOAN_REPAYMENT', 'debit',
                   principal_paid + interest_paid, principal - principal_paid - interest_paid,
                   today - 1 + time '06:00', 'Loan ' || l
            FROM bench_paid, bench_clock WHERE principal_paid > 0
            UNION ALL
            SELECT 2 * repayment_entry, repayment_entry, loan_account, 'LOAN_REPAYMENT',
                   'credit', principal_paid, principal_paid - principal,
                   today - 1 + time '06:00', 'Loan ' || l
            FROM bench_paid, bench_clock WHERE principal_paid > 0;
            -- The interest leg: ids past every other leg, a running balance of its own.
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT 2 * :loan_entry_first + 4 * :loans + l, repayment_entry, :loan_interest,
                   'LOAN_REPAYMENT', 'credit', interest_paid,
                   sum(interest_paid) OVER (ORDER BY l), today - 1 + time '06:00', 'Loan ' || l
            FROM bench_paid, bench_clock WHERE interest_paid > 0
        """)
        # The vault's legs (every deposit and withdrawal's other side), with their running
        # balance in leg-id order, as reconcile reads the chain.
        step("ledger legs (vault)", """
            INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                      balance_after, timestamp, description)
            SELECT id, entry_id, :vault, transaction_type, side, amount,
                   sum(CASE WHEN side = 'credit' THEN amount ELSE -amount END)
                       OVER (ORDER BY id), timestamp, description
            FROM (SELECT 2 * entry_id AS id, entry_id,
                         CASE WHEN kind = 'withdrawal' THEN 'WITHDRAWAL' ELSE 'DEPOSIT' END
                             AS transaction_type,
                         CASE WHEN kind = 'withdrawal' THEN 'credit' ELSE 'debit' END AS side,
                         CASE WHEN kind = 'open' THEN """ + opening("acc") + """ ELSE x END
                             AS amount, ts AS timestamp,
                         CASE WHEN kind = 'withdrawal' THEN 'Cash withdrawal'
                              ELSE 'Cash deposit' END AS description
                  FROM (""" + REGULAR + """) m WHERE kind IN ('open', 'deposit', 'withdrawal')
                  UNION ALL
                  SELECT 4 * entry_id + 2, entry_id, 'DEPOSIT', 'debit', 1005000.00, ts,
                         'Cash deposit'
                  FROM bench_busy WHERE m = 0) v
        """)
        step("balances", """
            UPDATE accounts a SET balance = t.balance_after
            FROM (SELECT DISTINCT ON (account_id) account_id, balance_after FROM transactions
                  WHERE account_id > :A ORDER BY account_id, id DESC) t
            WHERE a.id = t.account_id
        """)
        step("ledger totals", ledger_totals_from_legs(conn), {"shards": SHARDS})
        step(f"audit trail ({layout.audit:,})", """
            INSERT INTO audit_events (id, actor_id, action, target_type, target_id, details,
                                      ip_address, created_at)
            SELECT g, CASE WHEN g % 10 = 0 THEN :teller ELSE 1 + (g::bigint * 7919) % :customers END,
                   (:actions)[1 + g % cardinality(:actions)],
                   CASE WHEN g % 3 = 0 THEN 'account' ELSE 'user' END,
                   (1 + (g::bigint * 7919) % :customers)::text, NULL,
                   '10.0.' || (g % 250) || '.' || (g % 200),
                   t0 + (g::float8 / :audit) * (:span * interval '1 day')
            FROM generate_series(1, :audit) g, bench_clock
        """, {"actions": actions})
        step("payees, sessions, orders, holds", """
            INSERT INTO payees (user_id, account_id, nickname, created_at)
            SELECT c, 2 * (1 + (c + p) % :customers) - 1,
                   (ARRAY['Landlord','Mum','Gym club','Plumber','Sister','Football team'])
                       [1 + (c + p) % 6] || ' ' || p, t0
            FROM generate_series(1, :customers) c, generate_series(0, 2) p, bench_clock
            WHERE (c + p) % :customers + 1 <> c;
            INSERT INTO user_sessions (user_id, key_hash, created_at, last_seen_at, ip_address,
                                       browser, ended_at)
            SELECT 1 + (g - 1) % :customers, md5('session' || g), now() - interval '2 days',
                   now() - (g % 1000) * interval '1 minute', '10.1.0.1', 'Firefox on Linux',
                   CASE WHEN g % 2 = 0 THEN now() - interval '1 day' END
            FROM generate_series(1, 2 * :customers) g;
            INSERT INTO scheduled_orders (user_id, source_account_id, destination_account_id,
                                          amount, description, frequency, day_of_month,
                                          start_on, occurrence_count, next_due_on, status,
                                          created_at, updated_at)
            SELECT c, 2 * c - 1, 2 * c, 10.00, 'Savings plan', 'monthly',
                   extract(day FROM today)::int, today - 200, 6, today, 'active', t0, t0
            FROM generate_series(1, least(:customers, 50000)) c, bench_clock;
            INSERT INTO holds (account_id, amount, reason, expires_at, placed_by_id, placed_at)
            SELECT 1 + (g::bigint * 7919) % :A, 50.00, 'Card authorisation',
                   now() + interval '5 days', :teller, now() - interval '1 day'
            FROM generate_series(1, :holds) g;
            INSERT INTO pending_postings (kind, account_id, amount, description, requested_by_id,
                                          status, created_at)
            SELECT 'deposit', 1 + (g::bigint * 7919) % :A, 25000.00, 'Large cash deposit',
                   :teller, 'pending', now() - g * interval '1 minute'
            FROM generate_series(1, 500) g;
            INSERT INTO interest_rates (account_type, annual_rate, effective_from,
                                        created_by_id, created_at)
            SELECT kind, rate, (date_trunc('month', today) - interval '1 month')::date,
                   :admin, t0
            FROM (VALUES ('SAVINGS', 1.5), ('CHECKING', 0.25)) r(kind, rate), bench_clock
        """)
        started = time.perf_counter()
        for name, definition in indexes:
            conn.exec_driver_sql(definition)
        steps.append(("indexes", time.perf_counter() - started))
        log(f"  {'indexes':<34} {steps[-1][1]:7.1f} s")
        started = time.perf_counter()
        for table, name, definition, _contype in reversed(constraints):
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in LOADED:
            if table != "ledger_totals":
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")
        steps.append(("constraints", time.perf_counter() - started))
        log(f"  {'constraints':<34} {steps[-1][1]:7.1f} s")
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in LOADED:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    log(f"  {'vacuum analyze':<34} {time.perf_counter() - started:7.1f} s")


PASSWORD_HASH = [""]
STATEMENTS: list = [None]


def check_book(engine) -> None:
    """What reconcile checks, in SQL that a 20 M-leg table answers in seconds."""
    with engine.connect() as conn:
        checks = {
            "book sums to zero": "SELECT sum(balance) = 0 FROM accounts",
            "every entry balances": """
                SELECT NOT EXISTS (SELECT 1 FROM transactions GROUP BY entry_id
                    HAVING sum(CASE WHEN side = 'credit' THEN amount ELSE -amount END) <> 0
                        OR count(*) < 2)""",
            "every balance is its last leg": """
                SELECT NOT EXISTS (SELECT 1 FROM accounts a JOIN LATERAL (
                    SELECT balance_after FROM transactions t WHERE t.account_id = a.id
                    ORDER BY t.id DESC LIMIT 1) l ON true WHERE l.balance_after <> a.balance)""",
            "every running balance follows": """
                SELECT NOT EXISTS (SELECT 1 FROM (SELECT balance_after
                    - CASE WHEN side = 'credit' THEN amount ELSE -amount END
                    - coalesce(lag(balance_after) OVER (PARTITION BY account_id ORDER BY id), 0)
                    AS gap FROM transactions) c WHERE gap <> 0)""",
            "no negative customer balance": """
                SELECT NOT EXISTS (SELECT 1 FROM accounts WHERE owner_id IS NOT NULL
                                   AND balance < 0)""",
        }
        for name, sql in checks.items():
            started = time.perf_counter()
            ok = conn.exec_driver_sql(sql).scalar()
            log(f"  {name:<34} {'yes' if ok else 'NO'} ({time.perf_counter() - started:.1f} s)")
            if not ok:
                raise SystemExit(f"the loaded book is inconsistent: {name}")


def sizes(engine, database: str) -> None:
    with engine.connect() as conn:
        for table in ("transactions", "journal_entries", "audit_events", "accounts", "users"):
            count = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            size = conn.exec_driver_sql(
                f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))").scalar()
            log(f"  {table:<16} {count:>12,} rows  {size:>9} with indexes")
        total = conn.exec_driver_sql(
            f"SELECT pg_size_pretty(pg_database_size('{database}'))").scalar()
        log(f"  database size on disk: {total}")


# ---------------------------------------------------------------- the pages


class Statements:
    """Every statement the app sends while ``active`` (count and text, to EXPLAIN the
    slowest one afterwards)."""

    def __init__(self):
        self.active = False
        self.seen: list[tuple[float, str, object]] = []
        # On the Engine class: the ORM's engine and the ledger's lean one alike.
        event.listen(sa.engine.Engine, "before_cursor_execute", self._before)
        event.listen(sa.engine.Engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            elapsed = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
            self.seen.append((elapsed, statement, parameters))


def explain(engine, statement: str, parameters) -> list[str]:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        lines = [line for (line,) in cursor.fetchall()]
        raw.rollback()
        return lines
    finally:
        raw.close()


def pages(layout: Layout) -> list[tuple[str, str, str]]:
    """(name, role, url) of every page and API read measured."""
    from datetime import date

    today = date.today()
    last_month = (today.replace(day=1) - __import__("datetime").timedelta(days=1)).replace(day=1)
    month_end = today.replace(day=1) - __import__("datetime").timedelta(days=1)
    busy = f"ACC-{layout.busy_first:09d}"
    acc1 = "ACC-000000001"
    sample_reference = __import__("hashlib").md5(str(2 * (5 * layout.pairs) + 1).encode()) \
        .hexdigest()
    year_ago = today.replace(year=today.year - 1) if not (today.month == 2 and today.day == 29) \
        else today.replace(year=today.year - 1, day=28)
    return [
        ("dashboard", "customer", "/dashboard/"),
        ("account history, page 1", "customer", f"/accounts/{busy}/"),
        ("account history, page 50", "customer", f"/accounts/{busy}/?page=50"),
        ("account history, small account", "customer", f"/accounts/{acc1}/"),
        ("activity search (text)", "customer", f"/accounts/{busy}/?q=invoice"),
        ("activity search (payee name)", "customer", f"/accounts/{acc1}/?q=landlord"),
        ("activity filter (type+amount)", "customer",
         f"/accounts/{busy}/?type=TRANSFER_OUT&least=50&most=100"),
        ("activity filter (dates)", "customer",
         f"/accounts/{busy}/?start={last_month.isoformat()}&end={month_end.isoformat()}"),
        ("statement, one month", "customer",
         f"/reports/statement/{busy}/?start={last_month.isoformat()}&end={month_end.isoformat()}"),
        ("statement, one year", "customer",
         f"/reports/statement/{busy}/?start={year_ago.isoformat()}&end={today.isoformat()}"),
        ("statement CSV, one month", "customer",
         f"/reports/statement/{busy}/?start={last_month.isoformat()}&end={month_end.isoformat()}"
         "&format=csv"),
        ("statement PDF, one month", "customer",
         f"/reports/statement/{busy}/?start={last_month.isoformat()}&end={month_end.isoformat()}"
         "&format=pdf"),
        ("summary charts", "customer", f"/reports/summary/?account={busy}"),
        ("payees", "customer", "/accounts/payees/"),
        ("standing orders", "customer", "/accounts/scheduled/"),
        ("loans (customer)", "customer", "/loans/"),
        ("API accounts", "api", "/api/v1/accounts"),
        ("API transactions", "api", f"/api/v1/accounts/{busy}/transactions"),
        ("teller search: name", "teller", "/teller/customers/?q=okafor"),
        ("API customer search: name", "staff api", "/api/v1/customers?q=okafor"),
        ("teller search: phone", "teller", "/teller/customers/?q=%2B447700012345"),
        ("teller search: account number", "teller",
         f"/teller/customers/?q=ACC-{layout.accounts // 2:09d}"),
        ("teller customer page", "teller", "/teller/customers/1/"),
        ("teller holds", "teller", f"/teller/accounts/{acc1}/holds/"),
        ("teller approvals", "teller", "/teller/approvals/"),
        ("teller entry", "teller", f"/teller/entries/{sample_reference}/"),
        ("teller loan portfolio", "teller", "/teller/loans/portfolio/"),
        ("admin audit, unfiltered", "admin", "/admin/audit/"),
        ("admin audit, by action", "admin", "/admin/audit/?action=auth.login.failure"),
        ("admin audit, by target", "admin", "/admin/audit/?target_type=account&target_id=77"),
        ("admin audit, by actor+dates", "admin",
         f"/admin/audit/?actor=customer12&date_from={last_month.isoformat()}"
         f"&date_to={month_end.isoformat()}"),
        ("admin users", "admin", "/admin/users/?q=smith"),
        ("bank report, one day", "admin",
         f"/reports/bank/?start={month_end.isoformat()}&end={month_end.isoformat()}"),
        # Today's period has not closed: its accounts are counted as they stand.
        ("bank report, today", "admin", f"/reports/bank/?start={today.isoformat()}"
                                        f"&end={today.isoformat()}"),
        ("bank report, one month", "admin",
         f"/reports/bank/?start={last_month.isoformat()}&end={month_end.isoformat()}"),
        ("loan portfolio and PAR", "admin", "/reports/loan-portfolio/"),
    ]


def sign_in(app, client, user_id: int) -> None:
    """A signed-in browser session for ``user_id`` (as tests/support/users.log_in_as)."""
    import secrets
    from datetime import datetime, timezone

    from bankapp.extensions import db
    from bankapp.identity.devices import SESSION_KEY, hash_key
    from bankapp.models import User, UserSession

    with app.app_context():
        user = db.session.get(User, user_id)
        if user.role != "customer" and not user.mfa_enabled:
            # Staff pages need a second factor enrolled (identity.web.enforce_enrolment).
            from bankapp.identity.factors import enrol_totp_without_code

            enrol_totp_without_code(user)
        key = secrets.token_urlsafe(32)
        db.session.add(UserSession(user_id=user.id, key_hash=hash_key(key),
                                   ip_address="127.0.0.1", browser="Bench"))
        db.session.commit()
        user_key = user.get_id()
    now = datetime.now(timezone.utc).timestamp()
    with client.session_transaction() as session:
        session[SESSION_KEY] = key
        session["_user_id"] = user_key
        session["_fresh"] = True
        session["auth_at"] = session["seen_at"] = now
        session.permanent = True


def api_token(app) -> str:
    answer = app.test_client().post("/api/v1/token", json={
        "email": "customer1@bench.example", "password": apphost.BENCH_PASSWORD})
    if answer.status_code != 200:
        raise SystemExit(f"no API token: {answer.status_code} {answer.get_data(True)[:200]}")
    return answer.get_json()["access_token"]


def measure_pages(app, layout: Layout, runs: int, label: str, explain_slowest: bool = True,
                  only: str = ""):
    """Open every page ``runs`` times as its role; return {name: (p50, p95, queries)}.
    ``only``: a comma-separated list of words; a page is measured when its name holds one."""
    from bankapp.extensions import db

    clients = {}
    for role, user_id in (("customer", 1), ("teller", layout.tellers[0]),
                          ("admin", layout.admin)):
        clients[role] = app.test_client()
        sign_in(app, clients[role], user_id)
    token = api_token(app)
    clients["api"] = app.test_client()
    clients["staff api"] = app.test_client()
    with app.app_context():
        from bankapp.api.tokens import issue_access_token
        from bankapp.models import User

        staff_token = issue_access_token(db.session.get(User, layout.tellers[0]))
    headers = {"api": {"Authorization": f"Bearer {token}"},
               "staff api": {"Authorization": f"Bearer {staff_token}"}}
    statements = STATEMENTS[0] or Statements()
    STATEMENTS[0] = statements
    results = {}
    log(f"\n== pages ({label}): {runs} runs each, one client; p95 target < {TARGET_MS} ms")
    log(f"  {'page':<36} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}"
        f" {'CPU ms: app + PostgreSQL':>26}")
    db_url = app.config["SQLALCHEMY_DATABASE_URI"]
    database = sa.engine.make_url(db_url).database
    db_url = str(sa.engine.make_url(db_url).set(drivername="postgresql"))
    words = [word.strip() for word in only.split(",") if word.strip()]
    for name, role, url in pages(layout):
        if words and not any(word in name for word in words):
            continue
        client = clients[role]
        extra = headers.get(role, {})
        answer = client.get(url, headers=extra)  # warm-up: caches and plans
        status = answer.status_code
        samples, counts, slowest = [], [], (0.0, "", None)
        # CPU per request (the mean over the runs), which other work on the machine does not
        # inflate as it does the wall time: the app's process, and the database's backends.
        database_before = apphost.backend_cpu_seconds(db_url, database)
        app_before = time.process_time()
        for _ in range(runs):
            statements.seen, statements.active = [], True
            started = time.perf_counter()
            answer = client.get(url, headers=extra)
            answer.get_data()
            samples.append((time.perf_counter() - started) * 1000)
            statements.active = False
            counts.append(len(statements.seen))
            for seen in statements.seen:
                if seen[0] > slowest[0]:
                    slowest = seen
        app_cpu = (time.process_time() - app_before) * 1000 / runs
        database_cpu = (apphost.backend_cpu_seconds(db_url, database) - database_before) \
            * 1000 / runs
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        results[name] = (p50, p95, max(counts), status, slowest, app_cpu, database_cpu)
        flag = "" if p95 < TARGET_MS else "  OVER"
        log(f"  {name:<36} {status:>6} {p50:8.1f} {p95:8.1f} {max(counts):8d}"
            f" {app_cpu:8.1f} + {database_cpu:6.1f} = {app_cpu + database_cpu:6.1f}{flag}")
    if explain_slowest:
        with app.app_context():
            for name, (p50, p95, count, status, slowest, *_cpu) in results.items():
                if p95 < TARGET_MS / 2 or not slowest[1]:
                    continue
                log(f"\n-- {name} (p95 {p95:.1f} ms): its slowest statement "
                    f"({slowest[0] * 1000:.1f} ms):\n     " + " ".join(slowest[1].split())[:600])
                try:
                    for line in explain(db.engine, slowest[1], slowest[2]):
                        log("     " + line)
                except Exception as error:  # noqa: BLE001 - a report line, not a failure
                    log(f"     (EXPLAIN failed: {error})")
    return results


# ---------------------------------------------------------------- posting cost


def transfer_cpu(app, db_url: str, database: str, count: int) -> tuple[float, float]:
    """Worker and PostgreSQL CPU ms per API transfer, over ``count`` transfers between
    customer 1's two accounts (after 30 warm-ups)."""
    token = api_token(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def send(i):
        source, destination = ("ACC-000000001", "ACC-000000002") if i % 2 \
            else ("ACC-000000002", "ACC-000000001")
        answer = client.post("/api/v1/transfers", json={
            "from_account": source, "to_account": destination, "amount": "0.01",
            "description": "bench"}, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        if answer.status_code != 201:
            raise SystemExit(f"transfer answered {answer.status_code}: "
                             f"{answer.get_data(True)[:300]}")

    for i in range(30):
        send(i)
    database_before = apphost.backend_cpu_seconds(db_url, database)
    worker_before = time.process_time()
    for i in range(count):
        send(i)
    worker = (time.process_time() - worker_before) * 1000 / count
    database_cpu = (apphost.backend_cpu_seconds(db_url, database) - database_before) * 1000 / count
    return worker, database_cpu


# ---------------------------------------------------------------- jobs


def timed_flask(db_url: str, seconds: float, count_sql: str, *args: str,
                app_dir: Path = apphost.REPO_ROOT) -> None:
    """Run ``flask ARGS`` with the checkout ``app_dir`` for at most ``seconds``; print its time
    and how many rows ``count_sql`` gained meanwhile (what it got done), with the rate."""
    import psycopg2

    def count() -> int:
        with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
            cur.execute(count_sql)
            return cur.fetchone()[0]

    before = count()
    cpu_before = os.times()
    started = time.perf_counter()
    with BackendCpu(db_url) as database_cpu:
        try:
            result = subprocess.run([sys.executable, "-m", "flask", *args], cwd=app_dir,
                                    env=apphost.app_env(app_dir, db_url),
                                    capture_output=True, text=True, timeout=seconds)
            outcome = f"exit {result.returncode}: " + " | ".join(
                (result.stdout + result.stderr).strip().splitlines()[-2:])
        except subprocess.TimeoutExpired:
            outcome = f"stopped after {seconds:.0f} s (--job-seconds)"
        elapsed = time.perf_counter() - started
    cpu = os.times()
    worker = (cpu.children_user - cpu_before.children_user
              + cpu.children_system - cpu_before.children_system)
    done = count() - before
    each = 1000 / max(done, 1)
    log(f"  flask {' '.join(args)} ({app_dir}): {elapsed:.1f} s, {done:,} done "
        f"({done / elapsed:.0f}/s, job CPU {worker * each:.2f} ms each + PostgreSQL "
        f"{database_cpu.seconds * each:.2f} ms); {outcome}; load average "
        f"{os.getloadavg()[0]:.1f}")


class BackendCpu:
    """The CPU used by the database's backends (but the poller's) while the block runs.

    Polled every 0.2 s, since a backend's counters go with it when its job exits: a backend
    first seen during the block counts from zero, one there before from where it stood. What
    a backend uses after the last poll before it exits (at most 0.2 s of it) is missed."""

    def __init__(self, db_url: str):
        import threading

        self.db_url, self.seconds = db_url, 0.0
        self._stop, self._thread = threading.Event(), threading.Thread(target=self._poll)
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def _sample(self, cursor, first: bool) -> None:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        for (pid,) in cursor.fetchall():
            used = apphost.process_cpu_seconds(pid)
            self._base.setdefault(pid, used if first else 0.0)
            self._last[pid] = max(self._last.get(pid, 0.0), used)

    def _poll(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.db_url)
        conn.autocommit = True
        with closing(conn), conn.cursor() as cursor:
            self._sample(cursor, first=True)
            self._ready.set()
            while not self._stop.wait(0.2):
                self._sample(cursor, first=False)
            self._sample(cursor, first=False)

    def __enter__(self) -> "BackendCpu":
        import threading

        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = sum(self._last[pid] - self._base[pid] for pid in self._last)


JOBS = {"post-interest": "SELECT count(*) FROM interest_postings",
        "run-scheduled": "SELECT count(*) FROM scheduled_occurrences"}


def run_jobs(db_url: str, seconds: float, app_dir: Path, jobs: list[str] = list(JOBS)) -> None:
    """Interest for last month over every account, then every standing order due (or
    ``jobs`` of these)."""
    import psycopg2

    for job in jobs:
        # What autovacuum would have done between two monthly runs (the bench server runs
        # without it): the previous job's dead versions of GL-INTEREST's and the customers'
        # rows, each with an entry in every index of accounts, would slow the next job's
        # every look-up of them.
        conn = psycopg2.connect(db_url)
        conn.autocommit = True
        with closing(conn), conn.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute("VACUUM accounts")
            log(f"  VACUUM accounts: {time.perf_counter() - started:.1f} s")
        timed_flask(db_url, seconds, JOBS[job], job, app_dir=app_dir)


# ---------------------------------------------------------------- main


def build(server_url: str, database: str, layout: Layout, revision: str | None):
    """A fresh database ``database`` migrated (to ``revision``, or head) and loaded."""
    db_url = apphost.create_database(server_url, database)
    migrate(db_url, revision)
    from config import normalize_database_url

    engine = sa.create_engine(normalize_database_url(db_url))
    log(f"loading {database}: {layout.customers:,} customers, {layout.accounts:,} accounts, "
        f"{layout.steps} steps a pair (about {layout.pairs * layout.steps * 24 // 10:,} legs), "
        f"{layout.loans:,} loans")
    started = time.perf_counter()
    load(engine, layout)
    log(f"  {'load total':<34} {time.perf_counter() - started:7.1f} s")
    check_book(engine)
    sizes(engine, database)
    engine.dispose()
    return db_url


def migrate(db_url: str, revision: str | None) -> None:
    args = [sys.executable, "-m", "flask", "db", "upgrade"] + ([revision] if revision else [])
    result = subprocess.run(args, cwd=apphost.REPO_ROOT,
                            env=apphost.app_env(apphost.REPO_ROOT, db_url),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")


def nightly_job(db_url: str, name: str) -> None:
    """Run the nightly job ``name`` once, as a bank's first night after the upgrade would
    (where this checkout has it): ``fold-ledger-totals`` folds the report buckets,
    ``count-balances`` counts the accounts the bank report of a closed period shows."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "flask", name],
                            cwd=apphost.REPO_ROOT, env=apphost.app_env(apphost.REPO_ROOT, db_url),
                            capture_output=True, text=True)
    if result.returncode == 0:
        log(f"ran {name} in {time.perf_counter() - started:.1f} s: {result.stdout.strip()}")


def make_app(db_url: str):
    """The app in this process on ``db_url`` (the config classes read DATABASE_URL once, at
    import: the URL is set on a subclass instead)."""
    from bankapp import create_app
    from config import DevelopmentConfig, normalize_database_url

    app = create_app(type("ScaleBenchConfig", (DevelopmentConfig,),
                          {"SQLALCHEMY_DATABASE_URI": normalize_database_url(db_url)}))
    # What a gunicorn worker does once the app is loaded (gunicorn.conf.py, post_worker_init):
    # without it, a full collection over the app's objects lands in one page's timed runs.
    gc.freeze()
    return app


def percentile(values, fraction):
    from reports_bench import percentile as reports_percentile  # the same p95 as there

    return reports_percentile(values, fraction)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--legs", type=int, default=20_000_000)
    parser.add_argument("--loans", type=int, default=None,
                        help="disbursed loans (default --customers / 10: 10,000 at full size)")
    parser.add_argument("--small-legs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--transfers", type=int, default=300)
    parser.add_argument("--before", default=None, metavar="REVISION",
                        help="load at this migration and measure the pages with the app of "
                             "--before-app-dir first, then upgrade to head and measure again")
    parser.add_argument("--before-app-dir", type=Path, default=apphost.REPO_ROOT,
                        help="the checkout serving the 'before' pages (e.g. main's); without "
                             "--before, both checkouts serve the schema as it is")
    parser.add_argument("--pages-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--app-dir", type=Path, default=apphost.REPO_ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--job-seconds", type=float, default=240,
                        help="stop each job after this long (the rate is printed)")
    parser.add_argument("--jobs-before-app-dir", type=Path, default=None, metavar="DIR",
                        help="run the jobs with this checkout first (e.g. main's), then with "
                             "this one on what is left (use with --reuse on a kept bank)")
    parser.add_argument("--jobs", default=",".join(JOBS), metavar="NAMES",
                        help="the jobs to run, comma-separated (default: %(default)s)")
    parser.add_argument("--skip-posting", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--pages", default="", metavar="WORDS",
                        help="measure only the pages whose name holds one of these "
                             "comma-separated words (e.g. 'statement,bank report')")
    parser.add_argument("--database", default=DATABASE,
                        help="the big bank's database name (the small one gets '_small')")
    args = parser.parse_args()
    jobs = [name.strip() for name in args.jobs.split(",") if name.strip()]
    if unknown := set(jobs) - set(JOBS):
        parser.error(f"--jobs: no job named {', '.join(sorted(unknown))} "
                     f"(there are {', '.join(JOBS)})")
    database, small_database = args.database, f"{args.database}_small"

    server_url = os.environ.get("BENCH_DATABASE_URL", apphost.DEFAULT_SERVER_URL)
    apphost.require_redis()
    layout = Layout(args.customers, args.legs, args.loans)
    db_url = apphost.database_url(server_url, database)
    if args.pages_only:
        return pages_only(args, layout, db_url)
    apphost.use_app_dir(apphost.REPO_ROOT, db_url)
    log(f"machine: {os.cpu_count()} CPUs, load average "
        + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    started_all = time.perf_counter()
    PASSWORD_HASH[0] = apphost.password_hash(make_app(db_url))
    try:
        posting = {}
        if not args.skip_posting:
            small = Layout(max(10, args.small_legs // 240), args.small_legs)
            small_url = build(server_url, small_database, small, None)
            app = make_app(small_url)
            with app.app_context():
                from bankapp.extensions import db
                legs = db.session.execute(sa.text("SELECT count(*) FROM transactions")).scalar()
            posting["small"] = (legs, *transfer_cpu(app, small_url, small_database,
                                                    args.transfers))
            log(f"  API transfer at {legs:,} legs: worker {posting['small'][1]:.2f} ms, "
                f"PostgreSQL {posting['small'][2]:.2f} ms CPU")
            with app.app_context():
                from bankapp.extensions import db
                db.engine.dispose()
            apphost.drop_database(server_url, small_database)
        reuse = args.reuse and reports_bench_database_exists(server_url, database)
        if not reuse:
            build(server_url, database, layout, args.before)
        before = None
        if args.before or args.before_app_dir != apphost.REPO_ROOT:
            before = pages_in(args, args.before_app_dir, f"schema {args.before or 'as is'}, "
                                                         f"app {args.before_app_dir}")
        if args.before:
            started = time.perf_counter()
            migrate(db_url, None)
            log(f"\nupgraded to head in {time.perf_counter() - started:.1f} s")
            nightly_job(db_url, "fold-ledger-totals")
        nightly_job(db_url, "count-balances")
        after = pages_in(args, apphost.REPO_ROOT, f"head, app {apphost.REPO_ROOT}")
        if before:
            log("\n== before / after (p95 ms, queries, CPU ms per page: app + PostgreSQL)")
            log(f"  {'page':<36} {'before':>30}  ->  {'after':>30}")
            for name in after:
                b, a = before[name], after[name]
                log(f"  {name:<36} {b[1]:8.1f} {b[2]:5d} {b[4]:6.1f} + {b[5]:5.1f}  ->  "
                    f"{a[1]:8.1f} {a[2]:5d} {a[4]:6.1f} + {a[5]:5.1f}")
        app = make_app(db_url)
        if not args.skip_posting:
            with app.app_context():
                from bankapp.extensions import db
                legs = db.session.execute(sa.text(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = 'transactions'"
                )).scalar()
            posting["big"] = (legs, *transfer_cpu(app, db_url, database, args.transfers))
            log("\n== CPU per API transfer (same run)")
            for key in ("small", "big"):
                legs, worker, database_cpu = posting[key]
                log(f"  at {legs:>12,} legs: worker {worker:6.2f} ms, PostgreSQL "
                    f"{database_cpu:6.2f} ms, total {worker + database_cpu:6.2f} ms")
            small_total = posting["small"][1] + posting["small"][2]
            big_total = posting["big"][1] + posting["big"][2]
            log(f"  ratio big/small: {big_total / small_total:.2f}x (target <= 1.2x)")
        with app.app_context():
            from bankapp.extensions import db
            db.engine.dispose()
        if not args.skip_jobs:
            log("\n== jobs over the whole bank")
            if args.jobs_before_app_dir:
                # Side by side on one bank: the other checkout's jobs for --job-seconds (they
                # go through the accounts and orders in id order), then this one's on the
                # rest; each counts only the rows it added.
                run_jobs(db_url, args.job_seconds, args.jobs_before_app_dir, jobs)
            run_jobs(db_url, args.job_seconds, apphost.REPO_ROOT, jobs)
    finally:
        if not args.keep:
            apphost.drop_database(server_url, database)
            apphost.drop_database(server_url, small_database)
            log(f"\ndropped {database} (use --keep to keep it)")
    log(f"total {time.perf_counter() - started_all:.0f} s; load average "
        + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    return 0


def pages_in(args, app_dir: Path, label: str) -> dict:
    """Measure the pages in a child process running the app of ``app_dir``."""
    import json
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as results:
        command = [sys.executable, __file__, "--pages-only", "--app-dir", str(app_dir),
                   "--customers", str(args.customers), "--legs", str(args.legs),
                   *(["--loans", str(args.loans)] if args.loans else []),
                   "--runs", str(args.runs), "--results", results.name, "--label", label,
                   "--database", args.database, "--pages", args.pages]
        subprocess.run(command, check=True)
        return json.loads(Path(results.name).read_text() or "{}")


def pages_only(args, layout: Layout, db_url: str) -> int:
    """The child of ``pages_in``: this process imports bankapp from ``--app-dir``."""
    import json

    apphost.use_app_dir(args.app_dir, db_url)
    app = make_app(db_url)
    results = measure_pages(app, layout, args.runs, args.label, only=args.pages)
    args.results.write_text(json.dumps({name: list(values[:4]) + list(values[5:7])
                                        for name, values in results.items()}))
    return 0


def reports_bench_database_exists(server_url: str, database: str) -> bool:
    import psycopg2

    with psycopg2.connect(apphost.database_url(server_url, "postgres")) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        return cur.fetchone() is not None


if __name__ == "__main__":
    sys.exit(main())

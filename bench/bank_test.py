"""Bank test under faults (after Jepsen's "bank" workload), through the HTTP API.

    .venv/bin/python bench/bank_test.py [--short] [--pooler pgbouncer] [--app-dir DIR]

One user owns 8 funded accounts. Writer threads transfer random amounts between them with
``POST /api/v1/transfers`` (each request its own ``Idempotency-Key``); on a lost answer
(connection reset, timeout, 5xx) they resend the SAME key and body until
the answer is definite, or ask ``GET /api/v1/transfers/<key>``. Some requests are sent twice
on purpose (again after the answer, or concurrently) and must get the identical answer.
Reader threads keep reading all balances with ``GET /api/v1/accounts`` (one query, one
snapshot). Meanwhile a nemesis ``kill -9``s random gunicorn workers (gunicorn respawns them)
and restarts PostgreSQL, once with ``-m fast`` and once with ``-m immediate`` (a crash:
recovery from the WAL on start).

PostgreSQL is, by default, a private throwaway cluster (initdb into a temporary directory,
run as the ``postgres`` OS user on a free loopback port), so restarting it cannot disturb
anything else on the machine; ``--pg main`` uses the machine's cluster instead
(``pg_ctlcluster --skip-systemctl-redirect <version> main restart``).

With ``--pooler pgbouncer`` the app reaches PostgreSQL through a PgBouncer in transaction mode
(``tests/support/pg_services.py``) with ``DATABASE_NULLPOOL=1``, as on Vercel with Supabase's
pooler; migrations, seeding and the final checks use the direct connection.

Checked throughout: every read sees the same total and no negative balance. Checked at the
end, against the ledger in SQL: every acknowledged transfer is in ``journal_entries`` exactly
once (by its ledger idempotency key) with the requested accounts and amount; every refused
one is absent; an unacknowledged one appears at most once; no entry exists that no request
asked for; each balance is the opening balance plus the transfers found; ``ledger.reconcile()``
is clean. Exit status 1 on any anomaly.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apphost  # noqa: E402
from apphost import log  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pg_services import PgBouncer  # noqa: E402

DB_NAME = "bankapp_bank_test"
ACCOUNTS = 8
OPENING = Decimal("1000.00")
TOTAL = OPENING * ACCOUNTS
PG_BIN = Path("/usr/lib/postgresql")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=apphost.REPO_ROOT)
    parser.add_argument("--short", action="store_true", help="the CI version (~40 s)")
    parser.add_argument("--duration", type=float, help="seconds of workload (default 90, "
                                                       "short 25)")
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--kill-every", type=float, default=3.0,
                        help="mean seconds between worker kills")
    parser.add_argument("--pg", choices=["private", "main"], default="private",
                        help="a throwaway cluster (default) or the machine's main cluster")
    parser.add_argument("--server-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                               apphost.DEFAULT_SERVER_URL),
                        help="with --pg main: the server (env BENCH_DATABASE_URL)")
    parser.add_argument("--no-pg-restart", action="store_true")
    parser.add_argument("--pooler", choices=["none", "pgbouncer"], default="none",
                        help="the app talks to PostgreSQL through PgBouncer (transaction mode)")
    parser.add_argument("--sabotage", choices=["money", "duplicate"],
                        help="self-test of the checker: halfway through, create money from "
                             "nothing, or post one acknowledged transfer a second time, "
                             "behind the API's back (the run must then report anomalies)")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    args = parser.parse_args()
    args.app_dir = args.app_dir.resolve()
    if args.duration is None:
        args.duration = 25.0 if args.short else 90.0
    return args


# ---------------------------------------------------------------- PostgreSQL


class PrivateCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, owned by the postgres user."""

    def __init__(self):
        versions = sorted((p.name for p in PG_BIN.iterdir() if (p / "bin" / "initdb").exists()),
                          key=lambda v: int(v) if v.isdigit() else 0)
        if not versions:
            sys.exit("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = PG_BIN / versions[-1] / "bin"
        self.root = Path(tempfile.mkdtemp(prefix="bankapp-bank-pg-"))
        self.data = self.root / "data"
        self.port = apphost.free_port()
        self.server_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.label = f"private PostgreSQL {versions[-1]} cluster on port {self.port}"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # Output to a file, not a pipe: the postmaster pg_ctl starts would inherit the pipe
        # and run() would wait for it to close.
        with open(self.root / "pg_ctl.log", "a") as output:
            return subprocess.run(prefix + list(command), stdin=subprocess.DEVNULL,
                                  stdout=output, stderr=subprocess.STDOUT, check=check)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            (self.root / "pg_ctl.log").touch()
            shutil.chown(self.root / "pg_ctl.log", "postgres", "postgres")
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "-A", "trust", "--no-sync", "-E", "UTF8")
        except (subprocess.CalledProcessError, OSError) as error:
            sys.exit(f"could not create a private PostgreSQL cluster ({error}); "
                     f"{self._output()} -- use --pg main to test against the machine's cluster")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c max_connections=60 "
                   f"-c shared_buffers=32MB -c fsync=on -c synchronous_commit=on")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "postgres.log"), "-o", options, "-w", "-t", "60", "start")

    def _output(self) -> str:
        try:
            return (self.root / "pg_ctl.log").read_text()[-500:]
        except OSError:
            return ""

    def restart(self, mode: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "postgres.log"), "-m", mode, "-w", "-t", "60", "restart")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                  "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class MainCluster:
    """The machine's own cluster, restarted with pg_ctlcluster."""

    def __init__(self, server_url: str):
        self.server_url = server_url
        self.version = sorted(os.listdir("/etc/postgresql"))[-1]
        self.label = f"main PostgreSQL {self.version} cluster ({server_url})"

    def start(self) -> None:
        pass

    def restart(self, mode: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main",
                        "restart", "-m", mode], check=True, capture_output=True)

    def stop(self) -> None:
        pass


# ---------------------------------------------------------------- the workload


@dataclass
class Op:
    key: str
    source: str
    destination: str
    amount: Decimal
    outcome: str = "pending"  # posted | refused | unknown
    answer: tuple | None = None  # (status, body) of the definite answer
    attempts: int = 0


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)
    anomalies: list = field(default_factory=list)
    server_errors: list = field(default_factory=list)  # monotonic times of 5xx answers
    outages: list = field(default_factory=list)  # (start, end) of PostgreSQL restarts

    def server_error(self, what: str) -> None:
        with self.lock:
            self.server_errors.append(time.monotonic())
            self.counts[what] += 1

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def anomaly(self, text: str) -> None:
        with self.lock:
            self.anomalies.append(text)
            shown = len(self.anomalies)
        if shown <= 20:
            log(f"ANOMALY: {text}")
        elif shown == 21:
            log("ANOMALY: (more anomalies are counted but not printed)")


class Client:
    """Blocking JSON requests with a fresh connection each (no state survives a fault)."""

    def __init__(self, port: int, token_source):
        self.port = port
        self.token_source = token_source

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 5.0):
        """(status, parsed body, headers); raises OSError/HTTPException on transport faults."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            all_headers = {"Authorization": f"Bearer {self.token_source()}",
                           "Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            raw = response.read()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None
            return response.status, data, dict(response.getheaders())
        finally:
            conn.close()


TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


class BankTest:
    def __init__(self, args, port: int, email: str, numbers: list[str]):
        self.args = args
        self.port = port
        self.email = email
        self.numbers = numbers
        self.stats = Stats()
        self.ops: list[Op] = []
        self.ops_lock = threading.Lock()
        self.stop_writes = threading.Event()
        self.stop_reads = threading.Event()
        self.give_up_at = float("inf")
        self._token = None
        self._token_lock = threading.Lock()
        self.client = Client(port, self.token)

    # -- tokens ---------------------------------------------------------------

    def token(self) -> str:
        with self._token_lock:
            if self._token is None:
                self._token = self._fetch_token()
            return self._token

    def _fetch_token(self) -> str:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = apphost.http_json(
                    "POST", f"http://127.0.0.1:{self.port}/api/v1/token",
                    {"email": self.email, "password": apphost.BENCH_PASSWORD})
                if status == 200:
                    return body["access_token"]
            except TRANSPORT_ERRORS:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("no access token within 60 s")
            time.sleep(0.3)

    def token_rejected(self, token_seen: str) -> None:
        with self._token_lock:
            if self._token == token_seen:
                self._token = None

    # -- writers --------------------------------------------------------------

    def writer(self, rng: random.Random) -> None:
        while not self.stop_writes.is_set():
            source, destination = rng.sample(self.numbers, 2)
            amount = Decimal(rng.randint(1, 25000)) / 100
            op = Op(f"bt-{uuid.uuid4().hex}", source, destination, amount)
            with self.ops_lock:
                self.ops.append(op)
            self.stats.add("transfers tried")
            roll = rng.random()
            if roll < 0.05:
                self.concurrent_duplicates(op)
            else:
                self.settle(op)
                if roll < 0.25 and op.outcome != "unknown":
                    self.replay(op)
            if op.outcome != "unknown" and rng.random() < 0.1:
                self.check_status_endpoint(op)

    def body(self, op: Op) -> bytes:
        return json.dumps({"from_account": op.source, "to_account": op.destination,
                           "amount": f"{op.amount:.2f}", "description": "bank test"}).encode()

    def send_until_definite(self, op: Op) -> tuple | None:
        """POST with the same key and body until a definite answer; None if we gave up."""
        backoff = 0.05
        while time.monotonic() < self.give_up_at:
            op.attempts += 1
            token = self.token()
            try:
                status, data, headers = self.client.request(
                    "POST", "/api/v1/transfers", self.body(op), {"Idempotency-Key": op.key},
                    timeout=6.0)
            except TRANSPORT_ERRORS as error:
                self.stats.add(f"retry after {type(error).__name__}")
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            code = (data or {}).get("code")
            if status == 201 or (status == 422 and code == "insufficient-funds"):
                return status, data, headers
            if status == 401:
                self.token_rejected(token)
                self.stats.add("retry after 401 (new token)")
            elif status >= 500:
                self.stats.server_error(f"retry after {status}")
            else:
                self.stats.anomaly(f"{op.key}: unexpected answer {status} {data}")
                return None
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        return None

    def settle(self, op: Op) -> None:
        answer = self.send_until_definite(op)
        if answer is None:
            op.outcome = "unknown"
            self.resolve_by_status(op)
            return
        self.record(op, answer)

    def record(self, op: Op, answer: tuple) -> None:
        status, data, _ = answer
        if op.answer is not None:
            if (status, data) != op.answer:
                self.stats.anomaly(f"{op.key}: answers differ: {op.answer} then {(status, data)}")
            return
        op.answer = (status, data)
        if status == 201:
            op.outcome = "posted"
            self.stats.add("acknowledged: posted")
            expected = {"from_account": op.source, "to_account": op.destination,
                        "amount": f"{op.amount:.2f}"}
            got = {k: data.get(k) for k in expected}
            if got != expected:
                self.stats.anomaly(f"{op.key}: posting {got} does not match request {expected}")
            if Decimal(data.get("balance_after", "0")) < 0:
                self.stats.anomaly(f"{op.key}: negative balance_after {data['balance_after']}")
        else:
            op.outcome = "refused"
            self.stats.add("acknowledged: refused (insufficient funds)")

    def replay(self, op: Op) -> None:
        """A deliberate client retry after the answer: the same answer, nothing posted."""
        self.stats.add("deliberate retries (same key, after answer)")
        answer = self.send_until_definite(op)
        if answer is None:
            return
        status, data, headers = answer
        if (status, data) != op.answer:
            self.stats.anomaly(f"{op.key}: replay answered {status} {data}, first {op.answer}")
        elif headers.get("Idempotent-Replayed") != "true":
            self.stats.anomaly(f"{op.key}: replay not marked Idempotent-Replayed")

    def concurrent_duplicates(self, op: Op) -> None:
        """The same request sent by two threads at once: one posting, two equal answers."""
        self.stats.add("deliberate retries (same key, concurrent)")
        answers = [None, None]

        def send(index: int) -> None:
            answers[index] = self.send_until_definite(op)

        twin = threading.Thread(target=send, args=(1,))
        twin.start()
        send(0)
        twin.join()
        definite = [a for a in answers if a is not None]
        if not definite:
            op.outcome = "unknown"
            self.resolve_by_status(op)
            return
        for answer in definite:
            self.record(op, answer)

    def check_status_endpoint(self, op: Op) -> None:
        """GET /api/v1/transfers/<key> must tell what the POST answered."""
        try:
            status, data, _ = self.client.request("GET", f"/api/v1/transfers/{op.key}")
        except TRANSPORT_ERRORS:
            return
        if status != 200:
            if status < 500 and status != 401:
                self.stats.anomaly(f"{op.key}: status endpoint answered {status} {data}")
            return
        self.stats.add("status look-ups")
        expected = "posted" if op.outcome == "posted" else "refused"
        if data.get("status") != expected or (data.get("response") or {}).get("body") != op.answer[1]:
            self.stats.anomaly(f"{op.key}: status endpoint says {data}, POST answered {op.answer}")

    def resolve_by_status(self, op: Op) -> None:
        """After giving up on the POST: ask what became of it (best effort)."""
        for _ in range(20):
            try:
                status, data, _ = self.client.request("GET", f"/api/v1/transfers/{op.key}")
            except TRANSPORT_ERRORS:
                time.sleep(0.5)
                continue
            if status == 200 and data.get("status") in ("posted", "refused"):
                self.stats.add("settled by status look-up")
                response = data.get("response") or {}
                self.record(op, (response.get("status"), response.get("body"), {}))
                return
            if status == 404:
                break
            time.sleep(0.5)
        self.stats.add("unacknowledged (no definite answer)")

    # -- readers --------------------------------------------------------------

    def reader(self) -> None:
        while not self.stop_reads.is_set():
            token = self.token()
            try:
                status, data, _ = self.client.request("GET", "/api/v1/accounts", timeout=5.0)
            except TRANSPORT_ERRORS:
                self.stats.add("reads failed (transport)")
                time.sleep(0.05)
                continue
            if status == 401:
                self.token_rejected(token)
                continue
            if status >= 500:
                self.stats.server_error(f"reads failed ({status})")
                time.sleep(0.05)
                continue
            if status != 200:
                self.stats.anomaly(f"read answered {status} {data}")
                time.sleep(0.05)
                continue
            self.check_read(data)

    def check_read(self, data: dict) -> None:
        self.stats.add("reads ok")
        accounts = data.get("accounts") or []
        balances = {a["account_number"]: Decimal(a["balance"]) for a in accounts}
        if sorted(balances) != sorted(self.numbers):
            self.stats.anomaly(f"read saw accounts {sorted(balances)}")
            return
        total = sum(balances.values())
        if total != TOTAL:
            self.stats.anomaly(f"read saw total {total}, expected {TOTAL}: {balances}")
        negative = {n: b for n, b in balances.items() if b < 0}
        if negative:
            self.stats.anomaly(f"read saw negative balances {negative}")


# ---------------------------------------------------------------- nemesis


class Nemesis:
    def __init__(self, server: apphost.Gunicorn, cluster, stats: Stats, duration: float,
                 kill_every: float, restarts: list[tuple[float, str]], rng: random.Random):
        self.server = server
        self.cluster = cluster
        self.stats = stats
        self.duration = duration
        self.kill_every = kill_every
        self.restarts = sorted(restarts)
        self.rng = rng
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            if self.restarts and elapsed >= self.restarts[0][0]:
                _, mode = self.restarts.pop(0)
                self.restart_postgres(mode)
                continue
            wait = self.rng.uniform(0.3, 2 * self.kill_every - 0.3)
            if self.stop.wait(wait):
                break
            self.kill_worker()

    def kill_worker(self) -> None:
        """SIGKILL a random worker, preferring one that is serving a request right now."""
        workers = self.server.worker_pids()
        if not workers:
            return
        busy = [pid for pid in workers if worker_is_busy(pid)]
        victim = self.rng.choice(busy or workers)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.stats.add("fault: kill -9 gunicorn worker")
        if busy:
            self.stats.add("fault: ... of which the worker was mid-request")

    def restart_postgres(self, mode: str) -> None:
        log(f"nemesis: restarting PostgreSQL (-m {mode})")
        started = time.monotonic()
        try:
            self.cluster.restart(mode)
        except subprocess.CalledProcessError as error:
            self.stats.anomaly(f"PostgreSQL restart failed: {error.stderr or error}")
            return
        self.stats.add(f"fault: PostgreSQL restart (-m {mode})")
        with self.stats.lock:
            self.stats.outages.append((started, time.monotonic()))
        log(f"nemesis: PostgreSQL back after {time.monotonic() - started:.1f} s")


# An idle sync worker waits for connections in select/pselect6/epoll/accept; in any other
# system call (poll on the PostgreSQL socket, recv/send) or running, it is serving a request.
IDLE_SYSCALLS = {"23", "270", "232", "281", "43", "288"}


def worker_is_busy(pid: int) -> bool:
    try:
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return syscall not in IDLE_SYSCALLS


def sabotage(kind: str, db_url: str, test: BankTest) -> None:
    """Break an invariant directly in SQL, as a buggy app could, to prove the checks see it."""
    with closing(psycopg2.connect(db_url)) as conn, conn, conn.cursor() as cur:
        if kind == "money":
            cur.execute("UPDATE accounts SET balance = balance + 1 WHERE account_number = %s",
                        (test.numbers[0],))
        else:
            op = next(op for op in list(test.ops) if op.outcome == "posted")
            cur.execute("""
                WITH entry AS (
                    INSERT INTO journal_entries (reference, entry_type, description, actor_id,
                                                 channel, created_at)
                    VALUES (md5(random()::text), 'TRANSFER', 'bank test', 1, 'api', now())
                    RETURNING id),
                moved AS (
                    UPDATE accounts AS a SET balance = a.balance + d.delta
                    FROM (VALUES (%(source)s, -%(amount)s::numeric),
                                 (%(destination)s, %(amount)s::numeric)) AS d (number, delta)
                    WHERE a.account_number = d.number
                    RETURNING a.id, d.delta, a.balance)
                INSERT INTO transactions (entry_id, account_id, transaction_type, side, amount,
                                          balance_after, timestamp, description)
                SELECT entry.id, moved.id,
                       CASE WHEN moved.delta < 0 THEN 'TRANSFER_OUT' ELSE 'TRANSFER_IN' END,
                       CASE WHEN moved.delta < 0 THEN 'debit' ELSE 'credit' END,
                       abs(moved.delta), moved.balance, now(), 'bank test'
                FROM entry, moved""", {"source": op.source, "destination": op.destination,
                                       "amount": op.amount})
    log(f"sabotage: {kind}")


# ---------------------------------------------------------------- final checks


def final_checks(test: BankTest, db_url: str, user_id: int, app) -> None:
    from bankapp.api.idempotency import ledger_key

    stats = test.stats
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT e.idempotency_key, e.reference,
                   max(a.account_number) FILTER (WHERE t.transaction_type = 'TRANSFER_OUT'),
                   max(a.account_number) FILTER (WHERE t.transaction_type = 'TRANSFER_IN'),
                   max(t.amount) FILTER (WHERE t.transaction_type = 'TRANSFER_OUT'),
                   max(t.amount) FILTER (WHERE t.transaction_type = 'TRANSFER_IN'),
                   count(t.id)
            FROM journal_entries e
            JOIN transactions t ON t.entry_id = e.id
            JOIN accounts a ON a.id = t.account_id
            WHERE e.entry_type = 'TRANSFER'
            GROUP BY e.id""")
        entries = cur.fetchall()
        cur.execute("SELECT account_number, balance FROM accounts WHERE owner_id = %s",
                    (user_id,))
        balances = {number: balance for number, balance in cur.fetchall()}

    by_key: dict[str, list] = {}
    for row in entries:
        by_key.setdefault(row[0], []).append(row)
    expected = {number: OPENING for number in test.numbers}
    keys = set()
    for op in test.ops:
        key = ledger_key(op.key)
        keys.add(key)
        found = by_key.get(key, [])
        if op.outcome == "posted" and len(found) != 1:
            stats.anomaly(f"{op.key}: acknowledged as posted but {len(found)} ledger entries")
        elif op.outcome == "refused" and found:
            stats.anomaly(f"{op.key}: acknowledged as refused but {len(found)} ledger entries")
        elif op.outcome not in ("posted", "refused") and len(found) > 1:
            stats.anomaly(f"{op.key}: unacknowledged, yet {len(found)} ledger entries")
        for _, reference, source, destination, out, into, legs in found:
            if (source, destination, out, into, legs) != (op.source, op.destination,
                                                          op.amount, op.amount, 2):
                stats.anomaly(f"{op.key}: entry {reference} moves {out}/{into} {source}->"
                              f"{destination} in {legs} legs; asked {op.amount} "
                              f"{op.source}->{op.destination}")
            if op.outcome == "posted" and op.answer[1].get("reference") != reference:
                stats.anomaly(f"{op.key}: acknowledged reference {op.answer[1].get('reference')}"
                              f" but the ledger entry is {reference}")
            expected[op.source] -= op.amount
            expected[op.destination] += op.amount
        if op.outcome not in ("posted", "refused"):
            stats.add("unacknowledged, found in ledger" if found
                      else "unacknowledged, not in ledger")
    strangers = [row for row in entries if row[0] not in keys]
    if strangers:
        stats.anomaly(f"{len(strangers)} transfer entries no request asked for: "
                      f"{strangers[:3]}")
    for number in test.numbers:
        if balances.get(number) != expected[number]:
            stats.anomaly(f"{number}: balance {balances.get(number)}, but opening balance plus "
                          f"the transfers in the ledger is {expected[number]}")
    if sum(balances.values()) != TOTAL:
        stats.anomaly(f"final total {sum(balances.values())}, expected {TOTAL}")
    stats.counts["ledger transfer entries"] = len(entries)

    result = apphost.reconcile(app)
    log(f"flask reconcile: {result.summary()}")
    for problem in result.problems:
        stats.anomaly(f"reconcile: {problem}")


# ---------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    if not (args.app_dir / "bankapp" / "api").is_dir():
        sys.exit(f"{args.app_dir} has no JSON API (bankapp/api): nothing to test")
    apphost.require_redis()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    cluster = PrivateCluster() if args.pg == "private" else MainCluster(args.server_url)
    server = None
    pooler = None
    workdir = Path(tempfile.mkdtemp(prefix="bankapp-bank-"))
    started = time.monotonic()
    try:
        cluster.start()
        log(f"bank test ({'short' if args.short else 'full'}, seed {seed}) on {cluster.label}, "
            f"app {args.app_dir}")
        db_url = apphost.create_database(cluster.server_url, DB_NAME)
        apphost.migrate(args.app_dir, db_url)
        apphost.use_app_dir(args.app_dir, db_url)
        app = apphost.make_app()
        apphost.seed(db_url, users=1, accounts=ACCOUNTS, balance=OPENING,
                     hashed=apphost.password_hash(app))
        numbers = [apphost.account_number(n) for n in range(1, ACCOUNTS + 1)]
        env = apphost.app_env(args.app_dir, db_url)
        if args.pooler == "pgbouncer":
            pooler = PgBouncer(cluster.server_url).start()
            log(f"the app connects through PgBouncer (transaction mode) on port {pooler.port}")
            env.update(DATABASE_URL=pooler.url(DB_NAME), DATABASE_NULLPOOL="1")
        server = apphost.Gunicorn(args.app_dir, env, workers=args.workers, timeout=20,
                                  log_path=workdir / "gunicorn.log")
        server.start()

        test = BankTest(args, server.port, apphost.user_email(1), numbers)
        test.token()
        restarts = [] if args.no_pg_restart else (
            [(args.duration * 0.4, "immediate")] if args.short
            else [(args.duration * 0.3, "fast"), (args.duration * 0.65, "immediate")])
        nemesis = Nemesis(server, cluster, test.stats, args.duration, args.kill_every,
                          restarts, random.Random(rng.random()))
        def guarded(target, *target_args):
            """A client thread that dies is reported: its silence would hide answers."""
            def run():
                try:
                    target(*target_args)
                except Exception as error:  # noqa: BLE001 -- reported, and fails the run
                    test.stats.anomaly(f"{threading.current_thread().name} crashed: "
                                       f"{type(error).__name__}: {error}")
            return run

        threads = [threading.Thread(target=guarded(test.writer, random.Random(rng.random())),
                                    name=f"writer-{i}") for i in range(args.writers)]
        threads += [threading.Thread(target=guarded(test.reader), name=f"reader-{i}")
                    for i in range(args.readers)]
        threads.append(threading.Thread(target=guarded(nemesis.run), name="nemesis"))
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + args.duration
        sabotage_at = time.monotonic() + args.duration / 2 if args.sabotage else None
        while time.monotonic() < deadline:
            if sabotage_at is not None and time.monotonic() >= sabotage_at:
                try:
                    sabotage(args.sabotage, db_url, test)
                    sabotage_at = None
                except (psycopg2.Error, StopIteration) as error:
                    log(f"sabotage failed, will try again: {str(error).strip()[:120]}")
                    sabotage_at = time.monotonic() + 1
            time.sleep(min(5.0, deadline - time.monotonic()))
            counts = test.stats.counts
            log(f"{counts['transfers tried']} transfers tried, {counts['reads ok']} reads, "
                f"{counts['fault: kill -9 gunicorn worker']} worker kills, "
                f"{len(test.stats.anomalies)} anomalies")
        nemesis.stop.set()
        test.stop_writes.set()
        # Transfers in flight still get their definite answer, with the system healthy.
        test.give_up_at = time.monotonic() + 45
        for thread in threads:
            if thread.name.startswith(("writer", "nemesis")):
                thread.join()
        test.stop_reads.set()
        for thread in threads:
            thread.join()
        final_checks(test, db_url, 1, app)
        report(test, seed, time.monotonic() - started, workdir / "gunicorn.log")
        return 1 if test.stats.anomalies else 0
    finally:
        if server is not None:
            server.stop()
        if pooler is not None:
            pooler.stop()
        if args.pg == "main":
            apphost.drop_database(cluster.server_url, DB_NAME)
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


OUTAGE_GRACE = 5.0  # seconds after PostgreSQL is back in which 5xx still count as the outage's


def report(test: BankTest, seed: int, elapsed: float, server_log: Path) -> None:
    counts = test.stats.counts
    outside = [t for t in test.stats.server_errors
               if not any(start <= t <= end + OUTAGE_GRACE for start, end in test.stats.outages)]
    counts["5xx answers outside PostgreSQL outages"] = len(outside)
    print()
    print(f"== bank test: {elapsed:.0f} s, seed {seed}")
    for name in sorted(counts):
        print(f"  {name:<48} {counts[name]:>7}")
    outcomes = Counter(op.outcome for op in test.ops)
    print(f"  {'operations by outcome':<48} {dict(outcomes)}")
    print(f"  {'anomalies':<48} {len(test.stats.anomalies):>7}")
    for anomaly in test.stats.anomalies[:30]:
        print(f"    {anomaly}")
    errors = server_errors_logged(server_log)
    if errors:
        print("  errors in the gunicorn log: " + ", ".join(f"{name} x{n}"
                                                         for name, n in errors.most_common(8)))
    traceback = first_traceback(server_log)
    if traceback:
        print("  first traceback in the gunicorn log (the log is deleted with the run):")
        for line in traceback[-30:]:
            print(f"    {line}")


def first_traceback(path: Path) -> list[str]:
    """The first traceback the app logged (its whole chain), with the line that preceded it."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for number, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            end = number + 1
            while end < len(lines):
                chained = (end + 2 < len(lines) and not lines[end + 1].strip()
                           and lines[end + 2].startswith(("The above", "During")))
                if re.match(r"^[A-Za-z_][\w.]*: ", lines[end]) and not chained:
                    break
                end += 1
            return lines[max(0, number - 1):end + 1]
    return []


def server_errors_logged(path: Path) -> Counter:
    """Exception classes the app logged (final line of each traceback) and worker deaths."""
    found = Counter()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout)): ", line)
        if match:
            found[match.group(1)] += 1
        elif "was sent SIGKILL" in line or "WORKER TIMEOUT" in line:
            found["worker SIGKILL/timeout (gunicorn)"] += 1
    return found


if __name__ == "__main__":
    sys.exit(main())

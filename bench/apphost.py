"""Shared harness for the HTTP benchmarks: throwaway databases, fast seeding, gunicorn.

Used by ``load_bench.py`` and ``bank_test.py``. Everything runs on loopback. The app under
test is whatever bankapp checkout ``--app-dir`` names (default: this repository), so the same
scripts drive a feature branch during development and ``main`` afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import psycopg2

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_PASSWORD = "bench-password-9f3c1a"
REDIS_URL = "redis://127.0.0.1:6379/14"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- databases


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database name replaced by ``name``."""
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def _admin_connect(server_url: str):
    conn = psycopg2.connect(database_url(server_url, "postgres"))
    conn.autocommit = True
    return conn


def create_database(server_url: str, name: str) -> str:
    """Drop ``name`` if a crashed run left it, create it empty; return its URL."""
    with closing(_admin_connect(server_url)) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    try:
        with closing(_admin_connect(server_url)) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg2.Error as error:
        log(f"could not drop database {name}: {error}")


def app_env(app_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    """The environment the app runs with: development config (production forces HTTPS)."""
    env = dict(os.environ)
    env.update({
        "BANKAPP_ENV": "development",
        "FLASK_APP": "wsgi",
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "LOGIN_RATE_LIMIT": "100000 per minute",
        # Counted as in production (one store update per call), never reached by a bench.
        "API_RATE_LIMIT": "1000000 per minute",
        # The load benchmark pays random accounts: each is a first look-up of that number
        # (bankapp/identity/lookups.py), which the default budget (10 an hour) would refuse.
        # Raised, every such transfer still pays for its look-up, as a real one does.
        "PAYEE_LOOKUP_LIMIT": "100000000 per hour",
        "JWT_ACCESS_TOKEN_MINUTES": "120",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(app_dir),
        # The app under test may be another checkout: leave no __pycache__ behind in it.
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(extra)
    return env


def require_redis(url: str = REDIS_URL) -> None:
    """The app's limiter store must answer, or every request fails."""
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as error:
        sys.exit(f"Redis at {url} does not answer ({error}); start it with "
                 "redis-server --daemonize yes --bind 127.0.0.1 --port 6379")


def migrate(app_dir: Path, db_url: str) -> None:
    """``flask db upgrade`` of the app under test against ``db_url``."""
    result = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=app_dir,
                            env=app_env(app_dir, db_url), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")


def use_app_dir(app_dir: Path, db_url: str) -> None:
    """Make ``import bankapp`` load the app under test, configured for ``db_url``."""
    os.environ.update({k: v for k, v in app_env(app_dir, db_url).items()
                       if k not in ("PYTHONPATH",)})
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(app_dir))


def make_app():
    """A bankapp instance in this process (call ``use_app_dir`` first)."""
    from bankapp import create_app

    return create_app()


def password_hash(app) -> str:
    """One argon2id hash of BENCH_PASSWORD, made the way the app makes them."""
    from bankapp.identity.security import hash_password

    with app.app_context():
        return hash_password(BENCH_PASSWORD)


def user_email(number: int) -> str:
    return f"bench{number}@example.com"


def account_number(number: int) -> str:
    return f"ACC-{number:09d}"


def seed(db_url: str, *, users: int, accounts: int, balance: Decimal, hashed: str) -> None:
    """Seed ``users`` verified customers and ``accounts`` funded accounts, in bulk SQL.

    Account ``a`` (1-based, number ``ACC-00000000a``) belongs to user ``(a-1) % users + 1``.
    Every account gets an opening DEPOSIT entry with two legs, as the ledger writes them: a
    credit on the customer account and a debit on the vault (GL-VAULT), whose balance_after
    runs down by ``balance`` per entry in leg-id order, so ``ledger.reconcile()`` is clean.
    Ids are explicit (the sequences are moved past them) so the running balances do not
    depend on the order PostgreSQL assigns sequence values in.
    """
    params = {"users": users, "accounts": accounts, "balance": balance, "hash": hashed}
    statements = [
        """INSERT INTO users (id, email, password_hash, first_name, last_name, is_verified,
                             role, is_active, session_token, created_at, updated_at)
           SELECT u, 'bench' || u || '@example.com', %(hash)s, 'Bench', 'User ' || u, true,
                  'customer', true, md5('session' || u || random()::text), now(), now()
           FROM generate_series(1, %(users)s) AS u""",
        """INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                name, created_at)
           VALUES (1, 'GL-VAULT', 'VAULT', NULL, -(%(balance)s * %(accounts)s), 'active',
                   'Vault cash', now())""",
        """INSERT INTO accounts (id, account_number, account_type, owner_id, balance, status,
                                created_at)
           SELECT a + 1, 'ACC-' || lpad(a::text, 9, '0'),
                  CASE WHEN a %% 2 = 0 THEN 'SAVINGS' ELSE 'CHECKING' END,
                  (a - 1) %% %(users)s + 1, %(balance)s, 'active', now()
           FROM generate_series(1, %(accounts)s) AS a""",
        """INSERT INTO journal_entries (id, reference, entry_type, description, actor_id,
                                       channel, idempotency_key, created_at)
           SELECT a, md5('bench-opening-' || a), 'DEPOSIT', 'Opening balance', NULL,
                  'system', NULL, now()
           FROM generate_series(1, %(accounts)s) AS a""",
        """INSERT INTO transactions (id, entry_id, account_id, transaction_type, side, amount,
                                    balance_after, timestamp, description)
           SELECT 2 * a - 1, a, a + 1, 'DEPOSIT', 'credit', %(balance)s, %(balance)s, now(),
                  'Opening balance'
           FROM generate_series(1, %(accounts)s) AS a
           UNION ALL
           SELECT 2 * a, a, 1, 'DEPOSIT', 'debit', %(balance)s, -(%(balance)s * a), now(),
                  'Opening balance'
           FROM generate_series(1, %(accounts)s) AS a""",
        # Where the ledger keeps report buckets of customer movements (ledger_totals, from
        # the reports work), fill them from the legs as its migration does: reconcile
        # compares the two.
        """DO $$ BEGIN
             IF to_regclass('ledger_totals') IS NOT NULL THEN
               INSERT INTO ledger_totals (bucket, kind, shard, amount, movements)
               SELECT date_bin('15 minutes', timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                      'deposit', account_id %% 16, sum(amount), count(*)
               FROM transactions WHERE transaction_type = 'DEPOSIT' AND side = 'credit'
               GROUP BY 1, 2, 3;
             END IF;
           END $$""",
        "SELECT setval(pg_get_serial_sequence('users', 'id'), %(users)s)",
        "SELECT setval(pg_get_serial_sequence('accounts', 'id'), %(accounts)s + 1)",
        "SELECT setval(pg_get_serial_sequence('journal_entries', 'id'), %(accounts)s)",
        "SELECT setval(pg_get_serial_sequence('transactions', 'id'), 2 * %(accounts)s)",
    ]
    with closing(psycopg2.connect(db_url)) as conn:
        with conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")


def money(db_url: str) -> tuple[Decimal, Decimal, int]:
    """(sum of customer balances, sum of all balances, negative customer balances)."""
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("""SELECT coalesce(sum(balance) FILTER (WHERE owner_id IS NOT NULL), 0),
                              coalesce(sum(balance), 0),
                              count(*) FILTER (WHERE owner_id IS NOT NULL AND balance < 0)
                       FROM accounts""")
        return cur.fetchone()


def reconcile(app):
    """``flask reconcile`` in this process: the ledger's own check of every invariant."""
    from bankapp import ledger
    from bankapp.extensions import db

    with app.app_context():
        result = ledger.reconcile()
        db.session.remove()
        return result


# ---------------------------------------------------------------- gunicorn


class Gunicorn:
    """``gunicorn wsgi:app`` of the app under test on 127.0.0.1:<free port>."""

    def __init__(self, app_dir: Path, env: dict[str, str], *, workers: int,
                 worker_class: str = "sync", threads: int = 1, timeout: int = 30,
                 log_path: Path | None = None, module: str = "wsgi:app"):
        self.app_dir = app_dir
        self.module = module
        self.env = env
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads
        self.timeout = timeout
        self.port = free_port()
        self.log_path = log_path or Path(f"/tmp/bankapp-gunicorn-{self.port}.log")
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread {self.workers}w x {self.threads}t"
        return f"{self.worker_class} {self.workers}w"

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", self.module,
                   "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(self.workers),
                   "--worker-class", self.worker_class,
                   "--threads", str(self.threads),
                   "--timeout", str(self.timeout),
                   "--graceful-timeout", "5",
                   "--backlog", "2048",
                   "--log-level", "warning"]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, cwd=self.app_dir, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            if len(self.worker_pids()) >= self.workers and self._answers():
                return
            time.sleep(0.2)
        self.stop()
        sys.exit(f"gunicorn did not come up within 60 s; see {self.log_path}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.base_url + "/api/v1/accounts", timeout=2)
        except urllib.error.HTTPError:
            return True  # 401 without a token: the app is up
        except OSError:
            return False
        return True

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            return [int(pid) for pid in children.read_text().split()]
        except (OSError, ValueError):
            return []

    def peak_memory_mb(self) -> dict[int, float]:
        """VmHWM (peak resident set) of each live worker, in MiB."""
        peaks = {}
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1]) / 1024
            except OSError:
                continue
        return peaks

    def cpu_seconds(self) -> float:
        """User + system CPU time the live workers have used so far."""
        return sum(process_cpu_seconds(pid) for pid in self.worker_pids())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # Fields after "(comm)": state is index 0, utime index 11, stime index 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(db_url: str, database: str) -> float:
    """CPU time used so far by the PostgreSQL backends connected to ``database``."""
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                    "pg_backend_pid()", (database,))
        return sum(process_cpu_seconds(pid) for (pid,) in cur.fetchall())


# ---------------------------------------------------------------- HTTP


def http_json(method: str, url: str, body: dict | None = None, headers: dict | None = None,
              timeout: float = 10) -> tuple[int, dict | None]:
    """One JSON request; (status, parsed body or None). Raises OSError on transport errors."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def get_token(base_url: str, email: str, password: str = BENCH_PASSWORD) -> str:
    status, body = http_json("POST", base_url + "/api/v1/token",
                             {"email": email, "password": password})
    if status != 200 or not body or "access_token" not in body:
        sys.exit(f"POST /api/v1/token for {email} answered {status}: {body}")
    return body["access_token"]

"""The data-safety drills, each on a fresh private PostgreSQL (initdb on a free port):

    .venv/bin/python bench/drills.py restore    # make restore-drill
    .venv/bin/python bench/drills.py pitr       # make pitr-drill
    .venv/bin/python bench/drills.py upgrade [--previous COMMIT]   # make upgrade-drill

restore: seed a bank, post transfers through the API (gunicorn), `flask backup`; initdb a second
  server; a truncated copy, one of a newer schema and one with a mismatched manifest are
  refused there with nothing restored; `flask restore` there (which restore-checks a scratch copy first); the manifest and
  `flask reconcile` agree; `flask check` names a wrong FIELD_ENCRYPTION_KEY; the key is rotated
  (`flask rotate-field-key`); the restored bank serves a new API transfer and a customer's
  authenticator code. Prints the backup's size and time, the restore's time.
pitr: WAL archiving (archive_command) and a base backup (pg_basebackup); transfer A, note the
  time, transfer B; a copy recovered to the noted time has A and not B, and reconciles.
upgrade: the previous release (`git archive` of the commit in .ci/previous-release) migrated
  and served by gunicorn; API transfers from a second process while this release's
  `flask db upgrade` runs; 0 answers 5xx, money conserved; then this release serves the same
  database. Checks first that migrations added since that release only expand the schema.

Exit status 1 on any failure. Redis on 127.0.0.1:6379 is the app's limiter store.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apphost  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import releases  # noqa: E402
from support.pg_services import FreshServer  # noqa: E402

REPO = apphost.REPO_ROOT
FIELD_KEY = "q1vOQm3Xh2mQmS0t3f3qk3B2cHk0c1J5dEx4b0ZkR1k="
NEW_FIELD_KEY = "mTzVfWq0bGm4T1q3l8Y8Q2x9Jm6gq0yQm8lR7n1b2cE="
USERS, ACCOUNTS, OPENING = 20, 40, Decimal("1000.00")
DATABASE = "bank"


class DrillFailed(Exception):
    pass


def require(condition, message: str) -> None:
    if not condition:
        raise DrillFailed(message)


log = apphost.log


def flask(app_dir: Path, db_url: str, *args: str, expect: int = 0, **env: str) -> str:
    """A `flask` command of the app in ``app_dir`` against ``db_url``; its output."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "flask", *args], cwd=app_dir,
                            env=apphost.app_env(app_dir, db_url,
                                                **{"FIELD_ENCRYPTION_KEY": FIELD_KEY, **env}),
                            capture_output=True, text=True, timeout=300)
    output = (result.stdout + result.stderr).strip()
    shown = "\n    ".join(line for line in output.splitlines() if "INFO  [alembic" not in line)
    log(f"$ flask {' '.join(args)}  ({time.monotonic() - started:.1f} s, exit "
        f"{result.returncode})\n    {shown}")
    require(result.returncode == expect, f"flask {args[0]} exited {result.returncode}, "
                                         f"expected {expect}")
    return output


def new_database(server: FreshServer) -> str:
    return apphost.create_database(server.url(), DATABASE)


def seed_bank(app_dir: Path, db_url: str) -> None:
    """The schema of ``app_dir``'s release, then customers with funded accounts (bulk SQL)."""
    flask(app_dir, db_url, "db", "upgrade")
    hashed = subprocess.run(
        [sys.executable, "-c", "from argon2 import PasswordHasher; import sys; "
         "print(PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)"
         f".hash('{apphost.BENCH_PASSWORD}'))"], capture_output=True, text=True,
        check=True).stdout.strip()
    apphost.seed(db_url, users=USERS, accounts=ACCOUNTS, balance=OPENING, hashed=hashed)


def owned(user: int) -> list[str]:
    return [apphost.account_number(a) for a in range(1, ACCOUNTS + 1)
            if (a - 1) % USERS + 1 == user]


class Transfers:
    """API transfers from several customers (threads of this process), counting answers."""

    def __init__(self, base_url: str, users: range):
        self.base_url = base_url
        self.tokens = {u: apphost.get_token(base_url, apphost.user_email(u)) for u in users}
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.refusals: list[str] = []  # 4xx answers, for a failure's message
        self.lock = threading.Lock()

    def one(self, user: int, n: int) -> int:
        source = owned(user)[n % 2]
        destination = apphost.account_number((user + n) % ACCOUNTS + 1)
        if destination == source:
            destination = owned(user)[(n + 1) % 2]
        try:
            status, body = apphost.http_json(
                "POST", self.base_url + "/api/v1/transfers",
                {"from_account": source, "to_account": destination,
                 "amount": f"{(n % 9) + 1}.{n % 100:02d}", "description": f"drill {n}"},
                {"Authorization": f"Bearer {self.tokens[user]}",
                 "Idempotency-Key": uuid.uuid4().hex})
        except OSError as error:
            status, body = 0, {"error": str(error)}
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500 or status == 0:
                self.errors.append(f"{status} {body}")
            elif status >= 400:
                self.refusals.append(f"{status} {source}->{destination}: {body}"[:300])
        return status

    def run(self, count: int, threads: int = 4) -> None:
        users = list(self.tokens)

        def work(offset: int) -> None:
            for n in range(offset, count, threads):
                self.one(users[n % len(users)], n)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def until(self, stop: threading.Event, threads: int = 3) -> list[threading.Thread]:
        users = list(self.tokens)

        def work(offset: int) -> None:
            n = offset
            while not stop.is_set():
                self.one(users[n % len(users)], n)
                n += threads
                time.sleep(0.01)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        return workers


def money_conserved(db_url: str) -> str:
    customers, everything, negative = apphost.money(db_url)
    require(customers == OPENING * ACCOUNTS,
            f"customer balances sum to {customers}, not {OPENING * ACCOUNTS}")
    require(everything == 0 and negative == 0,
            f"the book sums to {everything}, {negative} negative customer balances")
    return f"customer balances {customers} (as seeded), book sums to {everything}"


@contextmanager
def serving(app_dir: Path, db_url: str, label: str, **env: str):
    env = apphost.app_env(app_dir, db_url, **{"FIELD_ENCRYPTION_KEY": FIELD_KEY, **env})
    server = apphost.Gunicorn(app_dir, env,
                              workers=2, log_path=Path(tempfile.gettempdir())
                              / f"bankapp-drill-{label}-{uuid.uuid4().hex[:6]}.log")
    server.start()
    log(f"{label}: gunicorn (2 workers) of {app_dir} on {server.base_url}")
    try:
        yield server
    finally:
        server.stop()
    server.log_path.unlink(missing_ok=True)  # kept only when the block failed


# ---------------------------------------------------------------- restore


def enrol_authenticator(db_url: str) -> str:
    """An authenticator app for customer 1, enrolled by this release's code; its secret."""
    code = ("from bankapp import create_app\nfrom bankapp.extensions import db\n"
            "from bankapp.models import User\n"
            "from bankapp.identity.factors import enrol_totp_without_code\n"
            "app = create_app()\nwith app.app_context():\n"
            f"    user = db.session.scalar(db.select(User).where(User.email == "
            f"'{apphost.user_email(1)}'))\n"
            "    print(enrol_totp_without_code(user))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, env=apphost.app_env(REPO, db_url,
                                                           FIELD_ENCRYPTION_KEY=FIELD_KEY))
    require(result.returncode == 0, f"enrolling an authenticator failed: {result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def token_with_code(base_url: str, secret: str) -> int:
    import pyotp

    status, _ = apphost.http_json("POST", base_url + "/api/v1/token", {
        "email": apphost.user_email(1), "password": apphost.BENCH_PASSWORD,
        "otp": pyotp.TOTP(secret).now()})
    return status


def restore_drill(args) -> dict:
    figures = {}
    work = Path(tempfile.mkdtemp(prefix="bankapp-restore-drill-"))
    try:
        with FreshServer("origin") as origin:
            db_url = new_database(origin)
            seed_bank(REPO, db_url)
            secret = enrol_authenticator(db_url)
            with serving(REPO, db_url, "origin") as app:
                transfers = Transfers(app.base_url, range(2, USERS + 1))
                started = time.monotonic()
                transfers.run(args.transfers)
                log(f"{args.transfers} API transfers in {time.monotonic() - started:.1f} s: "
                    f"answers {transfers.statuses}")
                require(transfers.statuses.get(201, 0) == args.transfers,
                        f"not every transfer posted: {transfers.statuses} {transfers.errors[:3]}")
            started = time.monotonic()
            flask(REPO, db_url, "backup", "--output", str(work))
            (dump,) = work.glob("bankapp-*.dump")
            manifest = json.loads(dump.with_name(dump.name + ".manifest.json").read_text())
            figures.update(backup_bytes=manifest["dump_bytes"],
                           backup_seconds=manifest["seconds"],
                           backup_command_seconds=round(time.monotonic() - started, 1),
                           entries=manifest["journal_entries"])
            origin_money = apphost.money(db_url)

        with FreshServer("restored") as target:
            restored_url = new_database(target)
            refuse_bad_backups(dump, manifest, restored_url, work)
            started = time.monotonic()
            output = flask(REPO, restored_url, "restore", str(dump))
            figures["restore_command_seconds"] = round(time.monotonic() - started, 1)
            figures["restore_seconds"] = float(re.search(
                r"into postgresql\S+ in ([\d.]+) s", output).group(1))
            require(apphost.money(restored_url) == origin_money,
                    f"restored money {apphost.money(restored_url)} != {origin_money}")
            flask(REPO, restored_url, "reconcile")
            wrong = flask(REPO, restored_url, "check", expect=1,
                          FIELD_ENCRYPTION_KEY=NEW_FIELD_KEY)
            require("FAIL  field key" in wrong, "flask check did not name the wrong field key")
            flask(REPO, restored_url, "rotate-field-key",
                  FIELD_ENCRYPTION_KEY=f"{NEW_FIELD_KEY},{FIELD_KEY}")
            flask(REPO, restored_url, "check", FIELD_ENCRYPTION_KEY=NEW_FIELD_KEY)
            with serving(REPO, restored_url, "restored",
                         FIELD_ENCRYPTION_KEY=NEW_FIELD_KEY) as app:
                require(token_with_code(app.base_url, secret) == 200,
                        "the customer's authenticator code was refused after the restore")
                log("customer 1's authenticator code accepted by the restored bank "
                    "(after the key rotation)")
                after = Transfers(app.base_url, range(2, 3))
                require(after.one(2, 7) == 201, f"a new transfer failed: {after.errors}")
                log("a new API transfer posted on the restored bank: 201")
            flask(REPO, restored_url, "reconcile")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_10k = 10_000 / max(figures["entries"], 1)
    log(f"RESTORE DRILL: backup {figures['backup_bytes'] / 1024:.0f} KB of "
        f"{figures['entries']} entries in {figures['backup_seconds']} s (pg_dump + manifest; "
        f"`flask backup` {figures['backup_command_seconds']} s with start-up); about "
        f"{figures['backup_bytes'] * per_10k / 1e6:.1f} MB per 10k entries; pg_restore "
        f"{figures['restore_seconds']} s, `flask restore` (restore-check first) "
        f"{figures['restore_command_seconds']} s")
    return figures


def refuse_bad_backups(dump: Path, manifest: dict, db_url: str, work: Path) -> None:
    """A truncated file, a newer schema, a manifest whose figures differ: each refused with
    its reason, the target database left empty and no scratch database left behind."""
    bad = work / "bad"
    bad.mkdir()
    cases = {
        "truncated": (dump.read_bytes()[: manifest["dump_bytes"] // 2], {}, "truncated"),
        "newer": (dump.read_bytes(), {"migration_head": "0099_from_a_newer_release",
                                      "app_version": "9.9.9"}, "newer release (9.9.9)"),
        "mismatched": (dump.read_bytes(), {"customer_balance_total": "1.00"},
                       "does not match"),
    }
    for name, (content, changes, reason) in cases.items():
        path = bad / f"bankapp-{name}.dump"
        path.write_bytes(content)
        path.with_name(path.name + ".manifest.json").write_text(
            json.dumps({**manifest, **changes}))
        output = flask(REPO, db_url, "restore", str(path), expect=1)
        require(reason in output, f"the {name} backup was refused without saying so: {output}")
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        tables = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'bankapp_restore%'")
        scratch = cur.fetchone()[0]
    require(tables == 0 and scratch == 0, f"after the refusals: {tables} tables in the target, "
                                          f"{scratch} scratch databases left")
    log("bad backups refused (truncated, newer schema, mismatched manifest): the target is "
        "still empty, no scratch database left")


# ---------------------------------------------------------------- point in time


def pitr_drill(args) -> dict:
    figures = {}
    primary = FreshServer("pitr-primary")
    archive = primary.directory("wal-archive")
    primary.extra_options = (f"-c wal_level=replica -c archive_mode=on "
                             f"-c archive_command='cp %p {archive}/%f'")
    with primary:
        base = primary.root / "base"
        db_url = new_database(primary)
        seed_bank(REPO, db_url)
        started = time.monotonic()
        primary.cluster.run(str(primary.cluster.bin / "pg_basebackup"), "-h", "127.0.0.1",
                            "-p", str(primary.cluster.port), "-U", "postgres", "-D", str(base),
                            "-X", "stream", "--checkpoint=fast", "--no-sync")
        figures["basebackup_seconds"] = round(time.monotonic() - started, 1)
        with serving(REPO, db_url, "pitr") as app:
            transfers = Transfers(app.base_url, range(2, 4))
            require(transfers.one(2, 1) == 201, f"transfer A failed: {transfers.errors}")
            entry_a = last_entry(db_url)
            time.sleep(1.0)
            with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
                cur.execute("SELECT now()")
                noted = cur.fetchone()[0]
            time.sleep(1.0)
            require(transfers.one(3, 2) == 201, f"transfer B failed: {transfers.errors}")
            entry_b = last_entry(db_url)
        log(f"transfer A = entry {entry_a}; noted {noted.isoformat()}; transfer B = entry "
            f"{entry_b}")
        wait_archived(db_url)  # B's WAL segment is in the archive
        primary.cluster.stop("immediate")  # the disk "dies"

        recovered = FreshServer("pitr-recovered")
        try:
            started = time.monotonic()
            shutil.copytree(base, recovered.cluster.data)
            if os.geteuid() == 0:
                subprocess.run(["chown", "-R", "postgres:postgres",
                                str(recovered.cluster.data)], check=True)
            os.chmod(recovered.cluster.data, 0o700)
            (recovered.cluster.data / "recovery.signal").touch()
            recovered.cluster.start(f"-c restore_command='cp {archive}/%f %p' "
                                    f"-c recovery_target_time='{noted.isoformat()}' "
                                    f"-c recovery_target_action=promote")
            recovered_url = recovered.url(DATABASE)
            wait_promoted(recovered_url)
            figures["recovery_seconds"] = round(time.monotonic() - started, 1)
            entries = entry_ids(recovered_url)
            require(entry_a in entries, f"transfer A (entry {entry_a}) is missing")
            require(entry_b not in entries, f"transfer B (entry {entry_b}) is there")
            log(f"recovered to {noted.isoformat()}: entry {entry_a} (A) present, "
                f"{entry_b} (B) absent; {money_conserved(recovered_url)}")
            flask(REPO, recovered_url, "reconcile")
        finally:
            recovered.stop()
    log(f"PITR DRILL: base backup {figures['basebackup_seconds']} s; recovery to the noted "
        f"time (copy, WAL replay, promote) {figures['recovery_seconds']} s")
    return figures


def last_entry(db_url: str) -> int:
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT max(id) FROM journal_entries")
        return cur.fetchone()[0]


def entry_ids(db_url: str) -> set[int]:
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM journal_entries")
        return {row[0] for row in cur.fetchall()}


def wait_archived(db_url: str, timeout: float = 30) -> None:
    """Close the current WAL segment and wait until archive_command has copied it."""
    deadline = time.monotonic() + timeout
    with closing(psycopg2.connect(db_url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
            segment = cur.fetchone()[0]
            while time.monotonic() < deadline:
                cur.execute("SELECT last_archived_wal, failed_count FROM pg_stat_archiver")
                archived, failed = cur.fetchone()
                if archived and archived >= segment:
                    return
                require(not failed, "archive_command failed; see the server log")
                time.sleep(0.2)
    raise DrillFailed(f"WAL segment {segment} was not archived in {timeout:.0f} s")


def wait_promoted(db_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with closing(psycopg2.connect(db_url, connect_timeout=2)) as conn, \
                    conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                if not cur.fetchone()[0]:
                    return
        except psycopg2.OperationalError:
            pass
        time.sleep(0.2)
    raise DrillFailed("the recovered server did not finish recovery")


# ---------------------------------------------------------------- upgrade

def previous_release(commit: str | None) -> tuple[str, str]:
    commit, name = releases.previous_release() if commit is None else (commit, commit[:12])
    require(releases.has_commit(commit), f"commit {commit} is not in this clone: fetch the "
                                         "history (git fetch --unshallow) for the upgrade drill")
    return commit, name


def check_expand_only(migrations: list[str]) -> None:
    for name in migrations:
        source = (releases.VERSIONS / name).read_text()
        found = releases.contract_operation(source)
        require(not found or releases.marked_contract(source),
                f"{name} contracts the schema ({found}) while the previous release may still "
                "run: ship it in a later release, marked CONTRACT = True (docs/operations.md, "
                "expand → migrate → contract)")
        log(f"{name}: {'contract (marked CONTRACT = True)' if found else 'expand only'}")


def upgrade_drill(args) -> dict:
    commit, name = previous_release(args.previous)
    migrations = releases.migrations_since(commit)
    log(f"previous release {name} ({commit[:12]}); migrations since: {migrations or 'none'}")
    check_expand_only(migrations)
    old = Path(tempfile.mkdtemp(prefix="bankapp-previous-release-"))
    figures = {"previous": name, "migrations": len(migrations)}
    try:
        archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        with FreshServer("upgrade") as server:
            db_url = new_database(server)
            seed_bank(old, db_url)
            with serving(old, db_url, "previous release") as app:
                load = Transfers(app.base_url, range(1, 9))
                stop = threading.Event()
                workers = load.until(stop)
                time.sleep(3)
                before = sum(load.statuses.values())
                started = time.monotonic()
                flask(REPO, db_url, "db", "upgrade")
                figures["upgrade_seconds"] = round(time.monotonic() - started, 1)
                during = sum(load.statuses.values()) - before
                time.sleep(3)  # the old code keeps serving the new schema
                stop.set()
                for worker in workers:
                    worker.join()
            log(f"previous release under load: answers {load.statuses} ({during} while "
                "`flask db upgrade` ran)")
            require(not load.errors, f"answers 5xx or lost: {load.errors[:5]}")
            require(load.statuses.get(201, 0) > 0, "no transfer posted during the drill")
            log(money_conserved(db_url))
            flask(REPO, db_url, "check")
            with serving(REPO, db_url, "this release") as app:
                # Customers the previous release's load never paid from: however long the
                # upgrade took, their accounts still hold their opening balance or more.
                after = Transfers(app.base_url, range(9, 13))
                after.run(40, threads=2)
                require(after.statuses == {201: 40},
                        f"this release: {after.statuses}, e.g. {after.refusals[:2]}")
                log(f"this release on the upgraded database: 40 transfers, {after.statuses}")
            log(money_conserved(db_url))
            flask(REPO, db_url, "reconcile")
            figures.update(answers=dict(load.statuses), during_upgrade=during)
    finally:
        shutil.rmtree(old, ignore_errors=True)
    log(f"UPGRADE DRILL: previous release {name} served {sum(load.statuses.values())} "
        f"transfers ({load.statuses}), {during} during `flask db upgrade` "
        f"({figures['upgrade_seconds']} s); 0 5xx; money conserved; this release then served "
        "the same database")
    return figures


def main() -> int:
    global ACCOUNTS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="drill", required=True)
    restore = sub.add_parser("restore")
    restore.add_argument("--transfers", type=int, default=300)
    restore.add_argument("--accounts", type=int, default=ACCOUNTS,
                         help="funded accounts seeded, one opening entry each (10000 measures "
                              "a backup of about 10k entries)")
    sub.add_parser("pitr")
    upgrade = sub.add_parser("upgrade")
    upgrade.add_argument("--previous", default=None,
                         help="commit of the previous release [default: .ci/previous-release]")
    args = parser.parse_args()
    ACCOUNTS = getattr(args, "accounts", ACCOUNTS)
    apphost.require_redis()
    started = time.monotonic()
    drill = {"restore": restore_drill, "pitr": pitr_drill, "upgrade": upgrade_drill}[args.drill]
    try:
        drill(args)
    except DrillFailed as failure:
        log(f"{args.drill} drill FAILED: {failure}")
        return 1
    log(f"{args.drill} drill passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

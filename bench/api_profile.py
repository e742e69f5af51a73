"""Worker CPU of one authenticated API transfer, in process: where it goes, and its round trips.

    .venv/bin/python bench/api_profile.py [--requests 500] [--top 25] [--wsgi] [--no-profile]

What it does (about half a minute):

1. Creates a PostgreSQL database (``bankapp_bench_api_profile`` on BENCH_DATABASE_URL's
   server, default ``postgresql://postgres@127.0.0.1:5432/postgres``), migrates it, seeds
   users and funded accounts in bulk SQL (``apphost.seed``), and builds the app in this
   process with the load benchmark's settings (development config, Redis as the limiter
   store); it drops the database at the end.
2. Takes a token, sends 50 warm-up transfers, then times ``--requests`` transfers (random
   pairs of one user's accounts, each with a new Idempotency-Key) with ``time.process_time``
   in ``--batches`` batches: CPU milliseconds per request of the least disturbed batch and
   of the median one (a shared machine slows some batches down), the test client's share
   included (``--wsgi`` calls the WSGI app directly on a prebuilt environ instead, nearer
   to what a gunicorn worker spends: no test client, no response wrapping).
   The CPU spent inside ``post_once`` (the ledger's posting and its answer, timed by
   a wrapper around the route module's ``post_once``) is reported apart: the rest is the
   per-request work outside the ledger, what this tool is for.
3. Runs the same number again under cProfile, paused inside ``post_once``, and prints the
   top functions of the work outside the ledger, by cumulative and by own time. Pausing
   ends the frames open at that moment (cProfile's rule), so the few frames that enclose
   ``post_once`` (the request, the view) show only their time before it; every other
   function's figures are whole.
4. Counts the SQL round trips of one transfer on the wire (``wire_count.WireCounter``, as
   ``load_bench.py`` does) and lists the statements.

``--api-rate-limit ''`` runs without the per-user call counter (``API_RATE_LIMIT``,
``bankapp/api/tokens.py`` ``spend_call``): run it and the default one after the other to price
the counter's store update.

``--price-rate-limit`` times batches with and without the counter in turn in this one
process (the price of the counter, the same load on both sides).

``--to-others`` pays other customers' accounts instead, each for the first time, as the load
benchmark's random transfers do: every transfer is then also a look-up of a new number
(``bankapp/identity/lookups.py``: its checks, its lock, its budget and its audit line).

Compare step 2's numbers across branches (no profiler running then), e.g. this checkout and
``--app-dir /work/main`` one after the other; read step 3 for where the time goes.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apphost  # noqa: E402
from apphost import log  # noqa: E402

DATABASE = "bankapp_bench_api_profile"
USERS = 20
ACCOUNTS = 200  # ten per user: user 1 owns ACC-000000001, ACC-000000021, …
WARM_UP = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                               apphost.DEFAULT_SERVER_URL))
    parser.add_argument("--app-dir", type=Path, default=apphost.REPO_ROOT)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--batches", type=int, default=10,
                        help="timed in this many batches: noise shows as their spread")
    parser.add_argument("--top", type=int, default=25, help="functions listed (cumulative)")
    parser.add_argument("--wsgi", action="store_true",
                        help="call the WSGI app on a prebuilt environ, not the test client")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--no-wire", action="store_true", help="skip the round-trip count")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--api-rate-limit", metavar="TEXT", default=None,
                        help="the per-user API_RATE_LIMIT to run with (default: apphost's, "
                             "counted but never reached); '' runs without the counter, to "
                             "price its store update side by side")
    parser.add_argument("--price-rate-limit", action="store_true",
                        help="time batches with and without the per-user call counter in "
                             "turn, in this one process (the counter is read from the app's "
                             "config on each call): its price, robust to the machine's load")
    parser.add_argument("--to-others", action="store_true",
                        help="pay other customers' accounts, each one for the first time (as "
                             "the load benchmark does): every transfer is also a look-up of "
                             "a new number (bankapp/identity/lookups.py)")
    return parser.parse_args()


def own_accounts(user: int, accounts: int = ACCOUNTS) -> list[str]:
    return [apphost.account_number(a) for a in range(user, accounts + 1, USERS)]


class Transfers:
    """Sends transfers between user 1's accounts (no step-up: own accounts), one at a time;
    ``to_others``: from user 1's accounts to other customers' accounts, each paid once."""

    def __init__(self, app, token: str, *, wsgi: bool, to_others: bool = False,
                 accounts: int = ACCOUNTS):
        self.app = app
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.accounts = own_accounts(1, accounts)
        self.others = None
        if to_others:
            mine = set(self.accounts)
            self.others = iter([apphost.account_number(a) for a in range(1, accounts + 1)
                                if apphost.account_number(a) not in mine])
        self.wsgi = wsgi
        self.random = random.Random(12)

    def _body(self) -> dict:
        if self.others is not None:
            source, destination = self.random.choice(self.accounts), next(self.others)
        else:
            source, destination = self.random.sample(self.accounts, 2)
        return {"from_account": source, "to_account": destination, "amount": "0.01",
                "description": "profile"}

    def send(self) -> int:
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        if not self.wsgi:
            return self.client.post("/api/v1/transfers", headers=headers,
                                    json=self._body()).status_code
        from werkzeug.test import EnvironBuilder

        environ = EnvironBuilder(path="/api/v1/transfers", method="POST", headers=headers,
                                 json=self._body()).get_environ()
        statuses = []
        chunks = self.app.wsgi_app(environ, lambda status, headers, exc=None:
                                   statuses.append(status))
        for _ in chunks:
            pass
        if hasattr(chunks, "close"):
            chunks.close()
        return int(statuses[0].split()[0])

    def run(self, count: int) -> None:
        for _ in range(count):
            status = self.send()
            if status != 201:
                sys.exit(f"transfer answered {status}: not a clean run")


def take_token(app) -> str:
    answer = app.test_client().post("/api/v1/token", json={
        "email": apphost.user_email(1), "password": apphost.BENCH_PASSWORD})
    if answer.status_code != 200:
        sys.exit(f"no token: {answer.status_code} {answer.get_data(True)[:200]}")
    return answer.get_json()["access_token"]


class PostingClock:
    """Wraps the API routes' ``post_once``: adds up the CPU spent inside it, and pauses the
    profiler (when one runs) for its duration, so what remains is the work outside the ledger."""

    def __init__(self):
        from bankapp.api import routes

        self.routes = routes
        self.original = routes.post_once
        self.seconds = 0.0
        self.profiler: cProfile.Profile | None = None
        routes.post_once = self

    def __call__(self, *args, **kwargs):
        if self.profiler is not None:
            self.profiler.disable()
        started = time.process_time()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - started
            if self.profiler is not None:
                self.profiler.enable()


def cpu_per_request(transfers: Transfers, clock: PostingClock, count: int,
                    batches: int) -> list[tuple[float, float]]:
    """Per batch of ``count // batches`` requests: (CPU ms per request in all, of which
    inside post_once), lowest first."""
    size = max(1, count // batches)
    results = []
    for _ in range(batches):
        clock.seconds = 0.0
        started = time.process_time()
        transfers.run(size)
        elapsed = time.process_time() - started
        results.append((elapsed * 1000 / size, clock.seconds * 1000 / size))
    return sorted(results)


def price_rate_limit(app, transfers: Transfers, clock: PostingClock, count: int,
                     batches: int) -> None:
    """CPU per request with the configured ``API_RATE_LIMIT`` and without any, batch by batch
    in turn (``2 * batches`` batches of ``count // batches``), so both see the same load."""
    configured = app.config.get("API_RATE_LIMIT")
    seen = {configured: [], "": []}
    for _ in range(batches):
        for limit in (configured, ""):
            app.config["API_RATE_LIMIT"] = limit
            seen[limit] += cpu_per_request(transfers, clock, count // batches, 1)
    app.config["API_RATE_LIMIT"] = configured
    print(f"\nThe per-user call counter, batches in turn ({batches} of each, "
          f"{count // batches} requests each; CPU ms per request, min / median):")
    medians = {}
    for limit, results in seen.items():
        cpu = sorted(all_ms for all_ms, _ in results)
        medians[limit] = cpu[len(cpu) // 2]
        print(f"  API_RATE_LIMIT={limit!r:<22} {cpu[0]:.2f} / {medians[limit]:.2f} ms")
    print(f"  the counter costs {medians[configured] - medians['']:+.2f} ms per request "
          f"(difference of the medians)")
    price_spend_call(app, configured)


def price_spend_call(app, configured: str, calls: int = 400, repeats: int = 7) -> None:
    """``spend_call`` alone, in a request context: CPU and wall-clock µs per call (the least
    of ``repeats`` runs of ``calls``), with the configured limit and with none."""
    from bankapp.api import tokens

    with app.test_request_context("/api/v1/transfers", method="POST"):
        for limit in (configured, ""):
            app.config["API_RATE_LIMIT"] = limit
            cpu = wall = float("inf")
            for _ in range(repeats):
                cpu_start, wall_start = time.process_time(), time.perf_counter()
                for _ in range(calls):
                    tokens.spend_call(1)
                cpu = min(cpu, (time.process_time() - cpu_start) / calls * 1e6)
                wall = min(wall, (time.perf_counter() - wall_start) / calls * 1e6)
            print(f"  spend_call alone, API_RATE_LIMIT={limit!r}: {cpu:.0f} µs CPU, "
                  f"{wall:.0f} µs wall-clock per call (least of {repeats} x {calls})")
    app.config["API_RATE_LIMIT"] = configured


def profile(transfers: Transfers, clock: PostingClock, count: int, top: int) -> str:
    """The top functions outside ``post_once``, by cumulative and by own time."""
    profiler = cProfile.Profile(time.process_time)
    clock.profiler = profiler
    profiler.enable()
    transfers.run(count)
    profiler.disable()
    clock.profiler = None
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return _trim(out.getvalue())


def _trim(report: str) -> str:
    # Paths relative to the venv or the repository: shorter lines, same information.
    for prefix in sorted({str(Path(sys.prefix)), str(apphost.REPO_ROOT)}, key=len, reverse=True):
        report = report.replace(prefix + "/", "")
    return "\n".join(line for line in report.splitlines() if line.strip()
                     and not line.lstrip().startswith(("Ordered by", "List reduced")))


def round_trips(db_url: str, skip: int = 0, **options) -> tuple[int, list[str]]:
    """One warm transfer's round trips on the wire, through the counting proxy."""
    from wire_count import WireCounter

    from config import normalize_database_url

    with WireCounter(db_url) as proxy:
        from bankapp import create_app

        app = create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(proxy.url)})
        transfers = Transfers(app, take_token(app), wsgi=False, **options)
        for _ in range(skip):  # numbers the timed runs paid
            transfers._body()
        transfers.run(3)
        proxy.reset()
        transfers.run(1)
        counted, statements = proxy.round_trips, list(proxy.queries)
        dispose(app)
    return counted, statements


def dispose(app) -> None:
    with app.app_context():
        from bankapp.extensions import db
        from bankapp.ledger import fast

        fast.dispose(app)
        db.engine.dispose()


def main() -> int:
    args = parse_args()
    apphost.require_redis()
    log(f"app under test: {args.app_dir}; load average {os.getloadavg()[0]:.1f}")
    db_url = apphost.create_database(args.server_url, DATABASE)
    try:
        apphost.migrate(args.app_dir, db_url)
        apphost.use_app_dir(args.app_dir, db_url)
        if args.api_rate_limit is not None:
            os.environ["API_RATE_LIMIT"] = args.api_rate_limit
        log(f"API_RATE_LIMIT={os.environ['API_RATE_LIMIT']!r}")
        app = apphost.make_app()
        # --to-others: a new number for every transfer of every run (the timed one, the
        # profiled one and, with --price-rate-limit, its two).
        sent = WARM_UP + (4 if args.price_rate_limit else 2) * args.requests
        accounts = (ACCOUNTS if not args.to_others
                    else (sent + 10) * USERS // (USERS - 1) + USERS)
        apphost.seed(db_url, users=USERS, accounts=accounts, balance=Decimal("1000000.00"),
                     hashed=apphost.password_hash(app))
        options = {"to_others": args.to_others, "accounts": accounts}
        transfers = Transfers(app, take_token(app), wsgi=args.wsgi, **options)
        clock = PostingClock()
        transfers.run(WARM_UP)
        how = "WSGI app, prebuilt environ" if args.wsgi else "test client"
        if args.price_rate_limit:
            price_rate_limit(app, transfers, clock, args.requests, args.batches)
        results = cpu_per_request(transfers, clock, args.requests, args.batches)
        print(f"\nCPU per API transfer ({how}, {args.requests} requests in {args.batches} "
              f"batches; the least disturbed batch, then the median):")
        for label, (cpu_ms, posting_ms) in (("min", results[0]),
                                            ("median", results[len(results) // 2])):
            print(f"  {label:>6}: {cpu_ms:.2f} ms, of which {posting_ms:.2f} ms inside "
                  f"post_once (the ledger) and {cpu_ms - posting_ms:.2f} ms outside it")
        outside = sorted(cpu - posting for cpu, posting in results)
        print(f"  outside post_once, least of the batches: {outside[0]:.2f} ms")
        if not args.no_profile:
            print("\nOutside post_once, by cumulative CPU (cProfile):")
            print(profile(transfers, clock, args.requests, args.top))
        dispose(app)
        if not args.no_wire:
            counted, statements = round_trips(
                db_url, **options, skip=sent)
            print(f"\nSQL round trips of one API transfer (on the wire): {counted}")
            for statement in statements:
                print("  " + " ".join(statement.split())[:150])
        ledger = apphost.reconcile(app)
        print(f"\nledger after the run: {ledger.summary()}")
        return 0 if ledger.clean else 1
    finally:
        if not args.keep_db:
            apphost.drop_database(args.server_url, DATABASE)


if __name__ == "__main__":
    sys.exit(main())

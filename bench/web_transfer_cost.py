"""What one confirmed web form transfer costs the app: SQL round trips and worker CPU.

    .venv/bin/python bench/web_transfer_cost.py [--transfers 300] [--batches 5] [--to-others]
                                                [--profile 25] [--sort tottime]

The web half of issue 12 measured without gunicorn or wrk (about 30 s, robust on a noisy
machine, since it counts and times CPU rather than throughput):

1. Creates ``bankapp_bench_webcost`` on BENCH_DATABASE_URL's server, migrates it and seeds
   the load benchmark's data (``apphost.seed``: 500 users owning 10,000 accounts, 20 each).
2. Round trips: an in-process app connected through ``wire_count.WireCounter`` (a counting
   TCP proxy) logs in as ``bench1`` and posts the confirmed ``POST /accounts/transfer/``
   once to warm up, then once counted; prints the count and each query on the wire. The
   transfers pay account 2, a number paid before once warmed up; ``--to-others`` pays a
   number never paid each time (a look-up first, as ``load_bench.py``'s web load does).
3. CPU: another in-process app (connected directly, so the proxy's threads cost nothing)
   logs in and posts ``--transfers`` confirmed transfers (after 20 to warm up) through
   ``app.test_client()`` in ``--batches`` batches; prints the process CPU time per transfer
   (``time.process_time``, so the PostgreSQL backend is not in it) of the least disturbed
   batch and of the median one and, with ``--profile N``, the N most expensive
   functions of a cProfile run over the same transfers (cProfile slows everything, so its
   total is not the figure to quote).
   ``--browser`` instead times each request of a whole transfer as a browser makes it,
   following every redirect: the form, its POST, the confirmation page, the confirmed POST
   and the page it redirects to, with each one's round trips.
4. Drops the database (``--keep-db`` keeps it).

Exit status 1 when a transfer is not answered with the redirect to the account page.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apphost  # noqa: E402
from apphost import log  # noqa: E402

DATABASE = "bankapp_bench_webcost"
WARM_UP = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=apphost.REPO_ROOT,
                        help="the bankapp checkout to measure (default: this repository)")
    parser.add_argument("--server-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                               apphost.DEFAULT_SERVER_URL),
                        help="PostgreSQL server (env BENCH_DATABASE_URL)")
    parser.add_argument("--transfers", type=int, default=300, help="timed transfers")
    parser.add_argument("--profile", type=int, default=25, metavar="N",
                        help="print the N functions with the most cumulative time (0: none)")
    parser.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"],
                        help="order of the profile listing")
    parser.add_argument("--browser", action="store_true",
                        help="time each request of a whole transfer as a browser makes it "
                             "(form, its POST, confirmation, confirmed POST, the page after)")
    parser.add_argument("--batches", type=int, default=5,
                        help="time the transfers in this many batches (a shared machine "
                             "slows some down: the least disturbed one is the figure)")
    parser.add_argument("--to-others", action="store_true",
                        help="pay other customers' accounts, each for the first time (a "
                             "look-up each, as load_bench.py's web load does)")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    args.app_dir = args.app_dir.resolve()
    return args


class Browser:
    """A logged-in customer's test client that posts confirmed transfers from account 1."""

    def __init__(self, app, to_others: bool = False, users: int = 500, accounts: int = 10_000):
        # Paying other customers' accounts, each for the first time (as load_bench.py's web
        # load does): every transfer is also a look-up of a new number. Account a belongs to
        # user (a - 1) % users + 1 (apphost.seed).
        self.destinations = iter([a for a in range(2, accounts + 1) if (a - 1) % users]
                                 if to_others else [])
        self.to_others = to_others
        self.client = app.test_client()
        csrf = _csrf(self.client.get("/accounts/login/").get_data(as_text=True))
        self.client.post("/accounts/login/", data={
            "email": apphost.user_email(1), "password": apphost.BENCH_PASSWORD,
            "csrf_token": csrf})
        self.csrf = _csrf(self.client.get("/accounts/transfer/").get_data(as_text=True))
        # Every transfer is sent with this cookie, as wrk sends one (bench/web_transfers.lua):
        # the flash each answer adds to the cookie is never carried into the next request.
        self.cookie = self.client.get_cookie("session").value

    def transfer(self):
        self.client.set_cookie("session", self.cookie)
        response = self.client.post("/accounts/transfer/", data={
            "csrf_token": self.csrf, "from_account": apphost.account_number(1),
            "to_account": apphost.account_number(next(self.destinations) if self.to_others
                                                 else 2), "amount": "0.01",
            "description": "web transfer cost", "idempotency_key": uuid.uuid4().hex,
            "confirmed": "yes"})
        if response.status_code not in (302, 303) or "/accounts/ACC-" not in response.location:
            sys.exit(f"transfer not posted: {response.status_code} "
                     f"{response.get_data(as_text=True)[:300]}")
        return response


    def walk(self, clock: dict[str, float] | None = None, trips=None) -> None:
        """One transfer as a browser makes it, following every redirect: the form, its POST
        (303 to the confirmation), the confirmation page, the confirmed POST (303), and the
        page it redirects to. ``clock`` adds each step's CPU seconds under its name;
        ``trips`` (a WireCounter) each step's round trips."""
        client = self.client
        client.set_cookie("session", self.cookie)
        to = apphost.account_number(2)

        def step(name, call):
            if trips is not None:
                trips.reset()
            started = time.process_time()
            response = call()
            if clock is not None:
                clock[name] = clock.get(name, 0.0) + time.process_time() - started
            if trips is not None:
                clock[name + " trips"] = trips.round_trips
            return response

        form = step("GET form", lambda: client.get("/accounts/transfer/"))
        csrf = _csrf(form.get_data(as_text=True))
        fields = {"csrf_token": csrf, "from_account": apphost.account_number(1),
                  "to_account": to, "amount": "0.01", "description": "web transfer cost",
                  "idempotency_key": uuid.uuid4().hex}
        filled = step("POST form", lambda: client.post("/accounts/transfer/", data=fields))
        confirm = step("GET confirmation", lambda: client.get(filled.location))
        if confirm.status_code != 200:
            sys.exit(f"no confirmation page: {confirm.status_code}")
        posted = step("POST confirmed", lambda: client.post(
            "/accounts/transfer/", data={**fields, "confirmed": "yes"}))
        if posted.status_code not in (302, 303):
            sys.exit(f"transfer not posted: {posted.status_code}")
        after = step("GET after", lambda: client.get(posted.location))
        if after.status_code != 200:
            sys.exit(f"the page after the transfer answered {after.status_code}")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        sys.exit("no CSRF token in the page")
    return match.group(1)


def _dispose(app) -> None:
    from bankapp.extensions import db
    from bankapp.ledger import fast

    with app.app_context():
        fast.dispose(app)
        db.engine.dispose()


def count_round_trips(db_url: str, args) -> tuple[int, list[str]]:
    """Queries on the wire for one confirmed web transfer (after one to warm up)."""
    from wire_count import WireCounter

    from bankapp import create_app
    from config import normalize_database_url

    with WireCounter(db_url) as proxy:
        app = create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(proxy.url)})
        browser = Browser(app, args.to_others, args.users, args.accounts)
        browser.transfer()
        proxy.reset()
        browser.transfer()
        counted = proxy.round_trips, list(proxy.queries)
        _dispose(app)
    return counted


def browser_walk(db_url: str, transfers: int) -> tuple[dict[str, float], dict[str, int]]:
    """CPU ms per step of a browser's whole transfer (mean of ``transfers``), and each
    step's round trips (one walk through the counting proxy, after one to warm up)."""
    from wire_count import WireCounter

    from bankapp import create_app
    from config import normalize_database_url

    with WireCounter(db_url) as proxy:
        app = create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(proxy.url)})
        browser = Browser(app)
        browser.walk()
        counted: dict = {}
        browser.walk(counted, proxy)
        trips = {name[:-6]: value for name, value in counted.items() if name.endswith(" trips")}
        _dispose(app)
    app = create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(db_url)})
    browser = Browser(app)
    for _ in range(WARM_UP):
        browser.walk()
    clock: dict[str, float] = {}
    for _ in range(transfers):
        browser.walk(clock)
    _dispose(app)
    return {name: 1000 * seconds / transfers for name, seconds in clock.items()}, trips


def cpu_per_transfer(db_url: str, args) -> tuple[list[float], str]:
    """(CPU ms per transfer of each batch, unprofiled, lowest first; the cProfile listing of
    a second run, or "")."""
    from bankapp import create_app
    from config import normalize_database_url

    transfers, top, sort = args.transfers, args.profile, args.sort
    app = create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(db_url)})
    browser = Browser(app, args.to_others, args.users, args.accounts)
    for _ in range(WARM_UP):
        browser.transfer()
    size, batches = max(1, transfers // args.batches), []
    for _ in range(args.batches):
        started = time.process_time()
        for _ in range(size):
            browser.transfer()
        batches.append(1000 * (time.process_time() - started) / size)
    listing = ""
    if top:
        profile = cProfile.Profile(time.process_time)  # CPU time, not waiting on PostgreSQL
        profile.enable()
        for _ in range(transfers):
            browser.transfer()
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(sort).print_stats(top)
        listing = out.getvalue()
    _dispose(app)
    return sorted(batches), listing


def main() -> int:
    args = parse_args()
    apphost.require_redis()
    db_url = apphost.create_database(args.server_url, DATABASE)
    try:
        apphost.migrate(args.app_dir, db_url)
        apphost.use_app_dir(args.app_dir, db_url)
        app = apphost.make_app()
        apphost.seed(db_url, users=args.users, accounts=args.accounts,
                     balance=Decimal("10000.00"), hashed=apphost.password_hash(app))
        log(f"seeded {args.users} users, {args.accounts} accounts")
        if args.browser:
            cpu, trips = browser_walk(db_url, args.transfers)
            print(f"== one transfer as a browser makes it ({args.app_dir}; CPU ms per request, "
                  f"mean of {args.transfers}, in-process test client; SQL round trips)")
            for name, ms in cpu.items():
                print(f"    {name:<18}{ms:>7.2f} ms{trips[name]:>4} round trips")
            print(f"    {'in all':<18}{sum(cpu.values()):>7.2f} ms{sum(trips.values()):>4} "
                  f"round trips")
            return 0
        trips, queries = count_round_trips(db_url, args)
        batches, listing = cpu_per_transfer(db_url, args)
        if listing:
            print(listing)
        paid = ("to numbers never paid before, each a look-up" if args.to_others
                else "to a number paid before")
        print(f"== one confirmed web form transfer (POST /accounts/transfer/, {paid}, "
              f"{args.app_dir})")
        print(f"SQL round trips on the wire: {trips}")
        for query in queries:
            print(f"    {query}")
        size = max(1, args.transfers // args.batches)
        print(f"worker CPU per transfer: {batches[0]:.2f} ms in the least disturbed batch, "
              f"{batches[len(batches) // 2]:.2f} ms the median ({args.batches} batches of "
              f"{size}, in-process test client, after {WARM_UP} to warm up)")
        with apphost.closing(apphost.psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM journal_entries WHERE description = %s",
                        ("web transfer cost",))
            posted = cur.fetchone()[0]
        timed = max(1, args.transfers // args.batches) * args.batches
        expected = 2 + WARM_UP + timed + (args.transfers if args.profile else 0)
        if posted != expected:
            print(f"FAILED: {posted} transfers posted, {expected} expected")
            return 1
        return 0
    finally:
        if not args.keep_db:
            apphost.drop_database(args.server_url, DATABASE)


if __name__ == "__main__":
    sys.exit(main())

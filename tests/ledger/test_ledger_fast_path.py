"""The differential test: PostgreSQL's ledger_post() and the generic ORM path keep one ledger.

Hypothesis draws sequences of deposits, withdrawals and transfers: through the API (valid,
refused for funds, limits, frozen or closed accounts, unknown or same accounts, replayed with
the same key, the same key with another body, concurrent twins) and through the ledger as
the web pages and the teller desk call it (web transfers and withdrawals with a form key,
teller cash through a till that may be short), with freezes, unfreezes and closures, holds
placed, released and expired, customers' own daily limits lowered or raised (against a bank
limit of 100.00) and alert settings changed in between; and batches of transfers posted as the
jobs post them (``core.post_each`` inside ``core.in_batch``: on the fast path one
``ledger_post()`` statement for the batch), keys repeated within a batch included. Every sequence runs on two fresh
PostgreSQL databases: one app with the fast path, one with ``LEDGER_FAST_PATH=0``. Both must
give the same answers and leave the same balances, entries, legs, audit rows, report buckets,
stored API answers, daily totals, holds and queued alert emails (ids, references and times
aside). PostgreSQL only (the fast path exists nowhere else).
"""
from __future__ import annotations

import os
import re
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bankapp import create_app, ledger
from bankapp.notifications import alerts
from bankapp.extensions import db, limiter
from bankapp.audit import trail
from bankapp.audit import Action, TargetType
from bankapp.ledger import core, fast
from bankapp.ledger.limits import DailyCharge
from bankapp.models import (
    Account,
    AccountStatus,
    ApiIdempotencyKey,
    AuditEvent,
    Channel,
    DailyOutgoing,
    EntryType,
    Hold,
    JournalEntry,
    LedgerTotal,
    OutboxMessage,
    Role,
    Transaction,
    TransactionType,
    User,
    now_utc,
)
from config import TestingConfig, normalize_database_url
from support.api import bearer
from support.database import POSTGRES

pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")

D = Decimal
NUMBERS = [f"ACC-{n:09d}" for n in range(1, 6)]  # 5: a near-full account
UNKNOWN = "ACC-999999999"
NEAR_FULL = D("9999990000.00")
OPENING = D("300.00")
BANK_LIMIT = "100.00"
# One expiry for every hold of the run: both databases must store the same one.
HOLD_UNTIL = (now_utc() + timedelta(days=30)).replace(microsecond=0)


# ---------------------------------------------------------------- two databases


@pytest.fixture(scope="module")
def twin_apps(database_url):
    """(fast app, generic app), each on a fresh migrated database of its own."""
    from flask_migrate import upgrade
    from sqlalchemy.engine import make_url

    server = make_url(normalize_database_url(database_url))
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    names = [f"bankapp_diff_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    apps = []
    try:
        for name, fast_path in zip(names, (True, False)):
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            url = server.set(database=name).render_as_string(hide_password=False)
            config = type("DiffConfig", (TestingConfig,), {
                "SQLALCHEMY_DATABASE_URI": url, "LEDGER_FAST_PATH": fast_path,
                "RATELIMIT_STORAGE_URI": "memory://", "DAILY_TRANSFER_LIMIT": BANK_LIMIT})
            app = create_app(config)
            with app.app_context():
                upgrade()
                assert fast.enabled() is fast_path
            apps.append(app)
        yield apps
    finally:
        for app in apps:
            with app.app_context():
                db.session.remove()
                fast.dispose(app)
                db.engine.dispose()
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def reset_and_seed() -> None:
    """An empty book, then the same users, accounts and opening balances on either side."""
    # The rate-limit store holds the security events' audit budget; both apps share it.
    limiter.reset()
    # DELETE, not TRUNCATE: on small tables it is much cheaper (TRUNCATE syncs new files to
    # disk). Triggers off for it, as the audit trail refuses deletes; ids restart so both
    # databases hand out the same ones.
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in reversed(db.metadata.sorted_tables):
            conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
            if "id" in table.c:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 1, false)")
    users = [User(email=f"{name}@example.com", password_hash="x", is_verified=True, role=role)
             for name, role in (("alice", Role.CUSTOMER), ("bob", Role.CUSTOMER),
                                ("teller", Role.TELLER))]
    db.session.add_all(users)
    db.session.flush()
    owners = [users[0], users[0], users[1], users[1], users[1]]
    db.session.add_all([Account(account_number=number, account_type="CHECKING",
                                owner_id=owner.id, balance=D("0.00"))
                        for number, owner in zip(NUMBERS, owners)])
    db.session.commit()
    for number in NUMBERS[:4]:
        ledger.deposit(account(number), OPENING, "Opening", users[2], channel=Channel.TELLER)
    # The near-full account, for the upper bound: set in SQL (no deposit may be that large),
    # against the vault so the book still sums to zero.
    db.session.execute(sa.update(Account).where(Account.account_number == NUMBERS[4])
                       .values(balance=NEAR_FULL))
    db.session.execute(sa.update(Account).where(Account.account_number == ledger.VAULT_NUMBER)
                       .values(balance=Account.balance - NEAR_FULL))
    db.session.commit()
    ledger.allocate_cash(ledger.till_for(users[2]), D("50.00"), users[2])
    # Bob watches his debits from the start (the fast path declines those that alert).
    alerts.save_settings(users[1], large_transfer_threshold=D("50.00"),
                         low_balance_floor=D("250.00"), scheduled_failed_on=True,
                         hold_placed_on=True)


def account(number: str) -> Account:
    return db.session.scalar(sa.select(Account).where(Account.account_number == number))


def user(email: str) -> User:
    return db.session.scalar(sa.select(User).where(User.email == f"{email}@example.com"))


# ---------------------------------------------------------------- operations

amounts = st.one_of(
    st.decimals(min_value=D("0.01"), max_value=D("120.00"), places=2),
    st.sampled_from([D("299.99"), D("300.00"), D("300.01"), D("1000000.00"), D("10.00")]),
).map(lambda amount: f"{amount:.2f}")
customers = st.sampled_from(["alice", "bob"])
limits = st.sampled_from([D("25.00"), D("50.00"), D("75.00"), D("100.00")])
held = st.sampled_from(["100.00", "250.00", "299.99"])
thresholds = st.one_of(st.none(), st.sampled_from([D("5.00"), D("100.00"), D("250.00")]))
numbers = st.sampled_from(NUMBERS)
destinations = st.sampled_from(NUMBERS + [UNKNOWN])
payments = st.sampled_from(["40.00", "60.00", "90.00"])  # two reach the daily limit

operations = st.one_of(
    st.tuples(st.just("api_deposit"), customers, numbers, amounts),
    st.tuples(st.just("api_withdrawal"), customers, numbers, amounts),
    st.tuples(st.just("api_transfer"), customers, numbers, destinations, amounts),
    st.tuples(st.just("api_transfer"), customers, numbers, destinations, amounts),
    st.tuples(st.just("replay"), st.integers(0, 30)),
    st.tuples(st.just("reuse_key"), st.integers(0, 30), amounts),
    st.tuples(st.just("twins"), customers, numbers, destinations, amounts),
    st.tuples(st.just("web_transfer"), numbers, destinations, amounts, st.booleans()),
    st.tuples(st.just("web_withdrawal"), numbers, amounts, st.booleans()),
    st.tuples(st.just("web_withdrawal"), numbers, payments, st.booleans()),
    st.tuples(st.just("api_withdrawal"), customers, numbers, payments),
    st.tuples(st.just("web_transfer"), numbers, destinations, payments, st.booleans()),
    st.tuples(st.just("teller_cash"), st.sampled_from(["deposit", "withdraw"]), numbers, amounts),
    st.tuples(st.just("status"), numbers,
              st.sampled_from([AccountStatus.FROZEN, AccountStatus.ACTIVE, AccountStatus.CLOSED])),
    st.tuples(st.just("hold"), numbers, st.one_of(amounts, held)),
    st.tuples(st.just("hold"), numbers, held),
    st.tuples(st.just("end_hold"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("own_limit"), customers, limits, st.booleans()),
    st.tuples(st.just("alerts"), customers, thresholds, thresholds),
    # (source, destination, amount, key number): equal key numbers in one batch are a replay
    st.tuples(st.just("batch"), st.lists(st.tuples(numbers, numbers, st.one_of(amounts, payments),
                                                   st.integers(0, 2)), min_size=1, max_size=5)),
)


def api_request(op: tuple, key: str) -> tuple[str, str, dict]:
    """(customer, path, body) of an API posting operation."""
    if op[0] == "api_transfer" or op[0] == "twins":
        _, who, source, destination, amount = op
        return who, "/api/v1/transfers", {"from_account": source, "to_account": destination,
                                          "amount": amount, "description": "  diff   test "}
    kind = "deposits" if op[0] == "api_deposit" else "withdrawals"
    _, who, number, amount = op
    return who, f"/api/v1/accounts/{number}/{kind}", {"amount": amount, "description": kind}


def send(app, who: str, path: str, body: dict, key: str) -> tuple:
    response = app.test_client().post(path, json=body, headers={
        **bearer(user(who)), "Idempotency-Key": key})
    return response.status_code, without_times(response.get_json()), \
        response.headers.get("Idempotent-Replayed")


def without_times(body):
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if k not in ("reference", "created_at")}


def ledger_outcome(call) -> tuple:
    try:
        posting = call()
    except ledger.LedgerError as error:
        db.session.rollback()
        return "refused", type(error).__name__, str(error)
    return "posted", posting.replayed


def outcome(call) -> tuple:
    """What a non-posting ledger call (a hold, a limit) answered."""
    try:
        call()
    except ledger.LedgerError as error:
        db.session.rollback()
        return "refused", type(error).__name__, str(error)
    return ("done",)


def run_sequence(app, ops: list[tuple]) -> list:
    """Apply ``ops`` to ``app``'s database; what each one answered."""
    answers, sent = [], []  # sent: (who, path, body, key) of every API posting so far
    with app.app_context():
        reset_and_seed()
        for index, op in enumerate(ops):
            kind = op[0]
            key = f"key-{index}"
            if kind in ("api_deposit", "api_withdrawal", "api_transfer"):
                who, path, body = api_request(op, key)
                sent.append((who, path, body, key))
                answers.append(send(app, who, path, body, key))
            elif kind in ("replay", "reuse_key") and sent:
                who, path, body, key = sent[op[1] % len(sent)]
                if kind == "reuse_key":
                    body = {**body, "amount": op[2]}
                answers.append(send(app, who, path, body, key))
            elif kind == "twins":
                who, path, body = api_request(op, key)
                sent.append((who, path, body, key))
                answers.append(sorted(run_twins(app, who, path, body, key), key=repr))
            elif kind == "web_transfer":
                _, source, destination, amount, again = op
                owner = db.session.get(User, account(source).owner_id)
                form_key = uuid.uuid5(uuid.NAMESPACE_URL, f"form-{index}").hex
                for _ in range(2 if again else 1):
                    answers.append(ledger_outcome(lambda: ledger.transfer(
                        account(source), destination, D(amount), "web", owner,
                        idempotency_key=form_key)))
            elif kind == "web_withdrawal":
                _, number, amount, again = op
                owner = db.session.get(User, account(number).owner_id)
                form_key = uuid.uuid5(uuid.NAMESPACE_URL, f"form-{index}").hex
                for _ in range(2 if again else 1):
                    answers.append(ledger_outcome(lambda: ledger.withdraw(
                        account(number), D(amount), "web", owner, idempotency_key=form_key)))
            elif kind == "hold":
                _, number, amount = op
                answers.append(outcome(lambda: ledger.place_hold(
                    account(number), D(amount), "diff", HOLD_UNTIL, user("teller"))))
            elif kind == "end_hold":
                _, which, release = op
                holds = db.session.scalars(sa.select(Hold.id).order_by(Hold.id)).all()
                if holds:
                    hold_id = holds[which % len(holds)]
                    if release:
                        answers.append(outcome(lambda: ledger.release_hold(hold_id,
                                                                           user("teller"))))
                    else:  # it expires: the checks compare its expiry with their moment
                        db.session.execute(sa.update(Hold).where(Hold.id == hold_id).values(
                            expires_at=now_utc() - timedelta(seconds=1)))
                        db.session.commit()
            elif kind == "own_limit":
                _, who, limit, stepped_up = op
                answers.append(outcome(lambda: ledger.set_own_limit(
                    user(who), limit, stepped_up=stepped_up)))
            elif kind == "alerts":
                _, who, threshold, floor = op
                alerts.save_settings(user(who), large_transfer_threshold=threshold,
                                     low_balance_floor=floor, scheduled_failed_on=True,
                                     hold_placed_on=True)
            elif kind == "teller_cash":
                _, what, number, amount = op
                teller = user("teller")
                post = ledger.deposit if what == "deposit" else ledger.withdraw
                answers.append(ledger_outcome(lambda: post(
                    account(number), D(amount), "counter", teller, channel=Channel.TELLER,
                    cash_account=ledger.till_for(teller))))
            elif kind == "batch":
                answers.append(run_batch(op[1], index))
            elif kind == "status":
                _, number, status = op
                db.session.execute(sa.update(Account).where(Account.account_number == number)
                                   .values(status=status))
                db.session.commit()
            db.session.remove()
        return answers + [ledger_state()]


def run_batch(transfers: list[tuple], index: int) -> list:
    """Web transfers posted together as a job posts its batch; what each one gave."""
    entries, locked = [], set()
    for source, destination, amount, key in transfers:
        if source == destination:
            continue
        payer, payee, amount = account(source), account(destination), D(amount)
        owner = db.session.get(User, payer.owner_id)
        locked |= {payer.id, payee.id}
        charge = DailyCharge(owner.id, amount) if payee.owner_id != owner.id else None
        entries.append(core.EntryToPost(
            EntryType.TRANSFER,
            (core.Leg(payer, TransactionType.TRANSFER_OUT, -amount),
             core.Leg(payee, TransactionType.TRANSFER_IN, amount)),
            "batch", owner, Channel.WEB, f"batch-{index}-{key}",
            audit=core.AuditNote(Action.TRANSFER, TargetType.ACCOUNT, source,
                                 {"amount": amount, "destination": destination}),
            daily_charge=charge))
    results = core.in_batch(lambda: core.post_each(entries), "diff", lock=sorted(locked))
    return [("posted", result.replayed) if isinstance(result, core.Posting)
            else ("refused", type(result).__name__, str(result)) for result in results]


def run_twins(app, who, path, body, key) -> list:
    """The same request sent by two threads at once."""
    barrier, answers = threading.Barrier(2), []

    def twin():
        with app.app_context():
            client, headers = app.test_client(), {**bearer(user(who)), "Idempotency-Key": key}
            db.session.remove()
            barrier.wait(timeout=30)
            response = client.post(path, json=body, headers=headers)
            answers.append((response.status_code, without_times(response.get_json())))
            db.session.remove()

    threads = [threading.Thread(target=twin) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def ledger_state() -> dict:
    """Everything the two paths must agree on, without ids, references and times."""
    number_of = dict(db.session.execute(sa.select(Account.id, Account.account_number)).all())
    references = {}
    entries = []
    for entry in db.session.scalars(sa.select(JournalEntry).order_by(JournalEntry.id)):
        references[entry.reference] = len(entries)
        legs = sorted((number_of[leg.account_id], leg.transaction_type, leg.side, leg.amount,
                       leg.balance_after, leg.description, leg.timestamp == entry.created_at)
                      for leg in entry.legs)
        entries.append((entry.entry_type, entry.description, entry.actor_id, entry.channel,
                        entry.idempotency_key, entry.reverses_id, entry.audit_action,
                        entry.ip_address, legs))
    # The trail: its rows, then the postings that are their own line (bankapp.audit.trail),
    # each in the order they were written.
    rows = list(db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)))
    audit = [(row.actor_id, row.action, row.target_type, row.target_id,
              {k: v for k, v in (row.details or {}).items()
               if k not in ("reference", "applies_at")},  # applies_at: a moment of the run
              references.get((row.details or {}).get("reference"), "no entry"), row.ip_address)
             for row in [*rows, *trail.posting_lines()]]
    answers = sorted(
        (row.user_id, row.key, row.operation, row.request_fingerprint, row.response_status,
         without_times(row.response_body),
         references.get(row.entry_reference, row.entry_reference),
         (row.response_body or {}).get("reference") == row.entry_reference
         if row.entry_reference else None)
        for row in db.session.scalars(sa.select(ApiIdempotencyKey)))
    totals = sorted(db.session.execute(
        sa.select(LedgerTotal.kind, sa.func.sum(LedgerTotal.amount),
                  sa.func.sum(LedgerTotal.movements)).group_by(LedgerTotal.kind)).all())
    balances = sorted(db.session.execute(
        sa.select(Account.account_number, Account.balance, Account.status)).all())
    daily = sorted(db.session.execute(
        sa.select(DailyOutgoing.user_id, DailyOutgoing.amount)).all())
    holds = db.session.execute(sa.select(Hold.account_id, Hold.amount, Hold.released_at.is_(None))
                               .order_by(Hold.id)).all()
    mail = sorted(db.session.execute(
        sa.select(OutboxMessage.recipient, OutboxMessage.subject)).all())
    return {"balances": balances, "entries": entries, "audit": audit, "answers": answers,
            "totals": totals, "daily": daily, "holds": holds, "mail": mail,
            # The near-full account has no opening entry, so reconcile reports its legs: by
            # id, and ids differ (a refusal on the generic path uses up sequence numbers).
            "reconcile": sorted(re.sub(r"\bleg \d+", "leg #", problem)
                                for problem in ledger.reconcile().problems)}


# DIFF_EXAMPLES=200 searches deeper (as when checking that breaking a rule fails the test),
# reporting the first failing sequence as found: shrinking one takes minutes.
DEEP = "DIFF_EXAMPLES" in os.environ


@settings(max_examples=int(os.environ.get("DIFF_EXAMPLES", 40)), deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate] if DEEP else list(Phase),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, min_size=4, max_size=16))
# More refusals than one hour's security-event audit rows (10 per kind and caller): both sides
# must start from a full budget, whatever the other side or an earlier sequence spent.
@example(ops=[("api_withdrawal", "bob", NUMBERS[0], "1.00")] * 12)
# A batch with each kind of outcome: posted, replayed within the batch, refused (a frozen
# payee, the daily limit, a full account), declined (Bob's large-transfer alert: generic).
@example(ops=[("status", NUMBERS[1], AccountStatus.FROZEN),
              ("batch", [(NUMBERS[0], NUMBERS[2], "10.00", 0), (NUMBERS[2], NUMBERS[1], "5.00", 0),
                         (NUMBERS[0], NUMBERS[2], "10.00", 0), (NUMBERS[0], NUMBERS[3], "95.00", 1),
                         (NUMBERS[2], NUMBERS[4], "60.00", 1), (NUMBERS[3], NUMBERS[4], "1.00", 2),
                         (NUMBERS[3], NUMBERS[0], "60.00", 2)])])
def test_the_fast_path_and_the_generic_path_keep_the_same_ledger(twin_apps, ops):
    fast_app, generic_app = twin_apps
    on_fast = run_sequence(fast_app, ops)
    on_generic = run_sequence(generic_app, ops)
    assert on_fast[:-1] == on_generic[:-1]  # every answer, in order
    fast_state, generic_state = on_fast[-1], on_generic[-1]
    for part in ("balances", "entries", "audit", "answers", "totals", "daily", "holds", "mail",
                 "reconcile"):
        assert fast_state.get(part) == generic_state.get(part), part
    assert fast_state == generic_state

"""PostgreSQL: a posting as one database call, ``ledger_post()`` (migrations 0014, 0015, 0022).

``core.post()`` decides what an entry is (its legs, each leg's bounds, whether it spends the
available balance, its audit line, its report bucket, the daily limit it counts against) and,
on PostgreSQL, hands that to ``ledger_post()`` instead of writing it through the ORM. The
function locks the accounts in ascending id, applies the same rules as ``core._leg_update``
(status, bounds, holds) to every leg and ``limits.charge_outgoing``'s upsert to the day's
total, and writes the entry, its legs with ``balance_after``, the audit line (on the entry
or as a row, see ``bankapp.audit.trail``) and the ``ledger_totals`` bucket. For the API it
first looks for an answer stored under the request's key (``PostingAnswer``: a refusal). A
refusal, a replayed key and an answer already stored come back as values; nothing is written
then. So
does a debit that calls for an alert email (``declined``): ``core.post`` then posts it the
generic way, which queues the alert in the same transaction.

Unless given a time (imported history), the function takes the posting's time itself, from
the database's clock once it holds the accounts' locks (migration 0029; ``core.settled_time``
says why).

Two ways in:

* ``call(db.session.connection(), …)`` in the session's transaction: pages, the teller desk,
  the CLI (``core.post`` commits, as on the generic path);
* ``run(work)`` on the *lean engine*: an autocommit pool of its own with no pre-ping, for the
  API's postings (the call is its own transaction: one round trip, no BEGIN or COMMIT) and
  the API's token check. Instead of pinging every checkout, a statement that finds its
  connection dead is sent once more on a fresh one, where that is safe: a read, or a posting
  whose idempotency key makes a second run a replay.

``LEDGER_FAST_PATH=0`` (or SQLite) keeps every posting on the generic path.
"""
from __future__ import annotations

import contextvars
import functools
import json
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Callable, Iterator, Protocol, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import DBAPIError

from bankapp.extensions import db
from bankapp.models import JournalEntry

T = TypeVar("T")

log = logging.getLogger("bankapp.ledger")

_LEAN_ENGINE = "bankapp.lean_engine"
_engine_lock = threading.Lock()
# The lean connection the statements of a ``one_connection`` block share: a one-item list,
# empty (None) until the first statement checks it out.
_SHARED: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "bankapp_lean_connection", default=None)


def enabled() -> bool:
    """Whether postings go through ``ledger_post()``: PostgreSQL and LEDGER_FAST_PATH on."""
    app = current_app._get_current_object()
    flag = app.extensions.get("bankapp.fast_path")
    if flag is None:
        flag = bool(app.config.get("LEDGER_FAST_PATH", True)) and db.engine.dialect.name == "postgresql"
        app.extensions["bankapp.fast_path"] = flag
    return flag


class PostingAnswer(Protocol):
    """The caller's answer to a posting (the API's, for its idempotency keys), as
    ``(status, body, request fingerprint)``; the ledger does not look inside it.

    An answer already stored under ``key`` (a refusal: a posting's answer is not stored, its
    entry is the record) answers the request instead, and nothing is posted: ``ledger_post()``
    looks for it after locking the accounts. ``posted(reference, created_at, balance_after)``
    is the answer to a posting made by the function, ``balance_after`` being the balance of
    ``account_id``. A posting written the generic way asks ``stored()`` after its locks, in
    its transaction (an answer there rolls the posting back and is returned instead), then
    ``of_entry(entry)``.
    """

    key: str
    account_id: int

    def stored(self) -> tuple[int, dict, str] | None: ...

    def posted(self, reference: str, created_at: datetime,
               balance_after: Decimal) -> tuple[int, dict, str]: ...

    def of_entry(self, entry: JournalEntry) -> tuple[int, dict, str]: ...


@dataclass(frozen=True)
class FastLeg:
    account_id: int
    transaction_type: str
    delta: Decimal
    low: Decimal
    high: Decimal
    total_kind: str | None  # the ledger_totals kind this leg counts as
    total_shard: int
    spends: bool = False  # holds count against it
    alert_owner: int | None = None  # whose debit alerts it may raise
    alert_large: bool = False  # whether it may raise the large-transfer alert


@dataclass(frozen=True)
class DailyCharge:
    """What a posting adds to its customer's outgoing total of ``day``, under ``bank_limit``
    (the customer's own limit, when lower, is read by the function). ``day`` None: the day
    the function times the posting on."""

    user_id: int
    amount: Decimal
    day: date | None
    bank_limit: Decimal


@dataclass(frozen=True)
class Result:
    """What ``ledger_post()`` reported."""

    outcome: str  # posted | refused | over_limit | declined | replayed | answered
    entry_id: int | None
    reference: str | None
    created_at: datetime | None  # the entry's time (posted, replayed)
    balances: dict[int, Decimal]  # posted: account id -> balance_after
    refused_account: int | None
    refused_status: str | None
    refused_balance: Decimal | None
    refused_held: Decimal | None  # refused: the account's active holds
    limit_in_force: Decimal | None  # over_limit: the limit and the day's total so far
    limit_used: Decimal | None
    answer: tuple[int, dict, str] | None  # (status, body, request fingerprint)


_PARAMETERS = [
    ("entry_type", "text"), ("description", "text"), ("actor_id", "integer"),
    ("channel", "text"), ("idempotency_key", "text"), ("reference", "text"),
    ("at", "timestamptz"), ("account_ids", "integer[]"), ("transaction_types", "text[]"),
    ("deltas", "numeric[]"), ("lows", "numeric[]"), ("highs", "numeric[]"),
    ("spends", "boolean[]"), ("alert_owners", "integer[]"), ("alert_large", "boolean[]"),
    ("limit_user", "integer"), ("limit_amount", "numeric"), ("limit_day", "date"),
    ("bank_limit", "numeric"),
    ("total_kinds", "text[]"), ("total_shards", "integer[]"), ("bucket", "timestamptz"),
    ("audit_action", "text"), ("audit_target_type", "text"), ("audit_target_id", "text"),
    ("audit_details", "json"), ("audit_ip", "text"), ("answer_key", "text"),
    ("answer_operation", "text"), ("answer_fingerprint", "text"), ("answer_body", "jsonb"),
    ("answer_account", "integer"), ("timezone", "text"),
]


# What ledger_post() answers, by name. Named (not ``*``) and declared to SQLAlchemy, so the
# compiled statement keeps its result's description: a textual ``SELECT *`` is described
# again from the cursor on every call, CPU spent on every posting for nothing.
_ANSWER = ("outcome", "entry_id", "entry_reference", "entry_created_at", "balances",
           "refused_account", "refused_status", "refused_balance", "refused_held",
           "limit_in_force", "limit_used", "answer_status", "answer_body", "answer_fingerprint")


def _answered(sql: str, *leading: str) -> sa.TextualSelect:
    return sa.text(sql).columns(*(sa.column(name) for name in (*leading, *_ANSWER)))


@functools.cache
def _statement() -> sa.TextualSelect:
    arguments = ", ".join(f"CAST(:{name} AS {sql_type})" for name, sql_type in _PARAMETERS)
    return _answered(f"SELECT {', '.join(_ANSWER)} FROM ledger_post({arguments})")


def parameters(*, entry_type: str, description: str, actor_id: int | None, channel: str,
               idempotency_key: str | None, reference: str, at: datetime | None,
               legs: list[FastLeg], bucket: datetime | None, audit: dict | None,
               answer: PostingAnswer | None, charge: DailyCharge | None,
               timezone: str) -> dict:
    """The arguments of one ``ledger_post()`` call. ``at`` None (with ``bucket`` and the
    charge's day): the function times the posting once it holds the accounts' locks, on the
    database's clock, the day in ``timezone`` (migration 0029)."""
    audit = audit or {}
    return {
        "entry_type": entry_type, "description": description, "actor_id": actor_id,
        "channel": channel, "idempotency_key": idempotency_key, "reference": reference,
        "at": at,
        "account_ids": [leg.account_id for leg in legs],
        "transaction_types": [leg.transaction_type for leg in legs],
        "deltas": [leg.delta for leg in legs],
        "lows": [leg.low for leg in legs], "highs": [leg.high for leg in legs],
        "spends": [leg.spends for leg in legs],
        "alert_owners": [leg.alert_owner for leg in legs],
        "alert_large": [leg.alert_large for leg in legs],
        "limit_user": charge.user_id if charge else None,
        "limit_amount": charge.amount if charge else None,
        "limit_day": charge.day if charge else None,
        "bank_limit": charge.bank_limit if charge else None,
        "total_kinds": [leg.total_kind for leg in legs],
        "total_shards": [leg.total_shard for leg in legs], "bucket": bucket,
        "audit_action": audit.get("action"), "audit_target_type": audit.get("target_type"),
        "audit_target_id": audit.get("target_id"),
        "audit_details": None if audit.get("details") is None else json.dumps(audit["details"]),
        "audit_ip": audit.get("ip_address"),
        # The key alone: the function looks for a stored answer and stores none (0028).
        "answer_key": answer.key if answer else None,
        "answer_operation": None, "answer_fingerprint": None, "answer_body": None,
        "answer_account": None, "timezone": timezone,
    }


def call(connection: sa.Connection, params: dict) -> Result:
    """Run ``ledger_post()`` on ``connection`` (in its transaction, if it has one)."""
    return _result(connection.execute(_statement(), params).one(), params)


def _result(row: sa.Row, params: dict) -> Result:
    balances = {}
    if row.balances is not None:
        balances = dict(zip(params["account_ids"], row.balances))
    answer = None
    if row.answer_status is not None:
        answer = (row.answer_status, row.answer_body, row.answer_fingerprint)
    return Result(row.outcome, row.entry_id, row.entry_reference, row.entry_created_at, balances,
                  row.refused_account, row.refused_status, row.refused_balance,
                  row.refused_held, row.limit_in_force, row.limit_used, answer)


# The same ledger_post() call once per posting, for a batch of them in one statement: the
# postings go as one JSON array (each the parameters above by name, and its position). Each
# call sees the writes of the ones before it (a volatile function's statements take fresh
# snapshots), as separate calls in one transaction would; so the order of the calls matters
# (an entry may spend what an earlier one credited). A join makes no promise of the order in
# which it calls a function for its rows, so the calls are a recursive query's steps instead:
# step n calls ledger_post() for the posting at position n, and PostgreSQL evaluates a step
# only once the step before it is done. The posting of a step is read by a lateral subquery
# that refers to the step before it, kept unflattened (OFFSET 0), so the planner cannot call
# the function for other rows and filter afterwards. Each row carries its position back.
@functools.cache
def _many_statement() -> sa.TextualSelect:
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in
                        [("position", "integer"), *_PARAMETERS])
    arguments = ", ".join(f"p.{name}" for name, _ in _PARAMETERS)
    return _answered(
        f"WITH RECURSIVE postings AS MATERIALIZED ("
        f"SELECT * FROM jsonb_to_recordset(CAST(:postings AS jsonb)) AS p({columns})), "
        f"called AS ("
        f"SELECT p.position, r.* FROM (SELECT * FROM postings WHERE position = 0 OFFSET 0) AS p "
        f"CROSS JOIN LATERAL ledger_post({arguments}) AS r "
        f"UNION ALL "
        f"SELECT p.position, r.* FROM called AS c CROSS JOIN LATERAL ("
        f"SELECT * FROM postings WHERE position = c.position + 1 OFFSET 0) AS p "
        f"CROSS JOIN LATERAL ledger_post({arguments}) AS r) "
        f"SELECT position, {', '.join(_ANSWER)} FROM called ORDER BY position", "position")


def _as_json(value):
    if isinstance(value, Decimal):
        return str(value)  # exact: numeric reads it as written
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a posting's parameters")


def call_many(connection: sa.Connection, batch: list[dict]) -> list[Result]:
    """``call()`` for each of ``batch`` (``parameters()`` each), in order, in one statement
    on ``connection``'s transaction; the results in the batch's order. An error in any call
    fails the statement: roll it back (a savepoint) and nothing of the batch is written."""
    if not batch:
        return []
    documents = []
    for position, params in enumerate(batch):
        document = dict(params, position=position)
        for name in ("audit_details", "answer_body"):  # already JSON text: nest it as JSON
            if document[name] is not None:
                document[name] = json.loads(document[name])
        documents.append(document)
    rows = connection.execute(_many_statement(),
                              {"postings": json.dumps(documents, default=_as_json)}).all()
    # Matched by the position each row carries, not by where it comes: a row out of place
    # must not become another entry's answer.
    by_position = {row.position: row for row in rows}
    if len(rows) != len(batch) or sorted(by_position) != list(range(len(batch))):
        raise RuntimeError(f"ledger_post() answered positions {[row.position for row in rows]} "
                           f"for a batch of {len(batch)}")
    return [_result(by_position[position], params) for position, params in enumerate(batch)]


# ---------------------------------------------------------------- the lean engine


def lean_engine() -> sa.Engine:
    """This app's autocommit engine without pre-ping (created on first use)."""
    app = current_app._get_current_object()
    engine = app.extensions.get(_LEAN_ENGINE)
    if engine is None:
        with _engine_lock:
            engine = app.extensions.get(_LEAN_ENGINE)
            if engine is None:
                options = {name: value for name, value in
                           app.config["SQLALCHEMY_ENGINE_OPTIONS"].items()
                           if name != "pool_pre_ping"}
                engine = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT",
                                          pool_pre_ping=False, **options)
                app.extensions[_LEAN_ENGINE] = engine
    return engine


def dispose(app) -> None:
    """Close the lean engine's pooled connections (tests, before dropping a database)."""
    engine = app.extensions.pop(_LEAN_ENGINE, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def one_connection() -> Iterator[None]:
    """The block's statements on the lean engine (``run``, ``rows``) share one connection,
    checked out by the first and returned at the end: an API request's caller, look-up and
    posting check out once, not three times (with ``DATABASE_NULLPOOL``, connect once). Each
    statement is still a transaction of its own (the engine autocommits), so sharing holds
    no lock from one to the next."""
    shared: list = [None]
    token = _SHARED.set(shared)
    try:
        yield
    finally:
        _SHARED.reset(token)
        if shared[0] is not None:
            shared[0].close()


def run(work: Callable[[sa.Connection], T], *, retry: bool) -> T:
    """``work(connection)`` on a lean connection, each statement its own transaction: the
    ``one_connection`` block's when one is open, else one of its own.

    A dead connection (a database restart, an idle cut) invalidates the pool; with ``retry``
    (``work`` only reads, or posts under an idempotency key) it runs once more on a fresh one.
    """
    shared = _SHARED.get()
    for attempt in (1, 2):
        try:
            if shared is None:
                with lean_engine().connect() as connection:
                    return work(connection)
            if shared[0] is None:
                shared[0] = lean_engine().connect()
            return work(shared[0])
        except DBAPIError as error:
            if shared is not None and error.connection_invalidated and shared[0] is not None:
                shared[0].close()  # the next statement of the block checks out a fresh one
                shared[0] = None
            if attempt == 2 or not retry or not error.connection_invalidated:
                raise
            log.info("database connection lost; retrying on a fresh one: %s", error.orig)
    raise AssertionError("unreachable")


def rows(statement, params: dict | None = None) -> list[sa.Row]:
    """The rows of a read: on the lean engine when the fast path is on, else the session's."""
    if enabled():
        return run(lambda connection: connection.execute(statement, params or {}).all(),
                   retry=True)
    return db.session.execute(statement, params or {}).all()

"""The core of the ledger: ``post()`` writes every journal entry, in one transaction.

Deposits, withdrawals and transfers are built here; the siblings (``cash``, ``approvals``,
``reversals``, ``status``, ``reconcile``) call ``post()`` or, for several entries in one
transaction, ``atomically()`` around ``write_entry()``. Nothing else writes a leg or moves a
balance.
"""
from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, TypeVar

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from bankapp.notifications import alerts
from bankapp import audit as audit_trail
from bankapp.audit import trail
from bankapp.ledger import totals
from bankapp.platform import metrics
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger import fast
from bankapp.ledger.accounts import find_customer_account, internal_account
from bankapp.platform.formatting import bank_timezone, format_money
from bankapp.ledger.amounts import CENT, MAX_BALANCE, clean_description, to_money, validate_amount
from bankapp.ledger.limits import DailyCharge, bank_day, bank_limit, over_limit
from bankapp.ledger.errors import (
    BALANCE_TOO_LARGE,
    TILL_SHORT,
    InsufficientFunds,
    LedgerError,
    LimitExceeded,
    SameAccount,
    UnknownAccount,
    not_active,
    short_of_held_money,
)
from bankapp.models import (
    Account,
    AccountStatus,
    AuditEvent,
    AccountType,
    Channel,
    EntryType,
    Hold,
    JournalEntry,
    Transaction,
    TransactionType,
    User,
    UTCDateTime,
    now_utc,
)

T = TypeVar("T")

log = logging.getLogger("bankapp.ledger")

MAX_ATTEMPTS = 5


class Posting:
    """What a posting call did: its journal entry, whether an earlier call had posted it,
    and, for the API's postings, the caller's answer (``fast.PostingAnswer``).

    The generic path hands over the entry it wrote; the fast path its id and reference (the
    entry is loaded only if asked for). An API answer found already stored has no entry, and
    a replay has no answer (the caller builds it from the entry).
    """

    __slots__ = ("_entry", "_entry_id", "_reference", "replayed", "answer")

    def __init__(self, entry: JournalEntry | None = None, replayed: bool = False, *,
                 entry_id: int | None = None, reference: str | None = None,
                 answer: tuple[int, dict, str] | None = None):
        self._entry, self._entry_id, self._reference = entry, entry_id, reference
        self.replayed = replayed
        self.answer = answer  # (status, body, request fingerprint)

    @property
    def entry_id(self) -> int | None:
        """The entry's id, without loading it (a caller writing a row that points at it)."""
        return self._entry_id if self._entry is None else self._entry.id

    @property
    def reference(self) -> str | None:
        return self._reference if self._entry is None else self._entry.reference

    @property
    def entry(self) -> JournalEntry | None:
        if self._entry is None and self._entry_id is not None:
            self._entry = db.session.get(JournalEntry, self._entry_id)
        return self._entry


class _AnsweredBefore(Exception):
    """An answer was stored under the posting's key (a refusal) before its locks were
    taken: the posting is rolled back and that answer is the request's."""

    def __init__(self, answer: tuple[int, dict, str]):
        super().__init__("answered before")
        self.answer = answer


@dataclass(frozen=True)
class Leg:
    account: Account
    transaction_type: str
    delta: Decimal  # signed: + credit, − debit


def _bounds(account: Account) -> tuple[Decimal, Decimal]:
    """The range the account's balance must stay within."""
    if account.account_type in AccountType.CUSTOMER:
        return Decimal("0.00"), MAX_BALANCE
    if account.account_type in (AccountType.TILL, AccountType.LOAN):
        return -MAX_BALANCE, Decimal("0.00")
    return -MAX_BALANCE, MAX_BALANCE


# Legs that spend a customer's money: they may only use the *available* balance (the
# balance minus the account's active holds).
SPENDING = (TransactionType.WITHDRAWAL, TransactionType.TRANSFER_OUT,
            TransactionType.LOAN_REPAYMENT)


def _spends(leg: Leg) -> bool:
    return (leg.delta < 0 and leg.transaction_type in SPENDING
            and leg.account.account_type in AccountType.CUSTOMER)


@functools.cache
def _leg_update(spends: bool = False) -> sa.Update:
    """The conditional balance UPDATE of one leg (built once: every posting runs it).

    A spending leg also needs ``balance + delta − active holds ≥ low``: one more condition in
    the same statement, so the available balance is checked under the row lock. Holds are
    compared with ``:now`` (expired ones stop counting without any job).
    """
    money = Account.__table__.c.balance.type
    # round() keeps SQLite exact: it has no decimal type and adds in binary floating point.
    new_balance = sa.func.round(Account.balance + sa.bindparam("delta", type_=money), 2)
    low = sa.bindparam("low", type_=money)
    conditions = [
        Account.id == sa.bindparam("account_id"),
        Account.status == AccountStatus.ACTIVE,
        new_balance.between(low, sa.bindparam("high", type_=money)),
    ]
    if spends:
        held = Hold.active_total(Account.id, sa.bindparam("now", type_=UTCDateTime))
        conditions.append(sa.func.round(new_balance - held, 2) >= low)
    return (
        sa.update(Account)
        .where(*conditions)
        .values(balance=new_balance)
        .returning(Account.balance)
    )


def _apply_leg(leg: Leg) -> Decimal:
    """Apply one leg atomically; return the new balance or raise why it was refused."""
    low, high = _bounds(leg.account)
    params = {"account_id": leg.account.id, "delta": leg.delta, "low": low, "high": high}
    spends = _spends(leg)
    # A Core statement on the session's connection (same transaction): the ORM's bulk-update
    # machinery has nothing to do for it and costs more CPU than the statement itself.
    connection = db.session.connection()
    for _ in range(MAX_ATTEMPTS):
        if spends:
            params["now"] = now_utc()
        result = connection.execute(_leg_update(spends), params).scalar_one_or_none()
        if result is not None:
            return Decimal(result).quantize(CENT)
        refusal = _refusal(leg, low, high, params.get("now"))
        if refusal is not None:
            raise refusal
        # The UPDATE was refused, yet the row as read now would pass: under READ COMMITTED
        # each statement sees the latest commit, so another transaction (a deposit, an
        # unfreeze) landed in between. Try the leg again on that newer state rather than
        # report a reason that is no longer true.
    raise InsufficientFunds() if leg.delta < 0 else LimitExceeded(BALANCE_TOO_LARGE)


def _refusal(leg: Leg, low: Decimal, high: Decimal, now: datetime | None = None
             ) -> LedgerError | None:
    """Why the account refuses ``leg`` as it stands now, or None if it would accept it."""
    held = Hold.active_total(Account.id, now) if now is not None else sa.literal(0)
    status, balance, held = db.session.execute(
        sa.select(Account.status, Account.balance, held).where(Account.id == leg.account.id)
    ).one()
    return _refusal_of(leg, status, balance, low, high, held)


def _refusal_of(leg: Leg, status: str, balance: Decimal, low: Decimal,
                high: Decimal, held=None) -> LedgerError | None:
    """Why an account with this status, balance and money on hold refuses ``leg``, or None."""
    if status != AccountStatus.ACTIVE:
        return not_active(status, destination=leg.transaction_type == TransactionType.TRANSFER_IN)
    if leg.account.account_type == AccountType.TILL and balance + leg.delta > high:
        # A till's balance is minus its cash: going above zero means paying out cash it lacks.
        return InsufficientFunds(TILL_SHORT)
    if balance + leg.delta < low:
        return InsufficientFunds()
    held = to_money(held)
    if balance + leg.delta - held < low:
        available = max(balance - held, Decimal("0.00"))
        return short_of_held_money(format_money(held), format_money(available))
    if balance + leg.delta > high:
        return LimitExceeded(BALANCE_TOO_LARGE)
    return None


def _is_retryable(error: DBAPIError) -> bool:
    code = getattr(error.orig, "pgcode", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock detected
        return True
    return "database is locked" in str(error.orig).lower()


def find_posting(actor: User | None, key: str | None) -> JournalEntry | None:
    """The entry ``actor`` already posted with this idempotency key, if any (a replay).

    With no actor, the bank's own posting with this key (interest, a scheduled job).
    """
    if not key:
        return None
    by = JournalEntry.actor_id.is_(None) if actor is None else JournalEntry.actor_id == actor.id
    return db.session.scalar(
        sa.select(JournalEntry).where(by, JournalEntry.idempotency_key == key))


@dataclass(frozen=True)
class AuditNote:
    """The audit line a posting writes in its own transaction (see ``bankapp.audit``)."""

    action: str
    target_type: str | None = None
    target_id: object = None
    details: dict | None = None


@dataclass(frozen=True)
class EntryToPost:
    """One journal entry as ``post()`` was asked to write it, with what commits alongside it:
    its audit line, the sender's daily limit it counts against and the caller's answer to
    it. Both paths write it from this: ``_post_fast`` in one ``ledger_post()`` call,
    ``write_entry`` through the ORM."""

    entry_type: str
    legs: tuple[Leg, ...]
    description: str
    actor: User | None
    channel: str
    idempotency_key: str | None
    audit: AuditNote | None = None
    posted_at: datetime | None = None
    answer: fast.PostingAnswer | None = None
    daily_charge: DailyCharge | None = None


_BATCH = "bankapp.ledger.batch"


def atomically(work: Callable[[], T], label: str) -> T:
    """Run ``work`` and commit it as one transaction, retrying serialization failures.

    Any error rolls everything back (so a refused posting leaves no row, not even its audit
    line); ``work`` is re-run from scratch on a retry, re-adding everything it writes.
    Inside ``in_batch`` it is a savepoint instead (see there).
    """
    if db.session.info.get(_BATCH):
        return _in_savepoint(work)
    return _committed(work, label)


def _committed(work: Callable[[], T], label: str) -> T:
    """``work`` then the commit; on any error a rollback, and ``work`` again from scratch
    after a deadlock or serialization failure (up to ``MAX_ATTEMPTS``)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = work()
            db.session.commit()
            return result
        except DBAPIError as error:
            db.session.rollback()
            if not _is_retryable(error) or attempt == MAX_ATTEMPTS:
                raise
            log.info("retrying %s after %s (attempt %d)", label, error.orig, attempt)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def _in_savepoint(work: Callable[[], T]) -> T:
    """``work`` as a savepoint of the batch's transaction: an error undoes it alone."""
    with db.session.begin_nested():  # released on return, rolled back on any error
        return work()


def in_batch(work: Callable[[], T], label: str, lock: list[int] = ()) -> T:
    """Run ``work``, which makes many postings (a job's batch), as one transaction.

    Every ``atomically`` inside it, so every ``post()``, is a savepoint: a refused or replayed
    posting undoes its own writes and leaves the batch's others in place. The accounts in
    ``lock`` are locked first, all at once in ascending id (the order every posting takes its
    locks in), so holding many rows until the batch commits cannot deadlock with postings
    made meanwhile. A deadlock or serialization failure rolls the whole batch back and runs
    ``work`` again from scratch (it must re-read what it decides on); any other error rolls
    it back and is raised. Keep batches small: their rows stay locked until the commit, and
    on PostgreSQL more than 64 savepoints that write in one transaction overflow the
    subtransaction cache, which slows every session's snapshots. Inside a batch already,
    ``work`` is one more savepoint of it.
    """
    if db.session.info.get(_BATCH):
        return _in_savepoint(work)

    def batch() -> T:
        db.session.info[_BATCH] = True
        try:
            if lock:
                db.session.execute(sa.select(Account.id).where(Account.id.in_(sorted(lock)))
                                   .order_by(Account.id).with_for_update())
            return work()
        finally:
            db.session.info.pop(_BATCH, None)

    return _committed(batch, label)


@metrics.counts_postings(refusals=(LedgerError,))
def post(entry_type: str, legs: list[Leg], description: str, actor: User | None,
          channel: str, idempotency_key: str | None, *, audit: AuditNote | None = None,
          reverses: JournalEntry | None = None,
          also: Callable[[JournalEntry], None] | None = None,
          daily_charge: DailyCharge | None = None,
          posted_at: datetime | None = None,
          answer: fast.PostingAnswer | None = None) -> Posting:
    """Write one balanced journal entry and apply its legs, in one transaction.

    ``audit`` is the entry's audit line, ``daily_charge`` the sender's daily limit it counts
    against, and ``also`` any further writes that must commit with it (a maker-checker
    decision); all run inside the transaction, so a retry re-adds them and a refusal writes
    none. A replayed idempotency key writes nothing at all. ``answer``: the caller's answer
    to the posting (the API's; ``Posting.answer``); one already stored under its key answers
    instead, and nothing is posted (``fast.PostingAnswer``).

    On PostgreSQL an entry without ``also`` or ``reverses`` is posted by ``ledger_post()``
    (see ``fast``), in the session's transaction, or, with ``answer``, as a transaction of its
    own on the lean engine; one the function declines (it calls for an alert email) is
    posted the generic way.
    """
    assert sum(leg.delta for leg in legs) == 0, "a journal entry must balance"
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise LedgerError(gettext("Invalid idempotency key."))
    # No look-up first: a key that was already used fails on the unique constraint of the
    # entry row (or is refused first), and we answer with the earlier entry.

    to_post = EntryToPost(entry_type, tuple(legs), description, actor, channel,
                          idempotency_key, audit=audit, posted_at=posted_at, answer=answer,
                          daily_charge=daily_charge)

    def generic() -> Posting:
        entry = write_entry(to_post, reverses=reverses)
        if also is not None:
            also(entry)
        if answer is None:
            return Posting(entry)
        # After the accounts' locks, as ledger_post() looks (see fast.PostingAnswer).
        stored = answer.stored()
        if stored is not None:
            raise _AnsweredBefore(stored)  # rolls the posting back
        return Posting(entry, answer=answer.of_entry(entry))

    on_fast_path = (also is None and reverses is None and fast.enabled()
                    and _distinct_accounts(legs))
    generic_ran = not on_fast_path
    try:
        if on_fast_path:
            in_one_call = functools.partial(_post_fast, to_post)
            if answer is None:
                def fast_or_generic() -> Posting:
                    nonlocal generic_ran
                    posting = in_one_call()
                    if posting is None:  # declined: the same transaction goes on generically
                        generic_ran = True
                        posting = generic()
                    return posting

                return atomically(fast_or_generic, entry_type)
            posting = _lean(in_one_call, entry_type, retry=idempotency_key is not None)
            if posting is not None:
                return posting
            generic_ran = True  # declined: its call wrote nothing and is over
        return atomically(generic, entry_type)
    except _AnsweredBefore as answered:
        return Posting(replayed=True, answer=answered.answer)
    except LedgerError:
        if not generic_ran:
            raise  # ledger_post() looked for the earlier posting before refusing
        replay = find_posting(actor, idempotency_key)
        if replay is not None:
            return Posting(replay, replayed=True)
        raise
    except IntegrityError:
        # This key may already have posted (a replay, or a concurrent twin that committed
        # first). Balances move before the entry row is written, so a replay can meet a
        # refusal (the first posting spent the money, the account was frozen since) before
        # it meets the unique key: either way the answer is the earlier posting.
        replay = find_posting(actor, idempotency_key)
        if replay is not None:
            return Posting(replay, replayed=True)
        raise


def post_each(entries: list[EntryToPost]) -> list[Posting | LedgerError]:
    """Post each of ``entries`` as ``post()`` would, inside ``in_batch``; for each, in order,
    its ``Posting`` or the ``LedgerError`` that refused it (nothing of that one written).

    On PostgreSQL the entries go to ``ledger_post()`` in one statement (``fast.call_many``):
    one round trip for the batch where ``post()`` sends three per entry (SAVEPOINT, the call,
    RELEASE). The function reports a refusal as a value and writes nothing for it, so a
    refused entry leaves the others posted, as its own savepoint did. An error the database
    raises instead (a system idempotency key already used: a unique violation) fails the whole
    statement: its savepoint is rolled back and every entry is posted by ``post()``, each in a
    savepoint of its own, as without this (so that one alone is undone, and a replay is
    answered as ``post()`` answers it). So are all of them when the function declines one (it
    calls for an alert email, which only the generic path queues): the statement is undone,
    so each entry is still posted in its place. A deadlock or serialization failure is raised
    for ``in_batch`` to run the batch again.
    """
    assert db.session.info.get(_BATCH), "post_each posts a batch: call it inside in_batch"
    if not entries or not fast.enabled() or not all(
            _distinct_accounts(entry.legs) and entry.answer is None for entry in entries):
        return [_post_one(entry) for entry in entries]
    try:
        batch = [_fast_parameters(entry) for entry in entries]
    except LedgerError:  # a posting time refused: post() says which one
        return [_post_one(entry) for entry in entries]
    savepoint = db.session.begin_nested()
    try:
        results = fast.call_many(db.session.connection(), batch)
    except DBAPIError as error:
        savepoint.rollback()
        if _is_retryable(error):
            raise
        log.info("posting a batch one entry at a time after %s", error.orig)
        return [_post_one(entry) for entry in entries]
    if any(result.outcome == "declined" for result in results):
        # Posted the generic way, it must come in its place, before the entries after it
        # (they may move the same accounts): undo the statement and go one by one.
        savepoint.rollback()
        return [_post_one(entry) for entry in entries]
    savepoint.commit()
    return [_reported(entry, result) for entry, result in zip(entries, results, strict=True)]


def _post_one(entry: EntryToPost) -> Posting | LedgerError:
    try:
        return post(entry.entry_type, list(entry.legs), entry.description, entry.actor,
                    entry.channel, entry.idempotency_key, audit=entry.audit,
                    daily_charge=entry.daily_charge, posted_at=entry.posted_at)
    except LedgerError as refusal:
        return refusal


def _reported(entry: EntryToPost, result: fast.Result) -> Posting | LedgerError:
    """One entry's outcome in ``post_each``'s statement, counted as ``post()`` counts it."""
    try:
        return _counted_outcome(entry.entry_type, entry, result)
    except LedgerError as refusal:
        return refusal


@metrics.counts_postings(refusals=(LedgerError,))
def _counted_outcome(entry_type: str, entry: EntryToPost, result: fast.Result) -> Posting:
    return _fast_posting(entry, result)


def _distinct_accounts(legs: list[Leg]) -> bool:
    return len({leg.account.id for leg in legs}) == len(legs)


def _post_fast(to_post: EntryToPost, connection: sa.Connection | None = None
               ) -> Posting | None:
    """One ``ledger_post()`` call: the same entry ``write_entry`` writes, refused the same
    way; None when the function declined it (nothing written: post it generically)."""
    params = _fast_parameters(to_post)
    return _fast_posting(to_post, fast.call(connection or db.session.connection(), params))


def _fast_parameters(to_post: EntryToPost) -> dict:
    """The ``ledger_post()`` arguments of ``to_post``."""
    legs, actor, channel, audit = to_post.legs, to_post.actor, to_post.channel, to_post.audit
    # None: the function times the posting once it holds the locks, and derives the bucket
    # and the limit's day from that time (migration 0029).
    timestamp = _given_posting_time(to_post.posted_at)
    reference = uuid.uuid4().hex
    fast_legs = [
        fast.FastLeg(leg.account.id, leg.transaction_type, leg.delta, *_bounds(leg.account),
                     totals.kind_of(leg.transaction_type,
                                           "credit" if leg.delta > 0 else "debit"),
                     totals.shard_of(leg.account.id),
                     spends=_spends(leg),
                     alert_owner=(leg.account.owner_id
                                  if alerts.watches_debit(leg.account, leg.delta) else None),
                     alert_large=alerts.may_be_large_transfer(leg.transaction_type))
        for leg in legs]
    charge, daily_charge = None, to_post.daily_charge
    if daily_charge is not None:
        charge = fast.DailyCharge(daily_charge.user_id, daily_charge.amount,
                                  bank_day(timestamp) if timestamp else None,
                                  bank_limit())
    return fast.parameters(
        entry_type=to_post.entry_type, description=to_post.description,
        actor_id=actor.id if actor is not None else None, channel=channel,
        idempotency_key=to_post.idempotency_key, reference=reference, at=timestamp,
        legs=fast_legs, bucket=totals.bucket_of(timestamp) if timestamp else None,
        audit=None if audit is None else _audit_columns(audit, reference, channel, actor),
        answer=to_post.answer, charge=charge, timezone=bank_timezone().key)


def _fast_posting(to_post: EntryToPost, result: fast.Result) -> Posting | None:
    """What ``ledger_post()`` reported for ``to_post``: the posting, None when it declined,
    or the refusal raised as ``write_entry`` would raise it."""
    legs = to_post.legs
    if result.outcome == "declined":
        return None
    if result.outcome == "refused":
        index = next(i for i, leg in enumerate(legs) if leg.account.id == result.refused_account)
        low, high = _bounds(legs[index].account)
        raise (_refusal_of(legs[index], result.refused_status, result.refused_balance, low,
                           high, result.refused_held) or LedgerError())
    if result.outcome == "over_limit":
        raise over_limit(result.limit_in_force, result.limit_used)
    if result.outcome == "answered":
        return Posting(replayed=True, answer=result.answer)
    answer = to_post.answer
    if result.outcome == "posted" and answer is not None:
        return Posting(entry_id=result.entry_id, reference=result.reference,
                       answer=answer.posted(result.reference, result.created_at,
                                            result.balances[answer.account_id]))
    return Posting(replayed=result.outcome == "replayed", entry_id=result.entry_id,
                   reference=result.reference)


def _lean(work: Callable[..., T], label: str, *, retry: bool) -> T:
    """``work(connection=…)`` as a transaction of its own on the lean engine, retrying
    deadlocks and serialization failures like ``atomically``."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return fast.run(lambda connection: work(connection=connection), retry=retry)
        except DBAPIError as error:
            if isinstance(error, IntegrityError) or not _is_retryable(error) \
                    or attempt == MAX_ATTEMPTS:
                raise
            log.info("retrying %s after %s (attempt %d)", label, error.orig, attempt)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def _audit_columns(note: AuditNote, reference: str, channel: str, actor: User | None) -> dict:
    details = {"reference": reference, "channel": channel, **(note.details or {})}
    return audit_trail.columns(note.action, actor=actor, target_type=note.target_type,
                               target_id=note.target_id, details=details)


def _audit_posting(note: AuditNote, entry: JournalEntry, actor: User | None) -> None:
    """The posting's audit line: on the entry itself for the actions it records
    (``bankapp.audit.trail``), else an ``audit_events`` row."""
    columns = _audit_columns(note, entry.reference, entry.channel, actor)
    if note.action in trail.ENTRY_ACTIONS:
        entry.audit_action, entry.ip_address = note.action, columns["ip_address"]
    else:
        db.session.add(AuditEvent(**columns))


def write_entry(to_post: EntryToPost, *, reverses: JournalEntry | None = None) -> JournalEntry:
    """The generic path: move the balances, then write the entry, its legs and its audit line
    through the ORM, charge the sender's daily limit, count the report buckets and queue the
    alerts, in the session's transaction (the caller commits). ``to_post.answer`` is left to
    the caller (``post()`` asks it after ``also``)."""
    actor, description = to_post.actor, to_post.description
    given = _given_posting_time(to_post.posted_at)
    # Balances first, in account-id order (see "Concurrency" above). A concurrent twin with
    # the same idempotency key waits on the first account's row lock, then fails on the
    # unique key when the entry is inserted (or is refused, the money being spent); it is
    # rolled back whole and ``_post`` answers with the first one's entry.
    legs = sorted(to_post.legs, key=lambda leg: leg.account.id)
    balances = [_apply_leg(leg) for leg in legs]
    # Timed once every account is locked, as ledger_post() times it (``settled_time``).
    timestamp = given or _database_time()
    rows = []
    for leg, balance_after in zip(legs, balances, strict=True):
        rows.append(Transaction(
            account_id=leg.account.id,
            transaction_type=leg.transaction_type,
            side="credit" if leg.delta > 0 else "debit",
            amount=abs(leg.delta),
            balance_after=balance_after,
            timestamp=timestamp,
            description=description,
        ))
        if isinstance(leg.account, Account):
            # The account is in hand: reading leg.account later costs no SELECT.
            set_committed_value(rows[-1], "account", leg.account)
    entry = JournalEntry(
        reference=uuid.uuid4().hex,
        entry_type=to_post.entry_type,
        description=description,
        actor_id=actor.id if actor is not None else None,
        channel=to_post.channel,
        idempotency_key=to_post.idempotency_key,
        reverses_id=reverses.id if reverses is not None else None,
        created_at=timestamp,
        legs=rows,
    )
    db.session.add(entry)
    if to_post.audit is not None:
        _audit_posting(to_post.audit, entry, actor)
    # One flush writes the entry (a reused idempotency key fails here), its legs and its
    # audit line.
    db.session.flush()
    if to_post.daily_charge is not None:
        to_post.daily_charge.charge(timestamp)
    # Last, after every account lock: the report buckets (see bankapp/ledger/totals.py).
    totals.count_movements(rows)
    # The customers' large-transfer and low-balance alerts, sent when this commits.
    alerts.posting_written(rows)
    return entry


def _given_posting_time(posted_at: datetime | None) -> datetime | None:
    """An earlier moment given when importing history (demo data, a migration), checked; None
    when the posting is to be timed as it is written, once it holds its accounts' locks."""
    if posted_at is None:
        return None
    if posted_at.tzinfo is None or posted_at > now_utc():
        raise LedgerError(gettext("A posting time must be timezone-aware and not in the future."))
    return posted_at


def _database_time() -> datetime:
    """Now by the database's clock on PostgreSQL, the one clock every app host shares (and
    ``ledger_post()`` reads); the app's elsewhere (SQLite: one host)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return now_utc()
    return db.session.scalar(sa.select(sa.func.clock_timestamp())).astimezone(timezone.utc)


def settled_time(account_id: int) -> datetime:
    """Now, once no posting to ``account_id`` is in flight: a moment every read of the
    account's legs made after this call agrees on.

    A posting is timed after it holds its accounts' locks and keeps them until it commits
    (``write_entry``, ``ledger_post()``). So the account's lock is waited for here, in a
    savepoint rolled back at once (which releases it: postings are held up no longer than
    that): every posting timed before the moment returned has committed by then, and every
    one still to lock the account is timed after it. The statement of an account is issued
    as of this moment, so recomputing it later gives the same lines. It takes a lock: call it
    on the primary, not inside ``replica.read()``.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return now_utc()  # SQLite: one writer at a time, and one clock
    savepoint = db.session.begin_nested()
    try:
        moment = db.session.scalar(sa.select(sa.func.clock_timestamp())
                                   .where(Account.id == account_id).with_for_update(read=True))
    finally:
        savepoint.rollback()
    if moment is None:
        raise UnknownAccount()
    return moment.astimezone(timezone.utc)


def deposit(account: Account, amount, description: str, actor: User | None, *,
            channel: str = Channel.WEB, idempotency_key: str | None = None,
            cash_account: Account | None = None,
            also: Callable[[JournalEntry], None] | None = None,
            posted_at: datetime | None = None,
            answer: fast.PostingAnswer | None = None) -> Posting:
    """Credit ``account`` with cash taken into ``cash_account`` (the vault by default).

    ``also(entry)``, when given, makes further writes that commit with this posting;
    ``answer``, the API's answer to it (``fast.PostingAnswer``).
    """
    amount = validate_amount(amount)
    description = clean_description(description)
    require_customer_account(account)
    cash = cash_account or internal_account()
    legs = [Leg(account, TransactionType.DEPOSIT, amount),
            Leg(cash, TransactionType.DEPOSIT, -amount)]
    note = _account_note(Action.DEPOSIT, account, amount, cash_account=cash.account_number)
    return post(EntryType.DEPOSIT, legs, description, actor, channel, idempotency_key,
                audit=note, also=also, posted_at=posted_at, answer=answer)


def withdraw(account: Account, amount, description: str, actor: User | None, *,
             channel: str = Channel.WEB, idempotency_key: str | None = None,
             cash_account: Account | None = None,
             also: Callable[[JournalEntry], None] | None = None,
             posted_at: datetime | None = None,
             answer: fast.PostingAnswer | None = None) -> Posting:
    """Debit ``account``, paying the cash out of ``cash_account`` (the vault by default).

    ``also(entry)``, when given, makes further writes that commit with this posting;
    ``answer``, the API's answer to it.
    """
    amount = validate_amount(amount)
    description = clean_description(description)
    require_customer_account(account)
    cash = cash_account or internal_account()
    legs = [Leg(account, TransactionType.WITHDRAWAL, -amount),
            Leg(cash, TransactionType.WITHDRAWAL, amount)]
    note = _account_note(Action.WITHDRAWAL, account, amount, cash_account=cash.account_number)
    # The daily limit guards remote channels; cash at the counter is paid to a person the
    # teller has identified (and above MAKER_CHECKER_THRESHOLD, approved by another).
    charge = (DailyCharge(account.owner_id, amount)
              if channel != Channel.TELLER and account.owner_id is not None else None)
    return post(EntryType.WITHDRAWAL, legs, description, actor, channel, idempotency_key,
                audit=note, also=also, daily_charge=charge, posted_at=posted_at,
                answer=answer)


def transfer(source: Account, destination: Account | str, amount, description: str,
             actor: User | None, *, channel: str = Channel.WEB,
             idempotency_key: str | None = None, posted_at: datetime | None = None,
             also: Callable[[JournalEntry], None] | None = None,
             answer: fast.PostingAnswer | None = None) -> Posting:
    """Move ``amount`` from ``source`` to the active customer account ``destination`` (the
    account, or its number).

    Writes a TRANSFER_OUT leg on the source and a TRANSFER_IN leg on the destination, sharing
    the entry's reference. ``also(entry)``, when given, makes further writes that commit with
    this posting; ``answer``, the API's answer to it.
    """
    amount = validate_amount(amount)
    description = clean_description(description)
    require_customer_account(source)
    if isinstance(destination, str):
        destination = find_customer_account(destination)
    require_customer_account(destination)
    if destination.id == source.id:
        raise SameAccount()
    legs = [Leg(source, TransactionType.TRANSFER_OUT, -amount),
            Leg(destination, TransactionType.TRANSFER_IN, amount)]
    note = _account_note(Action.TRANSFER, source, amount,
                         destination=destination.account_number)
    charge = None
    if destination.owner_id != source.owner_id and source.owner_id is not None:
        charge = DailyCharge(source.owner_id, amount)  # between one's own accounts: no limit
    return post(EntryType.TRANSFER, legs, description, actor, channel, idempotency_key,
                audit=note, also=also, daily_charge=charge, posted_at=posted_at,
                answer=answer)


def _account_note(action: str, account: Account, amount: Decimal, **details) -> AuditNote:
    return AuditNote(action, TargetType.ACCOUNT, account.account_number,
                     {"amount": amount, **details})


def require_customer_account(account: Account) -> None:
    if account is None or account.account_type not in AccountType.CUSTOMER:
        raise UnknownAccount()

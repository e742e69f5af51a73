"""Idempotent API postings: a retry with the same ``Idempotency-Key`` gets the first answer.

A posting's answer is not stored: its journal entry is the record. The entry carries a ledger
key derived from the API key (``ledger_key``), under the ledger's UNIQUE (actor_id,
idempotency_key), and the answer to a posting (status 201 and the JSON body) is a function
of the entry and its legs (``posting_json``).

1. The ledger posts with that key. No look-up comes first on the generic path; on
   PostgreSQL ``ledger_post()`` looks, after locking the accounts, for an answer stored under
   the API key (a refusal, step 3), and answers with it instead of posting.
2. A retry of a posted request collides with the unique key (or finds the money it asks for
   already spent by the first): the ledger answers with the earlier entry, and the answer is
   built from it again. A concurrent twin waits on the first one's account row locks until
   it commits, then does the same, so a retry never sees a half-done request (there is no "in
   progress" state).
3. A refusal (insufficient funds, a frozen account) leaves no entry, so its answer is stored
   in ``api_idempotency_keys``, and the retry is refused the same way. It is stored under the
   lock of the account the posting would have spent from, after checking that no twin posted
   meanwhile: a twin that posted first is the answer then; one that comes after waits on that
   lock and finds the refusal. A twin's refusal stored first wins, and that is the one
   returned.
4. A worker that dies before the commit leaves nothing behind: the retry simply posts.

The same key with a different request is refused with 422: another body, path or method,
told by the stored fingerprint for a refusal, and for a posting by what the entry shows
(type, accounts, amount, description).

Stored refusals (and the answers earlier releases stored with their postings) are kept for a
retention window (``API_IDEMPOTENCY_RETENTION_DAYS``) and then pruned by ``flask
prune-idempotency-keys`` (``prune_records``). A pruned refusal is forgotten: a retry after
the window is evaluated again. A posting stays safe to retry for good.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bankapp import ledger
from bankapp.api.problems import Problem, ledger_problem
from bankapp.api.representations import posting_body, posting_json
from bankapp.extensions import db
from bankapp.ledger.amounts import clean_description
from bankapp.schedule import housekeeping
from bankapp.models import (Account, ApiIdempotencyKey, Channel, EntryType, JournalEntry, User,
                            now_utc)

POSTED = 201
PRUNE_BATCH_SIZE = housekeeping.PRUNE_BATCH_SIZE

# The operation each kind of entry the API posts answers (the request's status).
OPERATIONS = {EntryType.DEPOSIT: "deposit", EntryType.WITHDRAWAL: "withdrawal",
              EntryType.TRANSFER: "transfer", EntryType.LOAN_REPAYMENT: "loan-repayment"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    replayed: bool = False


def ledger_key(key: str) -> str:
    """The journal entry's idempotency key for an API key (its own namespace, ≤ 64 chars)."""
    return "api:" + hashlib.sha256(key.encode()).hexdigest()[:60]


def find_record(user: User, key: str) -> ApiIdempotencyKey | None:
    """The answer stored under ``key``: a refusal (or a posting of an earlier release)."""
    return db.session.scalar(sa.select(ApiIdempotencyKey).where(
        ApiIdempotencyKey.user_id == user.id, ApiIdempotencyKey.key == key))


def already_answered(user: User, key: str) -> bool:
    """Whether a request with this key was answered before: a retry then gets that answer
    from ``post_once`` and can post nothing new (step-up asks such a retry for no code)."""
    return (find_record(user, key) is not None
            or ledger.find_posting(user, ledger_key(key)) is not None)


@dataclass(frozen=True)
class RequestStatus:
    """What became of a posting request: its operation, answer and entry's reference."""

    operation: str
    status: int
    body: dict
    reference: str | None
    created_at: datetime
    completed_at: datetime


def request_status(user: User, key: str) -> RequestStatus | None:
    """The answer to ``user``'s request with ``key``: stored (a refusal), or its posting's."""
    record = find_record(user, key)
    if record is not None:
        return RequestStatus(record.operation, record.response_status, record.response_body,
                             record.entry_reference, record.created_at, record.completed_at)
    entry = ledger.find_posting(user, ledger_key(key))
    if entry is None:
        return None
    return RequestStatus(OPERATIONS[entry.entry_type], POSTED, posting_json(entry),
                         entry.reference, entry.created_at, entry.created_at)


def _insert_record(user: User, key: str, operation: str, fingerprint: str, status: int,
                   body: dict, reference: str | None, at: datetime | None = None) -> None:
    """Insert the answer now, in the current transaction (a used key fails here)."""
    at = at or now_utc()
    db.session.connection().execute(sa.insert(ApiIdempotencyKey).values(
        user_id=user.id, key=key, operation=operation, request_fingerprint=fingerprint,
        response_status=status, response_body=body, entry_reference=reference,
        created_at=at, completed_at=at))


@dataclass(frozen=True)
class PostingAnswer:
    """The API's answer to a posting made under ``key`` (``ledger.PostingAnswer``): built
    from the posting, never stored; an answer stored under the key (a refusal) instead.

    ``body(reference, created_at, balance_after)`` is the answer to a posting from its parts,
    ``balance_after`` being the balance of ``account_id``.
    """

    user: User
    key: str
    fingerprint: str
    body: Callable[[str, datetime, Decimal], dict]
    account_id: int

    def stored(self) -> tuple[int, dict, str] | None:
        record = find_record(self.user, self.key)
        if record is None:
            return None
        return record.response_status, record.response_body, record.request_fingerprint

    def posted(self, reference: str, created_at: datetime,
               balance_after: Decimal) -> tuple[int, dict, str]:
        return POSTED, self.body(reference, created_at, balance_after), self.fingerprint

    def of_entry(self, entry: JournalEntry) -> tuple[int, dict, str]:
        return POSTED, posting_json(entry), self.fingerprint


def _key_reused() -> Problem:
    return Problem(422, "This Idempotency-Key was already used with a different request; "
                        "use a new key for a new request.", code="idempotency-key-reused")


def _replay(record: ApiIdempotencyKey, fingerprint: str) -> Answer:
    """The stored answer for a key that was used before (or 422 for another request)."""
    if record.request_fingerprint != fingerprint:
        raise _key_reused()
    return Answer(record.response_status, record.response_body, replayed=True)


def post_once(user: User, key: str, operation: str, fingerprint: str,
              post: Callable[..., ledger.Posting], expected: dict[str, str], *,
              description: str, account_id: int) -> Answer:
    """Run the ledger call ``post(idempotency_key=…, answer=…)`` at most once per (user, key).

    Returns the answer to send: the posting (201), the ledger's refusal (4xx), or the answer
    to an earlier request with this key (``replayed``). ``expected``: what the posting's
    answer shows for this request (``entry_type``, accounts, ``amount``), to tell a retry
    from a reused key; ``description`` completes it, and ``account_id`` is the account whose
    balance the answer shows (the one the posting spends from or pays into).
    """
    description = clean_description(description)
    accounts = {name: value for name, value in expected.items()
                if name not in ("entry_type", "amount")}

    def body(reference: str, created_at: datetime, balance_after: Decimal) -> dict:
        return posting_body(reference, expected["entry_type"], Channel.API, description,
                            created_at, accounts, expected["amount"], balance_after)

    asked = {**expected, "description": description}  # what a retry's entry must show
    answer = PostingAnswer(user, key, fingerprint, body, account_id)
    try:
        posting = post(idempotency_key=ledger_key(key), answer=answer)
    except ledger.LedgerError as error:
        return _store_refusal(user, key, operation, fingerprint, ledger_problem(error),
                              account_id, asked)
    if posting.answer is None:  # an earlier posting under this key
        record = find_record(user, key)  # its answer, if an earlier release stored it
        if record is not None:
            return _replay(record, fingerprint)
        return _replay_posting(posting.entry, asked)
    status, body_sent, sent_fingerprint = posting.answer
    if not posting.replayed:
        return Answer(status, body_sent)
    if sent_fingerprint != fingerprint:
        raise _key_reused()
    return Answer(status, body_sent, replayed=True)


def _replay_posting(entry: JournalEntry, expected: dict[str, str]) -> Answer:
    """The answer to the posting made under this key, built from its entry, provided this
    request asks for what the entry did."""
    body = posting_json(entry)
    if any(body.get(name) != value for name, value in expected.items()):
        raise _key_reused()
    return Answer(POSTED, body, replayed=True)


def _store_refusal(user: User, key: str, operation: str, fingerprint: str, problem: Problem,
                   account_id: int, expected: dict[str, str]) -> Answer:
    """Store a refused posting's answer, unless a twin posted meanwhile (its posting is the
    answer then) or stored its refusal first (that one is).

    The account's row is locked first, as the posting locks it: a twin's posting either
    committed before (its entry is found here) or waits, then finds this refusal.
    """
    answer = Answer(problem.status, problem.body())
    try:
        db.session.execute(sa.select(Account.id).where(Account.id == account_id)
                           .with_for_update())
        entry = ledger.find_posting(user, ledger_key(key))
        if entry is None:
            _insert_record(user, key, operation, fingerprint, answer.status, answer.body, None)
        db.session.commit()  # and the lock is released
    except IntegrityError:
        # A concurrent twin with this key answered first; its answer is the one that counts.
        db.session.rollback()
        record = find_record(user, key)
        if record is None:
            raise
        return _replay(record, fingerprint)
    if entry is not None:
        return _replay_posting(entry, expected)
    return answer


def prune_records(older_than: timedelta, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete the records created more than ``older_than`` ago; return how many were deleted
    (``bankapp.schedule.housekeeping``, the daily pruning job, does it)."""
    return housekeeping.prune_idempotency_keys(older_than, batch_size)

"""Idempotent API postings: a retry with the same ``Idempotency-Key`` gets the first answer.

A posting and the record of its answer commit in ONE transaction:

1. The ledger posts with a ledger idempotency key derived from the API key, and, through its
   ``also`` hook, the answer (status 201 and the JSON body, built from the entry before the
   commit) is inserted into ``api_idempotency_keys`` in the same transaction. No look-up
   comes first: the common case (a new key) costs no extra statement.
2. A retry of a posted request collides with the ledger's UNIQUE (actor_id, idempotency_key)
   on journal entries (or finds the money it asks for already spent by the first): the
   ledger answers with the earlier entry, and we replay the stored answer. A concurrent twin
   waits on the first one's account row locks until it commits, then does the same, so a
   retry never sees a half-done request (there is no "in progress" state).
3. A refusal (insufficient funds, a frozen account) rolls the posting back; its answer is then
   stored on its own, so the retry is refused the same way. If a twin got there first, its
   stored answer wins, and that is the one returned.
4. A worker that dies before the commit leaves nothing behind: the retry simply posts. One
   that dies after the commit has left the entry and its answer together.

The same key with a different request (another body, path or method) is refused with 422.

On PostgreSQL (the ledger's fast path) steps 1–3 happen inside ``ledger_post()``: it finds a
stored answer, meets the unique key, or stores the answer it built with the posting, in one
database call that is its own transaction; a refusal is then stored by one more statement
(``INSERT … ON CONFLICT DO NOTHING``: a twin's stored answer wins, as above). A posting the
function declines (a debit that calls for an alert email) is written the generic way, its
answer inserted in the same transaction (``StoredAnswer.store``).

Records are kept for a retention window (``API_IDEMPOTENCY_RETENTION_DAYS``) and then pruned
by ``flask prune-idempotency-keys`` (``prune_records``). A posted request stays safe to retry
after that: its journal entry keeps the ledger key, and ``post_once`` rebuilds the answer
from the entry, provided the request asks for what the entry did (type, accounts, amount);
a key reused for another request is still refused with 422. A pruned refusal is forgotten:
a retry after the window is evaluated again.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from bankapp import ledger
from bankapp.api.problems import Problem, ledger_problem
from bankapp.api.representations import posting_body, posting_json
from bankapp.extensions import db
from bankapp.ledger import fast
from bankapp.ledger.amounts import clean_description
from bankapp.schedule import housekeeping
from bankapp.models import ApiIdempotencyKey, Channel, JournalEntry, User, now_utc

POSTED = 201
PRUNE_BATCH_SIZE = housekeeping.PRUNE_BATCH_SIZE


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    replayed: bool = False


def ledger_key(key: str) -> str:
    """The journal entry's idempotency key for an API key (its own namespace, ≤ 64 chars)."""
    return "api:" + hashlib.sha256(key.encode()).hexdigest()[:60]


def find_record(user: User, key: str) -> ApiIdempotencyKey | None:
    return db.session.scalar(sa.select(ApiIdempotencyKey).where(
        ApiIdempotencyKey.user_id == user.id, ApiIdempotencyKey.key == key))


def already_answered(user: User, key: str) -> bool:
    """Whether a request with this key was answered before: a retry then gets that answer
    from ``post_once`` and can post nothing new (step-up asks such a retry for no code)."""
    return (find_record(user, key) is not None
            or ledger.find_posting(user, ledger_key(key)) is not None)


def _insert_record(user: User, key: str, operation: str, fingerprint: str, status: int,
                   body: dict, reference: str | None, at: datetime | None = None) -> None:
    """Insert the answer now, in the current transaction (a used key fails here)."""
    at = at or now_utc()
    db.session.connection().execute(sa.insert(ApiIdempotencyKey).values(
        user_id=user.id, key=key, operation=operation, request_fingerprint=fingerprint,
        response_status=status, response_body=body, entry_reference=reference,
        created_at=at, completed_at=at))


@dataclass(frozen=True)
class StoredAnswer:
    """The answer to write with the posting, in its transaction (``ledger.AnswerToStore``).

    ``body(reference, created_at)`` is the answer without ``balance_after``, which
    ``ledger_post()`` fills in from the leg on ``account_id``; ``of_entry(entry)`` the whole
    answer, for a posting written the generic way (one the function declined).
    """

    user: User
    key: str
    operation: str
    fingerprint: str
    body: Callable[[str, datetime], dict]
    account_id: int
    of_entry: Callable[[JournalEntry], dict]

    def store(self, entry: JournalEntry) -> tuple[int, dict, str]:
        """Insert the answer to ``entry``; return it as ``(status, body, fingerprint)``."""
        body = self.of_entry(entry)
        _insert_record(self.user, self.key, self.operation, self.fingerprint, POSTED, body,
                       entry.reference, entry.created_at)
        return POSTED, body, self.fingerprint


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
    """Run the ledger call ``post(idempotency_key=…, also=…)`` (``answer=…`` on the fast
    path) at most once per (user, key).

    Returns the answer to send: the posting (201), the ledger's refusal (4xx), or the answer
    stored for an earlier request with this key (``replayed``). ``expected``: what the
    posting's answer shows for this request (``entry_type``, accounts, ``amount``), to tell a
    retry from a reused key when the stored answer has been pruned. ``description`` and
    ``account_id`` (whose balance the answer shows) complete the answer on the fast path.
    """
    if fast.enabled():
        return _post_once_fast(user, key, operation, fingerprint, post, expected,
                               description, account_id)
    answers: list[Answer] = []

    def record_answer(entry: JournalEntry) -> None:
        # Inside the posting's transaction: the answer commits with the entry, or neither.
        body = posting_json(entry)
        _insert_record(user, key, operation, fingerprint, POSTED, body, entry.reference)
        answers.append(Answer(POSTED, body))

    try:
        posting = post(idempotency_key=ledger_key(key), also=record_answer)
    except ledger.LedgerError as error:
        return _store_refusal(user, key, operation, fingerprint, ledger_problem(error))
    except IntegrityError:
        # The key is taken by a stored refusal: the posting was rolled back.
        db.session.rollback()
        record = find_record(user, key)
        if record is None:
            raise  # another constraint failed: a bug, not a retry
        return _replay(record, fingerprint)
    if posting.replayed:
        return _replay_posting(user, key, fingerprint, posting, expected)
    return answers[-1]


def _replay_posting(user: User, key: str, fingerprint: str, posting: ledger.Posting,
                    expected: dict[str, str]) -> Answer:
    record = find_record(user, key)
    if record is not None:
        return _replay(record, fingerprint)
    # The stored answer was pruned (or the entry predates stored answers): the answer to a
    # posting is a function of its entry alone, but only the same request may have it.
    body = posting_json(posting.entry)
    if any(body.get(name) != value for name, value in expected.items()):
        raise _key_reused()
    return Answer(POSTED, body, replayed=True)


def _post_once_fast(user: User, key: str, operation: str, fingerprint: str,
                    post: Callable[..., ledger.Posting], expected: dict[str, str],
                    description: str, account_id: int) -> Answer:
    """``post_once`` on the fast path: the ledger stores the answer it posts (or finds)."""
    accounts = {name: value for name, value in expected.items()
                if name not in ("entry_type", "amount")}

    def body(reference, created_at) -> dict:
        return posting_body(reference, expected["entry_type"], Channel.API,
                            clean_description(description), created_at, accounts,
                            expected["amount"])

    answer = StoredAnswer(user, key, operation, fingerprint, body, account_id,
                          of_entry=posting_json)
    try:
        posting = post(idempotency_key=ledger_key(key), answer=answer)
    except ledger.LedgerError as error:
        return _store_refusal_fast(user, key, operation, fingerprint, ledger_problem(error))
    except IntegrityError:
        # A twin's stored refusal took the key after ledger_post() looked: nothing posted.
        record = _stored_answer(user, key)
        if record is None:
            raise
        return _replay(record, fingerprint)
    if posting.answer is None:
        return _replay_posting(user, key, fingerprint, posting, expected)
    status, body_stored, stored_fingerprint = posting.answer
    if not posting.replayed:
        return Answer(status, body_stored)
    if stored_fingerprint != fingerprint:
        raise _key_reused()
    return Answer(status, body_stored, replayed=True)


def _stored_answer(user: User, key: str):
    """The stored answer's row (status, body, fingerprint), read on the lean engine."""
    found = fast.rows(sa.select(ApiIdempotencyKey.request_fingerprint,
                                ApiIdempotencyKey.response_status,
                                ApiIdempotencyKey.response_body)
                      .where(ApiIdempotencyKey.user_id == user.id, ApiIdempotencyKey.key == key))
    return found[0] if found else None


def _store_refusal_fast(user: User, key: str, operation: str, fingerprint: str,
                        problem: Problem) -> Answer:
    """Record a refusal in one autocommitted statement; a twin's earlier answer wins."""
    answer = Answer(problem.status, problem.body())
    moment = now_utc()
    statement = (postgresql.insert(ApiIdempotencyKey)
                 .values(user_id=user.id, key=key, operation=operation,
                         request_fingerprint=fingerprint, response_status=answer.status,
                         response_body=answer.body, entry_reference=None, created_at=moment,
                         completed_at=moment)
                 .on_conflict_do_nothing(constraint="uq_api_idempotency_keys_user_key")
                 .returning(ApiIdempotencyKey.id))
    # Safe to send again: the key makes a second insert a no-op.
    inserted = fast.run(lambda connection: connection.execute(statement).scalar(), retry=True)
    if inserted is not None:
        return answer
    record = _stored_answer(user, key)
    if record is None:
        raise AssertionError("an answer conflicted on its key but none is stored")
    return _replay(record, fingerprint)


def _store_refusal(user: User, key: str, operation: str, fingerprint: str,
                   problem: Problem) -> Answer:
    """Record a refused posting's answer (the posting itself was rolled back)."""
    answer = Answer(problem.status, problem.body())
    try:
        _insert_record(user, key, operation, fingerprint, answer.status, answer.body, None)
        db.session.commit()
    except IntegrityError:
        # A concurrent twin with this key answered first; its answer is the one that counts.
        db.session.rollback()
        record = find_record(user, key)
        if record is None:
            raise
        return _replay(record, fingerprint)
    return answer


def prune_records(older_than: timedelta, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete the records created more than ``older_than`` ago; return how many were deleted
    (``bankapp.schedule.housekeeping``, the daily pruning job, does it)."""
    return housekeeping.prune_idempotency_keys(older_than, batch_size)

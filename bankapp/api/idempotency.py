"""Idempotent API postings: a retry with the same ``Idempotency-Key`` gets the first answer.

How one keyed request runs:

1. Look for the caller's record of the key. Same fingerprint and completed → replay the
   stored status and body (nothing is posted). Another fingerprint → 422.
2. Otherwise *claim* the key: insert the record with no response (in progress) and commit at
   once, in its own short transaction. The UNIQUE (user_id, key) constraint lets exactly one
   of several concurrent requests win; the others see the claim and answer 409 (in progress)
   or, once it is complete, the stored answer.
3. Call the ledger with a ledger idempotency key derived from the API key. The ledger's own
   UNIQUE (actor_id, idempotency_key) on journal entries is the last guard: even a request
   that takes over a stale claim (its worker died after posting, before answering) finds the
   earlier entry instead of posting again.
4. Store the response (a posting or a refusal such as insufficient funds) and commit.

If anything unexpected fails after the claim, the claim is released so the client can retry;
that retry cannot post twice because of step 3.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from bankapp.api.problems import Problem
from bankapp.extensions import db
from bankapp.models import ApiIdempotencyKey, User, now_utc

log = logging.getLogger("bankapp.api")


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


def _claim(user: User, key: str, operation: str, fingerprint: str):
    """Insert and commit the in-progress record; (record, True) if this request won it."""
    record = ApiIdempotencyKey(user_id=user.id, key=key, operation=operation,
                               request_fingerprint=fingerprint)
    db.session.add(record)
    try:
        db.session.commit()
        return record, True
    except IntegrityError:
        db.session.rollback()
        return find_record(user, key), False


def _take_over_if_stale(record: ApiIdempotencyKey) -> bool:
    """Claim a record whose worker has not answered for too long (compare-and-set)."""
    stale = now_utc() - timedelta(seconds=current_app.config["API_IDEMPOTENCY_STALE_SECONDS"])
    taken = db.session.execute(
        sa.update(ApiIdempotencyKey)
        .where(ApiIdempotencyKey.id == record.id,
               ApiIdempotencyKey.response_status.is_(None),
               ApiIdempotencyKey.claimed_at < stale)
        .values(claimed_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return taken == 1


def _release(record_id: int) -> None:
    try:
        db.session.rollback()
        db.session.execute(sa.delete(ApiIdempotencyKey).where(
            ApiIdempotencyKey.id == record_id, ApiIdempotencyKey.response_status.is_(None)))
        db.session.commit()
    except Exception:  # the original error matters more; a stale claim is taken over later
        db.session.rollback()
        log.exception("could not release idempotency claim %s", record_id)


def _settled(record: ApiIdempotencyKey | None, fingerprint: str) -> Answer | None:
    """The answer for an existing record, or None when this request may run it."""
    if record is None:  # the claim was released between our insert and our look-up
        raise _in_progress()
    if record.request_fingerprint != fingerprint:
        raise Problem(422, "This Idempotency-Key was already used with a different request; "
                           "use a new key for a new request.", code="idempotency-key-reused")
    if not record.in_progress:
        return Answer(record.response_status, record.response_body, replayed=True)
    if _take_over_if_stale(record):
        return None
    raise _in_progress()


def _in_progress() -> Problem:
    return Problem(409, "A request with this Idempotency-Key is still being processed; "
                        "retry in a moment to get its answer.", code="request-in-progress",
                   headers={"Retry-After": "1"})


def run_once(user: User, key: str, operation: str, fingerprint: str,
             action: Callable[[], tuple[int, dict, str | None]]) -> Answer:
    """Run ``action`` (→ status, body, entry reference) at most once per (user, key)."""
    record = find_record(user, key)
    if record is not None:
        answer = _settled(record, fingerprint)
        if answer is not None:
            return answer
    else:
        record, won = _claim(user, key, operation, fingerprint)
        if not won:
            answer = _settled(record, fingerprint)
            if answer is not None:
                return answer
    record_id = record.id
    try:
        status, body, reference = action()
        db.session.execute(
            sa.update(ApiIdempotencyKey).where(ApiIdempotencyKey.id == record_id)
            .values(response_status=status, response_body=body, entry_reference=reference,
                    completed_at=now_utc())
            .execution_options(synchronize_session=False))
        db.session.commit()
    except BaseException:
        _release(record_id)
        raise
    return Answer(status, body)

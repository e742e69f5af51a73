"""Maker-checker: counter postings above the threshold wait for a second person."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp import audit as audit_trail
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger.amounts import clean_description, clean_reason, validate_amount
from bankapp.ledger.cash import till_for
from bankapp.ledger.core import Posting, atomically, deposit, require_customer_account, withdraw
from bankapp.ledger.errors import DecisionRefused, LedgerError, not_active
from bankapp.models import (
    Account,
    Channel,
    JournalEntry,
    PendingPosting,
    PendingPostingKind,
    PendingStatus,
    User,
    now_utc,
)


@dataclass(frozen=True)
class Requested:
    """A counter posting held for approval; ``replayed`` when the key found an earlier one."""

    pending: PendingPosting
    replayed: bool = False


def approval_threshold() -> Decimal:
    return Decimal(current_app.config["MAKER_CHECKER_THRESHOLD"])


def teller_posting(kind: str, account: Account, amount, description: str, teller: User, *,
                   idempotency_key: str | None = None) -> Posting | Requested:
    """Cash at the counter, through the teller's till: posted now, or held for approval when
    the amount is above ``MAKER_CHECKER_THRESHOLD`` (exactly the threshold posts)."""
    amount = validate_amount(amount)
    if kind not in PendingPostingKind.ALL:
        raise LedgerError(gettext("Choose a deposit or a withdrawal."))
    if amount > approval_threshold():
        return request_posting(kind, account, amount, description, teller,
                               idempotency_key=idempotency_key)
    post = deposit if kind == PendingPostingKind.DEPOSIT else withdraw
    return post(account, amount, description, teller, channel=Channel.TELLER,
                idempotency_key=idempotency_key, cash_account=till_for(teller))


def _existing_request(teller: User, key: str | None) -> PendingPosting | None:
    if not key:
        return None
    return db.session.scalar(sa.select(PendingPosting).where(
        PendingPosting.requested_by_id == teller.id, PendingPosting.idempotency_key == key))


def request_posting(kind: str, account: Account, amount, description: str, teller: User, *,
                    idempotency_key: str | None = None) -> Requested:
    """Hold a counter posting for a second person's approval. Moves no money."""
    amount = validate_amount(amount)
    description = clean_description(description)
    require_customer_account(account)
    if kind not in PendingPostingKind.ALL:
        raise LedgerError(gettext("Choose a deposit or a withdrawal."))
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise LedgerError(gettext("Invalid idempotency key."))
    replay = _existing_request(teller, idempotency_key)
    if replay is not None:
        return Requested(replay, replayed=True)
    if not account.is_active:
        raise not_active(account.status)

    def work() -> PendingPosting:
        pending = PendingPosting(kind=kind, account_id=account.id, amount=amount,
                                 description=description, requested_by_id=teller.id,
                                 idempotency_key=idempotency_key, status=PendingStatus.PENDING)
        db.session.add(pending)
        db.session.flush()
        audit_trail.record(Action.TELLER_REQUEST, actor=teller,
                           target_type=TargetType.PENDING_POSTING,
                           target_id=pending.id, details={
                               "kind": kind, "amount": amount,
                               "account": account.account_number})
        return pending

    try:
        return Requested(atomically(work, "request_posting"))
    except IntegrityError:
        replay = _existing_request(teller, idempotency_key)
        if replay is not None:
            return Requested(replay, replayed=True)
        raise


def _check_decision(pending: PendingPosting, checker: User) -> None:
    if pending.requested_by_id == checker.id:
        raise DecisionRefused(gettext("You cannot decide your own request: another person "
                                      "must check it."))
    if not pending.is_pending:
        raise DecisionRefused(gettext("This request was already approved.")
                              if pending.status == PendingStatus.APPROVED
                              else gettext("This request was already rejected."))


def _decide(pending: PendingPosting, checker: User, status: str, note: str | None,
            entry: JournalEntry | None) -> None:
    """Mark ``pending`` decided, only if it still is pending (two checkers cannot both win)."""
    changed = db.session.execute(
        sa.update(PendingPosting)
        .where(PendingPosting.id == pending.id, PendingPosting.status == PendingStatus.PENDING)
        .values(status=status, decided_by_id=checker.id, decided_at=now_utc(),
                decision_note=note or None, entry_id=entry.id if entry is not None else None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise DecisionRefused(gettext("This request was already decided."))
    action = Action.TELLER_APPROVE if status == PendingStatus.APPROVED else Action.TELLER_REJECT
    details = {"kind": pending.kind, "amount": pending.amount, "note": note or None,
               "requested_by": pending.requested_by_id}
    if entry is not None:
        details["reference"] = entry.reference
    audit_trail.record(action, actor=checker, target_type=TargetType.PENDING_POSTING,
                       target_id=pending.id, details=details)


def approve_posting(pending: PendingPosting, checker: User, note: str = "") -> Posting:
    """Post a held request into the requesting teller's till; only now does money move.

    The posting, the request's decision and both audit lines commit together; refused when
    the checker is the maker, the request is decided, or the ledger refuses the posting.
    """
    note = clean_description(note)
    _check_decision(pending, checker)
    teller = pending.requested_by
    if not (teller.is_active and teller.is_staff):
        # The cash would go through the requester's till: they must still be serving.
        raise DecisionRefused(gettext("The requesting teller is no longer active staff: reject "
                                      "the request and post it again from an active teller."))
    post = deposit if pending.kind == PendingPostingKind.DEPOSIT else withdraw
    posting = post(pending.account, pending.amount, pending.description, teller,
                   channel=Channel.TELLER, cash_account=till_for(teller),
                   also=lambda entry: _decide(pending, checker, PendingStatus.APPROVED, note,
                                              entry))
    db.session.refresh(pending)
    return posting


def reject_posting(pending: PendingPosting, checker: User, note: str) -> PendingPosting:
    """Refuse a held request with a reason; no money moves."""
    note = clean_reason(note)
    _check_decision(pending, checker)
    atomically(lambda: _decide(pending, checker, PendingStatus.REJECTED, note, None),
                "reject_posting")
    db.session.refresh(pending)
    return pending

"""Back-office queries and the non-money actions of the counter (money goes via the ledger)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm
from flask_babel import gettext

from bankapp import audit, ledger
from bankapp.extensions import db
from bankapp.identity import factors
from bankapp.platform.formatting import bank_timezone, day_start_utc
from bankapp.models import (
    Account,
    AccountType,
    Channel,
    EntryType,
    FactorResetRequest,
    FactorResetStatus,
    JournalEntry,
    PendingPosting,
    PendingStatus,
    Role,
    Transaction,
    User,
    now_utc,
)


def customer_by_id(user_id: int) -> sa.Select:
    """The select of the customer with this id (a member of staff is not found)."""
    return sa.select(User).where(User.id == user_id, User.role == Role.CUSTOMER)


def verify_customer(customer: User, actor: User) -> bool:
    """Mark ``customer``'s identity checked at the counter; False when it already was."""
    if customer.is_verified:
        return False
    customer.is_verified = True
    audit.record(audit.Action.VERIFY_CUSTOMER, actor=actor, target_type=audit.TargetType.USER,
                 target_id=customer.id, details={"email": customer.email})
    db.session.commit()
    return True


@dataclass
class CounterLine:
    entry: JournalEntry
    leg: Transaction  # the customer's leg

    @property
    def cash_in(self) -> bool:
        return self.entry.entry_type == EntryType.DEPOSIT


@dataclass
class DeskDay:
    lines: list[CounterLine]
    total_in: Decimal
    total_out: Decimal


def start_of_today() -> datetime:
    """Midnight today in the bank's time zone, as a UTC timestamp."""
    return day_start_utc(datetime.now(bank_timezone()).date())


def desk_day(teller: User) -> DeskDay:
    """The teller's own counter postings since midnight, with cash totals in and out."""
    rows = db.session.execute(
        sa.select(JournalEntry, Transaction)
        .join(Transaction, Transaction.entry_id == JournalEntry.id)
        .join(Account, Account.id == Transaction.account_id)
        .where(JournalEntry.actor_id == teller.id,
               JournalEntry.channel == Channel.TELLER,
               JournalEntry.entry_type.in_((EntryType.DEPOSIT, EntryType.WITHDRAWAL)),
               JournalEntry.created_at >= start_of_today(),
               Account.account_type.in_(AccountType.CUSTOMER))
        .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
    ).all()
    lines = [CounterLine(entry, leg) for entry, leg in rows]
    total_in = sum((line.leg.amount for line in lines if line.cash_in), Decimal("0.00"))
    total_out = sum((line.leg.amount for line in lines if not line.cash_in), Decimal("0.00"))
    return DeskDay(lines, total_in, total_out)


def pending_requests(user: User, *, everyone: bool):
    """Pending maker-checker requests: all of them for a checker, else the user's own."""
    stmt = sa.select(PendingPosting).where(PendingPosting.status == PendingStatus.PENDING)
    if not everyone:
        stmt = stmt.where(PendingPosting.requested_by_id == user.id)
    # What the approvals page shows of each request, loaded with the page (not a query a row).
    return stmt.options(*_POSTING_SHOWN).order_by(PendingPosting.created_at, PendingPosting.id)


_POSTING_SHOWN = (orm.selectinload(PendingPosting.requested_by),
                  orm.selectinload(PendingPosting.decided_by),
                  orm.selectinload(PendingPosting.entry),
                  orm.selectinload(PendingPosting.account).selectinload(Account.owner))


def waiting_for(user: User) -> int:
    """How many pending requests (postings and second-factor resets) wait on ``user``: for an
    admin, those they may decide (everyone's but their own); for a teller, their own."""
    if user.role == Role.ADMIN:
        postings = pending_requests(user, everyone=True).where(
            PendingPosting.requested_by_id != user.id)
        resets = pending_resets().where(FactorResetRequest.requested_by_id != user.id)
    else:
        postings = pending_requests(user, everyone=False)
        resets = pending_resets(requested_by=user)
    return sum(db.session.scalar(sa.select(sa.func.count()).select_from(
        stmt.order_by(None).subquery())) or 0 for stmt in (postings, resets))


# ---------------------------------------------------------------- second-factor resets
# The policy: a customer who lost their phone and recovery codes asks at the counter; staff
# check who they are and reset. Resetting hands the account to whoever signs in next with the
# password, so above MAKER_CHECKER_THRESHOLD (the customer's accounts together) it is the
# maker-checker rule of money: an admin other than the requester must approve it.


class ResetRefused(Exception):
    """Why a second-factor reset, or a decision on one, was refused (``message`` for staff)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def pending_resets(requested_by: User | None = None):
    """Second-factor resets waiting for a second person (all, or ``requested_by``'s), oldest
    first (a select)."""
    stmt = sa.select(FactorResetRequest).where(
        FactorResetRequest.status == FactorResetStatus.PENDING)
    if requested_by is not None:
        stmt = stmt.where(FactorResetRequest.requested_by_id == requested_by.id)
    return stmt.order_by(FactorResetRequest.created_at, FactorResetRequest.id)


def pending_reset_of(customer: User) -> FactorResetRequest | None:
    return db.session.scalar(pending_resets().where(
        FactorResetRequest.customer_id == customer.id))


def holdings(customer: User) -> Decimal:
    """What ``customer``'s accounts hold together (the reset policy's measure)."""
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Account.balance), 0))
                             .where(Account.owner_id == customer.id)) or Decimal("0.00")


def reset_needs_approval(customer: User) -> bool:
    """Whether a reset of ``customer``'s second factors waits for a second person."""
    return holdings(customer) > ledger.approval_threshold()


def reset_second_factor(customer: User, actor: User, reason: str) -> FactorResetRequest | None:
    """Reset ``customer``'s second factors now, or (above the policy) ask an admin: the
    request, or None when it is done. Audited either way; refused without a reason, for a
    customer with no second factor, or while a request already waits."""
    reason = " ".join((reason or "").split())[:255]
    if not reason:
        raise ResetRefused(gettext("Say why (for example: lost phone, identity checked with a "
                                   "passport)."))
    if not customer.mfa_enabled:
        raise ResetRefused(gettext("This customer has no second factor to reset."))
    if pending_reset_of(customer) is not None:
        raise ResetRefused(gettext("A reset of this customer's second factor already waits "
                                   "for approval."))
    if not reset_needs_approval(customer):
        factors.reset_second_factors(customer, actor=actor, details={"reason": reason})
        return None
    request = FactorResetRequest(customer_id=customer.id, requested_by_id=actor.id,
                                 reason=reason)
    db.session.add(request)
    db.session.flush()
    audit.record(audit.Action.MFA_RESET_REQUEST, actor=actor,
                 target_type=audit.TargetType.USER, target_id=customer.id,
                 details={"request": request.id, "reason": reason})
    db.session.commit()
    return request


def _decide(request: FactorResetRequest, checker: User) -> None:
    if request.status != FactorResetStatus.PENDING:
        raise ResetRefused(gettext("This request is already decided."))
    if request.requested_by_id == checker.id:
        raise ResetRefused(gettext("You cannot decide your own request: another admin must."))
    request.decided_by_id = checker.id
    request.decided_at = now_utc()


def approve_reset(request: FactorResetRequest, checker: User) -> None:
    """Carry out a waiting reset (an admin, never its requester): factors, sessions, email."""
    _decide(request, checker)
    request.status = FactorResetStatus.DONE
    factors.reset_second_factors(request.customer, actor=checker, details={
        "reason": request.reason, "request": request.id,
        "requested_by": request.requested_by_id})


def reject_reset(request: FactorResetRequest, checker: User) -> None:
    """Refuse a waiting reset: the customer's factors stay."""
    _decide(request, checker)
    request.status = FactorResetStatus.REJECTED
    audit.record(audit.Action.MFA_RESET_REJECT, actor=checker,
                 target_type=audit.TargetType.USER, target_id=request.customer_id,
                 details={"request": request.id})
    db.session.commit()


def recent_decisions(user: User, *, everyone: bool, limit: int = 20) -> list[PendingPosting]:
    stmt = sa.select(PendingPosting).where(PendingPosting.status != PendingStatus.PENDING)
    if not everyone:
        stmt = stmt.where(PendingPosting.requested_by_id == user.id)
    return list(db.session.scalars(
        stmt.options(*_POSTING_SHOWN)
        .order_by(PendingPosting.decided_at.desc(), PendingPosting.id.desc()).limit(limit)))


@dataclass
class TillView:
    teller: User
    till: Account | None
    cash: Decimal


def till_holder(user_id: int):
    """The user ``user_id`` when an admin may settle their till (a select): staff, or anyone
    who once was and still has a till, since its cash must be able to go back."""
    has_till = sa.exists().where(Account.account_number == f"{ledger.TILL_PREFIX}{user_id}")
    return sa.select(User).where(User.id == user_id, sa.or_(User.role.in_(Role.STAFF), has_till))


def tills_overview() -> list[TillView]:
    """Every staff member with the cash their till holds (no till yet: zero), and anyone no
    longer staff whose till still holds cash, so it can be settled."""
    tills = {account.account_number: account for account in db.session.scalars(
        sa.select(Account).where(Account.account_type == AccountType.TILL))}
    holders = sa.select(User).where(sa.or_(
        User.role.in_(Role.STAFF),
        User.id.in_([int(holder) for number, till in tills.items()
                     if till.balance != 0
                     and (holder := number.removeprefix(ledger.TILL_PREFIX)).isdigit()]),
    )).order_by(User.email)
    rows = []
    for user in db.session.scalars(holders):
        till = tills.get(ledger.till_number(user))
        rows.append(TillView(user, till, -till.balance if till else Decimal("0.00")))
    return rows

"""Holds: money a teller sets aside on an account, which withdrawals and transfers cannot use.

``available = balance − active holds`` (never shown below zero). A hold is active until it is
released or its expiry passes; nothing has to run when it expires, because every check
(the spending legs' conditional UPDATE in ``core``, these read functions) compares the
expiry with the moment of the check. A hold may exceed the balance: the account then has
nothing available, and its balance can still only go up.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import gettext
import sqlalchemy as sa

from bankapp.notifications import alerts
from bankapp import audit as audit_trail
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger.amounts import clean_reason, to_money, validate_amount
from bankapp.ledger.core import atomically, require_customer_account
from bankapp.ledger.errors import AccountNotActive, InsufficientFunds, LedgerError
from bankapp.ledger.limits import bank_day, daily_limit, outgoing_on, over_limit
from bankapp.platform.formatting import format_money
from bankapp.models import Account, AccountStatus, Hold, User, now_utc

MAX_HOLD = timedelta(days=366)


class HoldError(LedgerError):
    default_message = "This hold cannot be changed."


def place_hold(account: Account, amount, reason: str, expires_at: datetime | None,
               actor: User) -> Hold:
    """Set ``amount`` aside on ``account`` until ``expires_at`` (audited; not on a closed one)."""
    amount = validate_amount(amount)
    reason = clean_reason(reason)
    require_customer_account(account)
    now = now_utc()
    if expires_at is None or expires_at.tzinfo is None or expires_at <= now:
        raise HoldError(gettext("The expiry must be a moment in the future."))
    if expires_at > now + MAX_HOLD:
        raise HoldError(gettext("A hold lasts at most a year: place a new one when it ends."))

    def work() -> Hold:
        status = db.session.scalar(sa.select(Account.status).where(Account.id == account.id))
        if status == AccountStatus.CLOSED:
            raise AccountNotActive(gettext("This account is closed: no hold can be placed on it."))
        hold = Hold(account_id=account.id, amount=amount, reason=reason, expires_at=expires_at,
                    placed_by_id=actor.id, placed_at=now)
        db.session.add(hold)
        db.session.flush()
        audit_trail.record(Action.HOLD_PLACE, actor=actor, target_type=TargetType.ACCOUNT,
                           target_id=account.account_number,
                           details={"hold": hold.id, "amount": amount, "reason": reason,
                                    "expires_at": expires_at})
        alerts.hold_placed(account, amount, reason, expires_at)  # an outbox row, same commit
        return hold

    return atomically(work, Action.HOLD_PLACE)


def release_hold(hold_id: int, actor: User) -> Hold:
    """Release an active hold (audited). An expired or released one is refused, and only one
    of two concurrent releases wins: the UPDATE itself checks both."""
    now = now_utc()

    def work() -> Hold:
        released = db.session.execute(
            sa.update(Hold)
            .where(Hold.id == hold_id, Hold.released_at.is_(None), Hold.expires_at > now)
            .values(released_at=now, released_by_id=actor.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        hold = db.session.get(Hold, hold_id, populate_existing=True)
        if hold is None:
            raise HoldError(gettext("No such hold."))
        if released != 1:
            if hold.released_at is not None:
                raise HoldError(gettext("This hold was already released."))
            raise HoldError(gettext("This hold has expired: it no longer counts."))
        audit_trail.record(Action.HOLD_RELEASE, actor=actor, target_type=TargetType.ACCOUNT,
                           target_id=hold.account.account_number,
                           details={"hold": hold.id, "amount": hold.amount})
        return hold

    return atomically(work, Action.HOLD_RELEASE)


def active_holds(account: Account, now: datetime | None = None) -> list[Hold]:
    """The holds counting against ``account`` now, soonest to expire first."""
    now = now or now_utc()
    return list(db.session.scalars(
        sa.select(Hold).where(Hold.account_id == account.id, Hold.released_at.is_(None),
                              Hold.expires_at > now)
        .order_by(Hold.expires_at, Hold.id)))


def hold_history(account: Account, limit: int = 50) -> list[Hold]:
    """The account's holds, newest first (active, released and expired)."""
    return list(db.session.scalars(
        sa.select(Hold).where(Hold.account_id == account.id)
        .order_by(Hold.placed_at.desc(), Hold.id.desc()).limit(limit)))


def available_balance(account: Account, now: datetime | None = None) -> Decimal:
    """Balance minus active holds, never below zero."""
    balance, held = db.session.execute(
        sa.select(Account.balance, Hold.active_total(Account.id, now or now_utc()))
        .where(Account.id == account.id)).one()
    return max(to_money(balance) - to_money(held), Decimal("0.00"))


def holds_and_available(account: Account, now: datetime | None = None
                        ) -> tuple[list[Hold], Decimal]:
    """``active_holds`` and ``available_balance`` in one query: ``account`` as just read
    (its balance is the one the caller loaded), less the holds read here."""
    holds = active_holds(account, now)
    held = sum((to_money(hold.amount) for hold in holds), Decimal("0.00"))
    return holds, max(to_money(account.balance) - held, Decimal("0.00"))


def check_can_send(source: Account, destination: Account, amount: Decimal,
                   now: datetime | None = None) -> None:
    """Refuse, before the customer confirms, a transfer its posting would refuse for lack of
    available money or of daily limit, saying how much there is (``InsufficientFunds`` or
    ``DailyLimitExceeded``). The posting checks both again, under its locks."""
    moment = now or now_utc()
    available = available_balance(source, moment)
    if amount > available:
        raise InsufficientFunds(gettext(
            "Insufficient funds: %(available)s is available in this account.",
            available=format_money(available)))
    if source.owner_id is not None and destination.owner_id != source.owner_id:
        limit = daily_limit(source.owner_id, moment)
        used = outgoing_on(source.owner_id, bank_day(moment))
        if used + amount > limit:
            raise over_limit(limit, used)


def available_balances(accounts, now: datetime | None = None) -> dict[int, Decimal]:
    """``available_balance`` of several accounts, by account id, in one query."""
    moment = now or now_utc()
    rows = db.session.execute(
        sa.select(Account.id, Account.balance, Hold.active_total(Account.id, moment))
        .where(Account.id.in_([account.id for account in accounts]))).all()
    return {account_id: max(to_money(balance) - to_money(held), Decimal("0.00"))
            for account_id, balance, held in rows}


def held_amount(account: Account, now: datetime | None = None) -> Decimal:
    return to_money(db.session.scalar(
        sa.select(Hold.active_total(account.id, now or now_utc()))))

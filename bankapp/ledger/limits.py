"""Daily outgoing limits: the bank's ``DAILY_TRANSFER_LIMIT`` and each customer's own lower one.

What counts: withdrawals and transfers to someone else's account (not between one's own
accounts, nor cash a teller pays at the counter), from every account the customer owns, per
calendar day in ``BANK_TIMEZONE``.

Concurrency: ``daily_outgoing`` holds one row per customer and day. A payment raises it in its
own transaction with one conditional upsert, ``INSERT … ON CONFLICT (user_id, day) DO UPDATE
SET amount = amount + :x WHERE amount + :x <= :limit RETURNING amount``: the row lock orders
concurrent payments and each sees the total the one before it committed, so together they
never pass the limit (a refused one rolls back whole, its legs included). The upsert runs
after the legs (the row is the posting's last lock, as for ``ledger_totals``).

A customer's own limit: lowering applies at once; raising applies 24 hours later, or at once
when approved with a fresh second-factor code (step-up), and never above the bank's limit.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.dialects import postgresql, sqlite

from bankapp import audit as audit_trail
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger.amounts import parse_amount, to_money
from bankapp.ledger.errors import DailyLimitExceeded, LimitExceeded
from bankapp.models import DailyOutgoing, TransferLimit, User, now_utc
from bankapp.platform.formatting import bank_timezone, format_money

RAISE_DELAY = timedelta(hours=24)


def bank_limit() -> Decimal:
    return Decimal(current_app.config["DAILY_TRANSFER_LIMIT"])


def _own_limit(user_id: int) -> TransferLimit | None:
    return db.session.scalar(sa.select(TransferLimit).where(TransferLimit.user_id == user_id))


def daily_limit(user_id: int, at: datetime | None = None) -> Decimal:
    """The limit that applies to ``user_id`` at ``at`` (now): theirs, or the bank's if lower."""
    own = _own_limit(user_id)
    bank = bank_limit()
    return min(bank, own.limit_at(at or now_utc())) if own is not None else bank


def bank_day(moment: datetime) -> date:
    return moment.astimezone(bank_timezone()).date()


def outgoing_on(user_id: int, day: date) -> Decimal:
    """What ``user_id`` has sent out on ``day``."""
    return to_money(db.session.scalar(sa.select(DailyOutgoing.amount).where(
        DailyOutgoing.user_id == user_id, DailyOutgoing.day == day)))


@functools.cache
def _charge(dialect: str):
    """The conditional upsert that adds a payment to its day (built once per database kind)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = DailyOutgoing.__table__
    statement = insert(table).values(user_id=sa.bindparam("user_id"), day=sa.bindparam("day"),
                                     amount=sa.bindparam("amount", type_=table.c.amount.type))
    # round() keeps SQLite exact: it adds NUMERIC values in binary floating point.
    total = sa.func.round(table.c.amount + statement.excluded.amount, 2)
    return statement.on_conflict_do_update(
        index_elements=[table.c.user_id, table.c.day], set_={"amount": total},
        where=total <= sa.bindparam("limit", type_=table.c.amount.type),
    ).returning(table.c.amount)


def charge_outgoing(user_id: int, amount: Decimal, moment: datetime) -> Decimal:
    """Add ``amount`` to ``user_id``'s outgoing total of ``moment``'s day, or refuse it.

    Runs inside the posting's transaction; returns the day's new total. (``ledger_post()``
    runs the same upsert on the fast path: migration 0015.)
    """
    day = bank_day(moment)
    limit = daily_limit(user_id, moment)
    total = None
    if amount <= limit:
        connection = db.session.connection()
        total = connection.execute(_charge(connection.dialect.name), {
            "user_id": user_id, "day": day, "amount": amount, "limit": limit,
        }).scalar_one_or_none()
    if total is None:
        raise over_limit(limit, outgoing_on(user_id, day))
    return to_money(total)


def over_limit(limit: Decimal, used: Decimal) -> DailyLimitExceeded:
    """The refusal of a payment that would take the day's total past ``limit``."""
    left = max(limit - to_money(used), Decimal("0.00"))
    return DailyLimitExceeded(gettext("This payment is above your daily outgoing limit of "
                                      "%(limit)s: %(left)s is left today.",
                                      limit=format_money(limit), left=format_money(left)))


@dataclass(frozen=True)
class DailyCharge:
    """A posting's claim on its sender's daily limit: ``amount`` out of ``user_id``'s
    accounts (``core.post`` charges it in the posting's transaction)."""

    user_id: int
    amount: Decimal

    def charge(self, moment: datetime) -> Decimal:
        return charge_outgoing(self.user_id, self.amount, moment)


# ---------------------------------------------------------------- a customer's own limit


@dataclass(frozen=True)
class LimitChange:
    limit: Decimal
    applies_at: datetime
    at_once: bool


def parse_limit(text: object) -> Decimal:
    """A daily limit as typed: an amount above zero, at most the bank's limit."""
    limit = parse_amount(text)
    if limit > bank_limit():
        raise LimitExceeded(gettext("The bank's daily limit is %(limit)s: yours can only be "
                                    "the same or lower.", limit=format_money(bank_limit())))
    return limit


def set_own_limit(user: User, new_limit: Decimal, *, stepped_up: bool = False,
                  now: datetime | None = None) -> LimitChange:
    """Set ``user``'s daily limit: at once when lower (or approved by step-up), else in 24 h."""
    if new_limit > bank_limit():
        raise LimitExceeded(gettext("The bank's daily limit is %(limit)s.",
                                    limit=format_money(bank_limit())))
    now = now or now_utc()
    own = _own_limit(user.id)
    current = own.limit_at(now) if own is not None else bank_limit()
    current = min(current, bank_limit())
    if own is None:
        own = TransferLimit(user_id=user.id, daily_limit=current)
        db.session.add(own)
    at_once = new_limit <= current or stepped_up
    if at_once:
        own.daily_limit, own.pending_limit, own.pending_from = new_limit, None, None
    else:
        own.daily_limit = current
        own.pending_limit, own.pending_from = new_limit, now + RAISE_DELAY
    own.updated_at = now
    change = LimitChange(new_limit, now if at_once else own.pending_from, at_once)
    audit_trail.record(Action.LIMIT_CHANGE, actor=user, target_type=TargetType.USER,
                       target_id=user.id,
                       details={"from": current, "to": new_limit, "applies_at": change.applies_at,
                                "step_up": stepped_up})
    db.session.commit()
    return change


@dataclass(frozen=True)
class LimitStatus:
    """What the limits page shows."""

    bank: Decimal
    limit: Decimal
    used_today: Decimal
    pending: Decimal | None
    pending_from: datetime | None

    @property
    def left_today(self) -> Decimal:
        return max(self.limit - self.used_today, Decimal("0.00"))


def limit_status(user: User, now: datetime | None = None) -> LimitStatus:
    now = now or now_utc()
    own = _own_limit(user.id)
    pending = own is not None and own.pending_from is not None and own.pending_from > now
    return LimitStatus(bank_limit(), daily_limit(user.id, now), outgoing_on(user.id, bank_day(now)),
                       own.pending_limit if pending else None,
                       own.pending_from if pending else None)

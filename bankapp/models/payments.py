"""Saved payees and scheduled (standing-order) payments."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import Labelled, UTCDateTime, now_utc
from bankapp.models.identity import User
from bankapp.models.ledger import Account, JournalEntry
from bankapp.platform.i18n import N_


class Payee(db.Model):
    """An account a customer saved to pay again, under a name of their choosing."""

    __tablename__ = "payees"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "account_id", name="uq_payees_user_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    nickname: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    account: Mapped[Account] = relationship()


class Frequency(Labelled):
    ONCE = "once"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    ALL = (ONCE, WEEKLY, MONTHLY)
    LABELS = {ONCE: N_("Once"), WEEKLY: N_("Weekly"), MONTHLY: N_("Monthly")}


class OrderStatus(Labelled):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ALL = (ACTIVE, PAUSED, CANCELLED, COMPLETED)
    LABELS = {ACTIVE: "Active", PAUSED: "Paused", CANCELLED: "Cancelled", COMPLETED: "Completed"}


class ScheduledOrder(db.Model):
    """A one-off transfer on a future date, or a standing order (weekly or monthly).

    ``next_due_on`` is the next payment's date (NULL once the order has ended); the runner
    (``bankapp.ledger.scheduled``) moves it on in the same transaction as each occurrence.
    """

    __tablename__ = "scheduled_orders"
    __table_args__ = (
        sa.CheckConstraint("frequency IN ('once', 'weekly', 'monthly')", name="frequency_known"),
        sa.CheckConstraint("status IN ('active', 'paused', 'cancelled', 'completed')",
                           name="status_known"),
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name="amount_positive"),
        sa.CheckConstraint("(frequency = 'monthly') = (day_of_month IS NOT NULL)",
                           name="day_iff_monthly"),
        sa.CheckConstraint("day_of_month BETWEEN 1 AND 31", name="day_of_month_valid"),
        sa.CheckConstraint("end_on IS NULL OR end_on >= start_on", name="end_after_start"),
        sa.CheckConstraint("max_occurrences IS NULL OR max_occurrences > 0",
                           name="max_occurrences_positive"),
        sa.CheckConstraint("source_account_id <> destination_account_id", name="not_to_itself"),
        sa.CheckConstraint("(status IN ('active', 'paused')) = (next_due_on IS NOT NULL)",
                           name="next_due_iff_open"),
        # A replayed creation form finds the order it already made.
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_scheduled_orders_user_key"),
        sa.Index("ix_scheduled_orders_status_next_due_on", "status", "next_due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    source_account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    destination_account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    description: Mapped[str] = mapped_column(sa.String(140), default="")
    frequency: Mapped[str] = mapped_column(sa.String(8))
    day_of_month: Mapped[Optional[int]] = mapped_column(sa.SmallInteger)
    start_on: Mapped[date] = mapped_column(sa.Date)
    end_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    max_occurrences: Mapped[Optional[int]] = mapped_column(sa.Integer)
    occurrence_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_due_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(10), default=OrderStatus.ACTIVE)
    status_reason: Mapped[Optional[str]] = mapped_column(sa.String(255))
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    user: Mapped[User] = relationship()
    source: Mapped[Account] = relationship(foreign_keys=[source_account_id])
    destination: Mapped[Account] = relationship(foreign_keys=[destination_account_id])

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.ACTIVE, OrderStatus.PAUSED)


class OccurrenceStatus:
    POSTED = "posted"
    FAILED = "failed"
    ALL = (POSTED, FAILED)


class ScheduledOccurrence(db.Model):
    """One due date of a scheduled order, and what happened: posted (its entry) or failed.

    UNIQUE (order_id, due_on): whatever runs the job, and however often, an occurrence is
    recorded once (the ledger's idempotency key, order id + due date, backs it up).
    """

    __tablename__ = "scheduled_occurrences"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "due_on", name="uq_scheduled_occurrences_order_due"),
        sa.CheckConstraint("status IN ('posted', 'failed')", name="status_known"),
        sa.CheckConstraint("(status = 'posted') = (entry_id IS NOT NULL)", name="posted_has_entry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("scheduled_orders.id"))
    due_on: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(8))
    entry_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    reason: Mapped[Optional[str]] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    entry: Mapped[Optional[JournalEntry]] = relationship()

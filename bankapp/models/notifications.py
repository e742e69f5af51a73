"""Outgoing mail (the outbox) and the alerts each customer chooses."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc


class MailStatus:
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class OutboxMessage(db.Model):
    """One email, written in the transaction of the action that causes it; sent afterwards.

    The body carries sign-in, reset and confirmation links, so it is stored encrypted
    (``bankapp.platform.crypto``) and dropped once the message is sent; recipient and subject stay
    readable for the admins' mail page.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The worker's question: which pending messages are due, oldest first.
        sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body_encrypted: Mapped[Optional[str]] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(8), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_error: Mapped[Optional[str]] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class AlertSettings(db.Model):
    """A customer's alert choices (``bankapp.notifications.alerts``); no row means the defaults."""

    __tablename__ = "alert_settings"
    __table_args__ = (
        sa.CheckConstraint("large_transfer_threshold IS NULL OR large_transfer_threshold > 0",
                           name="threshold_positive"),
        sa.CheckConstraint("low_balance_floor IS NULL OR low_balance_floor > 0",
                           name="floor_positive"),
        sa.CheckConstraint("NOT large_transfer_on OR large_transfer_threshold IS NOT NULL",
                           name="large_transfer_has_threshold"),
        sa.CheckConstraint("NOT low_balance_on OR low_balance_floor IS NOT NULL",
                           name="low_balance_has_floor"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    large_transfer_on: Mapped[bool] = mapped_column(default=False)
    large_transfer_threshold: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(12, 2))
    low_balance_on: Mapped[bool] = mapped_column(default=False)
    low_balance_floor: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(12, 2))
    scheduled_failed_on: Mapped[bool] = mapped_column(default=True)
    hold_placed_on: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

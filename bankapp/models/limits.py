"""What may leave an account: holds, customers' own transfer limits and the day's outgoing total."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc
from bankapp.models.identity import User
from bankapp.models.ledger import Account


class Hold(db.Model):
    """Money on an account a teller has set aside: it cannot be withdrawn or transferred.

    Active while not released and before ``expires_at``: an expired hold stops counting by
    itself, since every check compares the expiry with the moment of the check.
    """

    __tablename__ = "holds"
    __table_args__ = (
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name="amount_positive"),
        sa.CheckConstraint("(released_at IS NULL) = (released_by_id IS NULL)",
                           name="released_by_iff_released"),
        sa.Index("ix_holds_account_id_expires_at", "account_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    reason: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    placed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    released_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    released_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    placed_by: Mapped[User] = relationship(foreign_keys=[placed_by_id])
    released_by: Mapped[Optional[User]] = relationship(foreign_keys=[released_by_id])

    @classmethod
    def active_total(cls, account_id, now):
        """SQL: the sum of ``account_id``'s holds active at ``now`` (0 when none)."""
        return (sa.select(sa.func.coalesce(sa.func.sum(cls.amount), 0))
                .where(cls.account_id == account_id, cls.released_at.is_(None),
                       cls.expires_at > now)
                .scalar_subquery())

    def is_active_at(self, moment: datetime) -> bool:
        return self.released_at is None and self.expires_at > moment


class TransferLimit(db.Model):
    """A customer's own daily outgoing limit (never above ``DAILY_TRANSFER_LIMIT``).

    A raise waits in ``pending_limit`` until ``pending_from`` (24 hours later) unless it was
    approved with step-up; a lowering replaces ``daily_limit`` at once.
    """

    __tablename__ = "transfer_limits"
    __table_args__ = (
        sa.CheckConstraint("daily_limit > 0 AND daily_limit <> 'NaN'", name="daily_limit_positive"),
        sa.CheckConstraint("pending_limit IS NULL OR (pending_limit > 0 AND pending_limit <> 'NaN')",
                           name="pending_limit_positive"),
        sa.CheckConstraint("(pending_limit IS NULL) = (pending_from IS NULL)",
                           name="pending_complete"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    daily_limit: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    pending_limit: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(12, 2))
    pending_from: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    def limit_at(self, moment: datetime) -> Decimal:
        if self.pending_from is not None and self.pending_from <= moment:
            return self.pending_limit
        return self.daily_limit


class DailyOutgoing(db.Model):
    """What a customer has sent out on one day (``BANK_TIMEZONE``): withdrawals and transfers
    to other people. Raised in the posting's transaction by one conditional upsert that also
    checks the limit, so concurrent payments cannot together pass it."""

    __tablename__ = "daily_outgoing"
    __table_args__ = (
        sa.CheckConstraint("amount >= 0 AND amount <> 'NaN'", name="amount_not_negative"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2), default=Decimal("0.00"))

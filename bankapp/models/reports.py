"""Statements handed out (for verification) and the indexes the bank-wide reports read."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc
from bankapp.models.identity import User
from bankapp.models.ledger import Account, Transaction


class StatementIssue(db.Model):
    """A statement handed out, so ``/reports/verify/`` can recompute it from the ledger."""

    __tablename__ = "statement_issues"
    __table_args__ = (
        sa.CheckConstraint("period_end >= period_start", name="period_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The normalised verification code (20 base32 characters, no separators).
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)
    # Also the statement's cut-off when its period had not ended yet: entries after this
    # moment are not part of what was issued.
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    issued_to: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))

    account: Mapped[Account] = relationship()


# The bank-wide reports read a window of the ledger by time: a covering index lets PostgreSQL
# answer them from the index alone, so their cost follows the window, not the table.
sa.Index("ix_transactions_timestamp", Transaction.timestamp,
         postgresql_include=["transaction_type", "side", "amount"])


sa.Index("ix_users_created_at", User.created_at)

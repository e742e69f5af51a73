"""Interest: the rates an admin sets and the postings each month's run writes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc
from bankapp.models.identity import User
from bankapp.models.ledger import Account, JournalEntry


class InterestRate(db.Model):
    """An annual interest rate for one account type, from a date on (a history: never edited).

    The rate of a day is the row with the latest ``effective_from`` on or before it.
    """

    __tablename__ = "interest_rates"
    __table_args__ = (
        sa.CheckConstraint("account_type IN ('SAVINGS', 'CHECKING')", name="account_type_known"),
        # Percent a year: 2.5000 is 2.5 %.
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate <= 100 AND annual_rate <> 'NaN'",
                           name="annual_rate_in_range"),
        sa.UniqueConstraint("account_type", "effective_from",
                            name="uq_interest_rates_type_effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_type: Mapped[str] = mapped_column(sa.String(16))
    annual_rate: Mapped[Decimal] = mapped_column(sa.Numeric(7, 4))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    created_by: Mapped[Optional[User]] = relationship()


class InterestPosting(db.Model):
    """One account's interest for one month: what accrued, what was paid, what is carried.

    Amounts of accrual are kept exactly as *numerators*: the sum over the month's days of the
    end-of-day balance times the annual rate in percent (``interest = numerator / 36500``,
    actual/365). ``posted`` is whole cents; ``carry`` is the numerator not paid yet (the
    sub-cent remainder, or a whole month's interest when the account could not be credited),
    added to the next month's. Written in the same transaction as the INTEREST entry; the
    unique (account, month) makes ``post-interest`` pay each month once.
    """

    __tablename__ = "interest_postings"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "month", name="uq_interest_postings_account_month"),
        sa.CheckConstraint("posted >= 0 AND posted <> 'NaN'", name="posted_not_negative"),
        sa.CheckConstraint("accrued >= 0 AND accrued <> 'NaN'", name="accrued_not_negative"),
        sa.CheckConstraint("(posted > 0) = (entry_id IS NOT NULL)", name="entry_iff_posted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    month: Mapped[date] = mapped_column(sa.Date)  # its first day
    accrued: Mapped[Decimal] = mapped_column(sa.Numeric(24, 6))
    posted: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    carry: Mapped[Decimal] = mapped_column(sa.Numeric(24, 6))
    entry_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    account: Mapped[Account] = relationship()
    entry: Mapped[Optional[JournalEntry]] = relationship()

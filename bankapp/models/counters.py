"""Rate-limit counters kept in the database: the store every worker shares when Redis is down
(``bankapp.platform.ratelimit``)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bankapp.extensions import db


class RateLimitCounter(db.Model):
    """One fixed-window counter of the rate limiter: hits under ``key`` until ``expires_at``.

    ``expires_at`` is in seconds since the epoch (what the ``limits`` library hands its
    stores); an expired row counts as zero and is replaced by the next hit.
    """

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    # BigInteger: read-your-writes keeps a WAL position here (bankapp.platform.replica).
    count: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    expires_at: Mapped[float] = mapped_column(sa.Float, nullable=False, index=True)

"""Runs of the periodic jobs (``bankapp.schedule``): when each started and ended, and how."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc


class JobOutcome:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ALL = (RUNNING, SUCCEEDED, FAILED)


class JobRun(db.Model):
    """One run of a periodic job, written when it starts and finished when it ends.

    A run left ``running`` long after it started is one whose process died; its job's last
    success then ages until the admins' Jobs page and the alert on ``/metrics`` say so.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        sa.CheckConstraint("outcome IN ('running', 'succeeded', 'failed')",
                           name="outcome_known"),
        # The Jobs page's and /metrics' question: each job's latest run and last success.
        sa.Index("ix_job_runs_job_outcome_started_at", "job", "outcome", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(40))
    trigger: Mapped[str] = mapped_column(sa.String(16))  # cli, cron, worker
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(sa.String(10), default=JobOutcome.RUNNING)
    counts: Mapped[Optional[dict]] = mapped_column(sa.JSON)
    error: Mapped[Optional[str]] = mapped_column(sa.String(500))

"""Job runs: each periodic job's runs (start, end, outcome, counts)

Revision ID: 0017_job_runs
Revises: 0016_rate_limit_counters
Create Date: 2026-12-06 08:00:00

``bankapp.schedule`` records every run of a periodic job here, so the admins' Jobs page and
``/metrics`` can tell when each last succeeded and which one missed its window.
"""
from alembic import op
import sqlalchemy as sa

revision = "0017_job_runs"
down_revision = "0016_rate_limit_counters"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.CheckConstraint("outcome IN ('running', 'succeeded', 'failed')",
                           name=op.f("ck_job_runs_outcome_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_job_outcome_started_at", "job_runs",
                    ["job", "outcome", "started_at"])


def downgrade():
    op.drop_index("ix_job_runs_job_outcome_started_at", table_name="job_runs")
    op.drop_table("job_runs")

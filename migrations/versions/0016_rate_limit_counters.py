"""rate_limit_counters: the rate limiter's store while Redis is down

Revision ID: 0016_rate_limit_counters
Revises: 0015_fast_posting_spending
Create Date: 2026-12-06 08:00:00

With Redis unreachable, the limiter counted in each worker's memory (Flask-Limiter's only
fallback) or failed every limited request with a 500. It now counts in this table, which
every worker and host shares (bankapp/platform/ratelimit.py).
"""
import sqlalchemy as sa
from alembic import op


revision = "0016_rate_limit_counters"
down_revision = "0015_fast_posting_spending"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
    )
    op.create_index(op.f("ix_rate_limit_counters_expires_at"), "rate_limit_counters",
                    ["expires_at"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_rate_limit_counters_expires_at"), table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")

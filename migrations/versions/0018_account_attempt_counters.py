"""Per-account attempt counters on users: password attempts, second-factor attempts and lock

Revision ID: 0018_account_attempt_counters
Revises: 0017_job_runs
Create Date: 2026-12-06 08:00:00

Wrong passwords and wrong second-factor codes were counted in the rate-limit store: two
counters (web and API) for passwords, and a second-factor count that a burst of concurrent
requests overran. Both now live in the user's row, taken and given back with one conditional
UPDATE each (bankapp/identity/throttle.py), so they hold across workers without Redis.
"""
import sqlalchemy as sa
from alembic import op


revision = "0018_account_attempt_counters"
down_revision = "0017_job_runs"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_attempts", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("login_window_start", WHEN, nullable=True))
        batch_op.add_column(sa.Column("mfa_attempts", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("mfa_window_start", WHEN, nullable=True))
        batch_op.add_column(sa.Column("mfa_locked_until", WHEN, nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in ("mfa_locked_until", "mfa_window_start", "mfa_attempts",
                     "login_window_start", "login_attempts"):
            batch_op.drop_column(name)

"""API: an idempotency record is written with its posting, complete (no in-progress claims)

Revision ID: 0005_api_answer
Revises: 0004_reports
Create Date: 2026-11-25 17:00:00

Records are now inserted, answer included, in the posting's own transaction, so a record is
never "in progress". Unanswered claims left by the earlier scheme are deleted: a retry with
their key finds the posted journal entry, if there is one, and replays it from the ledger.
"""
from alembic import op
import sqlalchemy as sa


revision = "0005_api_answer"
down_revision = "0004_reports"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM api_idempotency_keys WHERE response_status IS NULL")
    op.execute("UPDATE api_idempotency_keys SET completed_at = created_at "
               "WHERE completed_at IS NULL")
    with op.batch_alter_table("api_idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column("response_status", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("response_body", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("completed_at", existing_type=sa.DateTime(timezone=True),
                              nullable=False)
        batch_op.drop_column("claimed_at")


def downgrade():
    with op.batch_alter_table("api_idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True),
                                      nullable=False, server_default=sa.func.now()))
        batch_op.alter_column("completed_at", existing_type=sa.DateTime(timezone=True),
                              nullable=True)
        batch_op.alter_column("response_body", existing_type=sa.JSON(), nullable=True)
        batch_op.alter_column("response_status", existing_type=sa.Integer(), nullable=True)

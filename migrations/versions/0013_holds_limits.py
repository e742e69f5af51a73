"""holds on accounts, customers' own daily limits, and each customer's outgoing total per day

Revision ID: 0013_holds_limits
Revises: 0012_interest
Create Date: 2026-12-01 07:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0013_holds_limits"
down_revision = "0012_interest"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by_id", sa.Integer(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by_id", sa.Integer(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name=op.f("ck_holds_amount_positive")),
        sa.CheckConstraint("(released_at IS NULL) = (released_by_id IS NULL)",
                           name=op.f("ck_holds_released_by_iff_released")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_holds_account_id_accounts")),
        sa.ForeignKeyConstraint(["placed_by_id"], ["users.id"],
                                name=op.f("fk_holds_placed_by_id_users")),
        sa.ForeignKeyConstraint(["released_by_id"], ["users.id"],
                                name=op.f("fk_holds_released_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index("ix_holds_account_id_expires_at", ["account_id", "expires_at"],
                              unique=False)
    op.create_table(
        "transfer_limits",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("daily_limit", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("pending_limit", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("pending_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("daily_limit > 0 AND daily_limit <> 'NaN'",
                           name=op.f("ck_transfer_limits_daily_limit_positive")),
        sa.CheckConstraint("pending_limit IS NULL OR (pending_limit > 0 AND pending_limit <> 'NaN')",
                           name=op.f("ck_transfer_limits_pending_limit_positive")),
        sa.CheckConstraint("(pending_limit IS NULL) = (pending_from IS NULL)",
                           name=op.f("ck_transfer_limits_pending_complete")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_transfer_limits_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_transfer_limits")),
    )
    op.create_table(
        "daily_outgoing",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.CheckConstraint("amount >= 0 AND amount <> 'NaN'",
                           name=op.f("ck_daily_outgoing_amount_not_negative")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_daily_outgoing_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_daily_outgoing")),
    )


def downgrade():
    op.drop_table("daily_outgoing")
    op.drop_table("transfer_limits")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_account_id_expires_at")
    op.drop_table("holds")

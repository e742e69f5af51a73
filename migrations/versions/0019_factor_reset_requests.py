"""staff reset of a customer's second factors: requests that wait for a second person

Revision ID: 0019_factor_reset_requests
Revises: 0018_account_attempt_counters
Create Date: 2026-12-06 08:00:00

A teller or admin can now reset a customer's second factors from the customer page (until
now only ``flask reset-2fa``). Above the maker-checker threshold the reset waits here for an
admin other than the requester.
"""
from alembic import op
import sqlalchemy as sa


revision = "0019_factor_reset_requests"
down_revision = "0018_account_attempt_counters"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "factor_reset_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'done', 'rejected')",
                           name=op.f("ck_factor_reset_requests_status_known")),
        sa.CheckConstraint("requested_by_id <> decided_by_id",
                           name=op.f("ck_factor_reset_requests_checker_not_maker")),
        sa.CheckConstraint("(status = 'pending') = (decided_by_id IS NULL)",
                           name=op.f("ck_factor_reset_requests_decided_iff_not_pending")),
        sa.ForeignKeyConstraint(["customer_id"], ["users.id"],
                                name=op.f("fk_factor_reset_requests_customer_id_users")),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"],
                                name=op.f("fk_factor_reset_requests_requested_by_id_users")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"],
                                name=op.f("fk_factor_reset_requests_decided_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_factor_reset_requests")),
    )
    with op.batch_alter_table("factor_reset_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_factor_reset_requests_customer_id"),
                              ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_factor_reset_requests_status"), ["status"],
                              unique=False)


def downgrade():
    with op.batch_alter_table("factor_reset_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_factor_reset_requests_status"))
        batch_op.drop_index(batch_op.f("ix_factor_reset_requests_customer_id"))
    op.drop_table("factor_reset_requests")

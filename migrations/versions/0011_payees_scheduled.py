"""payees, scheduled and standing-order transfers with their occurrences, alert settings

Revision ID: 0011_payees_scheduled
Revises: 0010_mail_outbox
Create Date: 2026-12-01 06:15:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0011_payees_scheduled"
down_revision = "0010_mail_outbox"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("alert_settings",
    sa.Column("user_id", sa.Integer(), nullable=False),
    sa.Column("large_transfer_on", sa.Boolean(), nullable=False),
    sa.Column("large_transfer_threshold", sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column("low_balance_on", sa.Boolean(), nullable=False),
    sa.Column("low_balance_floor", sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column("scheduled_failed_on", sa.Boolean(), nullable=False),
    sa.Column("hold_placed_on", sa.Boolean(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("NOT large_transfer_on OR large_transfer_threshold IS NOT NULL", name=op.f("ck_alert_settings_large_transfer_has_threshold")),
    sa.CheckConstraint("NOT low_balance_on OR low_balance_floor IS NOT NULL", name=op.f("ck_alert_settings_low_balance_has_floor")),
    sa.CheckConstraint("large_transfer_threshold IS NULL OR large_transfer_threshold > 0", name=op.f("ck_alert_settings_threshold_positive")),
    sa.CheckConstraint("low_balance_floor IS NULL OR low_balance_floor > 0", name=op.f("ck_alert_settings_floor_positive")),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_alert_settings_user_id_users")),
    sa.PrimaryKeyConstraint("user_id", name=op.f("pk_alert_settings"))
    )
    op.create_table("payees",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("user_id", sa.Integer(), nullable=False),
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("nickname", sa.String(length=40), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_payees_account_id_accounts")),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_payees_user_id_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_payees")),
    sa.UniqueConstraint("user_id", "account_id", name="uq_payees_user_account")
    )
    with op.batch_alter_table("payees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payees_user_id"), ["user_id"], unique=False)

    op.create_table("scheduled_orders",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("user_id", sa.Integer(), nullable=False),
    sa.Column("source_account_id", sa.Integer(), nullable=False),
    sa.Column("destination_account_id", sa.Integer(), nullable=False),
    sa.Column("amount", sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column("description", sa.String(length=140), nullable=False),
    sa.Column("frequency", sa.String(length=8), nullable=False),
    sa.Column("day_of_month", sa.SmallInteger(), nullable=True),
    sa.Column("start_on", sa.Date(), nullable=False),
    sa.Column("end_on", sa.Date(), nullable=True),
    sa.Column("max_occurrences", sa.Integer(), nullable=True),
    sa.Column("occurrence_count", sa.Integer(), nullable=False),
    sa.Column("next_due_on", sa.Date(), nullable=True),
    sa.Column("status", sa.String(length=10), nullable=False),
    sa.Column("status_reason", sa.String(length=255), nullable=True),
    sa.Column("idempotency_key", sa.String(length=64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(frequency = 'monthly') = (day_of_month IS NOT NULL)", name=op.f("ck_scheduled_orders_day_iff_monthly")),
    sa.CheckConstraint("(status IN ('active', 'paused')) = (next_due_on IS NOT NULL)", name=op.f("ck_scheduled_orders_next_due_iff_open")),
    sa.CheckConstraint("amount > 0 AND amount <> 'NaN'", name=op.f("ck_scheduled_orders_amount_positive")),
    sa.CheckConstraint("frequency IN ('once', 'weekly', 'monthly')", name=op.f("ck_scheduled_orders_frequency_known")),
    sa.CheckConstraint("status IN ('active', 'paused', 'cancelled', 'completed')", name=op.f("ck_scheduled_orders_status_known")),
    sa.CheckConstraint("day_of_month BETWEEN 1 AND 31", name=op.f("ck_scheduled_orders_day_of_month_valid")),
    sa.CheckConstraint("end_on IS NULL OR end_on >= start_on", name=op.f("ck_scheduled_orders_end_after_start")),
    sa.CheckConstraint("max_occurrences IS NULL OR max_occurrences > 0", name=op.f("ck_scheduled_orders_max_occurrences_positive")),
    sa.CheckConstraint("source_account_id <> destination_account_id", name=op.f("ck_scheduled_orders_not_to_itself")),
    sa.ForeignKeyConstraint(["destination_account_id"], ["accounts.id"], name=op.f("fk_scheduled_orders_destination_account_id_accounts")),
    sa.ForeignKeyConstraint(["source_account_id"], ["accounts.id"], name=op.f("fk_scheduled_orders_source_account_id_accounts")),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_scheduled_orders_user_id_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_orders")),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_scheduled_orders_user_key")
    )
    with op.batch_alter_table("scheduled_orders", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_orders_status_next_due_on", ["status", "next_due_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_scheduled_orders_user_id"), ["user_id"], unique=False)

    op.create_table("scheduled_occurrences",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("order_id", sa.Integer(), nullable=False),
    sa.Column("due_on", sa.Date(), nullable=False),
    sa.Column("status", sa.String(length=8), nullable=False),
    sa.Column("entry_id", sa.Integer(), nullable=True),
    sa.Column("reason", sa.String(length=255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'posted') = (entry_id IS NOT NULL)", name=op.f("ck_scheduled_occurrences_posted_has_entry")),
    sa.CheckConstraint("status IN ('posted', 'failed')", name=op.f("ck_scheduled_occurrences_status_known")),
    sa.ForeignKeyConstraint(["entry_id"], ["journal_entries.id"], name=op.f("fk_scheduled_occurrences_entry_id_journal_entries")),
    sa.ForeignKeyConstraint(["order_id"], ["scheduled_orders.id"], name=op.f("fk_scheduled_occurrences_order_id_scheduled_orders")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_occurrences")),
    sa.UniqueConstraint("order_id", "due_on", name="uq_scheduled_occurrences_order_due")
    )


def downgrade():
    op.drop_table("scheduled_occurrences")
    with op.batch_alter_table("scheduled_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_orders_user_id"))
        batch_op.drop_index("ix_scheduled_orders_status_next_due_on")

    op.drop_table("scheduled_orders")
    with op.batch_alter_table("payees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payees_user_id"))

    op.drop_table("payees")
    op.drop_table("alert_settings")

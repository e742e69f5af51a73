"""interest on savings: rate history, monthly postings with their carry, the EXPENSE account
type (GL-INTEREST), and a unique idempotency key for the bank's own postings

Revision ID: 0012_interest
Revises: 0011_payees_scheduled
Create Date: 2026-12-01 06:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0012_interest"
down_revision = "0011_payees_scheduled"
branch_labels = None
depends_on = None

OLD_INTERNAL = "('VAULT', 'TILL', 'OVER_SHORT')"
NEW_INTERNAL = "('VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE')"
SYSTEM_KEY = "actor_id IS NULL AND idempotency_key IS NOT NULL"


def _account_checks(internal: str) -> None:
    types = internal.replace("(", "('SAVINGS', 'CHECKING', ", 1)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for name in ("account_type_known", "customer_balance_non_negative",
                     "owner_iff_customer"):
            batch_op.drop_constraint(op.f(f"ck_accounts_{name}"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_account_type_known"),
                                         f"account_type IN {types}")
        batch_op.create_check_constraint(op.f("ck_accounts_customer_balance_non_negative"),
                                         f"account_type IN {internal} OR balance >= 0")
        batch_op.create_check_constraint(op.f("ck_accounts_owner_iff_customer"),
                                         f"(owner_id IS NULL) = (account_type IN {internal})")


def upgrade():
    _account_checks(NEW_INTERNAL)
    op.create_table(
        "interest_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_type", sa.String(length=16), nullable=False),
        sa.Column("annual_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("account_type IN ('SAVINGS', 'CHECKING')",
                           name=op.f("ck_interest_rates_account_type_known")),
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate <= 100 AND annual_rate <> 'NaN'",
                           name=op.f("ck_interest_rates_annual_rate_in_range")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_interest_rates_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interest_rates")),
        sa.UniqueConstraint("account_type", "effective_from",
                            name="uq_interest_rates_type_effective_from"),
    )
    op.create_table(
        "interest_postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("accrued", sa.Numeric(precision=24, scale=6), nullable=False),
        sa.Column("posted", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("carry", sa.Numeric(precision=24, scale=6), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("posted >= 0 AND posted <> 'NaN'",
                           name=op.f("ck_interest_postings_posted_not_negative")),
        sa.CheckConstraint("accrued >= 0 AND accrued <> 'NaN'",
                           name=op.f("ck_interest_postings_accrued_not_negative")),
        sa.CheckConstraint("(posted > 0) = (entry_id IS NOT NULL)",
                           name=op.f("ck_interest_postings_entry_iff_posted")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_interest_postings_account_id_accounts")),
        sa.ForeignKeyConstraint(["entry_id"], ["journal_entries.id"],
                                name=op.f("fk_interest_postings_entry_id_journal_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interest_postings")),
        sa.UniqueConstraint("account_id", "month", name="uq_interest_postings_account_month"),
    )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.create_index("uq_journal_entries_system_key", ["idempotency_key"], unique=True,
                              postgresql_where=sa.text(SYSTEM_KEY),
                              sqlite_where=sa.text(SYSTEM_KEY))


def downgrade():
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_journal_entries_system_key")
    op.drop_table("interest_postings")
    op.drop_table("interest_rates")
    _account_checks(OLD_INTERNAL)

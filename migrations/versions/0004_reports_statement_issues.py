"""reports: issued statements (verification codes), ledger totals per 15 minutes, indexes

Revision ID: 0004_reports
Revises: 0003_api
Create Date: 2026-11-25 14:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004_reports"
down_revision = "0003_api"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "statement_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_to", sa.Integer(), nullable=True),
        sa.CheckConstraint("period_end >= period_start",
                           name=op.f("ck_statement_issues_period_ordered")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_statement_issues_account_id_accounts")),
        sa.ForeignKeyConstraint(["issued_to"], ["users.id"],
                                name=op.f("fk_statement_issues_issued_to_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_issues")),
        sa.UniqueConstraint("code", name=op.f("uq_statement_issues_code")),
    )
    with op.batch_alter_table("statement_issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_statement_issues_account_id"), ["account_id"],
                              unique=False)
    # Bank-wide reports scan one period of the ledger: on PostgreSQL the index also carries
    # the columns they sum, so the scan never touches the table (index-only scan).
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("ix_transactions_timestamp", ["timestamp"], unique=False,
                              postgresql_include=["transaction_type", "side", "amount"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_created_at", ["created_at"], unique=False)
    op.create_table(
        "ledger_totals",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("movements", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('deposit', 'withdrawal', 'transfer')",
                           name=op.f("ck_ledger_totals_kind_known")),
        sa.CheckConstraint("amount >= 0 AND amount <> 'NaN'",
                           name=op.f("ck_ledger_totals_amount_not_negative")),
        sa.CheckConstraint("movements >= 0", name=op.f("ck_ledger_totals_movements_not_negative")),
        sa.PrimaryKeyConstraint("bucket", "kind", "shard", name=op.f("pk_ledger_totals")),
    )
    # Movements posted before this revision: fill the buckets from the legs once.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bucket = "date_bin('15 minutes', timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    else:
        # Text arithmetic, not SQLite's date functions: those round to the millisecond, which
        # would move 10:14:59.9999 into the 10:15 bucket.
        bucket = ("substr(timestamp, 1, 14) || printf('%02d', "
                  "(CAST(substr(timestamp, 15, 2) AS INTEGER) / 15) * 15) || '\\:00.000000'")
    op.execute(f"""
        INSERT INTO ledger_totals (bucket, kind, shard, amount, movements)
        SELECT {bucket},
               CASE transaction_type WHEN 'DEPOSIT' THEN 'deposit'
                    WHEN 'WITHDRAWAL' THEN 'withdrawal' ELSE 'transfer' END,
               account_id % 16, sum(amount), count(*)
        FROM transactions
        WHERE (transaction_type = 'DEPOSIT' AND side = 'credit')
           OR (transaction_type = 'WITHDRAWAL' AND side = 'debit')
           OR (transaction_type = 'TRANSFER_OUT' AND side = 'debit')
        GROUP BY 1, 2, 3
    """)


def downgrade():
    op.drop_table("ledger_totals")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_created_at")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_timestamp")
    with op.batch_alter_table("statement_issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statement_issues_account_id"))
    op.drop_table("statement_issues")

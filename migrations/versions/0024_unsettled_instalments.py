"""an index of the loan instalments not yet settled, by due date (the loan portfolio's arrears)

The loan portfolio sums what is due and unpaid on the day: the instalments due by then that
are not settled. The due-date index alone reads every instalment ever due (the settled ones
are nearly all of them, and more every month); this partial one holds only those with
something left to pay. Only adds: an expand step.

Revision ID: 0024_unsettled_instalments
Revises: 0023_bucket_largest_movement
Create Date: 2026-12-06 14:30:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0024_unsettled_instalments'
down_revision = '0023_bucket_largest_movement'
branch_labels = None
depends_on = None

NAME = "ix_loan_instalments_unsettled_due_on"
# Exactly as bankapp.lending.portfolio writes it, so that the planner matches the index.
UNSETTLED = ("(principal_paid < principal_due OR interest_paid < interest_due "
             "OR fee_paid < fee_due)")


def upgrade():
    from concurrent_indexes import drop_if_invalid

    if op.get_bind().dialect.name != "postgresql":
        op.create_index(NAME, "loan_instalments", ["due_on"], sqlite_where=sa.text(UNSETTLED))
        return
    # CONCURRENTLY: collections and repayments (they update instalments) go on meanwhile.
    with op.get_context().autocommit_block():
        drop_if_invalid(NAME)
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON loan_instalments "
                   f"(due_on) WHERE {UNSETTLED}")


def downgrade():
    op.drop_index(NAME, table_name="loan_instalments")

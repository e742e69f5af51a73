"""the loan portfolio's reads from indexes alone: instalments by due date with their amounts,
the unsettled ones likewise, and the repayments by day

The portfolio (``bankapp/lending/portfolio.py``) reads, on every opening, the instalments due
within a month either side of the day, those of the month, the unsettled ones due by the day
and the month's repayments. The due-date indexes only found those rows: each was then read
from the table, where a loan's instalments lie together, so a day's are spread over nearly
every page (3,396 pages of instalments a statement at 10,000 loans, read again whenever
other pages have pushed them out of the cache). These hold the amounts the statement reads
(INCLUDE), so it reads the indexes alone (216 pages); they take the place of the two
due-date indexes (the same key: every other query by due date uses them as before), so an
instalment paid still updates as many indexes. An index-only read still visits the table
for a page changed since VACUUM last marked it all-visible (an instalment paid there).
There was no index of the repayments by day: this month's "collected" read every repayment
ever made. Only adds and replaces indexes: an expand step.

Revision ID: 0027_portfolio_covering_indexes
Revises: 0026_closing_balances
Create Date: 2026-12-06 20:40:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0027_portfolio_covering_indexes'
down_revision = '0026_closing_balances'
branch_labels = None
depends_on = None

# Exactly as bankapp.models.lending writes it, so that the planner matches the index.
UNSETTLED = ("(principal_paid < principal_due OR interest_paid < interest_due "
             "OR fee_paid < fee_due)")
# name: (table, key, included columns, predicate); as bankapp.models.lending declares them.
INDEXES = {
    "ix_loan_instalments_due_on_amounts": (
        "loan_instalments", "due_on",
        ("loan_id", "number", "principal_due", "interest_due", "interest_paid"), None),
    "ix_loan_instalments_unsettled_amounts": (
        "loan_instalments", "due_on",
        ("loan_id", "principal_due", "principal_paid", "interest_due", "interest_paid"),
        UNSETTLED),
    "ix_loan_repayments_paid_on": ("loan_repayments", "paid_on", ("amount",), None),
}
# The indexes the first two replace (migrations 0020 and 0024): name → predicate.
REPLACED = {"ix_loan_instalments_due_on": None,
            "ix_loan_instalments_unsettled_due_on": UNSETTLED}


def upgrade():
    from concurrent_indexes import drop_if_invalid

    if op.get_bind().dialect.name != "postgresql":
        # SQLite has no INCLUDE: the key alone (a test database is small).
        for name, (table, key, _, where) in INDEXES.items():
            op.create_index(name, table, [key],
                            sqlite_where=sa.text(where) if where else None)
        for name in REPLACED:
            op.drop_index(name, table_name="loan_instalments")
        return
    # CONCURRENTLY: collections and repayments (they update instalments and add repayments)
    # go on meanwhile; the old indexes go only once the new ones are built and valid.
    with op.get_context().autocommit_block():
        for name, (table, key, included, where) in INDEXES.items():
            drop_if_invalid(name)
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({key}) "
                       f"INCLUDE ({', '.join(included)})"
                       + (f" WHERE {where}" if where else ""))
        for name in REPLACED:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def downgrade():
    for name, where in REPLACED.items():
        op.create_index(name, "loan_instalments", ["due_on"],
                        postgresql_where=sa.text(where) if where else None,
                        sqlite_where=sa.text(where) if where else None)
    for name, (table, *_) in INDEXES.items():
        op.drop_index(name, table_name=table)

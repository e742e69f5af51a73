"""an index of the postings' audit lines by actor and time (the audit trail filtered by actor)

The admin's audit trail filtered by actor looked for a customer's postings (their journal
entries with an ``audit_action``, migration 0022) by walking every entry newest first until
enough matched: 382 ms on a 100,000-customer bank for a month, seconds for an actor with no
recent posting, since no index orders an actor's entries by time (0022 dropped the actor
index to lighten posting; ``uq_journal_entries_actor_key`` orders them by idempotency key).
This one does, for the entries that are audit lines only: a customer's deposit, withdrawal
or transfer pays one more index entry (measured in bench/README.md, "Audit by actor"); the
bank's own postings (interest, standing orders, loans) pay nothing. Only adds: an expand step.

Revision ID: 0025_audit_lines_by_actor
Revises: 0024_unsettled_instalments
Create Date: 2026-12-06 17:45:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0025_audit_lines_by_actor'
down_revision = '0024_unsettled_instalments'
branch_labels = None
depends_on = None

NAME = "ix_journal_entries_audit_actor_created_at"
# As bankapp.models.ledger declares it and bankapp.audit.trail queries it.
AUDIT_LINE = "audit_action IS NOT NULL"


def upgrade():
    from concurrent_indexes import drop_if_invalid

    if op.get_bind().dialect.name != "postgresql":
        op.create_index(NAME, "journal_entries", ["actor_id", "created_at", sa.text("id DESC")],
                        sqlite_where=sa.text(AUDIT_LINE))
        return
    # CONCURRENTLY: postings (they insert entries) go on while a large bank's index is built.
    with op.get_context().autocommit_block():
        drop_if_invalid(NAME)
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON journal_entries "
                   f"(actor_id, created_at, id DESC) WHERE {AUDIT_LINE}")


def downgrade():
    op.drop_index(NAME, table_name="journal_entries")

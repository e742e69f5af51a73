"""A lighter posting: a customer's deposit, withdrawal or transfer is its own audit line; two
index entries fewer per posting

Revision ID: 0022_lighter_posting
Revises: 0021_search_indexes
Create Date: 2026-12-06 11:40:00

Issue 28. Every posting wrote its journal entry *and* an ``audit_events`` row saying again
who, when, through which channel, which account and how much: one more heap row and five more
index entries per posting. Now:

* ``journal_entries.audit_action`` and ``journal_entries.ip_address`` (nullable): a
  customer's deposit, withdrawal or transfer records its action and the client's address on
  the entry and writes no ``audit_events`` row; the audit trail reads it from the entry and
  its legs (``bankapp.audit.trail``). Entries written before (and by the previous release,
  while it still runs) keep ``audit_action`` NULL and their own row, so none is shown twice;
* ``ix_journal_entries_actor_id`` is dropped: ``uq_journal_entries_actor_key`` (actor_id,
  idempotency_key) starts with the same column and serves every look-up by actor;
* ``uq_journal_entries_reverses_id`` becomes partial (``WHERE reverses_id IS NOT NULL``): the
  same rule, without an index entry for each of the entries that reverse nothing;
* PostgreSQL: ``ledger_post()`` keeps its signature (the previous release calls it too) and
  writes the action and address on the entry for those three actions (the same list as
  ``bankapp.audit.trail.ENTRY_ACTIONS``), the row for any other.

Expand only: two nullable columns, an index dropped, a unique index rebuilt with the same
rule for every row that can break it. The previous release's code neither reads the new
columns nor needs the dropped index.
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


revision = "0022_lighter_posting"
down_revision = "0021_search_indexes"
branch_labels = None
depends_on = None


def _function_0015() -> str:
    path = Path(__file__).with_name("0015_fast_posting_spending.py")
    spec = importlib.util.spec_from_file_location("_migration_0015", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LEDGER_POST


ENTRY_ACTIONS = "('ledger.deposit', 'ledger.withdrawal', 'ledger.transfer')"

_OLD_ENTRY = """    INSERT INTO journal_entries AS e (reference, entry_type, description, actor_id, channel,
                                      idempotency_key, reverses_id, created_at)
    VALUES (p_reference, p_entry_type, p_description, p_actor_id, p_channel,
            p_idempotency_key, NULL, p_at)"""
_NEW_ENTRY = f"""    INSERT INTO journal_entries AS e (reference, entry_type, description, actor_id, channel,
                                      idempotency_key, reverses_id, created_at,
                                      audit_action, ip_address)
    VALUES (p_reference, p_entry_type, p_description, p_actor_id, p_channel,
            p_idempotency_key, NULL, p_at,
            -- the entry is its own audit line for these (bankapp.audit.trail)
            CASE WHEN p_audit_action IN {ENTRY_ACTIONS} THEN p_audit_action END,
            CASE WHEN p_audit_action IN {ENTRY_ACTIONS} THEN p_audit_ip END)"""
_OLD_AUDIT = "    IF p_audit_action IS NOT NULL THEN\n"
_NEW_AUDIT = f"    IF p_audit_action IS NOT NULL AND p_audit_action NOT IN {ENTRY_ACTIONS} THEN\n"


def ledger_post() -> str:
    """Migration 0015's function with the audit line on the entry (see the docstring)."""
    text = _function_0015()
    for old, new in ((_OLD_ENTRY, _NEW_ENTRY), (_OLD_AUDIT, _NEW_AUDIT),
                     ("CREATE FUNCTION ledger_post(", "CREATE OR REPLACE FUNCTION ledger_post(")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def upgrade():
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_action", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ip_address", sa.String(length=45), nullable=True))
        batch_op.drop_index("ix_journal_entries_actor_id")
        batch_op.drop_index("uq_journal_entries_reverses_id")
        batch_op.create_index("uq_journal_entries_reverses_id", ["reverses_id"], unique=True,
                              postgresql_where=sa.text("reverses_id IS NOT NULL"),
                              sqlite_where=sa.text("reverses_id IS NOT NULL"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_post())


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function_0015().replace("CREATE FUNCTION ledger_post(",
                                            "CREATE OR REPLACE FUNCTION ledger_post(", 1))
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_journal_entries_reverses_id")
        batch_op.create_index("uq_journal_entries_reverses_id", ["reverses_id"], unique=True)
        batch_op.create_index("ix_journal_entries_actor_id", ["actor_id"], unique=False)
        batch_op.drop_column("ip_address")
        batch_op.drop_column("audit_action")

"""trigram indexes for the teller's customer search (name, email, phone, account number)

The search looks for what was typed anywhere in these fields (``LIKE '%…%'``): a B-tree
cannot help, so on a bank of 100,000 customers every search read every user and every
account. pg_trgm's GIN indexes answer such patterns from the index. PostgreSQL only (SQLite
has no trigram index; a test database there is small). Only adds: an expand step.

Revision ID: 0021_search_indexes
Revises: 0020_lending
Create Date: 2026-12-06 11:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0021_search_indexes'
down_revision = '0020_lending'
branch_labels = None
depends_on = None

# Each expression exactly as bankapp.identity.directory.customer_search writes it,
# so that the planner matches the index to the query.
INDEXES = {
    "ix_users_email_trgm": ("users", "lower(email)"),
    "ix_users_phone_number_trgm": ("users", "lower(phone_number)"),
    "ix_users_full_name_trgm": (
        "users", "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"),
    "ix_accounts_account_number_trgm": ("accounts", "lower(account_number)"),
}


def upgrade():
    from concurrent_indexes import drop_if_invalid

    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # CONCURRENTLY: a plain CREATE INDEX would stop every posting (they update accounts)
    # while a large bank's index is built; this one lets the running release go on.
    with op.get_context().autocommit_block():
        for name, (table, expression) in INDEXES.items():
            drop_if_invalid(name)
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} "
                       f"USING gin (({expression}) gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")

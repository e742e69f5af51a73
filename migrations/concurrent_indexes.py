"""What migrations that build an index ``CONCURRENTLY`` share (imported inside ``upgrade()``:
``env.py`` puts this folder on the import path; history and heads load the revisions
without it).
"""
from alembic import op


def drop_if_invalid(name):
    """Drop what an interrupted ``CREATE INDEX CONCURRENTLY`` left behind: an index marked
    invalid, never read by a query but still written by every update, which ``IF NOT
    EXISTS`` would otherwise keep for good when the upgrade is run again."""
    invalid = op.get_bind().exec_driver_sql(
        "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
        "WHERE pg_class.relname = %(name)s AND NOT pg_index.indisvalid",
        {"name": name}).scalar()
    if invalid:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")

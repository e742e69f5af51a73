"""A posting takes its time after its accounts' locks, from the database's clock

Revision ID: 0029_postings_timed_after_locks
Revises: 0028_answers_from_entries
Create Date: 2026-12-07 06:30:00

A posting was timed in Python before it waited for its accounts' locks. A statement issued
during that wait listed the account without the posting, which then committed with a time
before the statement's: the statement's verification, recomputing it as of its issue, found
the posting and answered "mismatch" for a statement the bank had issued correctly
(tests/reports/test_statement_concurrency.py).

``ledger_post()`` gains one parameter, ``p_timezone`` (the bank's time zone). Called with
``p_at`` NULL, it takes ``clock_timestamp()`` once it holds every account's lock, and derives
from it what Python derived from its own time: the report bucket (the 15-minute UTC slot of
``bankapp.ledger.totals.bucket_of``) and the bank day the daily limit counts on. A time given
(history imported by ``flask seed-demo``) is kept, as before.

Expand only: the new function is an overload (33 arguments); the previous release keeps
calling the 32-argument one, unchanged, while it still runs. A later release drops it.
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = "0029_postings_timed_after_locks"
down_revision = "0028_answers_from_entries"
branch_labels = None
depends_on = None


def _function_0028() -> str:
    path = Path(__file__).with_name("0028_answers_from_entries.py")
    spec = importlib.util.spec_from_file_location("_migration_0028", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ledger_post()


_OLD_LAST_PARAMETER = "    p_answer_body jsonb, p_answer_account integer,\n"
_NEW_LAST_PARAMETER = (
    "    p_answer_body jsonb, p_answer_account integer,\n"
    "    -- the bank's time zone: the day of the daily limit when the function takes the time\n"
    "    p_timezone text,\n")

_OLD_AFTER_LOCKS = "    END LOOP;\n\n    -- 2. An answer already stored"
_NEW_AFTER_LOCKS = """    END LOOP;

    -- 1b. p_at NULL: the posting is timed now, holding its accounts' locks, on the database's
    --     clock (migration 0029). A statement of one of them waits for those locks before it
    --     takes its own time (bankapp.ledger.core.settled_time), so it is timed either
    --     after this posting commits or before this time.
    IF p_at IS NULL THEN
        IF p_timezone IS NULL THEN
            RAISE EXCEPTION 'ledger_post: p_timezone is needed to time a posting';
        END IF;
        p_at := clock_timestamp();
        -- bankapp.ledger.totals.bucket_of: the 15-minute UTC slot
        p_bucket := date_bin('15 minutes', p_at, TIMESTAMPTZ '2000-01-01 00:00:00+00');
        p_limit_day := (p_at AT TIME ZONE p_timezone)::date;
    END IF;

    -- 2. An answer already stored"""

# The overload this migration adds, by its input types.
SIGNATURE = (
    "ledger_post(text, text, integer, text, text, text, timestamptz, integer[], text[], "
    "numeric[], numeric[], numeric[], boolean[], integer[], boolean[], integer, numeric, date, "
    "numeric, text[], integer[], timestamptz, text, text, text, json, text, text, text, text, "
    "jsonb, integer, text)")


def ledger_post() -> str:
    """Migration 0028's function with ``p_timezone``, timing a posting after its locks."""
    text = _function_0028()
    for old, new in ((_OLD_LAST_PARAMETER, _NEW_LAST_PARAMETER),
                     (_OLD_AFTER_LOCKS, _NEW_AFTER_LOCKS)):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_post())


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

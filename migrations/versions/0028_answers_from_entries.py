"""The API's answer to a posting is read from its journal entry, not stored beside it

Revision ID: 0028_answers_from_entries
Revises: 0027_portfolio_covering_indexes
Create Date: 2026-12-06 23:40:00

Issue 28 ("remove what a bank does not need twice"). Every API posting also wrote an
``api_idempotency_keys`` row holding its answer: the entry's reference, type, channel,
description, time, accounts, amount and balance after, all of which the entry and its legs
already hold, under the ledger key the entry already carries. One heap row and two index
entries per posting, for a copy. The answer to a retry (and to ``GET /api/v1/transfers/<key>``)
is now built from the entry; refusals, which leave no entry, are still stored.

``ledger_post()`` keeps its signature (the previous release calls it while it still runs)
and still stores the answer when it is given one (``p_answer_body``). This release passes the
API key alone, for the look-up of a stored refusal, and no body: nothing is stored.

Expand only: no schema change. Answers stored before stay until the daily pruning deletes
them; a retry finds them first, as before.
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = "0028_answers_from_entries"
down_revision = "0027_portfolio_covering_indexes"
branch_labels = None
depends_on = None


def _function_0023() -> str:
    path = Path(__file__).with_name("0023_bucket_largest_movement.py")
    spec = importlib.util.spec_from_file_location("_migration_0023", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ledger_post()


_OLD_ANSWER = "    IF p_answer_key IS NOT NULL THEN\n        -- A twin's stored refusal"
_NEW_ANSWER = ("    -- Only the previous release sends a body to store (migration 0028).\n"
               "    IF p_answer_key IS NOT NULL AND p_answer_body IS NOT NULL THEN\n"
               "        -- A twin's stored refusal")


def ledger_post() -> str:
    """Migration 0023's function, storing an answer only when it is given one."""
    text = _function_0023()
    assert text.count(_OLD_ANSWER) == 1, _OLD_ANSWER
    return text.replace(_OLD_ANSWER, _NEW_ANSWER)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_post())


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function_0023())

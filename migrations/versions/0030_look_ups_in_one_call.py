"""An account-number look-up in one database call, its budget counted from the audit trail

Revision ID: 0030_look_ups_in_one_call
Revises: 0029_postings_timed_after_locks
Create Date: 2026-12-07 09:40:00

A look-up of a number new to the customer (``bankapp.identity.lookups``) took the customer's
row lock, checked again whether the number was shown to them lately, spent one unit of
``PAYEE_LOOKUP_LIMIT`` in the rate-limit store (Redis), wrote its ``payee.lookup`` audit line
and committed: five round trips and a Redis call, in every API transfer to a new number.

The audit line already records each look-up, so the budget is now counted from those lines,
under the same lock: ``payee_lookup()`` does the lock, the re-check, the count and the line in
one call. Called on its own (autocommit) it is its own transaction; called inside a page's
transaction, the lock is held until the page commits, as before.

Expand only: a new function, nothing the previous release uses is changed.
"""
from alembic import op


revision = "0030_look_ups_in_one_call"
down_revision = "0029_postings_timed_after_locks"
branch_labels = None
depends_on = None

SIGNATURE = ("payee_lookup(integer, text, text, text, boolean, text, text, timestamptz, "
             "timestamptz, integer, timestamptz)")


def payee_lookup() -> str:
    return """
CREATE OR REPLACE FUNCTION payee_lookup(
    p_user_id integer,
    -- the audit line: its action and target type (bankapp.audit's names), the number
    p_action text, p_target_type text, p_number text,
    -- what it tells, the path it came by, the client's address, its time
    p_found boolean, p_via text, p_ip text, p_now timestamptz,
    -- NULL: no re-check (a number that names no account, the payees page)
    p_revealed_since timestamptz,
    -- NULL: no budget (rate limits off)
    p_budget integer, p_budget_since timestamptz
) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
-- 'revealed': shown to this customer lately (nothing spent); 'looked_up': one unit of the
-- budget spent and audited; 'refused': the budget is spent, nothing written.
BEGIN
    -- Look-ups by one customer take turns: the same number sent in several requests at once
    -- is one look-up, and look-ups at once stop at the budget. NO KEY UPDATE: the customer's
    -- postings check their foreign keys with KEY SHARE locks, which this does not block.
    PERFORM 1 FROM users WHERE id = p_user_id FOR NO KEY UPDATE;

    -- Each statement below takes a new snapshot (read committed): a look-up that held the
    -- lock first has committed its line by now, and is seen.
    IF p_revealed_since IS NOT NULL AND EXISTS (
        SELECT 1 FROM audit_events
        WHERE actor_id = p_user_id AND action = p_action AND target_id = p_number
          AND created_at > p_revealed_since AND (details ->> 'found')::boolean IS TRUE
    ) THEN
        RETURN 'revealed';
    END IF;

    IF p_budget IS NOT NULL AND (
        SELECT count(*) FROM (
            SELECT 1 FROM audit_events
            WHERE actor_id = p_user_id AND action = p_action AND created_at > p_budget_since
            LIMIT p_budget) AS spent
    ) >= p_budget THEN
        RETURN 'refused';
    END IF;

    INSERT INTO audit_events (actor_id, action, target_type, target_id, details, ip_address,
                              created_at)
    VALUES (p_user_id, p_action, p_target_type, p_number,
            json_build_object('found', p_found, 'via', p_via), p_ip, p_now);
    RETURN 'looked_up';
END;
$$;
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(payee_lookup())


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

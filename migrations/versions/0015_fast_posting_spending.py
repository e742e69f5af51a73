"""PostgreSQL: ledger_post() checks holds and the daily limit, and leaves alerts to the ORM

Revision ID: 0015_fast_posting_spending
Revises: 0014_fast_posting
Create Date: 2026-12-01 09:30:00

Migration 0014's function only knew the account rules (active, within bounds). Spending a
customer's money has three more (issue 15), which until now kept every withdrawal and
transfer on the generic path. The function learns them, with their parameters from Python
as before:

* holds: a spending leg (``p_spends``) may only use the available balance, the balance
  minus the account's holds active at ``p_at`` (``core._leg_update``'s extra condition);
  a refusal reports the amount held, so Python words it as the generic path does;
* the daily outgoing limit (``p_limit_user`` …): the limit in force at ``p_at`` (the
  customer's own, read from ``transfer_limits``, or the bank's, whichever is lower), and the
  conditional upsert of ``daily_outgoing`` that ``limits.charge_outgoing`` runs; a refusal
  comes back as ``over_limit`` with the limit and the day's total;
* alerts: an alert email is rendered in Python in the recipient's language and queued in
  the outbox. When a debit leg meets its owner's large-transfer or low-balance setting
  (``p_alert_owners``, ``p_alert_large``), the function writes nothing and answers
  ``declined``: Python then posts the entry the generic way, which queues the alert. Both
  settings are off unless a customer sets them, so most postings never decline.

Refusals are checked before anything is written, in the generic path's order: the legs (in
account-id order), then the limit. A refusal met by a replay (the key already posted) is the
replay. The locks are taken as on the generic path: the accounts in ascending id, the
customer's ``daily_outgoing`` row, the report buckets last.
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = "0015_fast_posting_spending"
down_revision = "0014_fast_posting"
branch_labels = None
depends_on = None

OLD_SIGNATURE = """ledger_post(
    text, text, integer, text, text, text, timestamptz,
    integer[], text[], numeric[], numeric[], numeric[],
    text[], integer[], timestamptz,
    text, text, text, json, text,
    text, text, text, jsonb, integer)"""


LEDGER_POST = r"""
CREATE FUNCTION ledger_post(
    p_entry_type text, p_description text, p_actor_id integer, p_channel text,
    p_idempotency_key text, p_reference text, p_at timestamptz,
    -- the legs, one element each (any order: they are applied in account-id order)
    p_account_ids integer[], p_transaction_types text[], p_deltas numeric[],
    p_lows numeric[], p_highs numeric[],
    -- whether a leg spends the available balance (holds count against it)
    p_spends boolean[],
    -- the owner whose debit alerts a leg may raise (NULL: none), and whether it may raise
    -- the large-transfer one
    p_alert_owners integer[], p_alert_large boolean[],
    -- the daily outgoing limit this posting counts against (p_limit_user NULL: none)
    p_limit_user integer, p_limit_amount numeric, p_limit_day date, p_bank_limit numeric,
    -- ledger_totals: the kind each leg counts as (NULL: none), its shard, the bucket
    p_total_kinds text[], p_total_shards integer[], p_bucket timestamptz,
    -- the audit row, as bankapp.audit.record writes it
    p_audit_action text, p_audit_target_type text, p_audit_target_id text,
    p_audit_details json, p_audit_ip text,
    -- the API's stored answer (p_answer_key NULL: none); balance_after of p_answer_account
    p_answer_key text, p_answer_operation text, p_answer_fingerprint text,
    p_answer_body jsonb, p_answer_account integer,
    OUT outcome text,  -- posted | refused | over_limit | declined | replayed | answered
    OUT entry_id integer, OUT entry_reference text, OUT entry_created_at timestamptz,
    OUT balances numeric[],      -- posted: balance_after of each leg, in p_account_ids order
    OUT refused_account integer, OUT refused_status text, OUT refused_balance numeric,
    OUT refused_held numeric,    -- refused: the account's active holds (spending legs)
    OUT limit_in_force numeric, OUT limit_used numeric,  -- over_limit: the limit, the day's total
    OUT answer_status integer, OUT answer_body json, OUT answer_fingerprint text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer := cardinality(p_account_ids);
    ordered integer[];           -- leg indexes in ascending account id
    i integer;
    found_status text;
    found_balance numeric;
    held numeric;
    own_limit numeric;
    charged numeric;
    statuses text[] := array_fill(NULL::text, ARRAY[n]);
    olds numeric[] := array_fill(NULL::numeric, ARRAY[n]);
    news numeric[] := array_fill(NULL::numeric, ARRAY[n]);
    answer_balance numeric;
BEGIN
    SELECT array_agg(k ORDER BY p_account_ids[k]) INTO ordered
    FROM generate_subscripts(p_account_ids, 1) AS k;

    -- 1. Lock the accounts in ascending id. A concurrent twin with the same key waits here
    --    until the first one commits, then sees its entry and its answer below.
    FOREACH i IN ARRAY ordered LOOP
        SELECT a.status, a.balance INTO found_status, found_balance
        FROM accounts AS a WHERE a.id = p_account_ids[i] FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ledger_post: no account %', p_account_ids[i];
        END IF;
        statuses[i] := found_status;
        olds[i] := found_balance;
    END LOOP;

    -- 2. An answer already stored for this API key: replay it, write nothing.
    IF p_answer_key IS NOT NULL THEN
        SELECT k.response_status, k.response_body, k.request_fingerprint
        INTO answer_status, answer_body, answer_fingerprint
        FROM api_idempotency_keys AS k
        WHERE k.user_id = p_actor_id AND k.key = p_answer_key;
        IF FOUND THEN
            outcome := 'answered';
            RETURN;
        END IF;
    END IF;

    -- 3. The legs, one at a time in account-id order: the account is active, its new balance
    --    stays within [low, high], and a spending leg leaves the active holds covered
    --    (core._leg_update's rule). The first leg refused is reported with the account as
    --    it stands; core._refusal_of names the reason.
    FOREACH i IN ARRAY ordered LOOP
        news[i] := olds[i] + p_deltas[i];
        held := 0;
        IF p_spends[i] AND statuses[i] = 'active' THEN
            SELECT coalesce(sum(h.amount), 0) INTO held FROM holds AS h
            WHERE h.account_id = p_account_ids[i] AND h.released_at IS NULL
              AND h.expires_at > p_at;
        END IF;
        IF statuses[i] <> 'active' OR news[i] NOT BETWEEN p_lows[i] AND p_highs[i]
                OR news[i] - held < p_lows[i] THEN
            outcome := 'refused';
            refused_account := p_account_ids[i];
            refused_status := statuses[i];
            refused_balance := olds[i];
            refused_held := held;
            EXIT;
        END IF;
    END LOOP;

    -- 4. The daily limit in force at p_at: the customer's own (a raise counts from its
    --    pending_from), never above the bank's.
    IF outcome IS NULL AND p_limit_user IS NOT NULL THEN
        SELECT CASE WHEN t.pending_from IS NOT NULL AND t.pending_from <= p_at
                    THEN t.pending_limit ELSE t.daily_limit END
        INTO own_limit FROM transfer_limits AS t WHERE t.user_id = p_limit_user;
        limit_in_force := least(p_bank_limit, own_limit);  -- least() skips a NULL
    END IF;

    -- 5. A debit that calls for an alert goes the generic way (see the docstring). Before
    --    the limit's upsert, the only write that comes before the entry.
    IF outcome IS NULL THEN
        FOREACH i IN ARRAY ordered LOOP
            CONTINUE WHEN p_alert_owners[i] IS NULL;
            PERFORM 1 FROM alert_settings AS s
            WHERE s.user_id = p_alert_owners[i]
              AND ((s.large_transfer_on AND p_alert_large[i]
                    AND abs(p_deltas[i]) > s.large_transfer_threshold)
                   OR (s.low_balance_on AND news[i] < s.low_balance_floor
                       AND olds[i] >= s.low_balance_floor));
            IF FOUND THEN
                outcome := 'declined';
                RETURN;
            END IF;
        END LOOP;
    END IF;

    -- 6. Charge the day's outgoing total, or refuse (limits.charge_outgoing's upsert).
    IF outcome IS NULL AND p_limit_user IS NOT NULL THEN
        IF p_limit_amount <= limit_in_force THEN
            INSERT INTO daily_outgoing AS d (user_id, day, amount)
            VALUES (p_limit_user, p_limit_day, p_limit_amount)
            ON CONFLICT (user_id, day) DO UPDATE SET amount = d.amount + excluded.amount
            WHERE d.amount + excluded.amount <= limit_in_force
            RETURNING d.amount INTO charged;
        END IF;
        IF charged IS NULL THEN
            outcome := 'over_limit';
            SELECT coalesce(sum(d.amount), 0) INTO limit_used FROM daily_outgoing AS d
            WHERE d.user_id = p_limit_user AND d.day = p_limit_day;
        END IF;
    END IF;

    -- A refusal met by a replay (the first posting spent the money, or used the allowance)
    -- is the replay: nothing is written either way.
    IF outcome IS NOT NULL THEN
        IF p_actor_id IS NOT NULL AND p_idempotency_key IS NOT NULL THEN
            SELECT e.id, e.reference, e.created_at
            INTO entry_id, entry_reference, entry_created_at
            FROM journal_entries AS e
            WHERE e.actor_id = p_actor_id AND e.idempotency_key = p_idempotency_key;
            IF FOUND THEN
                outcome := 'replayed';
                refused_account := NULL; refused_status := NULL; refused_balance := NULL;
                refused_held := NULL; limit_in_force := NULL; limit_used := NULL;
            END IF;
        END IF;
        RETURN;
    END IF;

    -- 7. The entry. The (actor, key) unique key makes a replay a value, not an error; the
    --    day's total charged above is then given back (its row is still locked by us).
    INSERT INTO journal_entries AS e (reference, entry_type, description, actor_id, channel,
                                      idempotency_key, reverses_id, created_at)
    VALUES (p_reference, p_entry_type, p_description, p_actor_id, p_channel,
            p_idempotency_key, NULL, p_at)
    ON CONFLICT ON CONSTRAINT uq_journal_entries_actor_key DO NOTHING
    RETURNING e.id, e.reference, e.created_at
    INTO entry_id, entry_reference, entry_created_at;
    IF entry_id IS NULL THEN
        IF charged IS NOT NULL THEN
            UPDATE daily_outgoing AS d SET amount = d.amount - p_limit_amount
            WHERE d.user_id = p_limit_user AND d.day = p_limit_day;
        END IF;
        SELECT e.id, e.reference, e.created_at INTO entry_id, entry_reference, entry_created_at
        FROM journal_entries AS e
        WHERE e.actor_id = p_actor_id AND e.idempotency_key = p_idempotency_key;
        outcome := 'replayed';
        limit_in_force := NULL;
        RETURN;
    END IF;

    -- 8. Balances and legs in account-id order, with the balance each leg left behind.
    FOREACH i IN ARRAY ordered LOOP
        UPDATE accounts AS a SET balance = a.balance + p_deltas[i]
        WHERE a.id = p_account_ids[i]
        RETURNING a.balance INTO found_balance;
        news[i] := found_balance;
        INSERT INTO transactions (entry_id, account_id, transaction_type, side, amount,
                                  balance_after, timestamp, description)
        VALUES (entry_id, p_account_ids[i], p_transaction_types[i],
                CASE WHEN p_deltas[i] > 0 THEN 'credit' ELSE 'debit' END, abs(p_deltas[i]),
                found_balance, p_at, p_description);
        IF p_account_ids[i] = p_answer_account THEN
            answer_balance := found_balance;
        END IF;
    END LOOP;

    IF p_audit_action IS NOT NULL THEN
        INSERT INTO audit_events (actor_id, action, target_type, target_id, details,
                                  ip_address, created_at)
        VALUES (p_actor_id, p_audit_action, p_audit_target_type, p_audit_target_id,
                p_audit_details, p_audit_ip, p_at);
    END IF;

    -- The report buckets last, after every account lock (bankapp/ledger_totals.py).
    FOREACH i IN ARRAY ordered LOOP
        CONTINUE WHEN p_total_kinds[i] IS NULL;
        INSERT INTO ledger_totals AS t (bucket, kind, shard, amount, movements)
        VALUES (p_bucket, p_total_kinds[i], p_total_shards[i], abs(p_deltas[i]), 1)
        ON CONFLICT (bucket, kind, shard) DO UPDATE
        SET amount = t.amount + excluded.amount, movements = t.movements + excluded.movements;
    END LOOP;

    IF p_answer_key IS NOT NULL THEN
        -- A twin's stored refusal committed since step 2 fails this on the unique key: the
        -- caller rolls back and replays that answer (bankapp.api.idempotency).
        answer_status := 201;
        answer_body := (p_answer_body || jsonb_build_object('balance_after',
                                                            answer_balance::text))::json;
        INSERT INTO api_idempotency_keys (user_id, key, operation, request_fingerprint,
                                          response_status, response_body, entry_reference,
                                          created_at, completed_at)
        VALUES (p_actor_id, p_answer_key, p_answer_operation, p_answer_fingerprint,
                answer_status, answer_body, entry_reference, p_at, p_at);
        answer_fingerprint := p_answer_fingerprint;
    END IF;
    balances := news;
    limit_in_force := NULL;
    outcome := 'posted';
END;
$$
"""


def _previous_function() -> str:
    """Migration 0014's definition (to put back on downgrade)."""
    path = Path(__file__).with_name("0014_fast_posting.py")
    spec = importlib.util.spec_from_file_location("_migration_0014", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LEDGER_POST


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {OLD_SIGNATURE}")
        op.execute(LEDGER_POST)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_post")
        op.execute(_previous_function())

"""PostgreSQL: ledger_post(), one journal entry posted by one database call

Revision ID: 0014_fast_posting
Revises: 0013_holds_limits
Create Date: 2026-12-02 10:00:00

The function does on the server what ``bankapp.ledger.core.post()`` does through the ORM, in
the caller's transaction (see ``bankapp/ledger/fast.py``, which calls it, for the contract):

1. locks the entry's accounts in ascending id (the ledger's lock order);
2. if the API stores answers, returns the one stored for this key (a replay, nothing written);
3. THE DEBIT CHECK: every leg must keep its account active and its balance within the
   bounds Python passes (``core._bounds``); the first leg refused, in account-id order, is
   returned as a value with the account's status and balance, and nothing is written
   (unless the key already posted: then that entry is returned as replayed);
4. inserts the entry (``ON CONFLICT`` on the (actor, key) unique key: a replay returns the
   earlier entry, nothing written);
5. moves the balances, inserts the legs with ``balance_after`` in account-id order, the audit
   row, the ``ledger_totals`` buckets (last: after every account lock) and the API answer
   (the body Python built, with the answering leg's ``balance_after`` filled in).

Every rule's parameters come from Python (bounds, audit columns, bucket, shard, answer body):
the function only applies them. SQLite has no such function: there ``post()`` stays generic.
"""
from alembic import op


revision = "0014_fast_posting"
down_revision = "0013_holds_limits"
branch_labels = None
depends_on = None


LEDGER_POST = r"""
CREATE OR REPLACE FUNCTION ledger_post(
    p_entry_type text, p_description text, p_actor_id integer, p_channel text,
    p_idempotency_key text, p_reference text, p_at timestamptz,
    -- the legs, one element each (any order: they are applied in account-id order)
    p_account_ids integer[], p_transaction_types text[], p_deltas numeric[],
    p_lows numeric[], p_highs numeric[],
    -- ledger_totals: the kind each leg counts as (NULL: none), its shard, the bucket
    p_total_kinds text[], p_total_shards integer[], p_bucket timestamptz,
    -- the audit row, as bankapp.audit.record writes it
    p_audit_action text, p_audit_target_type text, p_audit_target_id text,
    p_audit_details json, p_audit_ip text,
    -- the API's stored answer (p_answer_key NULL: none); balance_after of p_answer_account
    p_answer_key text, p_answer_operation text, p_answer_fingerprint text,
    p_answer_body jsonb, p_answer_account integer,
    OUT outcome text,            -- posted | refused | replayed | answered
    OUT entry_id integer, OUT entry_reference text, OUT entry_created_at timestamptz,
    OUT balances numeric[],      -- posted: balance_after of each leg, in p_account_ids order
    OUT refused_account integer, OUT refused_status text, OUT refused_balance numeric,
    OUT answer_status integer, OUT answer_body json, OUT answer_fingerprint text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer := cardinality(p_account_ids);
    ordered integer[];           -- leg indexes in ascending account id
    i integer;
    found_status text;
    found_balance numeric;
    statuses text[] := array_fill(NULL::text, ARRAY[n]);
    olds numeric[] := array_fill(NULL::numeric, ARRAY[n]);
    news numeric[] := array_fill(NULL::numeric, ARRAY[n]);
    answer_balance numeric;
BEGIN
    SELECT array_agg(k ORDER BY p_account_ids[k]) INTO ordered FROM generate_subscripts(p_account_ids, 1) AS k;

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

    -- 3. THE DEBIT CHECK, one leg at a time in account-id order: the account is active and
    --    its new balance stays within [low, high] (core._leg_update's rule). The first leg
    --    refused is reported with the account as it stands; core._refusal names the reason.
    --    (Further rules on the money an account may spend, such as holds or a daily limit,
    --    belong here: refuse with the account's figures, before anything is written.)
    FOREACH i IN ARRAY ordered LOOP
        news[i] := olds[i] + p_deltas[i];
        IF statuses[i] <> 'active' OR news[i] NOT BETWEEN p_lows[i] AND p_highs[i] THEN
            -- A replay meets the refusal (its money spent) before the unique key.
            IF p_actor_id IS NOT NULL AND p_idempotency_key IS NOT NULL THEN
                SELECT e.id, e.reference, e.created_at
                INTO entry_id, entry_reference, entry_created_at
                FROM journal_entries AS e
                WHERE e.actor_id = p_actor_id AND e.idempotency_key = p_idempotency_key;
                IF FOUND THEN
                    outcome := 'replayed';
                    RETURN;
                END IF;
            END IF;
            outcome := 'refused';
            refused_account := p_account_ids[i];
            refused_status := statuses[i];
            refused_balance := olds[i];
            RETURN;
        END IF;
    END LOOP;

    -- 4. The entry. The (actor, key) unique key makes a replay a value, not an error.
    INSERT INTO journal_entries AS e (reference, entry_type, description, actor_id, channel,
                                      idempotency_key, reverses_id, created_at)
    VALUES (p_reference, p_entry_type, p_description, p_actor_id, p_channel,
            p_idempotency_key, NULL, p_at)
    ON CONFLICT ON CONSTRAINT uq_journal_entries_actor_key DO NOTHING
    RETURNING e.id, e.reference, e.created_at
    INTO entry_id, entry_reference, entry_created_at;
    IF entry_id IS NULL THEN
        SELECT e.id, e.reference, e.created_at INTO entry_id, entry_reference, entry_created_at
        FROM journal_entries AS e
        WHERE e.actor_id = p_actor_id AND e.idempotency_key = p_idempotency_key;
        outcome := 'replayed';
        RETURN;
    END IF;

    -- 5. Balances and legs in account-id order, with the balance each leg left behind.
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
    outcome := 'posted';
END;
$$
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LEDGER_POST)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_post")

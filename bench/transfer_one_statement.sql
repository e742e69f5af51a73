-- pgbench script (bench/load_bench.py): the API transfer's database work as ONE statement
-- on bankapp's own schema, to show what the schema allows when the app does not add round
-- trips: the journal entry, both conditional balance updates, both legs with their running
-- balance, the report bucket (ledger_totals, where it exists) and the completed
-- Idempotency-Key record, in one transaction (BEGIN, the statement, COMMIT). Accounts 2..10001 are the seeded customer accounts (id 1 is the vault).
\set src random(2, 10001)
\set dst 2 + (:src - 2 + random(1, 9999)) % 10000
\set cents random(1, 999)
BEGIN;
WITH entry AS (
    INSERT INTO journal_entries (reference, entry_type, description, actor_id, channel,
                                 idempotency_key, created_at)
    VALUES (md5(random()::text || clock_timestamp()::text), 'TRANSFER', 'one statement', NULL,
            'api', NULL, now())
    RETURNING id, reference
), moved AS (
    UPDATE accounts AS a SET balance = a.balance + d.delta
    FROM (VALUES (:src, -(:cents)::numeric / 100), (:dst, (:cents)::numeric / 100))
         AS d (id, delta)
    WHERE a.id = d.id AND a.status = 'active' AND a.balance + d.delta >= 0
    RETURNING a.id, d.delta, a.balance
), legs AS (
    INSERT INTO transactions (entry_id, account_id, transaction_type, side, amount,
                              balance_after, timestamp, description)
    SELECT entry.id, moved.id,
           CASE WHEN moved.delta < 0 THEN 'TRANSFER_OUT' ELSE 'TRANSFER_IN' END,
           CASE WHEN moved.delta < 0 THEN 'debit' ELSE 'credit' END,
           abs(moved.delta), moved.balance, now(), 'one statement'
    FROM entry, moved
    RETURNING transaction_type, side, amount, account_id, timestamp
-- ledger_totals:begin (load_bench.py drops this block where the table does not exist)
), totals AS (
    INSERT INTO ledger_totals (bucket, kind, shard, amount, movements)
    SELECT date_bin('15 minutes', timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           'transfer', account_id % 16, amount, 1
    FROM legs WHERE transaction_type = 'TRANSFER_OUT'
    ON CONFLICT (bucket, kind, shard) DO UPDATE
    SET amount = ledger_totals.amount + excluded.amount,
        movements = ledger_totals.movements + excluded.movements
    RETURNING 1
-- ledger_totals:end
)
INSERT INTO api_idempotency_keys (user_id, key, operation, request_fingerprint,
                                  response_status, response_body, entry_reference,
                                  created_at, claimed_at, completed_at)
SELECT 1, md5(random()::text || clock_timestamp()::text), 'transfer', md5(entry.reference),
       201, json_build_object('reference', entry.reference), entry.reference, now(), now(),
       now()
FROM entry;
COMMIT;

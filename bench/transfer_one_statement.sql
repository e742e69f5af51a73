-- pgbench script (bench/load_bench.py): the API transfer's database work as ONE statement
-- on bankapp's own schema, to show what the schema allows when the app does not add round
-- trips. The same writes as POST /api/v1/transfers makes today (bankapp/ledger/ and
-- bankapp/api/idempotency.py), in one transaction (BEGIN, the statement, COMMIT):
--   1. the two conditional balance UPDATEs, in ascending account id (the ledger's lock
--      order), each refused unless the account is active and stays within 0..9999999999.99;
--   2. the journal entry (actor, channel 'api', the ledger key 'api:' + sha256 of the
--      Idempotency-Key, and, since migration 0022, its audit line: the action and the
--      client's address; no audit_events row) and its two legs with their running balance;
--   3. the report bucket (ledger_totals, where it exists), after every account lock, with
--      its largest movement (migration 0023);
--   4. no stored API answer: since migration 0028 the answer is built from the entry (before,
--      an api_idempotency_keys row repeated it: status 201, the JSON body, completed_at).
-- Seeded by load_bench.py: accounts 2..10001 are the customer accounts (id 1 is the vault),
-- account id i belongs to user (i - 2) % 500 + 1, and every balance starts at 10,000.00.
-- A refused leg cannot happen with those balances and amounts of 0.01..9.99; if it did, the
-- statement fails (the app rolls a refusal back whole) instead of posting half a transfer.
\set src random(2, 10001)
\set dst 2 + (:src - 2 + random(1, 9999)) % 10000
\set cents random(1, 999)
\set actor (:src - 2) % 500 + 1
\set lo least(:src, :dst)
\set hi greatest(:src, :dst)
\set dlo case when :lo = :src then -:cents else :cents end
\set dhi -(:dlo)
BEGIN;
WITH request AS (
    SELECT md5(random()::text || clock_timestamp()::text) AS key,  -- a fresh Idempotency-Key
           md5(random()::text || clock_timestamp()::text) AS reference,  -- uuid4().hex
           round(:cents / 100.0, 2) AS amount, now() AS at
), low_leg AS (
    UPDATE accounts AS a SET balance = round(a.balance + round((:dlo) / 100.0, 2), 2)
    WHERE a.id = :lo AND a.status = 'active'
      AND round(a.balance + round((:dlo) / 100.0, 2), 2) BETWEEN 0 AND 9999999999.99
    RETURNING a.id, a.account_number, a.balance
), high_leg AS (
    -- Reads low_leg, so the higher id is locked only after the lower one.
    UPDATE accounts AS a SET balance = round(a.balance + round((:dhi) / 100.0, 2), 2)
    FROM low_leg
    WHERE a.id = :hi AND a.status = 'active'
      AND round(a.balance + round((:dhi) / 100.0, 2), 2) BETWEEN 0 AND 9999999999.99
    RETURNING a.id, a.account_number, a.balance
), moved AS (
    SELECT id, account_number, balance, id = :src AS outgoing FROM low_leg
    UNION ALL
    SELECT id, account_number, balance, id = :src AS outgoing FROM high_leg
), checked AS (
    -- Both legs or nothing: a refusal makes the cast fail, which aborts the transaction.
    SELECT CASE WHEN count(*) = 2 THEN true
                ELSE ('transfer refused: ' || count(*) || ' of 2 balance updates applied')::boolean
           END AS ok
    FROM moved
), entry AS (
    INSERT INTO journal_entries (reference, entry_type, description, actor_id, channel,
                                 idempotency_key, reverses_id, created_at, audit_action,
                                 ip_address)
    SELECT r.reference, 'TRANSFER', 'one statement', :actor, 'api',
           'api:' || left(encode(sha256(convert_to(r.key, 'UTF8')), 'hex'), 60), NULL, r.at,
           'ledger.transfer', '127.0.0.1'
    FROM request AS r, checked WHERE checked.ok
    RETURNING id, reference, created_at
), legs AS (
    INSERT INTO transactions (entry_id, account_id, transaction_type, side, amount,
                              balance_after, timestamp, description)
    SELECT entry.id, m.id,
           CASE WHEN m.outgoing THEN 'TRANSFER_OUT' ELSE 'TRANSFER_IN' END,
           CASE WHEN m.outgoing THEN 'debit' ELSE 'credit' END,
           r.amount, m.balance, entry.created_at, 'one statement'
    FROM entry, request AS r, moved AS m
    ORDER BY m.id
    RETURNING transaction_type, side, amount, account_id, timestamp
-- ledger_totals:begin (load_bench.py drops this block where the table does not exist)
), totals AS (
    INSERT INTO ledger_totals (bucket, kind, shard, amount, movements, max_amount)
    SELECT date_bin('15 minutes', timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           'transfer', account_id % 16, amount, 1, amount
    FROM legs WHERE transaction_type = 'TRANSFER_OUT'
    ON CONFLICT (bucket, kind, shard) DO UPDATE
    SET amount = round(ledger_totals.amount + excluded.amount, 2),
        movements = ledger_totals.movements + excluded.movements,
        max_amount = CASE WHEN ledger_totals.max_amount IS NULL THEN NULL
                          ELSE greatest(ledger_totals.max_amount, excluded.max_amount) END
    RETURNING 1
-- ledger_totals:end
)
SELECT entry.reference FROM entry;
COMMIT;

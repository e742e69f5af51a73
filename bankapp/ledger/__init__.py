"""The ledger: the only code in bankapp that changes a balance.

A package: ``core.post()`` is the one writer of journal entries; ``cash``, ``approvals``,
``reversals``, ``status``, ``interest``, ``reconcile`` and ``scheduled`` (standing orders,
which call ``transfer``) are siblings that call it. Import from
``bankapp.ledger`` (the names below), not from the modules.

Design
------
Every movement of money is one ``JournalEntry`` with two or more legs (``Transaction`` rows),
as in double-entry bookkeeping (Apache Fineract's GL, TigerBeetle, django-hordak). A leg is a
*credit* (it raises the account's balance) or a *debit* (it lowers it), and the legs of one
entry always sum to zero.

Balances are stored *credit-positive*: the number is what the bank owes on the account.

=====================  ======================  =========================
account                credit leg (+)          debit leg (−)
=====================  ======================  =========================
customer (SAVINGS,     deposit, transfer in    withdrawal, transfer out
CHECKING)
vault, till (cash)     cash paid out           cash taken in
=====================  ======================  =========================

A customer's balance is therefore never negative, while a cash account's balance is minus the
cash it holds (a deposit of 100 credits the customer +100 and debits the vault −100). Since
every entry sums to zero, the sum of *all* balances is zero at every commit: money created
from nothing shows up as a non-zero total, which ``reconcile`` reports.

Concurrency
-----------
Each leg is one conditional, atomic ``UPDATE … SET balance = balance + :delta WHERE id = :id
AND status = 'active' AND balance + :delta BETWEEN :low AND :high RETURNING balance``: the
database checks the rule (no overdraft, no overflow) and applies the change under the row lock
in the same statement, so two workers can never both spend the same money (no lost update).
Legs are applied in ascending account id, so two transfers in opposite directions lock rows in
the same order and cannot deadlock each other; a serialization failure or deadlock that still
happens (or SQLite's "database is locked") is retried a bounded number of times. The entry,
its legs and the balance changes commit in one transaction, or not at all.

A posting is timed once it holds every account's lock, by the database's clock (the one
clock all app hosts share): so a reader that waits for an account's lock before it takes its
own time (``settled_time``, a statement's issue) sees every posting timed before that time,
and none that commits later is. History imported with ``posted_at`` keeps its given time.

Ledger rows are never updated or deleted: corrections are new entries.

The fast path (PostgreSQL)
--------------------------
On PostgreSQL, ``post()`` hands deposits, withdrawals, transfers and every other entry without
``also`` or ``reverses`` to the ``ledger_post()`` function (migrations 0014 and 0015, called
from ``fast``): one database call locks the accounts in ascending id, applies the same rules to
each leg (active, within the bounds ``core._bounds`` gives, a spending leg within the balance
less active holds), charges the sender's daily outgoing limit with the same conditional upsert
as ``limits``, and writes the entry, its legs, the audit line and the report bucket (an API
posting's answer is built from them, not stored). A refusal comes back as a value and ``core._refusal_of`` (or
``limits.over_limit``) names it, as on the generic path. A debit that calls for an alert email
comes back ``declined`` with nothing written and is posted the generic way, which queues the
email in the same transaction. SQLite, ``LEDGER_FAST_PATH=0``, reversals and postings with
``also`` (maker-checker approvals) take the generic path (the jobs, scheduled payments and
interest, write their rows right after ``post()``'s savepoint, in the batch's transaction:
``core.in_batch``);
``tests/ledger/test_ledger_fast_path.py`` runs random sequences through both paths and demands the
same ledger.

Audit
-----
Every posting has one audit line, written in the same transaction as its entry: a retry
re-adds it, a refusal rolls it back with the entry, and an idempotent replay writes nothing
new. A customer's deposit, withdrawal or transfer is its own line: the entry records the
action and the client's address (``audit_action``, ``ip_address``, migration 0022) and the
trail reads the account, the amount and the other account from its legs
(``bankapp.audit.trail``); every other posting (a reversal, interest, a till's cash, a loan's)
adds an ``audit_events`` row (``bankapp.audit.record``).

Cash drawers (tills)
--------------------
Each teller works from a till, an internal TILL account ``GL-TILL-<user id>``. Like the vault
its balance is minus the cash it holds, and a CHECK (``balance <= 0``) plus the conditional
update keep it from paying out cash it does not hold. Counter deposits and withdrawals post
against the teller's till instead of the vault. Admins allocate cash vault → till and settle
it till → vault (one entry each). Closing a shift books the counted cash: any difference from
the expected cash is its own CASH_OVER_SHORT entry against ``GL-OVER-SHORT`` (a shortage
debits it, an overage credits it), then all counted cash is settled to the vault, all in one
transaction, so the till ends the shift at zero and the book stays balanced.

Interest
--------
``interest`` accrues daily on end-of-day balances and posts one INTEREST entry a month per
account (customer credit, ``GL-INTEREST`` debit: the bank's expense account, which goes
negative), rounding half-up to the cent and carrying the remainder (see its docstring).

Holds and daily limits
----------------------
A spending leg (a withdrawal's or a transfer's debit of a customer account) may only use the
*available* balance, ``balance − active holds``: its conditional UPDATE carries one more
condition, ``balance + delta − (SELECT sum of the account's active holds at :now) >= 0``
(``holds``). Withdrawals and transfers to other people also raise the owner's
``daily_outgoing`` row by a conditional upsert that refuses to pass their daily limit
(``limits``), in the same transaction.

Reversals and maker-checker
---------------------------
``reverse_entry`` posts a REVERSAL entry (``reverses_id`` set, at most one per entry by a
UNIQUE index) with every leg's side flipped, under the same rules as any posting, so it is
refused when it would overdraw. Counter postings above ``MAKER_CHECKER_THRESHOLD`` become a
``PendingPosting`` that moves no money until another person approves it; the approval, the
posting and their audit rows commit together.
"""
from __future__ import annotations

from bankapp.ledger.accounts import (
    VAULT_NUMBER,
    account_number_as_typed,
    customer_accounts_numbered,
    owned_account,
    find_customer_account,
    find_customer_accounts,
    internal_account,
    may_deposit,
    open_account,
)
from bankapp.ledger.amounts import (
    CENT,
    MAX_BALANCE,
    MAX_DESCRIPTION,
    MAX_REASON,
    parse_amount,
    read_amount,
    validate_amount,
)
from bankapp.ledger.approvals import (
    Requested,
    approval_threshold,
    approve_posting,
    reject_posting,
    request_posting,
    teller_posting,
)
from bankapp.ledger.cash import (
    OVER_SHORT_NUMBER,
    TILL_PREFIX,
    ShiftClose,
    allocate_cash,
    cash_held,
    close_shift,
    find_till,
    over_short_account,
    parse_counted_cash,
    settle_cash,
    till_for,
    till_number,
    validate_count,
)
from bankapp.ledger.closing import count_balances, first_count_after
from bankapp.ledger.core import (
    AuditNote,
    Leg,
    Posting,
    atomically,
    deposit,
    find_posting,
    post,
    settled_time,
    transfer,
    withdraw,
)
from bankapp.ledger.errors import (
    AccountNotActive,
    DailyLimitExceeded,
    DecisionRefused,
    InsufficientFunds,
    InvalidAmount,
    InvalidDescription,
    LedgerError,
    LimitExceeded,
    NotReversible,
    ReasonRequired,
    SameAccount,
    TellerNotServing,
    UnknownAccount,
)
from bankapp.ledger.fast import PostingAnswer
from bankapp.ledger.history import (
    HistoryFilter,
    KnownAccounts,
    counterparties,
    customer_history,
    filtered_history,
    find_accounts_known_to,
    latest_activity,
    masked_name,
    own_account_label,
    party_name,
)
from bankapp.ledger.holds import (
    HoldError,
    active_holds,
    available_balance,
    available_balances,
    check_can_send,
    holds_and_available,
    held_amount,
    hold_history,
    place_hold,
    release_hold,
)
from bankapp.ledger.limits import (
    LimitChange,
    LimitStatus,
    bank_limit,
    daily_limit,
    limit_status,
    parse_limit,
    set_own_limit,
)
from bankapp.ledger.interest import (
    INTEREST_NUMBER,
    InterestError,
    InterestRun,
    interest_account,
    parse_month,
    parse_rate,
    parse_rate_date,
    post_interest,
    rate_history,
    set_rate,
)
from bankapp.ledger.reconcile import Reconciliation, reconcile
from bankapp.ledger.reversals import entry_by_reference, find_entry, reversal_of, reverse_entry
from bankapp.ledger.scheduled import (
    InvalidSchedule,
    RunReport,
    Schedule,
    bank_today,
    cancel_order,
    create_order,
    occurrences_of,
    owned_order,
    pause_order,
    resume_order,
    run_due,
)
from bankapp.ledger.status import freeze_account, unfreeze_account

__all__ = [
    "CENT", "MAX_BALANCE", "MAX_DESCRIPTION", "MAX_REASON", "VAULT_NUMBER", "OVER_SHORT_NUMBER",
    "TILL_PREFIX",
    "LedgerError", "InsufficientFunds", "AccountNotActive", "InvalidAmount", "SameAccount",
    "UnknownAccount", "LimitExceeded", "InvalidDescription", "TellerNotServing",
    "NotReversible", "ReasonRequired", "DecisionRefused",
    "parse_amount", "read_amount", "validate_amount",
    "open_account", "may_deposit", "internal_account", "find_customer_account",
    "find_customer_accounts",
    "customer_accounts_numbered", "owned_account", "owned_order",
    "Posting", "Leg", "AuditNote", "PostingAnswer", "post", "atomically", "deposit", "withdraw", "transfer",
    "find_posting", "settled_time",
    "till_for", "till_number", "find_till", "over_short_account", "cash_held", "allocate_cash",
    "settle_cash", "close_shift", "ShiftClose", "parse_counted_cash", "validate_count",
    "entry_by_reference", "find_entry", "reversal_of", "reverse_entry",
    "Requested", "approval_threshold", "teller_posting", "request_posting", "approve_posting",
    "reject_posting",
    "freeze_account", "unfreeze_account",
    "reconcile", "Reconciliation", "customer_history", "latest_activity",
    "count_balances", "first_count_after",
    "account_number_as_typed", "HistoryFilter", "counterparties", "filtered_history",
    "masked_name", "own_account_label", "party_name", "KnownAccounts", "find_accounts_known_to",
    "InvalidSchedule", "Schedule", "RunReport", "bank_today", "create_order", "pause_order",
    "resume_order", "cancel_order", "occurrences_of", "run_due",
    "INTEREST_NUMBER", "InterestError", "InterestRun", "interest_account", "parse_month",
    "parse_rate", "parse_rate_date", "post_interest", "rate_history", "set_rate",
    "DailyLimitExceeded", "HoldError", "active_holds", "available_balance",
    "available_balances", "check_can_send", "held_amount", "holds_and_available",
    "hold_history", "place_hold", "release_hold", "LimitChange", "LimitStatus", "bank_limit",
    "daily_limit", "limit_status", "parse_limit", "set_own_limit",
]

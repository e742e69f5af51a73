"""The ledger: the only code in bankapp that changes a balance.

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

Ledger rows are never updated or deleted: corrections are new entries.

Audit
-----
Every posting adds one ``audit_events`` row (``bankapp.audit.record``) inside the same
transaction as its entry: a retry re-adds it, a refusal rolls it back with the entry, and an
idempotent replay writes nothing new.

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

Reversals and maker-checker
---------------------------
``reverse_entry`` posts a REVERSAL entry (``reverses_id`` set, at most one per entry by a
UNIQUE index) with every leg's side flipped, under the same rules as any posting, so it is
refused when it would overdraw. Counter postings above ``MAKER_CHECKER_THRESHOLD`` become a
``PendingPosting`` that moves no money until another person approves it; the approval, the
posting and their audit rows commit together.
"""
from __future__ import annotations

import functools
import logging
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Callable, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from bankapp import audit as audit_trail
from bankapp.audit import Action, TargetType
from bankapp import ledger_totals
from bankapp.extensions import db
from bankapp.models import (
    Account,
    AccountStatus,
    AccountType,
    Channel,
    EntryType,
    JournalEntry,
    PendingPosting,
    PendingPostingKind,
    PendingStatus,
    Transaction,
    TransactionType,
    User,
    now_utc,
)

T = TypeVar("T")

log = logging.getLogger("bankapp.ledger")

CENT = Decimal("0.01")
# NUMERIC(12, 2): the largest balance the column can hold.
MAX_BALANCE = Decimal("9999999999.99")
MAX_DESCRIPTION = 255
MAX_ATTEMPTS = 5
VAULT_NUMBER = "GL-VAULT"
OVER_SHORT_NUMBER = "GL-OVER-SHORT"
TILL_PREFIX = "GL-TILL-"
MAX_REASON = 255


# ---------------------------------------------------------------- domain errors


class LedgerError(Exception):
    """A refusal the customer can act on; ``str(error)`` is the message to show."""

    default_message = "The transaction was refused."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)


class InsufficientFunds(LedgerError):
    default_message = "Insufficient funds: the balance does not cover this amount."


class AccountNotActive(LedgerError):
    default_message = "This account is not active and cannot move money."


class InvalidAmount(LedgerError):
    default_message = "Enter an amount such as 12.50."


class SameAccount(LedgerError):
    default_message = "The source and destination accounts must be different."


class UnknownAccount(LedgerError):
    default_message = "No active account has that number."


class LimitExceeded(LedgerError):
    default_message = "The amount is above the limit."


class InvalidDescription(LedgerError):
    default_message = f"The description may be at most {MAX_DESCRIPTION} characters."


# ---------------------------------------------------------------- amounts

# ASCII digits only (str.isdigit and Decimal() accept Arabic-Indic and other digits), an
# optional thousands grouping, at most two decimals; no sign, exponent, NaN or Infinity.
_AMOUNT_RE = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]{1,2})?", re.ASCII)


def parse_amount(text: object) -> Decimal:
    """Turn what a person typed (``12``, ``12.5``, ``1,234.56``) into a valid amount.

    Raises ``InvalidAmount`` or ``LimitExceeded`` with a message fit to show next to the field.
    """
    if not isinstance(text, str):
        raise InvalidAmount("Enter the amount as text, such as 12.50.")
    cleaned = text.strip(" \t")
    if not cleaned:
        raise InvalidAmount("Enter an amount.")
    if cleaned.startswith("-"):
        raise InvalidAmount("The amount must be greater than zero.")
    if not _AMOUNT_RE.fullmatch(cleaned) or not any(c.isdigit() for c in cleaned):
        if re.fullmatch(r"[0-9,]*\.[0-9]{3,}", cleaned, re.ASCII):
            raise InvalidAmount("Use at most two decimal places.")
        raise InvalidAmount("Enter an amount such as 12.50 (digits, optional comma "
                            "thousands separators and up to two decimals).")
    return validate_amount(Decimal(cleaned.replace(",", "")))


def validate_amount(amount: object) -> Decimal:
    """Check an amount given as a ``Decimal``: finite, positive, cents, within the limit."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        # A float has already lost the exact value: refuse it rather than guess.
        raise InvalidAmount("Amounts must be exact decimals, not floating-point numbers.")
    try:
        amount = Decimal(amount)
        if not amount.is_finite():
            raise InvalidAmount("The amount must be a finite number.")
        if amount <= 0:
            raise InvalidAmount("The amount must be greater than zero.")
        if amount != amount.quantize(CENT):
            raise InvalidAmount("Use at most two decimal places.")
    except InvalidOperation as exc:
        raise InvalidAmount() from exc
    limit = Decimal(current_app.config["MAX_TRANSACTION_AMOUNT"])
    if amount > limit:
        raise LimitExceeded(f"The amount is above the per-transaction limit of {limit:,.2f}.")
    return amount.quantize(CENT)


def _clean_description(description: str | None) -> str:
    text = " ".join((description or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise InvalidDescription()
    return text


# ---------------------------------------------------------------- accounts


def open_account(owner: User, account_type: str) -> Account:
    """Open a customer account with a fresh random ``ACC-`` number and a zero balance."""
    if account_type not in AccountType.CUSTOMER:
        raise LedgerError("Choose a savings or a checking account.")
    for _ in range(20):
        account = Account(
            account_number=f"ACC-{secrets.randbelow(10**9):09d}",
            account_type=account_type,
            owner_id=owner.id,
            balance=Decimal("0.00"),
        )
        try:
            with db.session.begin_nested():
                db.session.add(account)
        except IntegrityError:
            continue  # the random number was taken: draw another
        db.session.commit()
        return account
    raise LedgerError("Could not allocate an account number; please try again.")


def internal_account(account_type: str = AccountType.VAULT, number: str = VAULT_NUMBER,
                     name: str = "Vault cash") -> Account:
    """The bank's own account ``number``, created on first use (safe under concurrency)."""
    account = db.session.scalar(sa.select(Account).where(Account.account_number == number))
    if account is not None:
        return account
    try:
        with db.session.begin_nested():
            account = Account(account_number=number, account_type=account_type, name=name,
                              owner_id=None, balance=Decimal("0.00"))
            db.session.add(account)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        account = db.session.scalar(sa.select(Account).where(Account.account_number == number))
    return account


def find_customer_account(number: str) -> Account | None:
    """A customer account by its number (internal accounts are never found this way)."""
    return find_customer_accounts(number).get((number or "").strip().upper())


def find_customer_accounts(*numbers: str) -> dict[str, Account]:
    """The customer accounts with these numbers, by number, in one query (missing: absent)."""
    wanted = {(number or "").strip().upper() for number in numbers}
    accounts = db.session.scalars(
        sa.select(Account).where(
            Account.account_number.in_(wanted),
            Account.account_type.in_(AccountType.CUSTOMER),
        )
    )
    return {account.account_number: account for account in accounts}


# ---------------------------------------------------------------- posting


@dataclass(frozen=True)
class Posting:
    """What a posting call did: the journal entry, and whether an earlier call had posted it."""

    entry: JournalEntry
    replayed: bool = False

    @property
    def reference(self) -> str:
        return self.entry.reference


@dataclass(frozen=True)
class Leg:
    account: Account
    transaction_type: str
    delta: Decimal  # signed: + credit, − debit


def _bounds(account: Account) -> tuple[Decimal, Decimal]:
    """The range the account's balance must stay within."""
    if account.account_type in AccountType.CUSTOMER:
        return Decimal("0.00"), MAX_BALANCE
    if account.account_type == AccountType.TILL:
        return -MAX_BALANCE, Decimal("0.00")
    return -MAX_BALANCE, MAX_BALANCE


@functools.cache
def _leg_update() -> sa.Update:
    """The conditional balance UPDATE of one leg (built once: every posting runs it)."""
    money = Account.__table__.c.balance.type
    # round() keeps SQLite exact: it has no decimal type and adds in binary floating point.
    new_balance = sa.func.round(Account.balance + sa.bindparam("delta", type_=money), 2)
    return (
        sa.update(Account)
        .where(
            Account.id == sa.bindparam("account_id"),
            Account.status == AccountStatus.ACTIVE,
            new_balance.between(sa.bindparam("low", type_=money),
                                sa.bindparam("high", type_=money)),
        )
        .values(balance=new_balance)
        .returning(Account.balance)
    )


def _apply_leg(leg: Leg) -> Decimal:
    """Apply one leg atomically; return the new balance or raise why it was refused."""
    low, high = _bounds(leg.account)
    params = {"account_id": leg.account.id, "delta": leg.delta, "low": low, "high": high}
    # A Core statement on the session's connection (same transaction): the ORM's bulk-update
    # machinery has nothing to do for it and costs more CPU than the statement itself.
    connection = db.session.connection()
    for _ in range(MAX_ATTEMPTS):
        result = connection.execute(_leg_update(), params).scalar_one_or_none()
        if result is not None:
            return Decimal(result).quantize(CENT)
        refusal = _refusal(leg, low, high)
        if refusal is not None:
            raise refusal
        # The UPDATE was refused, yet the row as read now would pass: under READ COMMITTED
        # each statement sees the latest commit, so another transaction (a deposit, an
        # unfreeze) landed in between. Try the leg again on that newer state rather than
        # report a reason that is no longer true.
    raise (InsufficientFunds() if leg.delta < 0 else
           LimitExceeded("The receiving balance would exceed the largest balance an account "
                         "can hold."))


def _refusal(leg: Leg, low: Decimal, high: Decimal) -> LedgerError | None:
    """Why the account refuses ``leg`` as it stands now, or None if it would accept it."""
    status, balance = db.session.execute(
        sa.select(Account.status, Account.balance).where(Account.id == leg.account.id)
    ).one()
    if status != AccountStatus.ACTIVE:
        which = ("The destination account" if leg.transaction_type == TransactionType.TRANSFER_IN
                 else "This account")
        return AccountNotActive(f"{which} is {status} and cannot move money.")
    if leg.account.account_type == AccountType.TILL and balance + leg.delta > high:
        # A till's balance is minus its cash: going above zero means paying out cash it lacks.
        return InsufficientFunds("The till does not hold enough cash to pay this out.")
    if balance + leg.delta < low:
        return InsufficientFunds()
    if balance + leg.delta > high:
        return LimitExceeded("The receiving balance would exceed the largest balance an "
                             "account can hold.")
    return None


def _is_retryable(error: DBAPIError) -> bool:
    code = getattr(error.orig, "pgcode", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock detected
        return True
    return "database is locked" in str(error.orig).lower()


def _existing_entry(actor: User | None, key: str | None) -> JournalEntry | None:
    if actor is None or not key:
        return None
    return db.session.scalar(
        sa.select(JournalEntry).where(
            JournalEntry.actor_id == actor.id, JournalEntry.idempotency_key == key
        )
    )


def find_posting(actor: User | None, idempotency_key: str | None) -> JournalEntry | None:
    """The entry ``actor`` already posted with this idempotency key, if any (a replay)."""
    return _existing_entry(actor, idempotency_key)


@dataclass(frozen=True)
class AuditNote:
    """The audit line a posting writes in its own transaction (see ``bankapp.audit``)."""

    action: str
    target_type: str | None = None
    target_id: object = None
    details: dict | None = None


def _atomically(work: Callable[[], T], label: str) -> T:
    """Run ``work`` and commit it as one transaction, retrying serialization failures.

    Any error rolls everything back (so a refused posting leaves no row, not even its audit
    line); ``work`` is re-run from scratch on a retry, re-adding everything it writes.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = work()
            db.session.commit()
            return result
        except LedgerError:
            db.session.rollback()
            raise
        except IntegrityError:
            db.session.rollback()
            raise
        except DBAPIError as error:
            db.session.rollback()
            if not _is_retryable(error) or attempt == MAX_ATTEMPTS:
                raise
            log.info("retrying %s after %s (attempt %d)", label, error.orig, attempt)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def _post(entry_type: str, legs: list[Leg], description: str, actor: User | None,
          channel: str, idempotency_key: str | None, *, audit: AuditNote | None = None,
          reverses: JournalEntry | None = None,
          also: Callable[[JournalEntry], None] | None = None,
          posted_at: datetime | None = None) -> Posting:
    """Write one balanced journal entry and apply its legs, in one transaction.

    ``audit`` is the entry's audit line and ``also`` any further writes that must commit with
    it (a maker-checker decision); both run inside the transaction, so a retry re-adds them
    and a refusal writes neither. A replayed idempotency key writes nothing at all.
    """
    assert sum(leg.delta for leg in legs) == 0, "a journal entry must balance"
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise LedgerError("Invalid idempotency key.")
    # No look-up first: a key that was already used fails on the unique constraint of the
    # entry row (or is refused first), and we answer with the earlier entry.

    def work() -> JournalEntry:
        entry = _write_entry(entry_type, legs, description, actor, channel, idempotency_key,
                             reverses=reverses, posted_at=posted_at, audit=audit)
        if also is not None:
            also(entry)
        return entry

    try:
        return Posting(_atomically(work, entry_type))
    except (IntegrityError, LedgerError):
        # This key may already have posted (a replay, or a concurrent twin that committed
        # first). Balances move before the entry row is written, so a replay can meet a
        # refusal (the first posting spent the money, the account was frozen since) before
        # it meets the unique key: either way the answer is the earlier posting.
        replay = _existing_entry(actor, idempotency_key)
        if replay is not None:
            return Posting(replay, replayed=True)
        raise


def _audit_posting(note: AuditNote, entry: JournalEntry, actor: User | None) -> None:
    details = {"reference": entry.reference, "channel": entry.channel, **(note.details or {})}
    audit_trail.record(note.action, actor=actor, target_type=note.target_type,
                 target_id=note.target_id, details=details)


def _write_entry(entry_type, legs, description, actor, channel, idempotency_key, *,
                 reverses: JournalEntry | None = None, posted_at: datetime | None = None,
                 audit: AuditNote | None = None) -> JournalEntry:
    timestamp = _posting_time(posted_at)
    # Balances first, in account-id order (see "Concurrency" above). A concurrent twin with
    # the same idempotency key waits on the first account's row lock, then fails on the
    # unique key when the entry is inserted (or is refused, the money being spent); it is
    # rolled back whole and ``_post`` answers with the first one's entry.
    rows = []
    for leg in sorted(legs, key=lambda leg: leg.account.id):
        rows.append(Transaction(
            account_id=leg.account.id,
            transaction_type=leg.transaction_type,
            side="credit" if leg.delta > 0 else "debit",
            amount=abs(leg.delta),
            balance_after=_apply_leg(leg),
            timestamp=timestamp,
            description=description,
        ))
        # The account is in hand: reading leg.account later costs no SELECT.
        set_committed_value(rows[-1], "account", leg.account)
    entry = JournalEntry(
        reference=uuid.uuid4().hex,
        entry_type=entry_type,
        description=description,
        actor_id=actor.id if actor is not None else None,
        channel=channel,
        idempotency_key=idempotency_key,
        reverses_id=reverses.id if reverses is not None else None,
        created_at=timestamp,
        legs=rows,
    )
    db.session.add(entry)
    if audit is not None:
        _audit_posting(audit, entry, actor)
    # One flush writes the entry (a reused idempotency key fails here), its legs and its
    # audit line.
    db.session.flush()
    # Last, after every account lock: the report buckets (see bankapp/ledger_totals.py).
    ledger_totals.count_movements(rows)
    return entry


def _posting_time(posted_at: datetime | None) -> datetime:
    """Now, or an earlier moment when importing history (demo data, a migration)."""
    now = now_utc()
    if posted_at is None:
        return now
    if posted_at.tzinfo is None or posted_at > now:
        raise LedgerError("A posting time must be timezone-aware and not in the future.")
    return posted_at


def deposit(account: Account, amount, description: str, actor: User | None, *,
            channel: str = Channel.WEB, idempotency_key: str | None = None,
            cash_account: Account | None = None,
            also: Callable[[JournalEntry], None] | None = None,
            posted_at: datetime | None = None) -> Posting:
    """Credit ``account`` with cash taken into ``cash_account`` (the vault by default).

    ``also(entry)``, when given, makes further writes that commit with this posting.
    """
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(account)
    cash = cash_account or internal_account()
    legs = [Leg(account, TransactionType.DEPOSIT, amount),
            Leg(cash, TransactionType.DEPOSIT, -amount)]
    note = _account_note(Action.DEPOSIT, account, amount, cash_account=cash.account_number)
    return _post(EntryType.DEPOSIT, legs, description, actor, channel, idempotency_key,
                 audit=note, also=also, posted_at=posted_at)


def withdraw(account: Account, amount, description: str, actor: User | None, *,
             channel: str = Channel.WEB, idempotency_key: str | None = None,
             cash_account: Account | None = None,
             also: Callable[[JournalEntry], None] | None = None,
             posted_at: datetime | None = None) -> Posting:
    """Debit ``account``, paying the cash out of ``cash_account`` (the vault by default).

    ``also(entry)``, when given, makes further writes that commit with this posting.
    """
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(account)
    cash = cash_account or internal_account()
    legs = [Leg(account, TransactionType.WITHDRAWAL, -amount),
            Leg(cash, TransactionType.WITHDRAWAL, amount)]
    note = _account_note(Action.WITHDRAWAL, account, amount, cash_account=cash.account_number)
    return _post(EntryType.WITHDRAWAL, legs, description, actor, channel, idempotency_key,
                 audit=note, also=also, posted_at=posted_at)


def transfer(source: Account, destination: Account | str, amount, description: str,
             actor: User | None, *, channel: str = Channel.WEB,
             idempotency_key: str | None = None, posted_at: datetime | None = None,
             also: Callable[[JournalEntry], None] | None = None) -> Posting:
    """Move ``amount`` from ``source`` to the active customer account ``destination`` (the
    account, or its number).

    Writes a TRANSFER_OUT leg on the source and a TRANSFER_IN leg on the destination, sharing
    the entry's reference. ``also(entry)``, when given, makes further writes that commit with
    this posting.
    """
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(source)
    if isinstance(destination, str):
        destination = find_customer_account(destination)
    _require_customer_account(destination)
    if destination.id == source.id:
        raise SameAccount()
    legs = [Leg(source, TransactionType.TRANSFER_OUT, -amount),
            Leg(destination, TransactionType.TRANSFER_IN, amount)]
    note = _account_note(Action.TRANSFER, source, amount,
                         destination=destination.account_number)
    return _post(EntryType.TRANSFER, legs, description, actor, channel, idempotency_key,
                 audit=note, also=also, posted_at=posted_at)


def _account_note(action: str, account: Account, amount: Decimal, **details) -> AuditNote:
    return AuditNote(action, TargetType.ACCOUNT, account.account_number,
                     {"amount": amount, **details})


def _require_customer_account(account: Account) -> None:
    if account is None or account.account_type not in AccountType.CUSTOMER:
        raise UnknownAccount()


# ---------------------------------------------------------------- tills (cash drawers)


def till_number(teller: User) -> str:
    return f"{TILL_PREFIX}{teller.id}"


def till_for(teller: User) -> Account:
    """The teller's till (one per teller, number ``GL-TILL-<user id>``), created on first use.

    Only active staff get a new till (``TellerNotServing`` otherwise, and nothing is written);
    an existing till is returned whoever holds it, so its cash can still be settled.
    """
    till = find_till(teller)
    if till is not None:
        return till
    _require_serving(teller)
    return internal_account(AccountType.TILL, till_number(teller), f"Till of {teller.email}"[:80])


def over_short_account() -> Account:
    """Where cash counted over or short at a shift close is booked."""
    return internal_account(AccountType.OVER_SHORT, OVER_SHORT_NUMBER, "Cash over/short")


def find_till(teller: User) -> Account | None:
    """The teller's till if it exists (read-only: pages that only show it create nothing)."""
    return db.session.scalar(sa.select(Account).where(Account.account_number == till_number(teller)))


def cash_held(till: Account | None) -> Decimal:
    """The cash the book says ``till`` holds (its balance is credit-positive: minus the cash)."""
    if till is None:
        return _money(0)
    balance = db.session.scalar(sa.select(Account.balance).where(Account.id == till.id))
    return _money(-(balance or 0))


def _require_till(till: Account) -> None:
    if till is None or till.account_type != AccountType.TILL:
        raise UnknownAccount("No such till.")


class TellerNotServing(LedgerError):
    default_message = "This person is no longer active staff: their till takes no new cash."


def _require_serving(teller: User | None) -> None:
    """Refuse cash for the till of someone deactivated or no longer a teller or admin."""
    if teller is None:
        raise TellerNotServing()
    if not teller.is_staff:
        raise TellerNotServing(f"{teller.email} is no longer staff: their till takes no new cash.")
    if not teller.is_active:
        raise TellerNotServing(f"{teller.email} is deactivated: their till takes no new cash.")


def _till_teller(till: Account) -> User | None:
    """The staff member whose till this is (its number is ``GL-TILL-<user id>``)."""
    user_id = till.account_number.removeprefix(TILL_PREFIX)
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def allocate_cash(till: Account, amount, actor: User, *, description: str = "",
                  idempotency_key: str | None = None) -> Posting:
    """Move cash from the vault into ``till`` (the start of a shift); refused when its teller
    is deactivated or no longer staff (``settle_cash`` still returns such a till's cash)."""
    amount = validate_amount(amount)
    _require_till(till)
    _require_serving(_till_teller(till))
    description = _clean_description(description) or "Cash allocated to till"
    legs = [Leg(till, TransactionType.CASH_IN, -amount),
            Leg(internal_account(), TransactionType.CASH_OUT, amount)]
    note = AuditNote(Action.TILL_ALLOCATE, TargetType.TILL, till.account_number,
                     {"amount": amount})
    return _post(EntryType.CASH_ALLOCATION, legs, description, actor, Channel.TELLER,
                 idempotency_key, audit=note)


def settle_cash(till: Account, amount, actor: User, *, description: str = "",
                idempotency_key: str | None = None) -> Posting:
    """Return cash from ``till`` to the vault; refused beyond the cash the till holds."""
    amount = validate_amount(amount)
    _require_till(till)
    description = _clean_description(description) or "Cash settled to vault"
    legs = [Leg(till, TransactionType.CASH_OUT, amount),
            Leg(internal_account(), TransactionType.CASH_IN, -amount)]
    note = AuditNote(Action.TILL_SETTLE, TargetType.TILL, till.account_number, {"amount": amount})
    return _post(EntryType.CASH_SETTLEMENT, legs, description, actor, Channel.TELLER,
                 idempotency_key, audit=note)


def parse_counted_cash(text: object) -> Decimal:
    """The cash a teller counted, as typed: like ``parse_amount``, but zero is allowed and the
    per-transaction limit does not apply (a drawer may hold more than one posting's worth)."""
    cleaned = text.strip(" \t") if isinstance(text, str) else ""
    if _AMOUNT_RE.fullmatch(cleaned) and any(c.isdigit() for c in cleaned):
        return validate_count(Decimal(cleaned.replace(",", "")))
    return parse_amount(text)  # refuses everything else, with the usual messages


def validate_count(amount: object) -> Decimal:
    """A counted cash total given as a ``Decimal``: finite, zero or more, whole cents."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise InvalidAmount("Amounts must be exact decimals, not floating-point numbers.")
    amount = Decimal(amount)
    if not amount.is_finite() or amount < 0:
        raise InvalidAmount("The counted cash must be zero or more.")
    if amount != amount.quantize(CENT):
        raise InvalidAmount("Use at most two decimal places.")
    if amount > MAX_BALANCE:
        raise InvalidAmount("The counted cash is larger than any till can hold.")
    return amount.quantize(CENT)


@dataclass(frozen=True)
class ShiftClose:
    """What closing a shift posted: the difference entry and the settlement, when any."""

    expected: Decimal
    counted: Decimal
    over_short: JournalEntry | None
    settlement: JournalEntry | None
    replayed: bool = False

    @property
    def difference(self) -> Decimal:
        """Positive when the drawer held more than the book (over), negative when short."""
        return self.counted - self.expected


def close_shift(till: Account, counted_cash, actor: User, *,
                idempotency_key: str | None = None) -> ShiftClose:
    """Close the till's shift: book any over/short, then return the counted cash to the vault.

    In one transaction: (1) when the counted cash differs from what the book expects, a
    CASH_OVER_SHORT entry moves the difference between the till and the over/short account,
    so the till's balance becomes minus the *counted* cash; (2) a CASH_SETTLEMENT entry
    returns all the counted cash to the vault. The till ends at zero, every entry balances,
    and one ``till.close_shift`` audit line records expected, counted and both references.
    """
    counted = validate_count(counted_cash)
    _require_till(till)
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 48):
        raise LedgerError("Invalid idempotency key.")
    keys = ((f"os-{idempotency_key}", f"st-{idempotency_key}") if idempotency_key
            else (None, None))
    replay = _replayed_close(actor, keys)
    if replay is not None:
        return replay
    over_short = over_short_account()
    vault = internal_account()

    def work() -> ShiftClose:
        # Lock the till row: the expected cash must not move between reading and posting.
        balance = db.session.scalar(
            sa.select(Account.balance).where(Account.id == till.id).with_for_update())
        expected = _money(-balance)
        difference = counted - expected
        difference_entry = settlement = None
        if difference:
            kind = "over" if difference > 0 else "short"
            difference_entry = _write_entry(
                EntryType.CASH_OVER_SHORT,
                [Leg(till, TransactionType.CASH_IN if difference > 0 else TransactionType.CASH_OUT,
                     -difference),
                 Leg(over_short, TransactionType.CASH_OUT if difference > 0
                     else TransactionType.CASH_IN, difference)],
                f"Shift close: cash {kind} by {abs(difference):,.2f}", actor, Channel.TELLER,
                keys[0])
        if counted:
            settlement = _write_entry(
                EntryType.CASH_SETTLEMENT,
                [Leg(till, TransactionType.CASH_OUT, counted),
                 Leg(vault, TransactionType.CASH_IN, -counted)],
                "Shift close: counted cash settled to vault", actor, Channel.TELLER, keys[1])
        audit_trail.record(Action.TILL_CLOSE_SHIFT, actor=actor, target_type=TargetType.TILL,
                           target_id=till.account_number, details={
                               "expected": expected, "counted": counted,
                               "difference": difference,
                               "over_short_reference": getattr(difference_entry, "reference", None),
                               "settlement_reference": getattr(settlement, "reference", None)})
        return ShiftClose(expected, counted, difference_entry, settlement)

    try:
        return _atomically(work, "close_shift")
    except IntegrityError:
        replay = _replayed_close(actor, keys)
        if replay is not None:
            return replay
        raise


def _replayed_close(actor: User, keys: tuple[str | None, str | None]) -> ShiftClose | None:
    """The shift close an earlier call with the same key posted, rebuilt from its entries."""
    difference_entry = _existing_entry(actor, keys[0])
    settlement = _existing_entry(actor, keys[1])
    if difference_entry is None and settlement is None:
        return None
    counted = settlement.legs[0].amount if settlement is not None else Decimal("0.00")
    difference = Decimal("0.00")
    if difference_entry is not None:
        till_leg = next(leg for leg in difference_entry.legs
                        if leg.account.account_type == AccountType.TILL)
        difference = -till_leg.signed_amount
    return ShiftClose(counted - difference, counted, difference_entry, settlement, replayed=True)


# ---------------------------------------------------------------- reversals


class NotReversible(LedgerError):
    default_message = "This entry cannot be reversed."


class ReasonRequired(LedgerError):
    default_message = "Give a reason."


def _clean_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise ReasonRequired()
    if len(text) > MAX_REASON:
        raise ReasonRequired(f"The reason may be at most {MAX_REASON} characters.")
    return text


def find_entry(reference: str) -> JournalEntry | None:
    return db.session.scalar(
        sa.select(JournalEntry).where(JournalEntry.reference == (reference or "").strip().lower()))


def reversal_of(entry: JournalEntry) -> JournalEntry | None:
    """The entry that reversed ``entry``, if any."""
    return db.session.scalar(sa.select(JournalEntry).where(JournalEntry.reverses_id == entry.id))


def reverse_entry(entry: JournalEntry, reason: str, actor: User) -> Posting:
    """Post the compensating entry of ``entry``: every leg again with its side flipped.

    The original is never edited. Refused (nothing written) when the entry is a reversal
    itself, is already reversed (also a UNIQUE index on ``reverses_id``), or when flipping a
    leg would overdraw its account or take more cash from a till than it holds.
    """
    reason = _clean_reason(reason)
    if entry is None:
        raise NotReversible("No entry has that reference.")
    if entry.entry_type == EntryType.REVERSAL:
        raise NotReversible("A reversal cannot be reversed; post a new entry instead.")
    if reversal_of(entry) is not None:
        raise NotReversible("This entry has already been reversed.")
    legs = [Leg(leg.account, TransactionType.REVERSAL, -leg.signed_amount) for leg in entry.legs]
    description = f"Reversal of {entry.reference}: {reason}"[:MAX_DESCRIPTION]
    note = AuditNote(Action.REVERSAL, TargetType.JOURNAL_ENTRY, entry.reference,
                     {"reason": reason, "reverses": entry.reference})
    try:
        return _post(EntryType.REVERSAL, legs, description, actor, Channel.TELLER, None,
                     audit=note, reverses=entry)
    except (IntegrityError, LedgerError):
        # A concurrent reversal won: we met its unique index, or a balance it already moved.
        if reversal_of(entry) is not None:
            raise NotReversible("This entry has already been reversed.") from None
        raise


# ---------------------------------------------------------------- maker-checker


class DecisionRefused(LedgerError):
    default_message = "This request cannot be decided."


@dataclass(frozen=True)
class Requested:
    """A counter posting held for approval; ``replayed`` when the key found an earlier one."""

    pending: PendingPosting
    replayed: bool = False


def approval_threshold() -> Decimal:
    return Decimal(current_app.config["MAKER_CHECKER_THRESHOLD"])


def teller_posting(kind: str, account: Account, amount, description: str, teller: User, *,
                   idempotency_key: str | None = None) -> Posting | Requested:
    """Cash at the counter, through the teller's till: posted now, or held for approval when
    the amount is above ``MAKER_CHECKER_THRESHOLD`` (exactly the threshold posts)."""
    amount = validate_amount(amount)
    if kind not in PendingPostingKind.ALL:
        raise LedgerError("Choose a deposit or a withdrawal.")
    if amount > approval_threshold():
        return request_posting(kind, account, amount, description, teller,
                               idempotency_key=idempotency_key)
    post = deposit if kind == PendingPostingKind.DEPOSIT else withdraw
    return post(account, amount, description, teller, channel=Channel.TELLER,
                idempotency_key=idempotency_key, cash_account=till_for(teller))


def _existing_request(teller: User, key: str | None) -> PendingPosting | None:
    if not key:
        return None
    return db.session.scalar(sa.select(PendingPosting).where(
        PendingPosting.requested_by_id == teller.id, PendingPosting.idempotency_key == key))


def request_posting(kind: str, account: Account, amount, description: str, teller: User, *,
                    idempotency_key: str | None = None) -> Requested:
    """Hold a counter posting for a second person's approval. Moves no money."""
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(account)
    if kind not in PendingPostingKind.ALL:
        raise LedgerError("Choose a deposit or a withdrawal.")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise LedgerError("Invalid idempotency key.")
    replay = _existing_request(teller, idempotency_key)
    if replay is not None:
        return Requested(replay, replayed=True)
    if not account.is_active:
        raise AccountNotActive(f"This account is {account.status} and cannot move money.")

    def work() -> PendingPosting:
        pending = PendingPosting(kind=kind, account_id=account.id, amount=amount,
                                 description=description, requested_by_id=teller.id,
                                 idempotency_key=idempotency_key, status=PendingStatus.PENDING)
        db.session.add(pending)
        db.session.flush()
        audit_trail.record(Action.TELLER_REQUEST, actor=teller,
                           target_type=TargetType.PENDING_POSTING,
                           target_id=pending.id, details={
                               "kind": kind, "amount": amount,
                               "account": account.account_number})
        return pending

    try:
        return Requested(_atomically(work, "request_posting"))
    except IntegrityError:
        replay = _existing_request(teller, idempotency_key)
        if replay is not None:
            return Requested(replay, replayed=True)
        raise


def _check_decision(pending: PendingPosting, checker: User) -> None:
    if pending.requested_by_id == checker.id:
        raise DecisionRefused("You cannot decide your own request: another person must check it.")
    if not pending.is_pending:
        raise DecisionRefused(f"This request was already {pending.status}.")


def _decide(pending: PendingPosting, checker: User, status: str, note: str | None,
            entry: JournalEntry | None) -> None:
    """Mark ``pending`` decided, only if it still is pending (two checkers cannot both win)."""
    changed = db.session.execute(
        sa.update(PendingPosting)
        .where(PendingPosting.id == pending.id, PendingPosting.status == PendingStatus.PENDING)
        .values(status=status, decided_by_id=checker.id, decided_at=now_utc(),
                decision_note=note or None, entry_id=entry.id if entry is not None else None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise DecisionRefused("This request was already decided.")
    action = Action.TELLER_APPROVE if status == PendingStatus.APPROVED else Action.TELLER_REJECT
    details = {"kind": pending.kind, "amount": pending.amount, "note": note or None,
               "requested_by": pending.requested_by_id}
    if entry is not None:
        details["reference"] = entry.reference
    audit_trail.record(action, actor=checker, target_type=TargetType.PENDING_POSTING,
                       target_id=pending.id, details=details)


def approve_posting(pending: PendingPosting, checker: User, note: str = "") -> Posting:
    """Post a held request into the requesting teller's till; only now does money move.

    The posting, the request's decision and both audit lines commit together; refused when
    the checker is the maker, the request is decided, or the ledger refuses the posting.
    """
    note = _clean_description(note)
    _check_decision(pending, checker)
    teller = pending.requested_by
    if not (teller.is_active and teller.is_staff):
        # The cash would go through the requester's till: they must still be serving.
        raise DecisionRefused("The requesting teller is no longer active staff: reject the "
                              "request and post it again from an active teller.")
    post = deposit if pending.kind == PendingPostingKind.DEPOSIT else withdraw
    posting = post(pending.account, pending.amount, pending.description, teller,
                   channel=Channel.TELLER, cash_account=till_for(teller),
                   also=lambda entry: _decide(pending, checker, PendingStatus.APPROVED, note,
                                              entry))
    db.session.refresh(pending)
    return posting


def reject_posting(pending: PendingPosting, checker: User, note: str) -> PendingPosting:
    """Refuse a held request with a reason; no money moves."""
    note = _clean_reason(note)
    _check_decision(pending, checker)
    _atomically(lambda: _decide(pending, checker, PendingStatus.REJECTED, note, None),
                "reject_posting")
    db.session.refresh(pending)
    return pending


# ---------------------------------------------------------------- freezing accounts


def freeze_account(account: Account, reason: str, actor: User) -> Account:
    """Freeze an active customer account: it then accepts no debit or credit at all."""
    return _set_status(account, AccountStatus.ACTIVE, AccountStatus.FROZEN, reason, actor,
                       Action.FREEZE)


def unfreeze_account(account: Account, reason: str, actor: User) -> Account:
    """Make a frozen customer account active again (the reason goes to the audit trail)."""
    return _set_status(account, AccountStatus.FROZEN, AccountStatus.ACTIVE, reason, actor,
                       Action.UNFREEZE)


def _set_status(account: Account, current: str, new: str, reason: str, actor: User,
                action: str) -> Account:
    reason = _clean_reason(reason)
    _require_customer_account(account)

    def work() -> None:
        # Conditional: two staff freezing at once write one change and one refusal.
        changed = db.session.execute(
            sa.update(Account)
            .where(Account.id == account.id, Account.status == current)
            .values(status=new, status_reason=reason if new == AccountStatus.FROZEN else None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            status = db.session.scalar(sa.select(Account.status).where(Account.id == account.id))
            raise AccountNotActive(f"This account is {status}, not {current}.")
        audit_trail.record(action, actor=actor, target_type=TargetType.ACCOUNT,
                           target_id=account.account_number,
                           details={"reason": reason, "from": current, "to": new})

    _atomically(work, action)
    db.session.refresh(account)
    return account


# ---------------------------------------------------------------- reconciliation


@dataclass
class Reconciliation:
    problems: list[str]
    accounts: int
    entries: int
    legs: int
    customer_total: Decimal

    @property
    def clean(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        state = "clean" if self.clean else f"{len(self.problems)} problem(s)"
        return (f"ledger {state}: {self.accounts} accounts, {self.entries} entries, "
                f"{self.legs} legs, customer balances {self.customer_total:,.2f}")


def _signed(column_amount=Transaction.amount):
    return sa.case((Transaction.side == "credit", column_amount), else_=-column_amount)


def _money(value) -> Decimal:
    return Decimal(value if value is not None else 0).quantize(CENT)


def reconcile() -> Reconciliation:
    """Check every invariant of the book; return the problems found (none when clean)."""
    problems: list[str] = []
    session = db.session

    unbalanced = session.execute(
        sa.select(JournalEntry.reference, sa.func.round(sa.func.sum(_signed()), 2),
                  sa.func.count(Transaction.id))
        .join(Transaction, Transaction.entry_id == JournalEntry.id, isouter=True)
        .group_by(JournalEntry.id, JournalEntry.reference)
    ).all()
    for reference, total, legs in unbalanced:
        if legs < 2 or _money(total) != 0:
            problems.append(f"entry {reference}: {legs} leg(s) summing to {_money(total)}")

    sums = dict(session.execute(
        sa.select(Transaction.account_id, sa.func.round(sa.func.sum(_signed()), 2))
        .group_by(Transaction.account_id)
    ).all())
    latest = dict(session.execute(
        sa.select(Transaction.account_id, Transaction.balance_after).where(
            Transaction.id.in_(sa.select(sa.func.max(Transaction.id))
                               .group_by(Transaction.account_id))
        )
    ).all())
    accounts = session.execute(
        sa.select(Account.id, Account.account_number, Account.account_type, Account.balance)
    ).all()
    total = Decimal("0.00")
    customer_total = Decimal("0.00")
    for account_id, number, account_type, balance in accounts:
        balance = _money(balance)
        total += balance
        if account_type in AccountType.CUSTOMER:
            customer_total += balance
            if balance < 0:
                problems.append(f"account {number}: negative balance {balance}")
        ledger_sum = _money(sums.get(account_id))
        if ledger_sum != balance:
            problems.append(f"account {number}: balance {balance} but its legs sum to {ledger_sum}")
        if account_id in latest and _money(latest[account_id]) != balance:
            problems.append(f"account {number}: balance {balance} but the latest "
                            f"balance_after is {_money(latest[account_id])}")
    if total != 0:
        problems.append(f"book out of balance: all balances sum to {total}, not 0.00")

    problems.extend(_broken_running_balances())
    problems.extend(ledger_totals.problems())
    entries = session.scalar(sa.select(sa.func.count(JournalEntry.id))) or 0
    legs = session.scalar(sa.select(sa.func.count(Transaction.id))) or 0
    return Reconciliation(problems, len(accounts), entries, legs, customer_total)


def _broken_running_balances(limit: int = 50) -> list[str]:
    """Legs whose balance_after is not the previous leg's plus their own amount."""
    previous = sa.func.lag(Transaction.balance_after).over(
        partition_by=Transaction.account_id, order_by=Transaction.id)
    chain = sa.select(
        Transaction.id, Transaction.account_id, Transaction.balance_after,
        _signed().label("signed"), previous.label("previous"),
    ).subquery()
    expected = sa.func.round(sa.func.coalesce(chain.c.previous, 0) + chain.c.signed, 2)
    rows = db.session.execute(
        sa.select(chain.c.id, Account.account_number, chain.c.balance_after, expected)
        .join(Account, Account.id == chain.c.account_id)
        .where(sa.func.round(chain.c.balance_after, 2) != expected)
        .order_by(chain.c.id)
        .limit(limit)
    ).all()
    return [f"account {number}: leg {leg_id} has balance_after {_money(after)}, "
            f"expected {_money(exp)}" for leg_id, number, after, exp in rows]


def customer_history(account: Account):
    """The customer-facing history of ``account``: its own legs, newest first (a query)."""
    return (sa.select(Transaction)
            .where(Transaction.account_id == account.id)
            .order_by(Transaction.timestamp.desc(), Transaction.id.desc()))


def latest_activity(owner: User, limit: int = 10) -> list[Transaction]:
    """The newest legs across all of ``owner``'s accounts."""
    return list(db.session.scalars(
        sa.select(Transaction)
        .join(Account, Account.id == Transaction.account_id)
        .where(Account.owner_id == owner.id)
        .order_by(Transaction.timestamp.desc(), Transaction.id.desc())
        .limit(limit)
    ))


__all__ = [
    "Posting", "LedgerError", "InsufficientFunds", "AccountNotActive", "InvalidAmount", "SameAccount",
    "UnknownAccount", "LimitExceeded", "InvalidDescription", "parse_amount", "validate_amount",
    "open_account", "internal_account", "find_customer_account", "find_customer_accounts",
    "deposit", "withdraw", "find_posting",
    "transfer", "reconcile", "Reconciliation", "customer_history", "latest_activity",
    "AuditNote", "till_for", "till_number", "over_short_account", "cash_held", "allocate_cash",
    "settle_cash", "close_shift", "ShiftClose", "parse_counted_cash", "validate_count",
    "TellerNotServing",
    "NotReversible", "ReasonRequired", "find_entry", "reversal_of", "reverse_entry",
    "DecisionRefused", "Requested", "approval_threshold", "teller_posting", "request_posting",
    "approve_posting", "reject_posting", "freeze_account", "unfreeze_account",
]

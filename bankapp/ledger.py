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
"""
from __future__ import annotations

import logging
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import DBAPIError, IntegrityError

from bankapp import ledger_totals
from bankapp.extensions import db
from bankapp.models import (
    Account,
    AccountStatus,
    AccountType,
    Channel,
    EntryType,
    JournalEntry,
    Transaction,
    TransactionType,
    User,
    now_utc,
)

log = logging.getLogger("bankapp.ledger")

CENT = Decimal("0.01")
# NUMERIC(12, 2): the largest balance the column can hold.
MAX_BALANCE = Decimal("9999999999.99")
MAX_DESCRIPTION = 255
MAX_ATTEMPTS = 5
VAULT_NUMBER = "GL-VAULT"


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
    number = (number or "").strip().upper()
    return db.session.scalar(
        sa.select(Account).where(
            Account.account_number == number,
            Account.account_type.in_(AccountType.CUSTOMER),
        )
    )


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


def _apply_leg(leg: Leg) -> Decimal:
    """Apply one leg atomically; return the new balance or raise why it was refused."""
    low, high = _bounds(leg.account)
    # round() keeps SQLite exact: it has no decimal type and adds in binary floating point.
    new_balance = sa.func.round(Account.balance + leg.delta, 2)
    result = db.session.execute(
        sa.update(Account)
        .where(
            Account.id == leg.account.id,
            Account.status == AccountStatus.ACTIVE,
            new_balance.between(low, high),
        )
        .values(balance=new_balance)
        .returning(Account.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if result is not None:
        return Decimal(result).quantize(CENT)
    _raise_refusal(leg, low, high)


def _raise_refusal(leg: Leg, low: Decimal, high: Decimal):
    status, balance = db.session.execute(
        sa.select(Account.status, Account.balance).where(Account.id == leg.account.id)
    ).one()
    if status != AccountStatus.ACTIVE:
        which = ("The destination account" if leg.transaction_type == TransactionType.TRANSFER_IN
                 else "This account")
        raise AccountNotActive(f"{which} is {status} and cannot move money.")
    if balance + leg.delta < low:
        if leg.account.account_type == AccountType.TILL:
            raise InsufficientFunds("The till does not hold enough cash for this withdrawal.")
        raise InsufficientFunds()
    raise LimitExceeded("The receiving balance would exceed the largest balance an account "
                        "can hold.")


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


def _post(entry_type: str, legs: list[Leg], description: str, actor: User | None,
          channel: str, idempotency_key: str | None) -> Posting:
    """Write one balanced journal entry and apply its legs, in one transaction."""
    assert sum(leg.delta for leg in legs) == 0, "a journal entry must balance"
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise LedgerError("Invalid idempotency key.")
    replay = _existing_entry(actor, idempotency_key)
    if replay is not None:
        return Posting(replay, replayed=True)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            entry = _write_entry(entry_type, legs, description, actor, channel, idempotency_key)
            db.session.commit()
            return Posting(entry)
        except LedgerError:
            db.session.rollback()
            raise
        except IntegrityError:
            db.session.rollback()
            replay = _existing_entry(actor, idempotency_key)
            if replay is not None:  # a concurrent request with the same key won
                return Posting(replay, replayed=True)
            raise
        except DBAPIError as error:
            db.session.rollback()
            if not _is_retryable(error) or attempt == MAX_ATTEMPTS:
                raise
            log.info("retrying %s after %s (attempt %d)", entry_type, error.orig, attempt)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def _write_entry(entry_type, legs, description, actor, channel, idempotency_key) -> JournalEntry:
    timestamp = now_utc()
    entry = JournalEntry(
        reference=uuid.uuid4().hex,
        entry_type=entry_type,
        description=description,
        actor_id=actor.id if actor is not None else None,
        channel=channel,
        idempotency_key=idempotency_key,
        created_at=timestamp,
    )
    db.session.add(entry)
    db.session.flush()  # claims the idempotency key first: a concurrent duplicate waits here
    rows = []
    for leg in sorted(legs, key=lambda leg: leg.account.id):
        balance_after = _apply_leg(leg)
        rows.append(Transaction(
            entry_id=entry.id,
            account_id=leg.account.id,
            transaction_type=leg.transaction_type,
            side="credit" if leg.delta > 0 else "debit",
            amount=abs(leg.delta),
            balance_after=balance_after,
            timestamp=timestamp,
            description=description,
        ))
    db.session.add_all(rows)
    db.session.flush()
    # Last, after every account lock: the report buckets (see bankapp/ledger_totals.py).
    ledger_totals.count_movements(rows)
    return entry


def deposit(account: Account, amount, description: str, actor: User | None, *,
            channel: str = Channel.WEB, idempotency_key: str | None = None,
            cash_account: Account | None = None) -> Posting:
    """Credit ``account`` with cash taken into ``cash_account`` (the vault by default)."""
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(account)
    cash = cash_account or internal_account()
    legs = [Leg(account, TransactionType.DEPOSIT, amount),
            Leg(cash, TransactionType.DEPOSIT, -amount)]
    return _post(EntryType.DEPOSIT, legs, description, actor, channel, idempotency_key)


def withdraw(account: Account, amount, description: str, actor: User | None, *,
             channel: str = Channel.WEB, idempotency_key: str | None = None,
             cash_account: Account | None = None) -> Posting:
    """Debit ``account``, paying the cash out of ``cash_account`` (the vault by default)."""
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(account)
    cash = cash_account or internal_account()
    legs = [Leg(account, TransactionType.WITHDRAWAL, -amount),
            Leg(cash, TransactionType.WITHDRAWAL, amount)]
    return _post(EntryType.WITHDRAWAL, legs, description, actor, channel, idempotency_key)


def transfer(source: Account, destination_number: str, amount, description: str,
             actor: User | None, *, channel: str = Channel.WEB,
             idempotency_key: str | None = None) -> Posting:
    """Move ``amount`` from ``source`` to the active customer account ``destination_number``.

    Writes a TRANSFER_OUT leg on the source and a TRANSFER_IN leg on the destination, sharing
    the entry's reference.
    """
    amount = validate_amount(amount)
    description = _clean_description(description)
    _require_customer_account(source)
    destination = find_customer_account(destination_number)
    if destination is None:
        raise UnknownAccount()
    if destination.id == source.id:
        raise SameAccount()
    legs = [Leg(source, TransactionType.TRANSFER_OUT, -amount),
            Leg(destination, TransactionType.TRANSFER_IN, amount)]
    return _post(EntryType.TRANSFER, legs, description, actor, channel, idempotency_key)


def _require_customer_account(account: Account) -> None:
    if account is None or account.account_type not in AccountType.CUSTOMER:
        raise UnknownAccount()


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
    "open_account", "internal_account", "find_customer_account", "deposit", "withdraw",
    "transfer", "reconcile", "Reconciliation", "customer_history", "latest_activity",
]

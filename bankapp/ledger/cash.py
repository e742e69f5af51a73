"""Cash drawers (tills): allocating and settling cash, and closing a teller's shift."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp import audit as audit_trail
from bankapp.platform import metrics
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger.accounts import internal_account
from bankapp.ledger.amounts import (
    CENT,
    MAX_BALANCE,
    clean_description,
    read_amount,
    to_money,
    validate_amount,
)
from bankapp.ledger.core import (
    AuditNote,
    EntryToPost,
    Leg,
    Posting,
    atomically,
    find_posting,
    post,
    write_entry,
)
from bankapp.ledger.errors import InvalidAmount, LedgerError, TellerNotServing, UnknownAccount
from bankapp.models import Account, AccountType, Channel, EntryType, JournalEntry, TransactionType, User

OVER_SHORT_NUMBER = "GL-OVER-SHORT"
TILL_PREFIX = "GL-TILL-"


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
        return to_money(0)
    balance = db.session.scalar(sa.select(Account.balance).where(Account.id == till.id))
    return to_money(-(balance or 0))


def _require_till(till: Account) -> None:
    if till is None or till.account_type != AccountType.TILL:
        raise UnknownAccount(gettext("No such till."))


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
    description = clean_description(description) or "Cash allocated to till"
    legs = [Leg(till, TransactionType.CASH_IN, -amount),
            Leg(internal_account(), TransactionType.CASH_OUT, amount)]
    note = AuditNote(Action.TILL_ALLOCATE, TargetType.TILL, till.account_number,
                     {"amount": amount})
    return post(EntryType.CASH_ALLOCATION, legs, description, actor, Channel.TELLER,
                 idempotency_key, audit=note)


def settle_cash(till: Account, amount, actor: User, *, description: str = "",
                idempotency_key: str | None = None) -> Posting:
    """Return cash from ``till`` to the vault; refused beyond the cash the till holds."""
    amount = validate_amount(amount)
    _require_till(till)
    description = clean_description(description) or "Cash settled to vault"
    legs = [Leg(till, TransactionType.CASH_OUT, amount),
            Leg(internal_account(), TransactionType.CASH_IN, -amount)]
    note = AuditNote(Action.TILL_SETTLE, TargetType.TILL, till.account_number, {"amount": amount})
    return post(EntryType.CASH_SETTLEMENT, legs, description, actor, Channel.TELLER,
                 idempotency_key, audit=note)


def parse_counted_cash(text: object, locale: str = "en") -> Decimal:
    """The cash a teller counted, as typed: like ``parse_amount``, but zero is allowed and the
    per-transaction limit does not apply (a drawer may hold more than one posting's worth)."""
    return validate_count(read_amount(text, locale))


def validate_count(amount: object) -> Decimal:
    """A counted cash total given as a ``Decimal``: finite, zero or more, whole cents."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise InvalidAmount(gettext("Amounts must be exact decimals, not floating-point numbers."))
    amount = Decimal(amount)
    if not amount.is_finite() or amount < 0:
        raise InvalidAmount(gettext("The counted cash must be zero or more."))
    if amount != amount.quantize(CENT):
        raise InvalidAmount(gettext("Use at most two decimal places."))
    if amount > MAX_BALANCE:
        raise InvalidAmount(gettext("The counted cash is larger than any till can hold."))
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


@metrics.counts_postings("SHIFT_CLOSE", refusals=(LedgerError,))
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
        raise LedgerError(gettext("Invalid idempotency key."))
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
        expected = to_money(-balance)
        difference = counted - expected
        difference_entry = settlement = None
        if difference:
            kind = "over" if difference > 0 else "short"
            difference_entry = write_entry(EntryToPost(
                EntryType.CASH_OVER_SHORT,
                (Leg(till, TransactionType.CASH_IN if difference > 0 else TransactionType.CASH_OUT,
                     -difference),
                 Leg(over_short, TransactionType.CASH_OUT if difference > 0
                     else TransactionType.CASH_IN, difference)),
                f"Shift close: cash {kind} by {abs(difference):,.2f}", actor, Channel.TELLER,
                keys[0]))
        if counted:
            settlement = write_entry(EntryToPost(
                EntryType.CASH_SETTLEMENT,
                (Leg(till, TransactionType.CASH_OUT, counted),
                 Leg(vault, TransactionType.CASH_IN, -counted)),
                "Shift close: counted cash settled to vault", actor, Channel.TELLER, keys[1]))
        audit_trail.record(Action.TILL_CLOSE_SHIFT, actor=actor, target_type=TargetType.TILL,
                           target_id=till.account_number, details={
                               "expected": expected, "counted": counted,
                               "difference": difference,
                               "over_short_reference": getattr(difference_entry, "reference", None),
                               "settlement_reference": getattr(settlement, "reference", None)})
        return ShiftClose(expected, counted, difference_entry, settlement)

    try:
        return atomically(work, "close_shift")
    except IntegrityError:
        replay = _replayed_close(actor, keys)
        if replay is not None:
            return replay
        raise


def _replayed_close(actor: User, keys: tuple[str | None, str | None]) -> ShiftClose | None:
    """The shift close an earlier call with the same key posted, rebuilt from its entries."""
    difference_entry = find_posting(actor, keys[0])
    settlement = find_posting(actor, keys[1])
    if difference_entry is None and settlement is None:
        return None
    counted = settlement.legs[0].amount if settlement is not None else Decimal("0.00")
    difference = Decimal("0.00")
    if difference_entry is not None:
        till_leg = next(leg for leg in difference_entry.legs
                        if leg.account.account_type == AccountType.TILL)
        difference = -till_leg.signed_amount
    return ShiftClose(counted - difference, counted, difference_entry, settlement, replayed=True)

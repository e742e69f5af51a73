"""Back-office queries and the non-money actions of the counter (money goes via the ledger)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import phonenumbers
import sqlalchemy as sa
from flask import current_app

from bankapp import audit, ledger
from bankapp.extensions import db
from bankapp.platform.formatting import bank_timezone, day_start_utc
from bankapp.models import (
    Account,
    AccountType,
    Channel,
    EntryType,
    JournalEntry,
    PendingPosting,
    PendingStatus,
    Role,
    Transaction,
    User,
)
from bankapp.platform.search import escape_like


def customer_search(query: str):
    """Customers matching ``query`` by partial email, phone, name or account number (a select)."""
    stmt = sa.select(User).where(User.role == Role.CUSTOMER)
    text = " ".join((query or "").split()).lower()
    if text:
        pattern = f"%{escape_like(text)}%"
        # Phone numbers are stored E.164 (+4420…): match what was typed without its spacing.
        digits = "".join(c for c in text if c.isdigit() or c == "+")
        international = international_phone(text)
        full_name = sa.func.lower(sa.func.coalesce(User.first_name, "") + " "
                                  + sa.func.coalesce(User.last_name, ""))
        matches = [
            User.email.like(pattern, escape="\\"),
            full_name.like(pattern, escape="\\"),
            User.id.in_(sa.select(Account.owner_id).where(
                sa.func.lower(Account.account_number).like(pattern, escape="\\"))),
        ]
        if digits:
            matches.append(User.phone_number.like(f"%{escape_like(digits)}%", escape="\\"))
        if international:
            matches.append(User.phone_number == international)
        stmt = stmt.where(sa.or_(*matches))
    return stmt.order_by(User.last_name, User.first_name, User.id)


def international_phone(text: str) -> str | None:
    """``0722 000 111`` → ``+254722000111`` when ``BANK_PHONE_REGION`` is KE: a number typed
    the local way, in E.164 as stored; None when it is no possible number there."""
    region = current_app.config.get("BANK_PHONE_REGION") or None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def customer_by_id(user_id: int) -> sa.Select:
    """The select of the customer with this id (a member of staff is not found)."""
    return sa.select(User).where(User.id == user_id, User.role == Role.CUSTOMER)


def verify_customer(customer: User, actor: User) -> bool:
    """Mark ``customer``'s identity checked at the counter; False when it already was."""
    if customer.is_verified:
        return False
    customer.is_verified = True
    audit.record(audit.Action.VERIFY_CUSTOMER, actor=actor, target_type=audit.TargetType.USER,
                 target_id=customer.id, details={"email": customer.email})
    db.session.commit()
    return True


@dataclass
class CounterLine:
    entry: JournalEntry
    leg: Transaction  # the customer's leg

    @property
    def cash_in(self) -> bool:
        return self.entry.entry_type == EntryType.DEPOSIT


@dataclass
class DeskDay:
    lines: list[CounterLine]
    total_in: Decimal
    total_out: Decimal


def start_of_today() -> datetime:
    """Midnight today in the bank's time zone, as a UTC timestamp."""
    return day_start_utc(datetime.now(bank_timezone()).date())


def desk_day(teller: User) -> DeskDay:
    """The teller's own counter postings since midnight, with cash totals in and out."""
    rows = db.session.execute(
        sa.select(JournalEntry, Transaction)
        .join(Transaction, Transaction.entry_id == JournalEntry.id)
        .join(Account, Account.id == Transaction.account_id)
        .where(JournalEntry.actor_id == teller.id,
               JournalEntry.channel == Channel.TELLER,
               JournalEntry.entry_type.in_((EntryType.DEPOSIT, EntryType.WITHDRAWAL)),
               JournalEntry.created_at >= start_of_today(),
               Account.account_type.in_(AccountType.CUSTOMER))
        .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
    ).all()
    lines = [CounterLine(entry, leg) for entry, leg in rows]
    total_in = sum((line.leg.amount for line in lines if line.cash_in), Decimal("0.00"))
    total_out = sum((line.leg.amount for line in lines if not line.cash_in), Decimal("0.00"))
    return DeskDay(lines, total_in, total_out)


def pending_requests(user: User, *, everyone: bool):
    """Pending maker-checker requests: all of them for a checker, else the user's own."""
    stmt = sa.select(PendingPosting).where(PendingPosting.status == PendingStatus.PENDING)
    if not everyone:
        stmt = stmt.where(PendingPosting.requested_by_id == user.id)
    return stmt.order_by(PendingPosting.created_at, PendingPosting.id)


def waiting_for(user: User) -> int:
    """How many pending requests wait on ``user``: for an admin, those they may decide
    (everyone's but their own); for a teller, their own."""
    if user.role == Role.ADMIN:
        stmt = pending_requests(user, everyone=True).where(
            PendingPosting.requested_by_id != user.id)
    else:
        stmt = pending_requests(user, everyone=False)
    return db.session.scalar(sa.select(sa.func.count()).select_from(
        stmt.order_by(None).subquery())) or 0


def recent_decisions(user: User, *, everyone: bool, limit: int = 20) -> list[PendingPosting]:
    stmt = sa.select(PendingPosting).where(PendingPosting.status != PendingStatus.PENDING)
    if not everyone:
        stmt = stmt.where(PendingPosting.requested_by_id == user.id)
    return list(db.session.scalars(
        stmt.order_by(PendingPosting.decided_at.desc(), PendingPosting.id.desc()).limit(limit)))


@dataclass
class TillView:
    teller: User
    till: Account | None
    cash: Decimal


def till_holder(user_id: int):
    """The user ``user_id`` when an admin may settle their till (a select): staff, or anyone
    who once was and still has a till, since its cash must be able to go back."""
    has_till = sa.exists().where(Account.account_number == f"{ledger.TILL_PREFIX}{user_id}")
    return sa.select(User).where(User.id == user_id, sa.or_(User.role.in_(Role.STAFF), has_till))


def tills_overview() -> list[TillView]:
    """Every staff member with the cash their till holds (no till yet: zero), and anyone no
    longer staff whose till still holds cash, so it can be settled."""
    tills = {account.account_number: account for account in db.session.scalars(
        sa.select(Account).where(Account.account_type == AccountType.TILL))}
    holders = sa.select(User).where(sa.or_(
        User.role.in_(Role.STAFF),
        User.id.in_([int(holder) for number, till in tills.items()
                     if till.balance != 0
                     and (holder := number.removeprefix(ledger.TILL_PREFIX)).isdigit()]),
    )).order_by(User.email)
    rows = []
    for user in db.session.scalars(holders):
        till = tills.get(ledger.till_number(user))
        rows.append(TillView(user, till, -till.balance if till else Decimal("0.00")))
    return rows

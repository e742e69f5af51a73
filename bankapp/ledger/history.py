"""What customers see of the ledger: their legs, newest first, each naming the other party.

The other party of a leg is the other side of its journal entry: for a transfer, the account
the money came from or went to. It is shown the way the account's owner knows it: one of
their own accounts by its type and number, an account they saved as a payee by the payee's
nickname, anyone else's by the holder's masked name (``B** B****``), never in full.
Deposits, withdrawals and interest have no other customer: they have no counterparty.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy import orm
from sqlalchemy.orm import aliased

from bankapp.extensions import db
from bankapp.ledger.accounts import account_number_as_typed
from bankapp.models import Account, AccountType, Payee, Transaction, TransactionType, User


def customer_history(account: Account):
    """The customer-facing history of ``account``: its own legs, newest first (a query)."""
    return (sa.select(Transaction)
            .where(Transaction.account_id == account.id)
            .order_by(Transaction.timestamp.desc(), Transaction.id.desc()))


@dataclass(frozen=True)
class HistoryFilter:
    """What a customer searches their history for; each part left empty matches everything.

    ``text`` is looked for in the description and in the nickname of the payee on the other
    side (any case); ``start``/``end`` bound the timestamp (``end`` excluded);
    ``least``/``most`` bound the amount; ``types`` are ``TransactionType`` values.
    """

    text: str = ""
    start: datetime | None = None
    end: datetime | None = None
    least: Decimal | None = None
    most: Decimal | None = None
    types: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.text or self.start or self.end or self.least is not None
                    or self.most is not None or self.types)


def filtered_history(account: Account, wanted: HistoryFilter):
    """``customer_history`` narrowed to what ``wanted`` asks for (a query).

    The account and the date range use the (account_id, timestamp, id) index; the other
    conditions only thin out the rows that index walks, newest first.
    """
    query = customer_history(account)
    if wanted.start is not None:
        query = query.where(Transaction.timestamp >= wanted.start)
    if wanted.end is not None:
        query = query.where(Transaction.timestamp < wanted.end)
    if wanted.least is not None:
        query = query.where(Transaction.amount >= wanted.least)
    if wanted.most is not None:
        query = query.where(Transaction.amount <= wanted.most)
    if wanted.types:
        query = query.where(Transaction.transaction_type.in_(wanted.types))
    if wanted.text:
        # LIKE's own wildcards in what was typed are searched for, not used.
        pattern = "%" + wanted.text.lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        query = query.where(sa.or_(
            sa.func.lower(Transaction.description).like(pattern, escape="\\"),
            _nickname_like(account, pattern)))
    return query


def _nickname_like(account: Account, pattern: str):
    """The leg's other side is an account the history's owner saved as a payee whose
    nickname is like ``pattern``: the name the history shows on that line."""
    named = (sa.select(Payee.account_id)
             .where(Payee.user_id == account.owner_id,
                    sa.func.lower(Payee.nickname).like(pattern, escape="\\")))
    other_leg = aliased(Transaction)
    # First whether any payee's nickname matches at all: asked once (it names no leg), and
    # mostly no, so the legs are not each looked up on the other side (2,500 of them in a
    # busy account's search, most of its time: issue 28). Then, if so, each leg's other side.
    return sa.and_(
        Transaction.transaction_type.in_(_BETWEEN_ACCOUNTS),
        named.exists(),
        sa.select(other_leg.id)
        .where(other_leg.entry_id == Transaction.entry_id,
               other_leg.id != Transaction.id,
               other_leg.account_id.in_(named))
        .exists())


def latest_activity(owner: User, limit: int = 10) -> list[Transaction]:
    """The newest legs across all of ``owner``'s accounts (two queries, whatever their number).

    Each account's own newest ``limit`` legs come from the (account_id, timestamp, id) index,
    read backwards; only those few are merged. One join ordered by time over all the owner's
    legs would make the database walk the whole bank's legs by timestamp (millions) until it
    met ``limit`` of this owner's.
    """
    account_ids = db.session.scalars(
        sa.select(Account.id).where(Account.owner_id == owner.id).order_by(Account.id)).all()
    if not account_ids:
        return []
    newest_of_each = [
        sa.select(Transaction.id).where(Transaction.account_id == account_id)
        .order_by(Transaction.timestamp.desc(), Transaction.id.desc()).limit(limit).subquery()
        for account_id in account_ids]
    candidates = sa.union_all(*[sa.select(newest.c.id) for newest in newest_of_each])
    return list(db.session.scalars(
        sa.select(Transaction)
        .where(Transaction.id.in_(sa.select(candidates.subquery().c.id)))
        # Pages name each leg's account and entry (its reference): loaded with them.
        .options(orm.selectinload(Transaction.entry), orm.selectinload(Transaction.account))
        .order_by(Transaction.timestamp.desc(), Transaction.id.desc())
        .limit(limit)
    ))


def masked_name(account: Account) -> str:
    """``Bob Brown`` → ``B** B****``: enough to recognise a payee, not to learn their name."""
    owner = account.owner
    return mask_name(owner.first_name, owner.last_name) if owner else mask_name(None, None)


def mask_name(first_name: str | None, last_name: str | None) -> str:
    """``masked_name`` of a holder whose names were read without their user row."""
    parts = [p for p in (first_name, last_name) if p]
    if not parts:
        return gettext("Account holder")
    return " ".join(p[0] + "*" * max(len(p) - 1, 2) for p in parts)


def own_account_label(account: Account) -> str:
    """One of the customer's own accounts as they know it: ``Savings ACC-123456789``."""
    return f"{gettext(account.type_label)} {account.account_number}"


@dataclass(frozen=True)
class KnownAccounts:
    """Customer accounts by number as one customer may be shown them: their holders' masked
    names and that customer's payee nicknames for them (by account id), so ``party_name``
    names any of them without a query."""

    by_number: dict[str, Account]
    nicknames: dict[int, str]
    holders: dict[int, str]

    def includes(self, account: Account) -> bool:
        return self.by_number.get(account.account_number) is account

    def masked_name(self, account: Account) -> str:
        """``masked_name(account)``, without loading its owner when this read holds it."""
        if self.includes(account):
            return self.holders[account.id]
        return masked_name(account)


def find_accounts_known_to(user: User, first: str | None, second: str | None
                           ) -> KnownAccounts:
    """The customer accounts with these two numbers (as typed), their holders' masked names
    and ``user``'s nicknames for them, in one query (a transfer form reads its two accounts
    so: the pages that follow name the destination with what this read)."""
    rows = db.session.execute(_known_accounts_query(), {
        "user_id": user.id, "first": account_number_as_typed(first),
        "second": account_number_as_typed(second)})
    by_number, nicknames, holders = {}, {}, {}
    for account, nickname, first_name, last_name in rows:
        by_number[account.account_number] = account
        holders[account.id] = mask_name(first_name, last_name)
        if nickname is not None:
            nicknames[account.id] = nickname
    return KnownAccounts(by_number, nicknames, holders)


# Built once, with bind parameters: a transfer form runs it on each of its requests, and
# building the expression (its joins) cost more CPU than running it. The holders' names are
# plain columns: loading each owner's row (a joined eager load) cost more than the rest.
@functools.cache
def _known_accounts_query() -> sa.Select:
    holder = aliased(User)
    return (sa.select(Account, Payee.nickname, holder.first_name, holder.last_name)
            .outerjoin(Payee, sa.and_(Payee.account_id == Account.id,
                                      Payee.user_id == sa.bindparam("user_id")))
            .outerjoin(holder, holder.id == Account.owner_id)
            .where(Account.account_number.in_([sa.bindparam("first"), sa.bindparam("second")]),
                   Account.account_type.in_([sa.literal(kind) for kind in AccountType.CUSTOMER])))


def party_name(owner: User, account: Account, known: KnownAccounts | None = None) -> str:
    """``account`` as ``owner`` knows it (one of theirs, a payee's nickname, a masked name),
    the way their history will name it; no query when ``known`` (read for ``owner``) holds
    the account."""
    if account.owner_id == owner.id:
        return own_account_label(account)
    if known is not None and known.includes(account):
        return known.nicknames.get(account.id) or known.masked_name(account)
    nickname = db.session.scalar(sa.select(Payee.nickname).where(
        Payee.user_id == owner.id, Payee.account_id == account.id))
    return nickname or masked_name(account)


# Legs that move money between two customer accounts: the other leg names someone.
_BETWEEN_ACCOUNTS = (TransactionType.TRANSFER_IN, TransactionType.TRANSFER_OUT,
                     TransactionType.REVERSAL)


def counterparties(legs) -> dict[int, str]:
    """The other party of each leg, by leg id, as its account's owner knows it.

    Legs with no other customer (cash, interest, the bank's own accounts) are left out.
    One query whatever the number of legs: the other legs with their accounts, their
    holders' names and the owners' payee nicknames for them.
    """
    legs = [leg for leg in legs if leg.transaction_type in _BETWEEN_ACCOUNTS]
    if not legs:
        return {}
    rows = db.session.execute(_counterparties_query(), {"leg_ids": [leg.id for leg in legs]})
    named = {}
    for leg_id, owner_id, other, nickname in rows:
        if other.owner_id == owner_id:
            named[leg_id] = own_account_label(other)
        else:
            named[leg_id] = nickname or masked_name(other)
    return named


# Built once (the account page and the dashboard run it on every visit).
@functools.cache
def _counterparties_query() -> sa.Select:
    other_leg, other_account = aliased(Transaction), aliased(Account)
    return (sa.select(Transaction.id, Account.owner_id, other_account, Payee.nickname)
            .join(Account, Account.id == Transaction.account_id)
            .join(other_leg, sa.and_(other_leg.entry_id == Transaction.entry_id,
                                     other_leg.id != Transaction.id))
            .join(other_account, other_account.id == other_leg.account_id)
            .outerjoin(Payee, sa.and_(Payee.user_id == Account.owner_id,
                                      Payee.account_id == other_account.id))
            .where(Transaction.id.in_(sa.bindparam("leg_ids", expanding=True)),
                   other_account.account_type.in_([sa.literal(kind)
                                                    for kind in AccountType.CUSTOMER]))
            .options(orm.joinedload(other_account.owner)
                     .load_only(User.first_name, User.last_name)))

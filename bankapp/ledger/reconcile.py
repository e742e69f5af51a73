"""Reconciliation: check every invariant of the book and report what is broken."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from bankapp.ledger import totals
from bankapp.extensions import db
from bankapp.ledger.amounts import to_money
from bankapp.models import Account, AccountType, JournalEntry, Transaction


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
        if legs < 2 or to_money(total) != 0:
            problems.append(f"entry {reference}: {legs} leg(s) summing to {to_money(total)}")

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
        balance = to_money(balance)
        total += balance
        if account_type in AccountType.CUSTOMER:
            customer_total += balance
            if balance < 0:
                problems.append(f"account {number}: negative balance {balance}")
        ledger_sum = to_money(sums.get(account_id))
        if ledger_sum != balance:
            problems.append(f"account {number}: balance {balance} but its legs sum to {ledger_sum}")
        if account_id in latest and to_money(latest[account_id]) != balance:
            problems.append(f"account {number}: balance {balance} but the latest "
                            f"balance_after is {to_money(latest[account_id])}")
    if total != 0:
        problems.append(f"book out of balance: all balances sum to {total}, not 0.00")

    problems.extend(_broken_running_balances())
    problems.extend(totals.problems())
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
    return [f"account {number}: leg {leg_id} has balance_after {to_money(after)}, "
            f"expected {to_money(exp)}" for leg_id, number, after, exp in rows]

"""What customers see of the ledger: their legs, newest first."""
from __future__ import annotations

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import Account, Transaction, User


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

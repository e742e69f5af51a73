"""Customer and internal accounts: opening them and finding them by number."""
from __future__ import annotations

import re
import secrets
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp.extensions import db
from bankapp.ledger.errors import LedgerError
from bankapp.models import Account, AccountStatus, AccountType, Role, User

VAULT_NUMBER = "GL-VAULT"


def may_deposit(role: str) -> bool:
    """Whether a user with ``role`` may deposit by web or API: staff always (cash counted at
    the counter); customers only where ``CUSTOMER_SELF_DEPOSITS`` is on (development, demo)."""
    return role in Role.STAFF or bool(current_app.config["CUSTOMER_SELF_DEPOSITS"])


def open_account(owner: User, account_type: str) -> Account:
    """Open a customer account with a fresh random ``ACC-`` number and a zero balance."""
    if account_type not in AccountType.CUSTOMER:
        raise LedgerError(gettext("Choose a savings or a checking account."))
    # One opening at a time per customer (their row locked until the commit), so requests
    # sent at once cannot all pass the count below.
    db.session.execute(sa.select(User.id).where(User.id == owner.id).with_for_update())
    most = current_app.config["MAX_OPEN_ACCOUNTS"]
    held = db.session.scalar(sa.select(sa.func.count(Account.id)).where(
        Account.owner_id == owner.id, Account.status != AccountStatus.CLOSED))
    if held >= most:
        db.session.rollback()
        raise LedgerError(gettext("You already have %(count)d open accounts, the most this "
                                  "bank allows: close one you no longer use first.",
                                  count=most))
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
    raise LedgerError(gettext("Could not allocate an account number; please try again."))


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


def account_number_as_typed(text: str | None) -> str:
    """A customer account number the way people type it, written the bank's way:
    ``acc 091349188``, ``ACC091349188`` and ``091 349 188`` all read ``ACC-091349188``.
    Anything else comes back trimmed and in capitals (and is then simply not found)."""
    compact = re.sub(r"[\s\-.]", "", text or "").upper()
    digits = re.fullmatch(r"(?:ACC)?([0-9]{9})", compact, re.ASCII)
    return f"ACC-{digits.group(1)}" if digits else (text or "").strip().upper()


def find_customer_account(number: str) -> Account | None:
    """A customer account by its number (internal accounts are never found this way)."""
    return find_customer_accounts(number).get(account_number_as_typed(number))


def find_customer_accounts(*numbers: str) -> dict[str, Account]:
    """The customer accounts with these numbers, by number, in one query (missing: absent)."""
    accounts = db.session.scalars(customer_accounts_numbered(*numbers))
    return {account.account_number: account for account in accounts}


def owned_account(user: User, account_number: str) -> sa.Select:
    """The select of ``user``'s account with this number: anyone else's is not found."""
    return sa.select(Account).where(Account.account_number == account_number,
                                    Account.owner_id == user.id)


def customer_accounts_numbered(*numbers: str) -> sa.Select:
    """The select of the customer accounts with these numbers, as typed (internal accounts
    are never found this way)."""
    wanted = {account_number_as_typed(number) for number in numbers}
    return sa.select(Account).where(
        Account.account_number.in_(wanted),
        Account.account_type.in_(AccountType.CUSTOMER),
    )

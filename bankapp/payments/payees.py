"""Saved payees: add (after confirming the holder's masked name), rename, remove.

Looking a number up shows its holder's masked name (``B** B****``), which is worth guarding:
every look-up, found or not, spends one of the customer's ``PAYEE_LOOKUP_LIMIT`` and is
audited (``payee.lookup``, with whether the number exists; the budget is counted from those
lines, so across workers and hosts), so staff can see someone walking the number space. The
transfer form and the API's transfers tell the same (a holder's name, "no such account", a step-up
answer only an existing account gets), so a number typed there spends the same budget
(``bankapp.identity.lookups.may_reveal``) unless it tells nothing new. A number with
no open account gets a plain "no account has that number": account numbers are nine random
digits, so with a small budget existence alone tells nothing worth having, and a customer who
mistyped deserves to know. The save step carries the looked-up account in a signed, expiring
token: saving never looks anything up, so it cannot be used to probe numbers past the budget.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask_babel import gettext
from itsdangerous import BadSignature
from sqlalchemy.exc import IntegrityError

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger import find_customer_account, masked_name  # noqa: F401 (re-exported)
from bankapp.models import Account, Payee, User
from bankapp.identity.security import signing_serializer
from bankapp.identity.lookups import LOOKUPS_SPENT, names_an_account, spend_look_up

log = logging.getLogger("bankapp.payees")

MAX_NICKNAME = 40
CONFIRM_SALT = "bankapp.payee-confirm"
CONFIRM_MAX_AGE = 15 * 60


class PayeeRefused(Exception):
    """Why a payee cannot be added or changed; ``str()`` is the message, ``field`` the field."""

    def __init__(self, message: str, field: str | None = None, status: int = 200):
        super().__init__(message)
        self.field = field
        self.status = status


def clean_nickname(nickname: str | None) -> str:
    text = " ".join((nickname or "").split())
    if not text:
        raise PayeeRefused(gettext("Give the payee a name you will recognise."), "nickname")
    if len(text) > MAX_NICKNAME:
        raise PayeeRefused(gettext("The name may be at most %(count)s characters.",
                                   count=MAX_NICKNAME), "nickname")
    return text


def payees_of(user: User) -> list[Payee]:
    """The user's payees, by name."""
    return list(db.session.scalars(
        sa.select(Payee).where(Payee.user_id == user.id)
        .options(sa.orm.joinedload(Payee.account))
        .order_by(sa.func.lower(Payee.nickname), Payee.id)))


def owned_payee(user: User, payee_id: int) -> sa.Select:
    """The select of the user's payee with this id: anyone else's is not found."""
    return sa.select(Payee).where(Payee.id == payee_id, Payee.user_id == user.id)


def payee_of(user: User, payee_id: int) -> Payee | None:
    """The user's payee with this id (None for anyone else's)."""
    return db.session.scalar(owned_payee(user, payee_id))


def look_up(user: User, number: str, nickname: str) -> tuple[Account, str]:
    """The account a customer wants to save, and the cleaned nickname; ``PayeeRefused``."""
    nickname = clean_nickname(nickname)
    number = (number or "").strip().upper()
    if not number:
        raise PayeeRefused(gettext("Enter the payee's account number."), "account_number")
    account = find_customer_account(number)
    found = names_an_account(account)
    if not spend_look_up(user, number, found=found, via="payees"):
        raise PayeeRefused(gettext(LOOKUPS_SPENT), status=429)
    if not found:
        raise PayeeRefused(gettext("No account has that number: check it and try again."),
                           "account_number")
    if account.owner_id == user.id:
        raise PayeeRefused(gettext("That is one of your own accounts: it is already offered "
                                   "when you pay, no need to save it."), "account_number")
    existing = _saved(user, account)
    if existing is not None:
        raise PayeeRefused(gettext("You already saved this account as “%(nickname)s”.",
                                   nickname=existing.nickname),
                           "account_number")
    return account, nickname


def _saved(user: User, account: Account) -> Payee | None:
    return db.session.scalar(sa.select(Payee).where(Payee.user_id == user.id,
                                                    Payee.account_id == account.id))


def confirmation_token(user: User, account: Account, nickname: str) -> str:
    return signing_serializer(CONFIRM_SALT).dumps([user.id, account.id, nickname])


def add_confirmed(user: User, token: str) -> Payee:
    """Save the payee a confirmation page showed (its signed token); audited."""
    try:
        user_id, account_id, nickname = signing_serializer(CONFIRM_SALT).loads(
            token or "", max_age=CONFIRM_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        raise PayeeRefused(gettext("This confirmation has expired: look the number up again."))
    account = db.session.get(Account, account_id)
    if user_id != user.id or account is None:
        raise PayeeRefused(gettext("This confirmation has expired: look the number up again."))
    existing = _saved(user, account)
    if existing is not None:
        return existing  # a double click
    payee = Payee(user_id=user.id, account_id=account.id, nickname=clean_nickname(nickname))
    db.session.add(payee)
    try:
        db.session.flush()
    except IntegrityError:  # its twin saved it first
        db.session.rollback()
        return _saved(user, account)
    _audit(Action.PAYEE_ADD, user, payee, nickname=payee.nickname)
    db.session.commit()
    return payee


def rename(user: User, payee: Payee, nickname: str) -> Payee:
    payee.nickname = clean_nickname(nickname)
    _audit(Action.PAYEE_RENAME, user, payee, nickname=payee.nickname)
    db.session.commit()
    return payee


def remove(user: User, payee: Payee) -> None:
    """Forget a payee (scheduled payments to its account are not changed)."""
    _audit(Action.PAYEE_REMOVE, user, payee, nickname=payee.nickname)
    db.session.execute(sa.delete(Payee).where(Payee.id == payee.id, Payee.user_id == user.id))
    db.session.commit()


def _audit(action: str, user: User, payee: Payee, **details) -> None:
    audit.record(action, actor=user, target_type=TargetType.PAYEE, target_id=payee.id,
                 details={"account": payee.account.account_number, **details})

"""Step-up for payments: when a transfer needs a fresh second-factor code, and checking it.

The rule (PSD2 strong customer authentication, with its usual exemptions)
------------------------------------------------------------------------
A customer with a second factor (``user.mfa_enabled``) must approve a transfer with a fresh
code when it

* goes to an account this customer has never paid before ("new payee": no earlier transfer
  from any of their accounts to it), or
* is the first payment to an account since they saved it as a payee
  (``bankapp.payments.payees``), whatever was paid to it before: saving a payee is a new
  decision to trust an account, confirmed by the first payment's code, or
* is above ``STEP_UP_THRESHOLD`` (exactly the threshold does not ask).

Transfers between the customer's own accounts never ask, whatever the amount: no money
leaves the customer (PSD2 RTS article 15 exempts them, and banks do not ask for them).
A customer without a second factor is never asked: there is nothing to ask for.

Dynamic linking
---------------
The code is checked in the same request that posts the transfer, with that request's
source, payee, amount and one-time key, so it approves exactly that transfer. On the
website the confirmation page also carries a signed ``approval`` naming those four; the
confirming POST must carry the same details, or it is shown a new confirmation page (the
code is not even checked): a code is only ever typed under the details it approves.

``approve_transfer`` is the one place a payment approval is verified: a code, or on the
website a passkey assertion. The assertion's challenge is issued for one confirmation page
(``passkeys.user_options(user, STEP_UP, bound=<the approval's details>)``) and checked
against the details of the POST it comes with, so an assertion made for one transfer cannot
approve another (another amount, payee, source or one-time key); like a code it is used once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from itsdangerous import BadSignature
from sqlalchemy.orm import aliased

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.identity import passkeys
from bankapp.identity.factors import PAYMENT, SecondFactorRefused, verify_second_factor
from bankapp.extensions import db
from bankapp.platform.formatting import format_money
from bankapp.models import Account, Payee, Transaction, TransactionType, User
from bankapp.identity.security import signing_serializer

NEW_PAYEE = "new-payee"
FIRST_TO_SAVED_PAYEE = "first-to-saved-payee"
ABOVE_THRESHOLD = "above-threshold"
# How long a confirmation page's approval stays good: then the page is shown again.
APPROVAL_MAX_AGE = 15 * 60


@dataclass(frozen=True)
class StepUp:
    """Why a transfer needs a fresh code; empty (false) when it needs none."""

    reasons: tuple[str, ...] = ()
    threshold: Decimal = Decimal("0.00")

    def __bool__(self) -> bool:
        return bool(self.reasons)

    @property
    def why(self) -> str:
        """``this is your first payment to this account and the amount is above 1,000.00``."""
        threshold = format_money(self.threshold)
        above = ABOVE_THRESHOLD in self.reasons
        # Whole sentences per case, so each language can order its clauses.
        if NEW_PAYEE in self.reasons:
            if above:
                return gettext("this is your first payment to this account and the amount is "
                               "above %(threshold)s", threshold=threshold)
            return gettext("this is your first payment to this account")
        if FIRST_TO_SAVED_PAYEE in self.reasons:
            if above:
                return gettext("this is your first payment to this saved payee and the amount "
                               "is above %(threshold)s", threshold=threshold)
            return gettext("this is your first payment to this saved payee")
        if above:
            return gettext("the amount is above %(threshold)s", threshold=threshold)
        return ""

    @property
    def sentence(self) -> str:
        """Why the customer is asked, in one sentence for the confirmation page."""
        if not self:
            return ""
        return gettext("Because %(why)s, enter a code from your authenticator app (or a "
                       "recovery code) to approve this transfer.", why=self.why)


def step_up_threshold() -> Decimal:
    return Decimal(current_app.config["STEP_UP_THRESHOLD"])


def has_paid_before(user: User, destination: Account, since: datetime | None = None) -> bool:
    """Whether any of ``user``'s accounts ever (or ``since`` then) sent a transfer to
    ``destination``.

    One query on the ledger's legs: the destination's TRANSFER_IN legs (index on
    account_id) joined by entry (index on entry_id) to a TRANSFER_OUT leg on an account the
    user owns.
    """
    return bool(db.session.scalar(sa.select(paid_before(user.id, destination.id, since))))


def paid_before(user_id, destination_id, since=None):
    """SQL: ``has_paid_before`` as an EXISTS clause, to ask together with other checks; the
    arguments are values or bind parameters."""
    incoming, outgoing = aliased(Transaction), aliased(Transaction)
    paid = (
        sa.select(incoming.id)
        .join(outgoing, outgoing.entry_id == incoming.entry_id)
        .join(Account, Account.id == outgoing.account_id)
        .where(incoming.account_id == destination_id,
               incoming.transaction_type == TransactionType.TRANSFER_IN,
               outgoing.transaction_type == TransactionType.TRANSFER_OUT,
               Account.owner_id == user_id)
    )
    if since is not None:
        paid = paid.where(incoming.timestamp >= since)
    return paid.exists()


def _saved_as_payee_at(user: User, destination: Account) -> datetime | None:
    return db.session.scalar(sa.select(Payee.created_at).where(
        Payee.user_id == user.id, Payee.account_id == destination.id))


def step_up_for(user: User, destination: Account | None, amount: Decimal) -> StepUp:
    """Whether ``user`` must approve a transfer of ``amount`` to ``destination`` with a code."""
    threshold = step_up_threshold()
    if not user.mfa_enabled or destination is None or destination.owner_id == user.id:
        return StepUp(threshold=threshold)
    reasons = []
    if not has_paid_before(user, destination):
        reasons.append(NEW_PAYEE)
    else:
        saved_at = _saved_as_payee_at(user, destination)
        if saved_at is not None and not has_paid_before(user, destination, since=saved_at):
            reasons.append(FIRST_TO_SAVED_PAYEE)
    if amount > threshold:
        reasons.append(ABOVE_THRESHOLD)
    return StepUp(tuple(reasons), threshold)


def _transfer_details(source: Account, destination: Account, amount: Decimal, key: str,
                      step_up: StepUp) -> dict:
    return {"from_account": source.account_number, "to_account": destination.account_number,
            "amount": amount, "idempotency_key": key, "reasons": list(step_up.reasons)}


def approve_transfer(user: User, code: str | None, *, source: Account, destination: Account,
                     amount: Decimal, idempotency_key: str, step_up: StepUp,
                     passkey_assertion=None) -> str:
    """Check the code, or passkey assertion, approving this one transfer; the factor used
    ("totp", "recovery", "passkey").

    The code is used up (it cannot approve anything else); wrong codes count toward the
    account's lockout. An assertion must answer a step-up challenge issued for exactly these
    details (``passkey_options``); its challenge is spent whatever the outcome. Both outcomes
    are audited with the transfer's details. Raises ``SecondFactorRefused`` (``locked`` while
    the lockout lasts) or ``passkeys.PasskeyRefused``.
    """
    details = _transfer_details(source, destination, amount, idempotency_key, step_up)
    try:
        if passkey_assertion is not None:
            bound = _approval_payload(user, source, destination, amount, idempotency_key)
            passkeys.authenticate(passkey_assertion, passkeys.STEP_UP, user, bound=bound)
            factor = "passkey"
        else:
            factor = verify_second_factor(user, code, during=PAYMENT)
    except (SecondFactorRefused, passkeys.PasskeyRefused) as refusal:
        db.session.rollback()
        failure = ({"factor": "passkey", "locked": False}
                   if isinstance(refusal, passkeys.PasskeyRefused) else {"locked": refusal.locked})
        audit.record(Action.STEP_UP_FAILURE, actor=user, target_type=TargetType.ACCOUNT,
                     target_id=source.account_number, details={**details, **failure})
        db.session.commit()
        raise
    audit.record(Action.STEP_UP_SUCCESS, actor=user, target_type=TargetType.ACCOUNT,
                 target_id=source.account_number, details={**details, "factor": factor})
    db.session.commit()
    return factor


# ---------------------------------------------------------------- the confirmation page


APPROVAL_SALT = "bankapp.transfer-approval"


def _approval_payload(user: User, source: Account, destination: Account, amount: Decimal,
                      key: str) -> list:
    return [user.id, source.account_number, destination.account_number, str(amount), key]


def approval_token(user: User, source: Account, destination: Account, amount: Decimal,
                   key: str) -> str:
    """The signed details a confirmation page shows, carried by its form as ``approval``."""
    payload = _approval_payload(user, source, destination, amount, key)
    return signing_serializer(APPROVAL_SALT).dumps(payload)


def approval_shown(token) -> list | None:
    """The details a confirmation page's ``approval`` names; None if forged or expired."""
    if not token or not isinstance(token, str):
        return None
    try:
        return signing_serializer(APPROVAL_SALT).loads(token, max_age=APPROVAL_MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return None


def approval_matches(token: str | None, user: User, source: Account, destination: Account,
                     amount: Decimal, key: str) -> bool:
    """Whether the confirming POST asks for exactly what its confirmation page showed."""
    shown = approval_shown(token)
    return shown is not None and shown == _approval_payload(user, source, destination, amount,
                                                             key)


def passkey_options(user: User, token) -> str:
    """Options for approving the transfer a confirmation page shows with one of ``user``'s
    passkeys: the challenge is bound to that page's details. ``PasskeyRefused`` otherwise."""
    shown = approval_shown(token)
    if not isinstance(shown, list) or not shown or shown[0] != user.id:
        raise passkeys.PasskeyRefused(gettext("This confirmation page has expired: go back "
                                              "to the transfer form and confirm it again."))
    return passkeys.user_options(user, passkeys.STEP_UP, bound=shown)

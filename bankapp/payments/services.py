"""Setting up a scheduled payment from the customer's page: the accounts it names, the code
it needs when it pays someone else, and the order itself (``ledger.create_order``).

``routes`` parses the form and calls ``schedule_payment`` once with the customer; this never
reads the request, flashes or touches a form: it answers with the order, or the errors to put
on the form (``(field, message)``, a field of None meaning the whole form).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import gettext

from bankapp import ledger
from bankapp.identity import factors, stepup
from bankapp.models import Account, ScheduledOrder, User

# Why a scheduled payment to someone else asks for a code (the audit line says so).
STANDING_ORDER_STEP_UP = stepup.StepUp(("standing-order",))


@dataclass(frozen=True)
class OrderRequest:
    """What a valid scheduled payment form asks for (a ``code`` when it pays someone else)."""

    amount: Decimal
    frequency: str
    start_on: date | None
    end_on: date | None
    max_occurrences: int | None
    description: str | None
    idempotency_key: str
    code: str | None = None


@dataclass(frozen=True)
class OrderOutcome:
    """The order set up, or the errors to show; ``needs_code`` whether the page asks for a
    code when it is shown again."""

    order: ScheduledOrder | None
    errors: tuple[tuple[str | None, str], ...] = ()
    needs_code: bool = False


def schedule_payment(user: User, source: Account | None, destination: Account | None,
                     asked: OrderRequest) -> OrderOutcome:
    """Set up ``user``'s order from ``source`` (one of their active accounts, as the form
    offered it) to ``destination`` (one of their payees or accounts); paying someone else
    takes a code from a customer with a second factor, checked and audited first."""
    if source is None:
        return OrderOutcome(None, (("from_account",
                                    gettext("Choose one of your active accounts.")),),
                            user.mfa_enabled)
    if destination is None:
        return OrderOutcome(None, (("to_account", gettext(
            "That is not one of your payees or accounts: save it as a payee first.")),),
                            user.mfa_enabled)
    needs_code = user.mfa_enabled and destination.owner_id != user.id
    if needs_code:
        refusal = _code_refused(user, source, destination, asked)
        if refusal is not None:
            return OrderOutcome(None, (("code", refusal),), needs_code=True)
    try:
        order = ledger.create_order(
            user, source, destination, asked.amount,
            frequency=asked.frequency, start_on=asked.start_on,
            today=ledger.bank_today(),
            # A monthly order pays on its first payment date's day of the month.
            day_of_month=asked.start_on.day if asked.start_on else None,
            end_on=asked.end_on, max_occurrences=asked.max_occurrences,
            description=asked.description, idempotency_key=asked.idempotency_key)
    except ledger.InvalidSchedule as refusal:
        return OrderOutcome(None, ((refusal.field, str(refusal)),), needs_code)
    except ledger.LedgerError as refusal:
        return OrderOutcome(None, ((None, str(refusal)),), needs_code)
    return OrderOutcome(order, needs_code=needs_code)


def _code_refused(user: User, source: Account, destination: Account,
                  asked: OrderRequest) -> str | None:
    """Why the code does not approve paying someone else on a schedule; None when it does."""
    if not asked.code:
        return gettext("Enter a code to approve payments to another person's account.")
    try:
        stepup.approve_transfer(user, asked.code, source=source, destination=destination,
                                amount=asked.amount, idempotency_key=asked.idempotency_key,
                                step_up=STANDING_ORDER_STEP_UP)
    except factors.SecondFactorRefused as refusal:
        return refusal.message
    return None

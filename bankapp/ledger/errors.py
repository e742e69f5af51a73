"""What the ledger refuses: every refusal is a ``LedgerError`` whose text is fit to show."""
from __future__ import annotations

from flask_babel import lazy_gettext


class LedgerError(Exception):
    """A refusal the customer can act on; ``str(error)`` is the message to show, in the
    locale of the request it is shown in (messages are lazy strings, translated when read)."""

    default_message = lazy_gettext("The transaction was refused.")

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)


class InsufficientFunds(LedgerError):
    default_message = lazy_gettext("Insufficient funds: the balance does not cover this amount.")


class AccountNotActive(LedgerError):
    default_message = lazy_gettext("This account is not active and cannot move money.")


class InvalidAmount(LedgerError):
    default_message = lazy_gettext("Enter an amount such as 12.50.")


class SameAccount(LedgerError):
    default_message = lazy_gettext("The source and destination accounts must be different.")


class UnknownAccount(LedgerError):
    default_message = lazy_gettext("No active account has that number.")


class LimitExceeded(LedgerError):
    default_message = lazy_gettext("The amount is above the limit.")


class InvalidDescription(LedgerError):
    default_message = lazy_gettext("The description is too long.")


class TellerNotServing(LedgerError):
    default_message = lazy_gettext("This person is no longer active staff: their till takes no new cash.")


class NotReversible(LedgerError):
    default_message = lazy_gettext("This entry cannot be reversed.")


class ReasonRequired(LedgerError):
    default_message = lazy_gettext("Give a reason.")


class DecisionRefused(LedgerError):
    default_message = lazy_gettext("This request cannot be decided.")


class DailyLimitExceeded(LimitExceeded):
    default_message = lazy_gettext("This payment is above what is left of today's outgoing limit.")


# Why an account that is not active refuses a posting, by its status and side: whole sentences
# (a status word inside one would need its French gender), lazy so each is read in the language
# of the page showing it; one with no placeholder so a reason stored in English (a scheduled
# payment's, written by a job) translates where it is shown.
_NOT_ACTIVE = {
    ("frozen", False): lazy_gettext("This account is frozen and cannot move money."),
    ("closed", False): lazy_gettext("This account is closed and cannot move money."),
    ("frozen", True): lazy_gettext("The destination account is frozen and cannot receive money."),
    ("closed", True): lazy_gettext("The destination account is closed and cannot receive money."),
}
BALANCE_TOO_LARGE = lazy_gettext("The receiving balance would exceed the largest balance an "
                                 "account can hold.")
TILL_SHORT = lazy_gettext("The till does not hold enough cash to pay this out.")


def not_active(status: str, destination: bool = False) -> AccountNotActive:
    """The refusal of a posting to (``destination``) or from an account with this status."""
    return AccountNotActive(_NOT_ACTIVE.get((status, destination)))


def short_of_held_money(held: str, available: str) -> InsufficientFunds:
    """The refusal of a payment the balance covers but not once money on hold is set aside
    (``held`` and ``available`` already written as money)."""
    return InsufficientFunds(lazy_gettext(
        "Insufficient available funds: %(held)s of the balance is on hold, %(available)s is "
        "available.", held=held, available=available))

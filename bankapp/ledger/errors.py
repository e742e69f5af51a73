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

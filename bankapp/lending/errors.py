"""What lending refuses: each refusal is a ``LendingError`` whose text is fit to show."""
from __future__ import annotations

from flask_babel import lazy_gettext

from bankapp.ledger import LedgerError


class LendingError(LedgerError):
    """A refusal the person can act on; ``field`` names the form field it is about."""

    default_message = lazy_gettext("This loan request cannot be accepted.")

    def __init__(self, message: str | None = None, field: str | None = None):
        super().__init__(message)
        self.field = field


class LoanChanged(LendingError):
    """The loan moved on (another repayment, a collection) while this one was posted."""

    default_message = lazy_gettext("This loan changed meanwhile; look at it again.")

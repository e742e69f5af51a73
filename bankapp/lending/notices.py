"""The emails a borrower gets about an instalment, in their language, through the outbox
(written in the caller's transaction: sent once it commits, never if it rolls back)."""
from __future__ import annotations

from flask_babel import format_date, gettext

from bankapp.models import Loan, LoanInstalment
from bankapp.notifications.outbox import queue_email
from bankapp.platform.formatting import format_money
from bankapp.platform.i18n import recipient_locale


def due_soon(loan: Loan, row: LoanInstalment) -> None:
    """A reminder a few days before an instalment is collected."""
    with recipient_locale(loan.borrower):
        queue_email(loan.borrower.email, gettext("A loan instalment is due soon"), gettext(
            "Instalment %(number)d of your loan %(loan)s, %(amount)s, is due on %(day)s. It "
            "will be collected from your account %(account)s: please make sure the money is "
            "there.", number=row.number, loan=loan.number, amount=format_money(row.outstanding),
            day=format_date(row.due_on), account=loan.account.account_number))


def overdue(loan: Loan, row: LoanInstalment) -> None:
    """The first day an instalment is overdue: what is missing, and the late fee ahead."""
    with recipient_locale(loan.borrower):
        queue_email(loan.borrower.email, gettext("A loan instalment is overdue"), gettext(
            "Instalment %(number)d of your loan %(loan)s was due on %(day)s and %(amount)s of "
            "it is still unpaid. Unpaid %(grace)d days after the due date, it is charged a late "
            "fee. You can repay from your loan's page.", number=row.number, loan=loan.number,
            day=format_date(row.due_on), amount=format_money(row.outstanding),
            grace=loan.grace_days))

"""A customer's repayment and the scheduled collection racing on the same instalment: one
pays it, the other sees it paid (PostgreSQL, real concurrent transactions)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.lending import collections, services
from bankapp.models import Loan, LoanRepayment, RepaymentKind, User
from support.backoffice import balance
from support.concurrency import run_together
from support.database import POSTGRES
from support.lending import active_loan, owed_in_book

pytestmark = pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL")

PAID_OUT = date(2027, 1, 15)
DUE = date(2027, 2, 15)
ROUNDS = 4


def _race(worker_app, loan_id: int, borrower_id: int):
    def task(what: str):
        loan = db.session.get(Loan, loan_id)
        if what == "repay":
            return services.repay(loan, db.session.get(User, borrower_id), D("106.62"),
                                  idempotency_key=f"race-{loan_id}", today=DUE).reference
        return collections.run_loans(DUE, trigger="race").collections

    return run_together(worker_app, task, [("repay",), ("collect",)])


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_repayment_and_a_collection_on_one_instalment_pay_it_once(
        app, worker_app, customer, account, product, teller, round_):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    outcomes = _race(worker_app, loan.id, customer.id)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    db.session.expire_all()
    rows = services.instalments_of(loan, fresh=True)
    first = rows[0]
    assert first.outstanding == D("0.00")  # paid, and never beyond (CHECKs)
    repayments = list(db.session.scalars(sa.select(LoanRepayment)
                                         .where(LoanRepayment.loan_id == loan.id)))
    kinds = sorted(r.kind for r in repayments)
    if outcomes[1] == 1:
        # The collection won: the customer's 106.62 saw the instalment paid and went to the
        # principal of the next instalments.
        assert kinds == [RepaymentKind.COLLECTION, RepaymentKind.REPAYMENT]
        assert rows[1].principal_paid > 0
    else:
        # The repayment won: the collection found nothing due.
        assert kinds == [RepaymentKind.REPAYMENT]
    paid = sum(r.amount for r in repayments)
    assert balance(account) == D("1690.00") - paid
    assert owed_in_book(loan) == sum(r.principal_due - r.principal_paid for r in rows)
    assert ledger.reconcile().clean

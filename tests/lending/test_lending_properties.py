"""Random loans repaid at random: early, late, partly or not at all. Whatever happens, the
book balances, the loan account shows the principal owed, nothing is collected twice, and a
paid-off loan owes nothing."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bankapp import ledger
from bankapp.extensions import db
from bankapp.lending import collections, services
from bankapp.lending.errors import LendingError
from bankapp.models import LoanRepayment, LoanStatus, Role
from support.backoffice import balance
from support.lending import active_loan, make_product, owed_in_book

events = st.lists(st.tuples(
    st.integers(min_value=0, max_value=40),  # days after the previous event
    st.sampled_from(["run", "repay", "payoff", "empty", "fund"]),
    st.decimals(min_value=D("0.01"), max_value=D("900.00"), places=2),
), max_size=8)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amortisation=st.sampled_from(["equal_instalments", "equal_principal"]),
       frequency=st.sampled_from(["weekly", "monthly"]),
       rate=st.decimals(min_value=0, max_value=100, places=2),
       principal=st.decimals(min_value=D("100.00"), max_value=D("5000.00"), places=2),
       term=st.integers(min_value=1, max_value=8),
       grace=st.integers(min_value=0, max_value=10),
       happenings=events)
def test_any_sequence_of_repayments_keeps_the_loan_and_the_book_exact(
        app, make_user, funded_account, amortisation, frequency, rate, principal, term, grace,
        happenings):
    borrower = make_user()
    staff = make_user(role=Role.ADMIN)
    account = funded_account(borrower, "300.00")
    product = make_product(name=f"P{borrower.id}", amortisation=amortisation,
                           frequency=frequency, annual_rate=rate, grace_days=grace,
                           principal_max="5000.00", disbursement_fee="1.00")
    day = (collections.last_run() or date(2027, 1, 1)) + timedelta(days=1)
    loan = active_loan(borrower, account, product, staff, str(principal), term, on=day)
    key = 0
    for gap, what, amount in happenings:
        day += timedelta(days=gap)
        key += 1
        if loan.status != LoanStatus.ACTIVE:
            break
        if what == "run":
            collections.run_loans(day)
        elif what == "fund":
            ledger.deposit(account, amount, "Salary", borrower)
        elif what == "empty" and balance(account) > 0:
            ledger.withdraw(account, balance(account), "Cash", borrower)
        elif what in ("repay", "payoff"):
            payoff = services.payoff_amount(loan, day)
            wanted = payoff if what == "payoff" else amount
            ledger.deposit(account, wanted, "Savings", borrower)
            try:
                services.repay(loan, borrower, wanted, idempotency_key=f"k{key}", today=day)
            except LendingError:
                # Refused only above what is owed short of the running interest to the day.
                assert wanted > payoff - services.owed_on(loan, day).accrued
        db.session.refresh(loan)
        rows = services.instalments_of(loan, fresh=True)
        assert owed_in_book(loan) == sum(r.principal_due - r.principal_paid for r in rows)
        assert ledger.reconcile().clean
    # Collected once: one collection per instalment and day at most (keys are unique), and
    # never more than was due.
    repaid = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LoanRepayment.amount), 0))
                               .where(LoanRepayment.loan_id == loan.id))
    rows = services.instalments_of(loan, fresh=True)
    assert D(repaid).quantize(D("0.01")) == sum(r.total_paid for r in rows)
    assert all(r.total_paid <= r.total_due for r in rows)
    if loan.status == LoanStatus.PAID_OFF:
        assert services.owed_on(loan, day).payoff == D("0.00")
        assert owed_in_book(loan) == D("0.00")
        assert sum(r.outstanding for r in rows) == D("0.00")

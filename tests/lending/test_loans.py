"""Loans from application to payoff: applying, deciding, paying out, repaying, writing off."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.lending import services
from bankapp.lending.errors import LendingError
from bankapp.models import JournalEntry, Loan, LoanStatus, Role
from support.backoffice import assert_clean_book, audit_rows, balance
from support.lending import active_loan, apply_for, owed_in_book

PAID_OUT = date(2027, 1, 15)


def loan_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Loan.id)))


# ---------------------------------------------------------------- applying


def test_an_application_is_submitted_and_audited(customer, account, product):
    loan = apply_for(customer, account, product)
    assert loan.status == LoanStatus.SUBMITTED
    assert loan.annual_rate == D("12.0000") and loan.term == 12
    assert [row.action for row in audit_rows("loan.apply")] == ["loan.apply"]


@pytest.mark.parametrize("principal,term,message", [
    ("99.99", 12, "lends from"),
    ("50000.01", 12, "lends from"),
    ("1200.00", 0, "repaid in 1 to 60"),
    ("1200.00", 61, "repaid in 1 to 60"),
    ("1200.005", 12, "lends from|decimal places"),
])
def test_an_amount_or_term_outside_the_product_is_refused(customer, account, product,
                                                          principal, term, message):
    with pytest.raises(LendingError, match=message):
        apply_for(customer, account, product, principal, term)
    assert loan_count() == 0


def test_applying_from_a_frozen_account_is_refused(customer, account, product, admin):
    ledger.freeze_account(account, "Suspicious activity", admin)
    with pytest.raises(LendingError, match="frozen or closed"):
        apply_for(customer, account, product)
    assert loan_count() == 0


def test_applying_from_someone_elses_account_is_refused(customer, product, make_user,
                                                         funded_account):
    bob_account = funded_account(make_user(email="bob@example.com"), "50.00")
    with pytest.raises(LendingError, match="your own accounts"):
        apply_for(customer, bob_account, product)
    assert loan_count() == 0


def test_a_replayed_application_finds_the_first(customer, account, product):
    first = apply_for(customer, account, product, key="k-1")
    again = apply_for(customer, account, product, key="k-1")
    assert again.id == first.id and loan_count() == 1


# ---------------------------------------------------------------- deciding


def test_nobody_approves_their_own_application(make_user, funded_account, product):
    teller = make_user(email="t2@example.com", role=Role.TELLER)
    loan = apply_for(teller, funded_account(teller, "10.00"), product)
    with pytest.raises(LendingError, match="their own application"):
        services.approve(loan, teller)
    assert db.session.get(Loan, loan.id).status == LoanStatus.SUBMITTED


def test_a_customer_cannot_approve(customer, account, product, make_user):
    other = make_user(email="carol@example.com")
    with pytest.raises(LendingError, match="Only bank staff"):
        services.approve(apply_for(customer, account, product), other)


def test_a_loan_above_the_policy_amount_needs_an_admin(app, customer, account, product,
                                                       teller, admin):
    app.config["LOAN_APPROVAL_THRESHOLD"] = D("1000.00")
    loan = apply_for(customer, account, product, "1000.01")
    assert loan.needs_admin
    with pytest.raises(LendingError, match="needs an admin"):
        services.approve(loan, teller)
    assert services.approve(loan, admin, PAID_OUT).status == LoanStatus.ACTIVE


def test_a_loan_at_the_policy_amount_is_approved_by_a_teller(app, customer, account, product,
                                                            teller):
    app.config["LOAN_APPROVAL_THRESHOLD"] = D("1000.00")
    loan = apply_for(customer, account, product, "1000.00")
    assert services.approve(loan, teller, PAID_OUT).status == LoanStatus.ACTIVE


def test_a_rejection_needs_a_reason_and_is_audited(customer, account, product, teller):
    loan = apply_for(customer, account, product)
    with pytest.raises(ledger.ReasonRequired):
        services.reject(loan, teller, "  ")
    services.reject(loan, teller, "Income too low")
    assert loan.status == LoanStatus.REJECTED and loan.decision_reason == "Income too low"
    assert audit_rows("loan.reject")[0].actor_id == teller.id


def test_a_decided_application_cannot_be_decided_again(customer, account, product, teller,
                                                       admin):
    loan = apply_for(customer, account, product)
    services.reject(loan, teller, "No")
    with pytest.raises(LendingError, match="decided already"):
        services.approve(loan, admin)


# ---------------------------------------------------------------- paying out


def test_approval_pays_the_principal_less_the_fee_into_the_account(customer, account,
                                                                   product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    assert loan.status == LoanStatus.ACTIVE and loan.disbursed_on == PAID_OUT
    assert balance(account) == D("500.00") + D("1200.00") - D("10.00")
    assert balance(services.fee_income_account()) == D("10.00")
    assert owed_in_book(loan) == D("1200.00")
    assert len(loan.instalments) == 12
    assert sum(row.principal_due for row in loan.instalments) == D("1200.00")
    assert_clean_book()


def test_disbursing_twice_posts_once(customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    services.disburse(loan, teller, PAID_OUT)
    db.session.execute(sa.update(Loan).where(Loan.id == loan.id)
                       .values(status=LoanStatus.APPROVED))  # as if a twin had not seen it
    db.session.commit()
    services.disburse(loan, teller, PAID_OUT)
    entries = db.session.scalar(sa.select(sa.func.count(JournalEntry.id)).where(
        JournalEntry.entry_type == "LOAN_DISBURSEMENT"))
    assert entries == 1
    assert balance(account) == D("1690.00")


def test_a_disbursement_to_a_frozen_account_leaves_the_loan_approved(customer, account,
                                                                     product, teller, admin):
    loan = apply_for(customer, account, product)
    ledger.freeze_account(account, "Court order", admin)
    with pytest.raises(ledger.AccountNotActive):
        services.approve(loan, teller, PAID_OUT)
    assert db.session.get(Loan, loan.id).status == LoanStatus.APPROVED
    ledger.unfreeze_account(account, "Lifted", admin)
    assert services.disburse(loan, teller, PAID_OUT).status == LoanStatus.ACTIVE


# ---------------------------------------------------------------- repaying


def test_a_repayment_pays_interest_before_principal(customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    first = loan.instalments[0]
    services.repay(loan, customer, D("20.00"), idempotency_key="r1", today=first.due_on)
    db.session.refresh(first)
    assert first.interest_paid == first.interest_due == D("12.23")
    assert first.principal_paid == D("7.77")
    assert owed_in_book(loan) == D("1192.23")
    assert_clean_book()


def test_repaying_more_than_the_payoff_is_refused(customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    payoff = services.payoff_amount(loan, PAID_OUT)
    with pytest.raises(LendingError, match="more than the loan owes"):
        services.repay(loan, customer, payoff + D("0.01"), idempotency_key="r1",
                       today=PAID_OUT)
    assert balance(account) == D("1690.00") and owed_in_book(loan) == D("1200.00")


def test_repaying_all_the_principal_but_not_the_interest_to_the_day_is_refused(
        customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    ten_days_on = date(2027, 1, 25)  # payoff 1,203.95: the principal and 3.95 of interest
    with pytest.raises(LendingError, match="1,203.95") as refused:
        services.repay(loan, customer, D("1201.00"), idempotency_key="r1", today=ten_days_on)
    assert "1,200.00" in str(refused.value)
    assert balance(account) == D("1690.00") and owed_in_book(loan) == D("1200.00")


def test_paying_off_early_charges_interest_to_the_day_only(customer, account, product,
                                                           teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    ten_days_on = date(2027, 1, 25)
    payoff = services.payoff_amount(loan, ten_days_on)
    assert payoff == D("1200.00") + D("3.95")  # 1200 × 12 % × 10 / 365 = 3.945… → 3.95
    services.repay(loan, customer, payoff, idempotency_key="r1", today=ten_days_on)
    db.session.refresh(loan)
    assert loan.status == LoanStatus.PAID_OFF and loan.closed_on == ten_days_on
    assert owed_in_book(loan) == D("0.00")
    assert services.owed_on(loan, ten_days_on).payoff == D("0.00")
    assert sum(row.outstanding for row in loan.instalments) == D("0.00")
    assert balance(services.interest_income_account()) == D("3.95")
    assert_clean_book()


def test_repaying_a_closed_loan_is_refused(customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    services.repay(loan, customer, services.payoff_amount(loan, PAID_OUT),
                   idempotency_key="r1", today=PAID_OUT)
    with pytest.raises(LendingError, match="nothing to repay"):
        services.repay(loan, customer, D("1.00"), idempotency_key="r2", today=PAID_OUT)


def test_a_replayed_repayment_posts_once(customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    services.repay(loan, customer, D("50.00"), idempotency_key="r1", today=PAID_OUT)
    again = services.repay(loan, customer, D("50.00"), idempotency_key="r1", today=PAID_OUT)
    assert again.replayed
    assert balance(account) == D("1640.00")


def test_principal_paid_ahead_lowers_the_interest_of_later_periods(customer, account,
                                                                   product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    before = [row.interest_due for row in loan.instalments]
    services.repay(loan, customer, D("600.00"), idempotency_key="r1", today=PAID_OUT)
    db.session.refresh(loan)
    after = [row.interest_due for row in services.instalments_of(loan, fresh=True)]
    assert after[0] == before[0]  # the running period was borrowed at the old balance
    # Periods 2 to 7 now run on 600.00 owed; 8 to 12 on what the schedule had (the
    # principal paid ahead was that of the next instalments).
    assert all(new <= old for new, old in zip(after, before))
    assert after[1] == D("5.52")  # 600 × 12 % × 28 / 365 = 5.523…
    assert after[7:] == before[7:]
    assert owed_in_book(loan) == D("600.00")


def test_someone_else_cannot_repay_a_loan(customer, account, product, teller, make_user):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    with pytest.raises(LendingError, match="not your loan"):
        services.repay(loan, make_user(email="eve@example.com"), D("1.00"),
                       idempotency_key="x")


# ---------------------------------------------------------------- writing off


def test_an_admin_writes_off_the_principal_left_to_the_loss_account(customer, account,
                                                                     product, teller, admin):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    services.write_off(loan, admin, "Borrower unreachable", PAID_OUT)
    assert loan.status == LoanStatus.WRITTEN_OFF
    assert owed_in_book(loan) == D("0.00")
    assert balance(services.loss_account()) == D("-1200.00")
    assert audit_rows("loan.write_off")[0].details["reason"] == "Borrower unreachable"
    assert_clean_book()


def test_a_teller_cannot_write_off(customer, account, product, teller):
    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    with pytest.raises(LendingError, match="Only an admin"):
        services.write_off(loan, teller, "No", PAID_OUT)
    assert loan.status == LoanStatus.ACTIVE

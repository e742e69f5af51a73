"""The loan portfolio: outstanding principal, interest owed, PAR1/30/90, this month's money."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.lending import collections, portfolio, services
from support.database import POSTGRES
from support.lending import active_loan, apply_for
from support.users import log_in_as

PAID_OUT = date(2027, 1, 15)


def test_a_loan_on_time_is_not_at_risk(customer, account, product, teller):
    active_loan(customer, account, product, teller, on=PAID_OUT)
    collections.run_loans(date(2027, 2, 15))
    report = portfolio.portfolio(date(2027, 2, 20))
    assert report.by_status["active"] == 1
    assert report.outstanding == D("1200.00") - D("94.39")
    assert report.par(1) == report.par(30) == D("0.00")
    assert report.expected == D("106.62") and report.collected == D("106.62")


def test_an_overdue_loan_counts_in_par_by_its_days_late(customer, account, product, teller,
                                                        funded_account, make_user):
    late = active_loan(customer, account, product, teller, on=PAID_OUT)
    ledger.withdraw(account, D("1690.00"), "Cash", customer)
    other = make_user(email="olga@example.com")
    active_loan(other, funded_account(other, "5000.00"), product, teller, "800.00", 12,
                on=PAID_OUT)
    apply_for(other, funded_account(other, "1.00"), product)  # submitted: counted, not lent
    collections.run_loans(date(2027, 3, 20))
    report = portfolio.portfolio(date(2027, 3, 20))
    # The first loan is 33 days late (due 15 Feb, unpaid): in PAR1 and PAR30, not PAR90.
    owed_late = services.owed_on(late, date(2027, 3, 20)).principal
    assert report.at_risk == {1: owed_late, 30: owed_late, 90: D("0.00")}
    assert report.par(30) == (owed_late * 100 / report.outstanding).quantize(D("0.01"))
    assert report.by_status["submitted"] == 1 and report.by_status["active"] == 2


def test_the_portfolio_page_shows_par(client, teller, customer, account, product):
    active_loan(customer, account, product, teller, on=PAID_OUT)
    log_in_as(client, teller)
    page = client.get("/teller/loans/portfolio/").get_data(as_text=True)
    assert 'id="par30"' in page and "$1,200.00" in page


def test_the_portfolio_page_sends_as_many_statements_for_many_loans_as_for_one(
        client, teller, customer, account, product, make_user, funded_account):
    from support.queries import counted_statements

    active_loan(customer, account, product, teller, on=PAID_OUT)
    log_in_as(client, teller)

    def statements() -> int:
        client.get("/teller/loans/portfolio/")
        with counted_statements() as seen:
            assert client.get("/teller/loans/portfolio/").status_code == 200
        return len(seen)

    one = statements()
    for number in range(4):
        borrower = make_user(f"borrower{number}@example.com")
        active_loan(borrower, funded_account(borrower, "10.00"), product, teller, on=PAID_OUT)
    assert statements() == one


def _lend(make_user, funded_account, approver, name, product, principal, term, on):
    """``name``'s loan of ``principal`` over ``term`` paid out ``on`` (100.00 on the side)."""
    borrower = make_user(email=f"{name}@example.com")
    account = funded_account(borrower, "100.00")
    return services.approve(apply_for(borrower, account, product, principal, term),
                            approver, on)


def _varied_portfolio(product, teller, admin, make_user, funded_account):
    """Loans in every state and shape: on time then late, 110 days late, an instalment partly
    paid, weekly principal paid ahead, paid off, written off, rejected, waiting, and one whose
    running interest to 20 March is exactly half a cent (1.005 → 1.01)."""
    from support.lending import make_product

    weekly = make_product(name="Market stall", frequency="weekly", annual_rate="9.75",
                          amortisation="equal_principal", disbursement_fee="0")
    tenner = make_product(name="Tenner", annual_rate="10", amortisation="equal_principal",
                          disbursement_fee="0")

    def lend(name, product_, principal, term, on):
        return _lend(make_user, funded_account, admin, name, product_, principal, term, on)

    def drain(loan, leaving="0.00"):
        ledger.withdraw(loan.account, loan.account.balance - D(leaving), "Cash", loan.borrower)

    def repay(loan, amount, on):
        services.repay(loan, loan.borrower, amount, idempotency_key=None, today=on)

    on_time = lend("ontime", product, "1200.00", 12, date(2026, 12, 15))
    for due in (date(2027, 1, 15), date(2027, 2, 15)):
        repay(on_time, services.owed_on(on_time, due).due, due)
    drain(on_time)
    drain(lend("late", product, "2000.00", 6, date(2026, 10, 31)))
    partly = lend("partly", product, "900.00", 9, date(2027, 1, 15))
    repay(partly, D("50.00"), date(2027, 2, 20))
    drain(partly, "30.00")
    ahead = lend("ahead", weekly, "1500.00", 20, date(2027, 1, 4))
    repay(ahead, D("400.00"), date(2027, 1, 20))
    drain(ahead, "25.50")
    paid = lend("paid", product, "600.00", 6, date(2027, 1, 10))
    repay(paid, services.payoff_amount(paid, date(2027, 2, 1)), date(2027, 2, 1))
    services.write_off(lend("gone", product, "800.00", 12, date(2026, 11, 20)), admin,
                       "Borrower unreachable", date(2027, 2, 25))
    rejected = make_user(email="rejected@example.com")
    services.reject(apply_for(rejected, funded_account(rejected, "0.00"), product), teller,
                    "No income")
    waiting = make_user(email="waiting@example.com")
    apply_for(waiting, funded_account(waiting, "0.00"), product)
    drain(lend("halfcent", tenner, "3668.25", 12, date(2027, 3, 19)))
    # Collections, late fees and notices up to 20 March on what is left in the accounts.
    collections.run_loans(date(2027, 3, 20))


def test_the_portfolio_matches_owed_on_loan_by_loan_on_every_day(
        product, teller, admin, make_user, funded_account):
    from datetime import timedelta

    from support.lending import portfolio_loan_by_loan

    _varied_portfolio(product, teller, admin, make_user, funded_account)
    days = [date(2026, 10, 1) + timedelta(days=n) for n in range(0, 300, 3)]
    for day in days + [date(2027, 3, 15), date(2027, 3, 20), date(2027, 3, 31)]:
        report = portfolio.portfolio(day)
        assert {"by_status": report.by_status, "outstanding": report.outstanding,
                "interest_owed": report.interest_owed, "at_risk": report.at_risk,
                "expected": report.expected, "collected": report.collected} \
            == portfolio_loan_by_loan(day), day


def test_the_running_interest_to_the_day_rounds_half_up_per_loan(make_user, funded_account,
                                                                 admin):
    from support.lending import make_product

    tenner = make_product(name="Tenner", annual_rate="10", amortisation="equal_principal",
                          disbursement_fee="0")
    _lend(make_user, funded_account, admin, "halfcent", tenner, "3668.25", 12,
          date(2027, 3, 19))
    # 3,668.25 at 10 % for one day is 1.005 exactly: half-up to 1.01 (half-even gives 1.00).
    assert portfolio.portfolio(date(2027, 3, 20)).interest_owed == D("1.01")


def test_a_weekly_loan_accrues_from_its_running_week_among_several_due_within_a_month(
        make_user, funded_account, admin):
    from support.lending import make_product

    weekly = make_product(name="Market stall", frequency="weekly", annual_rate="9.75",
                          amortisation="equal_principal", disbursement_fee="0")
    loan = _lend(make_user, funded_account, admin, "stall", weekly, "1500.00", 20,
                 date(2027, 1, 4))
    # 24 January: five weekly instalments fall due within the month ahead; the running one
    # is the first (due 25 January, its period begun on the 18th: the two before are paid).
    # Six of its seven days have run, more than a later week's smaller interest would allow.
    services.repay(loan, loan.borrower, services.owed_on(loan, date(2027, 1, 18)).due,
                   idempotency_key=None, today=date(2027, 1, 18))
    day = date(2027, 1, 24)
    owed = services.owed_on(loan, day)
    assert owed.accrued > 0
    assert portfolio.portfolio(day).interest_owed == owed.interest


def test_the_portfolio_is_one_statement_whatever_the_loans(
        product, teller, admin, make_user, funded_account):
    from support.queries import counted_statements

    _varied_portfolio(product, teller, admin, make_user, funded_account)
    with counted_statements() as seen:
        portfolio.portfolio(date(2027, 3, 20))
    assert len(seen) == 1  # by status, the active loans' totals, expected and collected


@pytest.mark.skipif(not POSTGRES, reason="INCLUDE is PostgreSQL's (SQLite: the key alone)")
def test_the_portfolio_reads_instalments_and_repayments_from_their_indexes_alone(
        customer, account, product, teller):
    from sqlalchemy.dialects import postgresql

    from bankapp.extensions import db

    loan = active_loan(customer, account, product, teller, on=PAID_OUT)
    services.repay(loan, customer, D("50.00"), idempotency_key=None, today=date(2027, 2, 20))
    day = date(2027, 2, 20)
    statement = portfolio._portfolio_figures(day, day.replace(day=1), date(2027, 3, 1))
    sql = str(statement.compile(dialect=postgresql.dialect(),
                                compile_kwargs={"literal_binds": True})).replace("%%", "%")
    # A handful of rows: without this the planner would rightly read the tables whole.
    db.session.execute(sa.text("ANALYZE loan_instalments, loan_repayments"))
    for method in ("seqscan", "bitmapscan"):
        db.session.execute(sa.text(f"SET LOCAL enable_{method} = off"))
    plan = db.session.execute(sa.text("EXPLAIN " + sql)).scalars().all()
    reads = [line.split("->")[-1].strip() for line in plan
             if " on loan_instalments" in line or " on loan_repayments" in line]
    assert sorted(read.split(" on ")[0] for read in reads) == [
        "Index Only Scan using ix_loan_instalments_due_on_amounts",
        "Index Only Scan using ix_loan_instalments_due_on_amounts",
        "Index Only Scan using ix_loan_instalments_unsettled_amounts",
        "Index Only Scan using ix_loan_repayments_paid_on"], "\n".join(plan)

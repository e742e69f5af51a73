"""The loan portfolio: outstanding principal, interest owed, PAR1/30/90, this month's money."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from bankapp import ledger
from bankapp.lending import collections, portfolio, services
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

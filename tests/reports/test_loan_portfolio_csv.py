"""The loan portfolio as CSV (/reports/loan-portfolio/): loans by status, principal
outstanding, PAR1/30/90 and this month's money, for staff, in the bank tables' plain layout."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from bankapp import ledger
from bankapp.lending import collections
from support.backoffice import teller  # noqa: F401  (fixture)
from support.lending import active_loan, apply_for, make_product
from support.reports import csv_rows
from support.users import log_in_as

URL = "/reports/loan-portfolio/"


@pytest.fixture
def book(customer, funded_account, make_user, teller):  # noqa: F811
    """Alice's 1,200.00 loan paid out on 15 January 2027 with nothing to repay it from;
    Olga's 800.00 loan repaid on time; Olga's third application still submitted; the book
    run to 20 March 2027 (Alice's first instalment 33 days late)."""
    product = make_product()
    account = funded_account(customer, "500.00")
    active_loan(customer, account, product, teller, on=date(2027, 1, 15))
    ledger.withdraw(account, D("1690.00"), "Cash", customer)
    olga = make_user(email="olga@example.com")
    active_loan(olga, funded_account(olga, "5000.00"), product, teller, "800.00", 12,
                on=date(2027, 1, 15))
    apply_for(olga, funded_account(olga, "1.00"), product)
    collections.run_loans(date(2027, 3, 20))


def figures(response) -> dict[str, str]:
    return dict(csv_rows(response)[1:])


def test_the_portfolio_csv_holds_par_and_loans_by_status(client, teller, book):  # noqa: F811
    log_in_as(client, teller)
    response = client.get(URL)
    assert response.mimetype == "text/csv"
    assert 'filename="loan-portfolio-2027-03-20.csv"' in response.headers["Content-Disposition"]
    table = figures(response)
    assert table["day"] == "2027-03-20"
    assert (table["loans_active"], table["loans_submitted"], table["loans_paid_off"]) == (
        "2", "1", "0")
    assert table["par1_principal (USD)"] == table["par30_principal (USD)"] == "1200.00"
    assert table["par90_principal (USD)"] == "0.00" and table["par90_percent"] == "0.00"
    outstanding = D(table["principal_outstanding (USD)"])
    assert D(table["par30_percent"]) == (D("1200.00") * 100 / outstanding).quantize(D("0.01"))
    assert D(table["collected_this_month (USD)"]) > 0


def test_the_portfolio_csv_matches_the_portfolio_page(client, teller, book):  # noqa: F811
    log_in_as(client, teller)
    page = client.get("/teller/loans/portfolio/").get_data(as_text=True)
    table = figures(client.get(URL))
    outstanding = D(table["principal_outstanding (USD)"])
    assert f'<dd id="outstanding">${outstanding:,.2f}</dd>' in page
    assert 'id="portfolio-csv"' in page


def test_customers_cannot_download_the_portfolio(customer_client, book):
    assert customer_client.get(URL).status_code == 403

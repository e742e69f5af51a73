"""A loan's statement (/loans/<id>/statement/): the schedule with what each instalment asks,
what was paid, what is still due and overdue, the repayments and collections, and the payoff
today; as a page, CSV and PDF in the reader's language; the borrower's and staff's only."""
from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal as D

import pytest
from PIL import Image

from bankapp import ledger
from bankapp.lending import collections
from support.backoffice import balance, teller  # noqa: F401  (teller: a fixture)
from support.lending import active_loan, make_product
from support.reports import csv_rows, pdf_text
from support.users import log_in_as

FRENCH = {"Accept-Language": "fr"}


@pytest.fixture
def loan(customer, funded_account, teller):  # noqa: F811
    """1,200.00 over 12 months at 12 % paid out on 15 January 2027 (instalments of 106.62);
    two collected in full, then the account left with 40.00: the third (15 April) is
    collected in part, late on 21 April (a 15.00 fee), and the book is run to 25 April."""
    account = funded_account(customer, "500.00")
    loan = active_loan(customer, account, make_product(), teller, on=date(2027, 1, 15))
    collections.run_loans(date(2027, 3, 15))
    ledger.withdraw(account, balance(account) - D("40.00"), "Cash", customer)
    collections.run_loans(date(2027, 4, 25))
    return loan


def url(loan, extra="") -> str:
    return f"/loans/{loan.id}/statement/{extra}"


def test_the_statement_page_shows_schedule_repayments_and_payoff(customer_client, loan):
    page = customer_client.get(url(loan)).get_data(as_text=True)
    assert page.count('class="instalment') == 12
    assert page.count('class="instalment overdue"') == 1
    assert page.count('class="repayment"') == 3
    assert "Mar 15, 2027" in page and "Collected" in page
    assert "$81.62" in page  # 106.62 − 40.00 collected + the 15.00 late fee
    assert 'id="payoff"' in page and "Payoff on Apr 25, 2027" in page


def test_the_statement_page_speaks_french(customer_client, loan):
    page = customer_client.get(url(loan), headers=FRENCH).get_data(as_text=True)
    assert "Relevé de prêt" in page
    assert "15 mars 2027" in page and "81,62" in page
    assert "Solde au 25 avr. 2027" in page


def test_the_data_csv_is_plain_and_the_same_in_french(customer_client, loan):
    english = customer_client.get(url(loan, "?format=csv&layout=data"))
    french = customer_client.get(url(loan, "?format=csv&layout=data"), headers=FRENCH)
    assert french.get_data() == english.get_data()
    table = csv_rows(english)
    assert table[0] == ["instalment", "due_date", "principal (USD)", "interest (USD)",
                        "fees (USD)", "paid (USD)", "due (USD)", "overdue (USD)"]
    assert table[3][:2] == ["3", "2027-04-15"] and table[3][4:] == ["15.00", "40.00", "81.62",
                                                                    "81.62"]
    assert table[13][0] == "Total" and table[13][2] == "1200.00"
    repayments = table[table.index(["paid_on", "kind", "amount (USD)", "principal (USD)",
                                    "interest (USD)", "fees (USD)"]) + 1:][:3]
    assert [(r[0], r[1], r[2]) for r in repayments] == [
        ("2027-02-15", "collection", "106.62"), ("2027-03-15", "collection", "106.62"),
        ("2027-04-15", "collection", "40.00")]
    assert table[-1][0] == "Payoff on 2027-04-25"


def test_the_english_csv_writes_dates_and_numbers_the_english_way(customer_client, loan):
    table = csv_rows(customer_client.get(url(loan, "?format=csv")))
    assert table[0][:3] == ["Instalment", "Due date", "Principal (USD)"]
    assert table[13][0] == "Total" and table[13][2] == "1,200.00"
    assert ["Apr 15, 2027", "Collected", "40.00"] == csv_rows(
        customer_client.get(url(loan, "?format=csv")))[-3][:3]


def test_the_french_csv_is_in_french_with_french_numbers_and_semicolons(customer_client,
                                                                        loan):
    table = csv_rows(customer_client.get(url(loan, "?format=csv"), headers=FRENCH), ";")
    assert table[0] == ["Échéance", "Date d’échéance", "Capital (USD)", "Intérêts (USD)",
                        "Frais (USD)", "Payé (USD)", "Reste dû (USD)", "En retard (USD)"]
    assert table[3][1] == "15 avr. 2027" and table[3][6] == "81,62"
    assert table[13][2] == "1\u202f200,00"
    assert table[-3][:2] == ["15 avr. 2027", "Prélevé"]
    assert table[-1][0] == "Solde au 25 avr. 2027"


def test_the_english_pdf_holds_the_schedule_and_repayments(customer_client, loan):
    response = customer_client.get(url(loan, "?format=pdf"))
    assert response.mimetype == "application/pdf"
    text = pdf_text(response.get_data())
    assert "loan statement" in text and loan.number in text
    assert "Repayments and collections" in text and "Collected" in text
    assert "81.62" in text and "1,200.00" in text and "Apr 15, 2027" in text


def test_the_french_pdf_is_in_french_with_french_numbers(customer_client, loan):
    text = pdf_text(customer_client.get(url(loan, "?format=pdf"), headers=FRENCH).get_data())
    assert "relev\xe9 de pr\xeat" in text and "Page 1 sur" in text
    assert "81,62" in text and "1 200,00" in text and "15 avr. 2027" in text
    assert "Pr\xe9lev\xe9" in text


@pytest.mark.parametrize("extra", ["", "?format=csv", "?format=pdf"])
def test_another_customers_loan_statement_is_not_found(client, loan, make_user, extra):
    log_in_as(client, make_user(email="eve@example.com"))
    assert client.get(url(loan, extra)).status_code == 404


def test_staff_see_any_loans_statement(client, loan, teller):  # noqa: F811
    log_in_as(client, teller)
    assert client.get(url(loan)).status_code == 200


def test_an_unknown_format_is_refused(customer_client, loan):
    response = customer_client.get(url(loan, "?format=xls"))
    assert response.status_code == 400
    assert "Choose the format html, csv or pdf." in response.get_data(as_text=True)


def test_the_loan_page_links_to_its_statement(customer_client, loan):
    page = customer_client.get(f"/loans/{loan.id}/").get_data(as_text=True)
    assert f'href="/loans/{loan.id}/statement/"' in page


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler's pdftoppm")
@pytest.mark.parametrize("headers", [{}, FRENCH], ids=["en", "fr"])
def test_the_pdf_draws_as_a_printed_page(customer_client, loan, tmp_path, headers):
    """Poppler draws the PDF as one A4 page with ink on it (the PNGs stay in tmp_path)."""
    (tmp_path / "loan.pdf").write_bytes(
        customer_client.get(url(loan, "?format=pdf"), headers=headers).get_data())
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(tmp_path / "loan.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    with Image.open(pages[0]) as image:
        assert round(image.height / image.width, 2) == round(297 / 210, 2)
        darkest, _ = image.convert("L").getextrema()
        assert darkest < 64

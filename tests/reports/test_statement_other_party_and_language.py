"""Statements name the other party of each line (page, CSV, PDF), and are in the language of
the page that offers them, numbers included; programs get one fixed CSV layout."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from support.reports import csv_rows, deposit_at, pdf_text, transfer_at

UTC = timezone.utc
JANUARY = "start=2026-01-01&end=2026-01-31"
FRENCH = {"Accept-Language": "fr"}


@pytest.fixture
def january(customer, make_user, funded_account):
    """Alice's account: a salary, a gift from Bob Brown, rent to him, in January 2026."""
    account = funded_account(customer)
    bobs = funded_account(make_user(first_name="Bob", last_name="Brown"), "500.00")
    deposit_at(account, "1250.00", datetime(2026, 1, 5, 9, tzinfo=UTC), "Salary")
    transfer_at(bobs, account, "12.50", datetime(2026, 1, 15, tzinfo=UTC), "Gift")
    transfer_at(account, bobs, "20.00", datetime(2026, 1, 20, tzinfo=UTC), "Rent")
    return account


def url(account, extra="") -> str:
    return f"/reports/statement/{account.account_number}/?{JANUARY}{extra}"


def test_the_statement_page_names_the_other_party_of_each_transfer(customer_client, january):
    page = customer_client.get(url(january)).get_data(as_text=True)
    assert '<span class="h-party">From B** B****</span><span class="h-note">Gift</span>' in page
    assert '<span class="h-party">To B** B****</span><span class="h-note">Rent</span>' in page


def test_the_data_csv_has_a_counterparty_column(customer_client, january):
    table = csv_rows(customer_client.get(url(january, "&format=csv&layout=data")))
    assert table[0][4] == "counterparty"
    assert [(row[4], row[5]) for row in table[2:5]] == [
        ("", "Salary"), ("B** B****", "Gift"), ("B** B****", "Rent")]


def test_the_data_csv_is_the_same_on_a_french_page(customer_client, january):
    english = customer_client.get(url(january, "&format=csv&layout=data")).get_data()
    french = customer_client.get(url(january, "&format=csv&layout=data"),
                                 headers=FRENCH).get_data()
    assert french == english


def test_the_french_csv_is_in_french_with_french_numbers_and_semicolons(customer_client,
                                                                        january):
    table = csv_rows(customer_client.get(url(january, "&format=csv"), headers=FRENCH), ";")
    assert table[0] == ["Date", "Heure", "Référence", "Type", "Contrepartie", "Libellé",
                        "Entrées (USD)", "Sorties (USD)", "Solde (USD)"]
    salary = table[2]
    assert salary[0] == "5 janv. 2026" and salary[3] == "Dépôt"
    assert salary[6] == "1\u202f250,00" and salary[8] == "1\u202f250,00"
    assert table[1][5] == "Solde initial"


def test_the_english_csv_writes_dates_the_english_way(customer_client, january):
    table = csv_rows(customer_client.get(url(january, "&format=csv")))
    assert table[2][0] == "Jan 5, 2026" and table[2][6] == "1,250.00"


def test_the_french_pdf_is_in_french_with_french_numbers(customer_client, january):
    data = customer_client.get(url(january, "&format=pdf"), headers=FRENCH).get_data()
    text = pdf_text(data)
    assert "relev\xe9 de compte" in text
    assert "Solde initial" in text and "Page 1 sur" in text
    assert "1 250,00" in text
    assert "De B** B****" in text


def test_the_english_pdf_names_the_other_party(customer_client, january):
    text = pdf_text(customer_client.get(url(january, "&format=pdf")).get_data())
    assert "To B** B**** \xb7 Rent" in text


@pytest.mark.parametrize("headers, period", [
    ({}, '<time datetime="2026-01-01">Jan 1, 2026</time> to '
         '<time datetime="2026-01-31">Jan 31, 2026</time>'),
    (FRENCH, 'du <time datetime="2026-01-01">1 janv. 2026</time> au '
             '<time datetime="2026-01-31">31 janv. 2026</time>'),
])
def test_the_statement_page_writes_its_days_the_locale_way(customer_client, january,
                                                           headers, period):
    page = customer_client.get(url(january), headers=headers).get_data(as_text=True)
    assert period in page
    assert ">2026-01-31<" not in page

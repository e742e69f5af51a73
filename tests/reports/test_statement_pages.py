"""A statement of a long period on the page: its lines by pages of ``LINES_PER_PAGE``, each
page starting from the balance the last one carried forward; the files keep every line."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bankapp.reports.lines import LINES_PER_PAGE
from support.reports import csv_rows, deposit_at

D = Decimal
YEAR = "start=2026-01-01&end=2026-12-31"
MORE = 10  # lines past the first page


@pytest.fixture
def busy_account(customer, funded_account, monkeypatch):
    """A year with a page and ten lines of deposits: 1.00, 2.00, 3.00… (so the balance after
    the n-th is n(n+1)/2)."""
    account = funded_account(customer)
    start = datetime(2026, 1, 1, 8, tzinfo=timezone.utc)
    for n in range(1, LINES_PER_PAGE + MORE + 1):
        deposit_at(monkeypatch, account, f"{n}.00", start + timedelta(hours=30 * n), f"Pay {n}")
    return account


def page_of(client, account, query: str) -> str:
    response = client.get(f"/reports/statement/{account.account_number}/?{YEAR}{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def balance_row(html: str, label: str) -> str:
    match = re.search(rf"{label}</(?:td|th)><td class=\"num\">([^<]+)<", html)
    assert match, label
    return match.group(1)


def balance_after(n: int) -> str:
    return f"${n * (n + 1) // 2:,}.00"


def test_a_long_statement_shows_its_first_page_and_carries_its_balance_forward(
        customer_client, busy_account):
    html = page_of(customer_client, busy_account, "")
    assert html.count('class="entry"') == LINES_PER_PAGE
    assert "Opening balance</td>" in html
    assert balance_row(html, "Balance carried forward") == balance_after(LINES_PER_PAGE)
    assert "Closing balance on" not in html
    assert f"Page 1 of 2 ({LINES_PER_PAGE + MORE} in all)" in html
    assert f'/?page=2&amp;{YEAR.replace("&", "&amp;")}">Next →</a>' in html


def test_the_next_page_brings_the_balance_forward_and_ends_with_the_period_totals(
        customer_client, busy_account):
    first = page_of(customer_client, busy_account, "")
    html = page_of(customer_client, busy_account, "&page=2")
    assert html.count('class="entry"') == MORE
    assert balance_row(html, "Balance brought forward") == balance_after(LINES_PER_PAGE)
    assert "Opening balance</td>" not in html
    assert f"Closing balance on Dec 31, 2026</th><td class=\"num\">" \
           f"{balance_after(LINES_PER_PAGE + MORE)}<" in html
    # The statement's figures and code are the whole period's on every page.
    for element in ("total-in", "closing-balance", "verification-code"):
        pattern = rf'id="{element}">([^<]+)<'
        assert re.search(pattern, html).group(1) == re.search(pattern, first).group(1)


@pytest.mark.parametrize("page", ["0", "-3", "two", "99"])
def test_a_page_number_out_of_range_shows_the_nearest_page(customer_client, busy_account,
                                                           page):
    html = page_of(customer_client, busy_account, f"&page={page}")
    assert html.count('class="entry"') == (MORE if page == "99" else LINES_PER_PAGE)


def test_the_csv_of_a_long_statement_keeps_every_line(customer_client, busy_account):
    response = customer_client.get(
        f"/reports/statement/{busy_account.account_number}/?{YEAR}&format=csv&layout=data")
    rows = csv_rows(response)
    assert sum(1 for row in rows if row[5].startswith("Pay ")) == LINES_PER_PAGE + MORE
    assert rows[-2][8] == balance_after(LINES_PER_PAGE + MORE)[1:].replace(",", "")


def test_a_month_of_fewer_lines_than_a_page_has_no_pager(customer_client, busy_account):
    response = customer_client.get(
        f"/reports/statement/{busy_account.account_number}/?start=2026-01-01&end=2026-01-31")
    html = response.get_data(as_text=True)
    assert 'class="pagination"' not in html
    assert "Balance carried forward" not in html
    assert "Closing balance on" in html

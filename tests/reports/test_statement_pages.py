"""A statement of a long period on the page: its lines by pages of ``LINES_PER_PAGE``, each
page starting from the balance the last one carried forward; the files keep every line. A page
is read alone, with the whole period's figures and verification code."""
from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import AccountType, TransactionType
from bankapp.reports import service
from bankapp.reports.lines import LINES_PER_PAGE, line_page
from support.reports import csv_rows, deposit_at, post_random_history

D = Decimal
YEAR = "start=2026-01-01&end=2026-12-31"
MORE = 10  # lines past the first page


@pytest.fixture
def busy_account(customer, funded_account):
    """A year with a page and ten lines of deposits: 1.00, 2.00, 3.00… (so the balance after
    the n-th is n(n+1)/2)."""
    account = funded_account(customer)
    start = datetime(2026, 1, 1, 8, tzinfo=timezone.utc)
    for n in range(1, LINES_PER_PAGE + MORE + 1):
        deposit_at(account, f"{n}.00", start + timedelta(hours=30 * n), f"Pay {n}")
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


# ---------------------------------------------------------------- a page read alone


def assert_page_is_the_statements(account, first, last, page, per_page, as_of=None):
    """Page ``page`` of the statement read alone is the whole statement's figures and code,
    with the whole statement's lines of that page and the balance brought forward."""
    whole = service.statement(account, first, last, as_of=as_of)
    st = service.statement(account, first, last, as_of=as_of, page=page, per_page=per_page)
    assert (st.opening, st.total_in, st.total_out, st.interest, st.closing, st.count) == (
        whole.opening, whole.total_in, whole.total_out, whole.interest, whole.closing,
        len(whole.entries))
    assert st.code == whole.code
    assert st.entries == whole.entries[st.skipped:st.skipped + per_page]
    if st.skipped:
        before = whole.entries[st.skipped - 1]
        assert (st.before.id, st.before.balance_after) == (before.id, before.balance_after)
    else:
        assert st.before is None
    return st


@pytest.mark.parametrize("page", [1, 2, 0, 99])
def test_a_page_read_alone_has_the_whole_periods_totals_closing_balance_and_code(
        busy_account, page):
    st = assert_page_is_the_statements(busy_account, date(2026, 1, 1), date(2026, 12, 31),
                                       page, LINES_PER_PAGE)
    assert len(st.entries) == (MORE if page in (2, 99) else LINES_PER_PAGE)


def test_the_pages_of_a_statement_follow_on_from_one_another(busy_account):
    pages = [service.statement(busy_account, date(2026, 1, 1), date(2026, 12, 31), page=n,
                               per_page=100) for n in (1, 2, 3)]
    shown = [line_page(st, 100) for st in pages]
    assert [s.page for s in shown] == [1, 2, 3] and shown[0].pages == 3
    assert shown[0].carried_forward == shown[1].brought_forward == D(balance_after(100)[1:]
                                                                     .replace(",", ""))
    assert shown[1].carried_forward == shown[2].brought_forward
    assert shown[2].carried_forward is None and shown[0].brought_forward is None
    assert sum(len(st.entries) for st in pages) == LINES_PER_PAGE + MORE


def test_an_empty_period_read_by_pages_closes_at_its_opening_with_the_same_code(
        customer, funded_account):
    account = funded_account(customer, "42.00")
    st = assert_page_is_the_statements(account, date(2000, 1, 1), date(2000, 12, 31), 1, 10)
    assert st.entries == [] and st.closing == st.opening == D("0.00")


@pytest.mark.parametrize("seed", range(4))
def test_any_page_of_any_history_verifies_as_the_whole_statement(
        seed, customer, make_user, funded_account):
    """Deposits, withdrawals and transfers both ways with amounts of every shape (whole,
    tenths, cents), any window, any page size: the figures and code computed without the
    lines are those computed from them."""
    rng = random.Random(seed)
    account = funded_account(customer)
    other = funded_account(make_user(), "100000.00")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    moments = sorted(start + timedelta(minutes=rng.randint(1, 60 * 24 * 90)) for _ in range(30))
    post_random_history(rng, account, other, moments, lambda rng: rng.choice([
        D(rng.randint(1, 900)), D(rng.randint(1, 900)) / 10, D(rng.randint(1, 90_000)) / 100]))
    for _ in range(3):
        first = date(2026, 1, 1) + timedelta(days=rng.randint(0, 60))
        last = first + timedelta(days=rng.randint(0, 60))
        per_page = rng.randint(1, 7)
        for page in range(1, 32 // per_page + 2):
            assert_page_is_the_statements(account, first, last, page, per_page)


def test_a_page_counts_the_interest_of_the_whole_period(customer):
    account = ledger.open_account(customer, AccountType.SAVINGS)
    account.created_at = datetime(2025, 11, 1, tzinfo=timezone.utc)  # accrues all November
    db.session.commit()
    ledger.deposit(account, D("1000.00"), "Savings", customer,
                   posted_at=datetime(2025, 11, 1, tzinfo=timezone.utc))
    ledger.set_rate(AccountType.SAVINGS, D("2.5"), date(2025, 1, 1), None,
                    today=date(2025, 1, 1))
    for n in range(3):
        ledger.deposit(account, D("1.00"), "Later", customer,
                       posted_at=datetime(2025, 12, 10 + n, tzinfo=timezone.utc))
    ledger.post_interest(date(2025, 11, 1))  # booked now: the last of five lines
    st = assert_page_is_the_statements(account, date(2025, 11, 1), service.local_today(), 2, 2)
    assert st.interest == D("2.05")
    assert all(e.transaction_type != TransactionType.INTEREST for e in st.entries)


def test_a_page_of_the_current_period_stops_at_its_issue_time(customer, funded_account):
    account = funded_account(customer)
    issued = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    for hours in (-3, -2, -1, 1, 2):
        deposit_at(account, "10.00", issued + timedelta(hours=hours))
    st = assert_page_is_the_statements(account, date(2026, 3, 1), date(2026, 3, 31), 2, 2,
                                       as_of=issued)
    assert st.count == 3 and st.closing == D("30.00")


def test_the_code_on_the_page_of_a_year_verifies(customer_client, customer, busy_account):
    html = page_of(customer_client, busy_account, "&page=2")
    code = re.search(r'id="verification-code">([^<]+)<', html).group(1)
    assert service.verify_code(code, customer).valid

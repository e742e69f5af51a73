"""Report pages and downloads: statement HTML/CSV/PDF, verification, summary charts, bank page."""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from bankapp.models import Role
from support.reports import deposit_at, pdf_text, transfer_at, withdraw_at
from support.users import log_in_as

D = Decimal
UTC = timezone.utc
SVG = "{http://www.w3.org/2000/svg}"
JANUARY = "start=2026-01-01&end=2026-01-31"


@pytest.fixture
def history(customer, make_user, funded_account):
    """Alice's savings account with a January of deposits, a withdrawal and transfers."""
    account = funded_account(customer)
    other = funded_account(make_user(), "500.00")
    deposit_at(account, "100.00", datetime(2025, 12, 30, tzinfo=UTC), "Salary")
    deposit_at(account, "250.00", datetime(2026, 1, 5, 9, tzinfo=UTC), "Salary")
    withdraw_at(account, "40.25", datetime(2026, 1, 9, 15, tzinfo=UTC), "Cash")
    transfer_at(other, account, "12.50", datetime(2026, 1, 15, tzinfo=UTC), "Gift")
    transfer_at(account, other, "20.00", datetime(2026, 1, 20, tzinfo=UTC), "Rent")
    deposit_at(account, "7.00", datetime(2026, 2, 2, tzinfo=UTC), "Later")
    return account


def statement_url(account, query=JANUARY, fmt=None):
    url = f"/reports/statement/{account.account_number}/?{query}"
    return url + (f"&format={fmt}" if fmt else "")


def figure(html: str, element_id: str) -> Decimal:
    match = re.search(rf'id="{element_id}">([^<]+)<', html)
    assert match, element_id
    return D(match.group(1).replace(",", "").replace("$", "").replace("−", "-"))


# ---------------------------------------------------------------- statement page


def test_statement_page_shows_balances_entries_and_code(customer_client, history):
    response = customer_client.get(statement_url(history))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert figure(html, "opening-balance") == D("100.00")
    assert figure(html, "total-in") == D("262.50")
    assert figure(html, "total-out") == D("60.25")
    assert figure(html, "closing-balance") == D("302.25")
    assert html.count('class="entry"') == 4
    assert re.search(r'id="verification-code">[A-Z2-7]{4}(-[A-Z2-7]{4}){4}<', html)
    assert "Alice Archer" in html and history.account_number in html


def test_statement_without_dates_shows_this_month(customer_client, customer, funded_account):
    account = funded_account(customer, "15.00")
    html = customer_client.get(f"/reports/statement/{account.account_number}/").get_data(
        as_text=True)
    assert figure(html, "closing-balance") == D("15.00")


def test_statement_page_has_no_inline_style_or_script(customer_client, history):
    html = customer_client.get(statement_url(history)).get_data(as_text=True)
    assert " style=" not in html and "<style" not in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)  # only scripts from static files


def test_someone_elses_statement_is_not_found(client, make_user, history):
    log_in_as(client, make_user())
    assert client.get(statement_url(history)).status_code == 404
    assert client.get(statement_url(history, fmt="csv")).status_code == 404
    assert client.get(statement_url(history, fmt="pdf")).status_code == 404
    assert client.get(f"/reports/summary/?account={history.account_number}").status_code == 404


def test_an_unknown_account_is_not_found(customer_client):
    assert customer_client.get("/reports/statement/ACC-000000000/").status_code == 404


@pytest.mark.parametrize("role", [Role.TELLER, Role.ADMIN])
def test_not_even_staff_get_statements_of_the_banks_own_accounts(client, make_user, history,
                                                                 role):
    from bankapp import ledger

    log_in_as(client, make_user(role=role))
    vault = ledger.internal_account().account_number
    assert client.get(f"/reports/statement/{vault}/?{JANUARY}").status_code == 404
    assert client.get(f"/reports/summary/?account={vault}").status_code == 404


def test_staff_may_open_any_customers_statement(client, make_user, history):
    log_in_as(client, make_user(role=Role.TELLER))
    assert client.get(statement_url(history)).status_code == 200


def test_reports_need_a_login(client, history):
    response = client.get(statement_url(history))
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


@pytest.mark.parametrize("query, message", [
    ("start=2026-13-01&end=2026-12-31", "does not exist"),
    ("start=yesterday&end=2026-01-31", "must look like"),
    ("start=2026-02-01&end=2026-01-01", "end date is before the start date"),
    ("start=2019-01-01&end=2026-01-01", "at most 5 years"),
    ("start=9999-12-31&end=9999-12-31", "between the years 1900 and 2999"),
    ("preset=custom&start=&end=", "Enter the start date"),
    ("preset=next-century", "Choose a period"),
    (JANUARY + "&format=docx", "html, csv or pdf"),
])
def test_bad_statement_input_gives_a_message_not_an_error(customer_client, history, query,
                                                          message):
    response = customer_client.get(statement_url(history, query))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'role="alert"' in html and "<nav" in html


# ---------------------------------------------------------------- CSV


def parse_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_csv_download_is_an_attachment_with_a_sensible_name(customer_client, history):
    response = customer_client.get(statement_url(history, fmt="csv"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="statement-{history.account_number}-2026-01-01-2026-01-31.csv"')


def test_csv_parsed_back_equals_the_html_figures(customer_client, history):
    html = customer_client.get(statement_url(history)).get_data(as_text=True)
    rows = parse_csv(customer_client.get(statement_url(history, fmt="csv") + "&layout=data"))
    header, opening, *entries, totals, closing, code_row = rows
    assert header == ["date", "time", "reference", "type", "counterparty", "description",
                      "money_in (USD)", "money_out (USD)", "balance (USD)"]
    assert opening[5] == "Opening balance" and D(opening[8]) == figure(html, "opening-balance")
    assert closing[5] == "Closing balance" and D(closing[8]) == figure(html, "closing-balance")
    assert D(totals[6]) == figure(html, "total-in") and D(totals[7]) == figure(html, "total-out")
    assert [e[0] for e in entries] == ["2026-01-05", "2026-01-09", "2026-01-15", "2026-01-20"]
    assert [(e[6], e[7], e[8]) for e in entries] == [
        ("250.00", "", "350.00"), ("", "40.25", "309.75"), ("12.50", "", "322.25"),
        ("", "20.00", "302.25")]
    # Each entry's balance is in the page too, and the code printed there is in the file.
    for entry in entries:
        assert f"{D(entry[8]):,.2f}" in html
    code = re.search(r'id="verification-code">([^<]+)<', html).group(1)
    assert code in code_row[5]


@pytest.mark.parametrize("description", [
    "=HYPERLINK(\"http://evil.example\")", "+1+1", "-2+3", "@SUM(A1:A2)"])
@pytest.mark.parametrize("layout", ["local", "data"])
def test_csv_neutralises_formula_cells(customer_client, customer, funded_account,
                                       description, layout):
    account = funded_account(customer)
    deposit_at(account, "10.00", datetime(2026, 1, 5, tzinfo=UTC), description)
    rows = parse_csv(customer_client.get(statement_url(account, fmt="csv") + f"&layout={layout}"))
    cell = rows[2][5]
    assert cell == "'" + description


def test_csv_keeps_plain_descriptions_as_they_are(customer_client, history):
    rows = parse_csv(customer_client.get(statement_url(history, fmt="csv")))
    assert [row[5] for row in rows[2:6]] == ["Salary", "Cash", "Gift", "Rent"]


# ---------------------------------------------------------------- PDF


def test_pdf_is_a_pdf_carrying_the_verification_code(customer_client, history):
    html = customer_client.get(statement_url(history)).get_data(as_text=True)
    code = re.search(r'id="verification-code">([^<]+)<', html).group(1)
    response = customer_client.get(statement_url(history, fmt="pdf"))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].endswith('-2026-01-01-2026-01-31.pdf"')
    data = response.get_data()
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert code in text and "302.25" in text and "Closing balance" in text


def test_pdf_survives_text_outside_latin_1(customer_client, customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", datetime(2026, 1, 5, tzinfo=UTC),
               "Zahlung für Łódź 東京 🙂")
    response = customer_client.get(statement_url(account, fmt="pdf"))
    assert response.status_code == 200
    assert "Zahlung f\xfcr L\xf3dz ?? ?" in pdf_text(response.get_data())


# ---------------------------------------------------------------- verification page


def issued_code(client, account) -> str:
    html = client.get(statement_url(account)).get_data(as_text=True)
    return re.search(r'id="verification-code">([^<]+)<', html).group(1)


def test_verify_page_confirms_an_issued_code(customer_client, history):
    code = issued_code(customer_client, history)
    html = customer_client.get(f"/reports/verify/?code={code}").get_data(as_text=True)
    assert "Valid: the statement matches the ledger" in html and "302.25" in html


def test_verify_page_reports_an_unknown_code(customer_client, history):
    code = issued_code(customer_client, history)
    tampered = ("B" if code[0] != "B" else "C") + code[1:]
    html = customer_client.get(f"/reports/verify/?code={tampered}").get_data(as_text=True)
    assert "Unknown code" in html and "Valid" not in html


def test_verify_page_explains_a_malformed_code(customer_client):
    response = customer_client.get("/reports/verify/?code=hello")
    assert response.status_code == 400
    assert "has 20 letters" in response.get_data(as_text=True)


def test_staff_can_verify_a_customers_code(client, customer, make_user, history):
    from datetime import date

    from bankapp.reports import service

    st = service.statement(history, date(2026, 1, 1), date(2026, 1, 31))
    service.record_issue(st, customer)
    log_in_as(client, make_user(role=Role.ADMIN))
    html = client.get(f"/reports/verify/?code={st.code}").get_data(as_text=True)
    assert "Valid: the statement matches the ledger" in html and customer.email not in html


def test_verify_needs_a_login(client):
    assert client.get("/reports/verify/?code=x").status_code == 302


# ---------------------------------------------------------------- summary and charts


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", html, re.S)]


def test_summary_charts_are_well_formed_svg_with_one_bar_group_per_month(customer_client,
                                                                         history):
    html = customer_client.get(f"/reports/summary/?account={history.account_number}"
                               ).get_data(as_text=True)
    wide_bars, narrow_bars, wide_line, narrow_line = svgs(html)
    for bars in (wide_bars, narrow_bars):
        groups = [g for g in bars.iter(f"{SVG}g") if g.get("class") == "bar-group"]
        assert len(groups) == 12
        assert len({g.get("data-month") for g in groups}) == 12
        assert all(len(g.findall(f"{SVG}rect")) == 2 for g in groups)
    for line in (wide_line, narrow_line):
        assert len(line.findall(f"{SVG}polyline")) == 1


def test_summary_charts_come_in_a_wide_and_a_narrow_drawing_with_larger_text(customer_client,
                                                                              history):
    html = customer_client.get(f"/reports/summary/?account={history.account_number}"
                               ).get_data(as_text=True)
    wide_bars, narrow_bars, wide_line, narrow_line = svgs(html)
    for wide, narrow in ((wide_bars, narrow_bars), (wide_line, narrow_line)):
        assert "chart-wide" in wide.get("class") and "chart-narrow" in narrow.get("class")
        assert wide.get("id") != narrow.get("id")
        wide_width = float(wide.get("viewBox").split()[2])
        narrow_width = float(narrow.get("viewBox").split()[2])
        assert narrow_width < wide_width / 2
        # The narrow drawing is shown at about a phone's width: its text is larger per unit.
        sizes = {svg: {float(t.get("font-size")) for t in svg.iter(f"{SVG}text")}
                 for svg in (wide, narrow)}
        assert min(sizes[narrow]) > max(sizes[wide])


def test_a_narrow_chart_names_fewer_months_and_always_the_last(customer_client, history):
    html = customer_client.get(f"/reports/summary/?account={history.account_number}"
                               ).get_data(as_text=True)
    wide_bars, narrow_bars, _, _ = svgs(html)

    def named_months(svg):
        return [g.get("data-month") for g in svg.iter(f"{SVG}g")
                if g.get("class") == "bar-group" and g.find(f"{SVG}text") is not None]

    assert len(named_months(wide_bars)) == 12
    narrow = named_months(narrow_bars)
    assert 2 <= len(narrow) < 12 and narrow[-1] == named_months(wide_bars)[-1]


def test_summary_charts_are_accessible_images(customer_client, history):
    html = customer_client.get("/reports/summary/").get_data(as_text=True)
    for svg in svgs(html):
        assert svg.get("role") == "img"
        title_id, desc_id = svg.get("aria-labelledby").split()
        assert svg.find(f"{SVG}title").get("id") == title_id
        assert svg.find(f"{SVG}desc").get("id") == desc_id
        texts = [t.text for t in svg.iter(f"{SVG}text")]
        assert "Month" in texts  # axis title
        assert any(t and t.startswith("Money in") or t == "Month-end balance" for t in texts)
    assert "<table" in html and " style=" not in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)  # only scripts from static files


def test_summary_table_lists_the_months_figures(customer_client, history):
    html = customer_client.get(f"/reports/summary/?account={history.account_number}"
                               ).get_data(as_text=True)
    assert html.count('<tr data-month="') == 12


def test_summary_with_no_accounts_says_so(customer_client):
    response = customer_client.get("/reports/summary/")
    assert response.status_code == 200
    assert "no account" in response.get_data(as_text=True)


# ---------------------------------------------------------------- report chooser


def test_index_lists_the_customers_accounts(customer_client, history):
    html = customer_client.get("/reports/").get_data(as_text=True)
    assert history.account_number in html and "Last 90 days" in html


def test_the_custom_dates_hint_does_not_ask_for_yyyy_mm_dd_beside_date_pickers(
        customer_client, history):
    html = customer_client.get("/reports/").get_data(as_text=True)
    assert 'type="date" id="start"' in html
    [hint] = re.findall(r'<p class="hint" id="dates-hint">([^<]*)</p>', html)
    assert "both included" in hint and "YYYY" not in hint


def test_index_sends_a_chosen_statement_to_its_page(customer_client, history):
    response = customer_client.get(
        f"/reports/?account={history.account_number}&report=statement&preset=custom"
        f"&start=2026-01-01&end=2026-01-31")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/reports/statement/{history.account_number}/?start=2026-01-01&end=2026-01-31")


def test_index_sends_all_accounts_to_the_summary(customer_client, history):
    response = customer_client.get("/reports/?account=all&report=summary&preset=this-month")
    assert response.status_code == 302 and "/reports/summary/" in response.headers["Location"]


@pytest.mark.parametrize("query, message", [
    ("account=all&report=statement", "A statement covers one account"),
    ("account=ACC-000000001&report=statement", "No account of yours"),
    ("account={number}&report=statement&preset=custom&start=2026-02-01&end=2026-01-01",
     "end date is before the start date"),
])
def test_index_explains_bad_choices(customer_client, history, query, message):
    response = customer_client.get("/reports/?" + query.format(number=history.account_number))
    assert response.status_code == 400 and message in response.get_data(as_text=True)


# ---------------------------------------------------------------- bank-wide


def test_bank_reports_send_anonymous_visitors_to_login(client):
    response = client.get("/reports/bank/")
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


def test_bank_reports_are_forbidden_to_customers(customer_client):
    assert customer_client.get("/reports/bank/").status_code == 403


@pytest.mark.parametrize("role", [Role.TELLER, Role.ADMIN])
def test_bank_reports_are_open_to_staff(client, make_user, history, role):
    log_in_as(client, make_user(role=role))
    response = client.get("/reports/bank/?" + JANUARY)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Totals per day" in html and history.account_number in html


@pytest.mark.parametrize("table, header", [
    ("daily", "date,deposits (USD),deposit_count,withdrawals (USD),withdrawal_count,"
              "transfers (USD),transfer_count"),
    ("accounts", "account_type,status,accounts,balance (USD)"),
    ("balances", "figure,value"),
    ("largest", "timestamp,account_number,type,side,amount (USD),description"),
    ("signups", "month,new_customers"),
])
def test_each_bank_table_exports_as_csv(client, make_user, history, table, header):
    log_in_as(client, make_user(role=Role.TELLER))
    response = client.get(f"/reports/bank/?{JANUARY}&format=csv&table={table}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"bank-{table}-2026-01-01-2026-01-31.csv" in response.headers["Content-Disposition"]
    assert ",".join(parse_csv(response)[0]) == header


def test_bank_daily_csv_sums_the_period(client, make_user, history):
    log_in_as(client, make_user(role=Role.TELLER))
    rows = parse_csv(client.get(f"/reports/bank/?{JANUARY}&format=csv&table=daily"))[1:]
    assert len(rows) == 31
    # December's deposit and today's opening deposit of the other account fall outside.
    assert sum(D(r[1]) for r in rows) == D("250.00")
    assert sum(D(r[3]) for r in rows) == D("40.25")
    assert sum(D(r[5]) for r in rows) == D("32.50")


def stored_rows() -> dict[str, int]:
    """How many rows each table holds: a report that refuses its input writes none."""
    from sqlalchemy import func, select

    from bankapp.extensions import db

    return {table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


NOT_A_DATE = "must look like 2026-01-31 (YYYY-MM-DD)"
BAD_BANK_QUERIES = [
    # malformed dates
    ("start=2026-13-01&end=2026-12-31", "The start date 2026-13-01 does not exist."),
    ("start=2026-01-01&end=2026-02-30", "The end date 2026-02-30 does not exist."),
    ("start=0000-01-01&end=2026-01-31", "The start date 0000-01-01 does not exist."),
    ("start=26-01-01&end=2026-01-31", NOT_A_DATE),
    ("start=2026/01/01&end=2026/01/31", NOT_A_DATE),
    ("start=2026-1-1&end=2026-1-31", NOT_A_DATE),
    ("start=20260101&end=20260131", NOT_A_DATE),
    ("start=2026-01-01T00:00&end=2026-01-31", NOT_A_DATE),
    ("start=%2B2026-01-01&end=2026-01-31", NOT_A_DATE),
    ("start=%D9%A2%D9%A0%D9%A2%D9%A6-01-01&end=2026-01-31", NOT_A_DATE),  # Arabic digits
    ("start=%00&end=2026-01-31", NOT_A_DATE),
    ("start=%FF%FE&end=2026-01-31", NOT_A_DATE),
    ("start=" + "9" * 5000 + "&end=2026-01-31", NOT_A_DATE),
    # wrong types
    ("start=1&end=2", NOT_A_DATE),
    ("start=true&end=false", NOT_A_DATE),
    ("start=2026-01-01&end=null", "The end date " + NOT_A_DATE),
    ("start[]=2026-01-01&end=2026-01-31", "Enter the start date as YYYY-MM-DD."),
    # half a period
    ("start=2026-01-01", "Enter the end date as YYYY-MM-DD."),
    ("end=2026-01-31", "Enter the start date as YYYY-MM-DD."),
    ("preset=custom", "Enter the start date as YYYY-MM-DD."),
    ("preset=custom&start=&end=2026-01-31", "Enter the start date as YYYY-MM-DD."),
    # start after end, absurd ranges
    ("start=2026-01-31&end=2026-01-01", "end date is before the start date"),
    ("start=2026-01-02&end=2026-01-01", "end date is before the start date"),
    ("start=2000-01-01&end=2026-01-01", "at most 5 years"),
    ("start=1900-01-01&end=2999-12-31", "at most 5 years"),
    ("start=2021-01-01&end=2026-01-01", "at most 5 years"),
    ("start=2020-02-29&end=2025-02-28", "at most 5 years"),
    ("start=1899-12-31&end=1900-01-01", "between the years 1900 and 2999"),
    ("start=2999-12-31&end=3000-01-01", "between the years 1900 and 2999"),
    ("start=9999-12-31&end=9999-12-31", "between the years 1900 and 2999"),
    # presets, formats and tables that do not exist
    ("preset=bogus", "Choose a period from the list"),
    ("preset=%00", "Choose a period from the list"),
    ("format=pdf", "Choose the format html or csv."),
    ("format=json&table=daily", "Choose the format html or csv."),
    ("format=CSV&table=daily", "Choose the format html or csv."),
    ("format=%00&table=daily", "Choose the format html or csv."),
    # the CSV exports
    ("format=csv", "Choose a table to export"),
    ("format=csv&table=", "Choose a table to export"),
    ("format=csv&table=secrets", "Choose a table to export"),
    ("format=csv&table=DAILY", "Choose a table to export"),
    ("format=csv&table=daily&start=2026-01-31&end=2026-01-01",
     "end date is before the start date"),
    ("format=csv&table=largest&start=2026-02-30&end=2026-03-01",
     "The start date 2026-02-30 does not exist."),
    ("format=csv&table=signups&start=1900-01-01&end=2999-12-31", "at most 5 years"),
    ("format=csv&table=balances&preset=bogus", "Choose a period from the list"),
    ("format=csv&table=accounts&start=2026-01-01", "Enter the end date as YYYY-MM-DD."),
]


@pytest.mark.parametrize("query, message", BAD_BANK_QUERIES,
                         ids=[query[:60] for query, _ in BAD_BANK_QUERIES])
def test_bank_reports_explain_bad_input_and_change_nothing(client, make_user, history, query,
                                                          message):
    log_in_as(client, make_user(role=Role.ADMIN))
    before = stored_rows()
    response = client.get("/reports/bank/?" + query)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "Content-Disposition" not in response.headers  # no file, not even an empty one
    assert re.search(r'<p class="error">[^<]*' + re.escape(message), html), html[:2000]
    assert 'id="daily"' not in html  # no figures beside the error
    assert 'name="start"' in html  # the period chooser is there to correct it
    assert stored_rows() == before


@pytest.mark.parametrize("extra", [
    "foo=bar", "page=-1", "table=secrets", "account=ACC-000000000", "start[]=2026-02-01",
    "format=html&table=daily", "utm_source=%00%FF", "x=" + "y" * 5000,
])
def test_bank_reports_ignore_parameters_they_do_not_use(client, make_user, history, extra):
    log_in_as(client, make_user(role=Role.ADMIN))
    plain = client.get(f"/reports/bank/?{JANUARY}")
    response = client.get(f"/reports/bank/?{JANUARY}&{extra}")
    assert response.status_code == 200
    assert "Period 2026-01-01 to 2026-01-31" in response.get_data(as_text=True)
    assert (re.findall(r'<td class="num">[^<]*</td>', response.get_data(as_text=True))
            == re.findall(r'<td class="num">[^<]*</td>', plain.get_data(as_text=True)))


@pytest.mark.parametrize("extra", ["foo=bar", "start=x", "table=secrets", "format=pdf"])
def test_an_unused_parameter_does_not_change_a_csv_export(client, make_user, history, extra):
    """Only the first value of a repeated parameter counts (as in every Flask view)."""
    log_in_as(client, make_user(role=Role.ADMIN))
    plain = client.get(f"/reports/bank/?{JANUARY}&format=csv&table=daily")
    response = client.get(f"/reports/bank/?{JANUARY}&format=csv&table=daily&{extra}")
    assert response.status_code == 200 and response.get_data() == plain.get_data()


@pytest.mark.parametrize("query, period", [
    ("start=1900-01-01&end=1900-01-01", "1900-01-01 to 1900-01-01"),
    ("start=2999-12-31&end=2999-12-31", "2999-12-31 to 2999-12-31"),
    ("start=2021-01-01&end=2025-12-31", "2021-01-01 to 2025-12-31"),
    ("start=2020-02-29&end=2025-02-27", "2020-02-29 to 2025-02-27"),
    ("start=%202026-01-01%20&end=2026-01-31%0A", "2026-01-01 to 2026-01-31"),
    ("preset=last-month&start=nonsense&end=", None),
])
def test_bank_reports_accept_the_edges_of_what_is_allowed(client, make_user, history, query,
                                                          period):
    log_in_as(client, make_user(role=Role.ADMIN))
    response = client.get("/reports/bank/?" + query)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="error"' not in html
    assert 'id="daily"' in html
    if period:
        assert f"Period {period}" in html
        csv_response = client.get(f"/reports/bank/?{query}&format=csv&table=daily")
        assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"


def test_reports_link_appears_in_the_navigation(customer_client):
    html = customer_client.get("/reports/").get_data(as_text=True)
    assert 'href="/reports/"' in html


def test_staff_may_open_a_customers_summary(client, make_user, history):
    log_in_as(client, make_user(role=Role.TELLER))
    response = client.get(f"/reports/summary/?account={history.account_number}")
    assert response.status_code == 200
    assert response.get_data(as_text=True).count('<tr data-month="') == 12


def test_staff_index_asks_for_an_account_number(client, make_user):
    log_in_as(client, make_user(role=Role.ADMIN))
    html = client.get("/reports/").get_data(as_text=True)
    assert 'name="account"' in html and "Bank-wide reports" in html

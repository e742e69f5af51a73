"""Statements and bank tables as files: CSV for spreadsheets, PDF for paper."""
from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from flask import current_app
from flask_babel import gettext

from bankapp.ledger.amounts import Separators
from bankapp.lending.portfolio import PAR_DAYS, Portfolio
from bankapp.models import RepaymentKind
from bankapp.platform.formatting import (
    bank_timezone,
    format_amount,
    format_day,
    money_writer,
    timestamp_writer,
)
from bankapp.platform.i18n import current_locale
from bankapp.reports.service import BankReport, LoanStatement, Statement, format_code

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell: numbers and dates as plain text, other text neutralised against formulas."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, (int, date)):
        return value.isoformat() if isinstance(value, date) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_bytes(rows, delimiter: str = ",", cell=safe_cell) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", delimiter=delimiter)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    # The byte-order mark makes Excel read the file as UTF-8 (other tools ignore it).
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


STATEMENT_COLUMNS = ["date", "time", "reference", "type", "counterparty", "description",
                     "money_in", "money_out", "balance"]


def with_currency(*columns: str) -> list[str]:
    """Money columns named with the unit of their figures: ``balance (USD)``. Cells stay plain
    decimals (``1234.50``) so spreadsheets read them as numbers."""
    code = current_app.config["BANK_CURRENCY"]
    return [f"{name} ({code})" for name in columns]


def statement_csv(st: Statement, layout: str = "local") -> bytes:
    """One row per entry between an opening and a closing balance row.

    ``local`` (the download button's): written for a person in the page's language, with
    its dates, its numbers (``1 234,50``) and, where the decimal mark is a comma, ``;``
    between cells, as spreadsheets of that language expect. ``data``: for programs, the
    same whatever the language: English column names, ISO dates, plain decimals (``1234.50``)
    and commas (docs/features.md, "Statements").
    """
    if layout == "data":
        return _csv_bytes(_statement_rows(st, _DATA_WORDS, _iso_day, _iso_time,
                                          with_currency(*STATEMENT_COLUMNS[6:])))
    marks = Separators.of(str(current_locale()))
    code = current_app.config["BANK_CURRENCY"]
    money = [gettext("Money in (%(currency)s)", currency=code),
             gettext("Money out (%(currency)s)", currency=code),
             gettext("Balance (%(currency)s)", currency=code)]
    # The locale, time zone and currency are looked up once for the file, not per cell.
    locale = current_locale()
    amount = money_writer(locale=locale, number_only=True)
    rows = _statement_rows(st, _local_words(), lambda day: format_day(day, locale=locale),
                           timestamp_writer("seconds", locale), money)
    return _csv_bytes(rows, delimiter=";" if marks.decimal == "," else ",",
                      cell=lambda value: _local_cell(value, amount))


# What the rows say besides the figures, for programs (the words never change).
_DATA_WORDS = {"columns": STATEMENT_COLUMNS[:6], "opening": "Opening balance",
               "totals": "Total in and out", "closing": "Closing balance",
               "code": "Account {number}, verification code {code}"}


def _local_words() -> dict:
    return {"columns": [gettext("Date"), gettext("Time"), gettext("Reference"), gettext("Type"),
                        gettext("Other party"), gettext("Description")],
            "opening": gettext("Opening balance"), "totals": gettext("Total in and out"),
            "closing": gettext("Closing balance"),
            "code": gettext("Account {number}, verification code {code}")}


def _local_cell(value, amount=format_amount) -> str:
    """A cell of the person's CSV: amounts in the locale's way, text safe from formulas."""
    if isinstance(value, Decimal):
        return amount(value)
    return safe_cell(value)


def _iso_day(day: date) -> date:
    return day


def _iso_time(moment) -> str:
    return moment.astimezone(bank_timezone()).strftime("%H:%M:%S")


def _statement_rows(st: Statement, words: dict, day, clock, money_columns) -> list:
    tz = bank_timezone()
    rows = [words["columns"] + money_columns,
            [day(st.period.start), "", "", "", "", words["opening"], None, None, st.opening]]
    type_names: dict[str, str] = {}  # each type's words translated once per file
    for e in st.entries:
        local = e.timestamp.astimezone(tz)
        type_name = type_names.get(e.type_label)
        if type_name is None:
            type_name = type_names[e.type_label] = (
                e.type_label if words is _DATA_WORDS else gettext(e.type_label))
        rows.append([day(local.date()), clock(e.timestamp), e.reference, type_name,
                     e.counterparty, e.description, e.money_in, e.money_out, e.balance_after])
    rows.append([day(st.period.end), "", "", "", "", words["totals"], st.total_in,
                 st.total_out, None])
    rows.append([day(st.period.end), "", "", "", "", words["closing"], None, None, st.closing])
    rows.append(["", "", "", "", "", words["code"].format(number=st.account.account_number,
                                                          code=format_code(st.code)),
                 None, None, None])
    return rows


def statement_filename(st: Statement, extension: str) -> str:
    return (f"statement-{st.account.account_number}-{st.period.start.isoformat()}-"
            f"{st.period.end.isoformat()}.{extension}")


LOAN_COLUMNS = ["instalment", "due_date", "principal", "interest", "fees", "paid", "due",
                "overdue"]
LOAN_REPAYMENT_COLUMNS = ["paid_on", "kind", "amount", "principal", "interest", "fees"]


def loan_statement_csv(ls: LoanStatement, layout: str = "local") -> bytes:
    """The loan's schedule (one row per instalment, then the totals), its repayments and
    collections, and the payoff today, with the same two layouts as ``statement_csv``."""
    if layout == "data":
        words = {"columns": LOAN_COLUMNS[:2] + with_currency(*LOAN_COLUMNS[2:]),
                 "repayments": LOAN_REPAYMENT_COLUMNS[:2]
                 + with_currency(*LOAN_REPAYMENT_COLUMNS[2:]),
                 "total": "Total", "payoff": "Payoff on {day}", "kind": lambda kind: kind}
        return _csv_bytes(_loan_rows(ls, words, _iso_day))
    marks = Separators.of(str(current_locale()))
    code = current_app.config["BANK_CURRENCY"]

    def unit(label: str) -> str:
        return f"{label} ({code})"

    words = {"columns": [gettext("Instalment"), gettext("Due date"), unit(gettext("Principal")),
                         unit(gettext("Interest")), unit(gettext("Fees")),
                         unit(gettext("Paid")), unit(gettext("Still due")),
                         unit(gettext("Overdue"))],
             "repayments": [gettext("Date"), gettext("Type"), unit(gettext("Amount")),
                            unit(gettext("Principal")), unit(gettext("Interest")),
                            unit(gettext("Fees"))],
             "total": gettext("Total"), "payoff": gettext("Payoff on {day}"),
             "kind": lambda kind: gettext(RepaymentKind.label(kind))}
    return _csv_bytes(_loan_rows(ls, words, format_day),
                      delimiter=";" if marks.decimal == "," else ",", cell=_local_cell)


def _loan_rows(ls: LoanStatement, words: dict, day) -> list:
    rows = [words["columns"]]
    rows += [[line.number, day(line.due_on), line.principal, line.interest, line.fees,
              line.paid, line.due, line.overdue] for line in ls.lines]
    rows.append([words["total"], "", *(ls.total(name) for name in
                                        ("principal", "interest", "fees", "paid", "due",
                                         "overdue"))])
    rows += [[], words["repayments"]]
    rows += [[day(r.paid_on), words["kind"](r.kind), r.amount, r.principal, r.interest, r.fees]
             for r in ls.repayments]
    rows += [[], [words["payoff"].format(day=day(ls.day)), "", ls.payoff]]
    return rows


def loan_statement_filename(ls: LoanStatement, extension: str) -> str:
    return f"loan-{ls.loan.number}-{ls.day.isoformat()}.{extension}"


BANK_TABLES = ("daily", "accounts", "largest", "signups", "balances")


def bank_table_csv(report: BankReport, table: str) -> bytes:
    """One table of the bank-wide report as CSV."""
    if table == "daily":
        deposits, withdrawals, transfers = with_currency("deposits", "withdrawals", "transfers")
        rows = [["date", deposits, "deposit_count", withdrawals, "withdrawal_count",
                 transfers, "transfer_count"]]
        rows += [[d.day, d.deposits, d.deposit_count, d.withdrawals, d.withdrawal_count,
                  d.transfers, d.transfer_count] for d in report.days]
    elif table == "accounts":
        rows = [["account_type", "status", "accounts", *with_currency("balance")]]
        rows += [[g.account_type, g.status, g.count, g.balance] for g in report.groups]
    elif table == "balances":
        rows = [["figure", "value"],
                [*with_currency("customer_balances"), report.held.customer_total],
                ["customer_accounts", report.held.customer_accounts],
                [*with_currency("internal_balances"), report.held.internal_total],
                ["counted_at", report.counted_at.astimezone(bank_timezone())
                 .isoformat(timespec="seconds")]]
    elif table == "largest":
        tz = bank_timezone()
        rows = [["timestamp", "account_number", "type", "side", *with_currency("amount"),
                 "description"]]
        rows += [[m.timestamp.astimezone(tz).isoformat(timespec="seconds"), m.account_number,
                  m.transaction_type, m.side, m.amount, m.description] for m in report.largest]
    elif table == "signups":
        rows = [["month", "new_customers"]]
        rows += [[s.month.strftime("%Y-%m"), s.count] for s in report.signups]
    else:
        raise ValueError(table)
    return _csv_bytes(rows)




def loan_portfolio_csv(report: Portfolio) -> bytes:
    """The loan portfolio on its day as ``figure,value`` rows, like the bank tables: loans by
    status, principal outstanding, interest owed, PAR1/30/90 (percent, and the principal at
    risk), this month's repayments expected and collected."""
    rows = [["figure", "value"], ["day", report.day]]
    rows += [[f"loans_{status}", count] for status, count in report.by_status.items()]
    rows += [[*with_currency("principal_outstanding"), report.outstanding],
             [*with_currency("interest_owed"), report.interest_owed]]
    for days in PAR_DAYS:
        rows += [[f"par{days}_percent", report.par(days)],
                 [*with_currency(f"par{days}_principal"), report.at_risk[days]]]
    rows += [[*with_currency("expected_this_month"), report.expected],
             [*with_currency("collected_this_month"), report.collected]]
    return _csv_bytes(rows)


def statement_pdf(st: Statement, bank_name: str = "bankapp") -> bytes:
    """The statement as a PDF."""
    # Imported here: fpdf2 (with Pillow and fontTools) loads on the first PDF, not at start.
    from bankapp.reports.pdf import render_statement_pdf

    return render_statement_pdf(st, bank_name)


def loan_statement_pdf(ls: LoanStatement, bank_name: str = "bankapp") -> bytes:
    """The loan statement as a PDF."""
    # Imported here: fpdf2 loads on the first PDF, not at start (as above).
    from bankapp.reports.pdf import render_loan_statement_pdf

    return render_loan_statement_pdf(ls, bank_name)

"""Statements and bank tables as files: CSV for spreadsheets, PDF for paper."""
from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from flask import current_app

from bankapp.platform.formatting import bank_timezone
from bankapp.reports.service import BankReport, Statement, format_code

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


def _csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    # The byte-order mark makes Excel read the file as UTF-8 (other tools ignore it).
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


STATEMENT_COLUMNS = ["date", "time", "reference", "type", "description", "money_in",
                     "money_out", "balance"]


def with_currency(*columns: str) -> list[str]:
    """Money columns named with the unit of their figures: ``balance (USD)``. Cells stay plain
    decimals (``1234.50``) so spreadsheets read them as numbers."""
    code = current_app.config["BANK_CURRENCY"]
    return [f"{name} ({code})" for name in columns]


def statement_csv(st: Statement) -> bytes:
    """One row per entry between an opening and a closing balance row; local ISO dates."""
    tz = bank_timezone()
    rows = [STATEMENT_COLUMNS[:5] + with_currency(*STATEMENT_COLUMNS[5:]),
            [st.period.start, "", "", "", "Opening balance", None, None, st.opening]]
    for e in st.entries:
        local = e.timestamp.astimezone(tz)
        rows.append([local.date(), local.strftime("%H:%M:%S"), e.reference, e.type_label,
                     e.description, e.money_in, e.money_out, e.balance_after])
    rows.append([st.period.end, "", "", "", "Total in and out", st.total_in, st.total_out, None])
    rows.append([st.period.end, "", "", "", "Closing balance", None, None, st.closing])
    rows.append(["", "", "", "", f"Account {st.account.account_number}, verification code "
                 f"{format_code(st.code)}", None, None, None])
    return _csv_bytes(rows)


def statement_filename(st: Statement, extension: str) -> str:
    return (f"statement-{st.account.account_number}-{st.period.start.isoformat()}-"
            f"{st.period.end.isoformat()}.{extension}")


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
                [*with_currency("internal_balances"), report.held.internal_total]]
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




def statement_pdf(st: Statement, bank_name: str = "bankapp") -> bytes:
    """The statement as a PDF."""
    # Imported here: fpdf2 (with Pillow and fontTools) loads on the first PDF, not at start.
    from bankapp.reports.pdf import render_statement_pdf

    return render_statement_pdf(st, bank_name)

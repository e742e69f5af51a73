"""Report queries: statements, monthly summaries and bank-wide figures.

No request access here: views parse input, call these functions and render the results, and
the benchmark (``bench/reports_bench.py``) calls the very same functions.

Cost follows the window, not the table: every query reads one account's legs in a time range
through the ``(account_id, timestamp, id)`` index, or one period of the ledger through the
``timestamp`` index, plus a bounded number of single-row look-ups (``ORDER BY … LIMIT 1``) for
the balance at a point in time. Nothing sums an account's whole history.

Days and months are those of ``BANK_TIMEZONE``: their bounds are computed there and converted
to UTC for the queries, so a leg at 23:30 in New York on 31 January belongs to January even
though it is stored as 04:30 UTC on 1 February.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError

from bankapp import ledger
from bankapp.lending import services as lending
from bankapp.lending.portfolio import Portfolio, portfolio
from bankapp.extensions import db
from bankapp.platform.formatting import bank_timezone, day_start_utc
from bankapp.platform.i18n import N_
from bankapp.ledger.amounts import to_money
from bankapp.ledger.totals import BUCKET_MINUTES, movement_filter
from bankapp.models import (
    Account,
    AccountType,
    JournalEntry,
    LedgerTotal,
    Loan,
    LoanRepayment,
    Role,
    StatementIssue,
    Transaction,
    TransactionType,
    User,
    now_utc,
)

ZERO = Decimal("0.00")
MAX_PERIOD_YEARS = 5
CODE_LENGTH = 20  # base32 characters: 100 bits of the HMAC
CODE_GROUP = 4


class ReportError(Exception):
    """Input a report cannot be made from; ``str(error)`` is the message to show."""


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Whole days ``start`` to ``end`` (both included), in the bank's time zone."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[first instant, instant after the last day) as UTC datetimes."""
        return day_start_utc(self.start), day_start_utc(self.end + timedelta(days=1))

    def label(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def local_today(now: datetime | None = None) -> date:
    return (now or now_utc()).astimezone(bank_timezone()).date()


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


_DATE_FIELDS = {"start": N_("start date"), "end": N_("end date")}


def parse_date(text: str | None, name: str) -> date:
    """``YYYY-MM-DD`` → ``date``, or a ``ReportError`` naming the field."""
    text = (text or "").strip()
    field = gettext(_DATE_FIELDS[name]) if name in _DATE_FIELDS else name
    if not text:
        raise ReportError(gettext("Enter the %(field)s as YYYY-MM-DD.", field=field))
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text, re.ASCII):
        raise ReportError(gettext("The %(field)s must look like 2026-01-31 (YYYY-MM-DD).",
                                  field=field))
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ReportError(gettext("The %(field)s %(text)s does not exist.", field=field,
                                  text=text)) from None
    if not 1900 <= day.year <= 2999:
        raise ReportError(gettext("The %(field)s must be between the years 1900 and 2999.",
                                  field=field))
    return day


def make_period(start: date, end: date) -> Period:
    """Check a period's rules: ordered, and at most five years long."""
    if end < start:
        raise ReportError(gettext("The end date is before the start date."))
    if end >= _add_years(start, MAX_PERIOD_YEARS):
        raise ReportError(gettext("A report covers at most %(years)s years; choose a shorter "
                                  "period.", years=MAX_PERIOD_YEARS))
    return Period(start, end)


def parse_period(start_text: str | None, end_text: str | None) -> Period:
    """A period from two ``YYYY-MM-DD`` texts (form or query string)."""
    return make_period(parse_date(start_text, "start"), parse_date(end_text, "end"))


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


PRESETS = {
    # Labels translated where shown (reports/_period.html).
    "this-month": N_("This month"),
    "last-month": N_("Last month"),
    "last-90-days": N_("Last 90 days"),
    "last-12-months": N_("Last 12 months"),
    "this-year": N_("This year"),
    "last-year": N_("Last year"),
}


def preset_period(name: str, today: date | None = None) -> Period:
    """The period a named preset means today (in the bank's time zone)."""
    today = today or local_today()
    if name == "this-month":
        return Period(month_start(today), today)
    if name == "last-month":
        first = add_months(today, -1)
        return Period(first, month_start(today) - timedelta(days=1))
    if name == "last-90-days":
        return Period(today - timedelta(days=89), today)
    if name == "last-12-months":
        return Period(add_months(today, -11), today)
    if name == "this-year":
        return Period(date(today.year, 1, 1), today)
    if name == "last-year":
        return Period(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))
    raise ReportError(gettext("Choose a period from the list, or enter custom dates."))


# ---------------------------------------------------------------- shared queries


def balance_before(account_id: int, moment: datetime) -> Decimal:
    """The account's balance just before ``moment``: one backward index probe, LIMIT 1."""
    value = db.session.scalar(
        sa.select(Transaction.balance_after)
        .where(Transaction.account_id == account_id, Transaction.timestamp < moment)
        .order_by(Transaction.timestamp.desc(), Transaction.id.desc())
        .limit(1)
    )
    return to_money(value)


def _bucket(column, bounds: list[datetime]):
    """SQL: the index of the [bounds[i], bounds[i+1]) slot ``column`` falls in (portable)."""
    return sa.case(*[(column < upper, index) for index, upper in enumerate(bounds[1:])],
                   else_=len(bounds) - 1)


# ---------------------------------------------------------------- statements


# A page of a statement shows this many lines: a month of a busy account (some 210) on one
# page; a year of one (2,500) on eleven. A year's table in one page was 1.2 MB of HTML and most
# of a second; the CSV and the PDF of a period keep every line of it.
LINES_PER_PAGE = 250


@dataclass(frozen=True)
class StatementEntry:
    id: int
    timestamp: datetime
    reference: str
    transaction_type: str
    description: str
    side: str
    amount: Decimal
    balance_after: Decimal
    # The other party, as the account's owner knows it (``ledger.counterparties``).
    counterparty: str = ""

    @property
    def money_in(self) -> Decimal | None:
        return self.amount if self.side == "credit" else None

    @property
    def money_out(self) -> Decimal | None:
        return self.amount if self.side == "debit" else None

    @property
    def type_label(self) -> str:
        return TransactionType.label(self.transaction_type)


@dataclass
class Statement:
    account: Account
    period: Period
    as_of: datetime
    opening: Decimal
    entries: list[StatementEntry]
    total_in: Decimal
    total_out: Decimal
    closing: Decimal
    code: str = ""
    # Interest credited in the period (also counted in ``total_in``).
    interest: Decimal = ZERO
    # The period's lines: ``len(entries)``, or more when ``entries`` are one page of them.
    count: int = 0
    # Of a page: the period's lines before ``entries[0]``, and the last of them (whose
    # balance the page brings forward; its other party is not named).
    skipped: int = 0
    before: StatementEntry | None = None

    @property
    def complete(self) -> bool:
        """False while the period has not ended: the statement is as of ``as_of``."""
        return self.as_of >= self.period.utc_bounds()[1]

    @property
    def balanced(self) -> bool:
        return self.opening + self.total_in - self.total_out == self.closing

    @property
    def owner_name(self) -> str:
        return self.account.owner.full_name if self.account.owner else self.account.name or ""


def statement(account: Account, start: date, end: date, as_of: datetime | None = None,
              page: int | None = None, per_page: int = LINES_PER_PAGE) -> Statement:
    """The statement of ``account`` for the days ``start``..``end`` as known at ``as_of``.

    Two indexed queries: the opening balance (last leg before the period) and the legs in the
    period. ``as_of`` (default now) cuts a period that has not ended yet, so the statement
    issued today can be recomputed identically tomorrow.

    With ``page`` (from 1; out of range reads as the nearest page) ``entries`` are only that
    page's ``per_page`` lines, read with the line before them; the totals, the closing
    balance and the verification code still cover the whole period, summed and written in
    one more query (``_period_figures``) rather than from every line in Python: a year of a
    busy account is 2,500 lines, and the page shows 250. A period of one page is read as
    without ``page``.
    """
    period = make_period(start, end)
    # Not the app's clock: the moment every later read of the account's legs agrees on.
    as_of = as_of or ledger.settled_time(account.id)
    lower, upper = period.utc_bounds()
    upper = min(upper, as_of)
    opening = balance_before(account.id, lower)
    if page is not None:
        return _statement_page(account, period, as_of, opening, (lower, upper), page, per_page)
    return _whole_statement(account, period, as_of, opening, _entries(account.id, lower, upper))


def _whole_statement(account: Account, period: Period, as_of: datetime, opening: Decimal,
                     entries: list[StatementEntry]) -> Statement:
    """The statement whose ``entries`` are every line of the period, its figures and code
    computed from them."""
    closing = entries[-1].balance_after if entries else opening
    result = Statement(account, period, as_of, opening, entries,
                       sum((e.amount for e in entries if e.side == "credit"), ZERO),
                       sum((e.amount for e in entries if e.side == "debit"), ZERO), closing,
                       interest=sum((e.amount for e in entries if _is_interest(e)), ZERO),
                       count=len(entries))
    result.code = verification_code(result)
    return result


def _is_interest(entry: StatementEntry) -> bool:
    return entry.side == "credit" and entry.transaction_type == TransactionType.INTEREST


def _entries(account_id: int, lower: datetime, upper: datetime, offset: int = 0,
             limit: int | None = None, named: int = 0) -> list[StatementEntry]:
    """The account's legs in [lower, upper), in the statement's order, their other parties
    named (but for the first ``named`` ones); ``offset`` and ``limit`` pick some of them."""
    window = (Transaction.account_id == account_id, Transaction.timestamp >= lower,
              Transaction.timestamp < upper)
    in_order = (Transaction.timestamp, Transaction.id)
    query = (sa.select(Transaction.id, Transaction.timestamp, JournalEntry.reference,
                       Transaction.transaction_type, Transaction.description, Transaction.side,
                       Transaction.amount, Transaction.balance_after)
             .join(JournalEntry, JournalEntry.id == Transaction.entry_id))
    if offset or limit is not None:
        # The page's legs are picked on the legs' own index, then joined to their entries:
        # the legs skipped are never joined.
        picked = (sa.select(Transaction.id).where(*window).order_by(*in_order)
                  .offset(offset).limit(limit).subquery())
        query = query.join(picked, picked.c.id == Transaction.id)
    else:
        query = query.where(*window)
    rows = db.session.execute(query.order_by(*in_order)).all()
    names = ledger.counterparties(rows[named:])
    return [StatementEntry(r.id, r.timestamp, r.reference, r.transaction_type,
                           r.description or "", r.side, to_money(r.amount),
                           to_money(r.balance_after), names.get(r.id, "")) for r in rows]


@dataclass(frozen=True)
class _Figures:
    """A period's lines summed up, and written as the verification code reads them."""

    count: int
    total_in: Decimal
    total_out: Decimal
    interest: Decimal
    last_balance: Decimal | None  # after the period's last line (None: no line)
    code_lines: list[str]  # ``_code_line`` of each line, or all of them joined by newlines


def _period_figures(account_id: int, lower: datetime, upper: datetime) -> _Figures:
    """Count, totals, interest, last balance and the code's lines of the account's legs in
    [lower, upper), without building a ``StatementEntry`` per leg.

    PostgreSQL sums them and writes the code's lines (``id|amount|side|balance``) itself, in
    one row: ``numeric(…, 2)`` as text is exactly Python's ``f"{amount:.2f}"`` of the same
    value, so the code is the one ``statement`` computes from every entry. SQLite (tests,
    development) reads the five columns instead and does the same here.
    """
    window = (Transaction.account_id == account_id, Transaction.timestamp >= lower,
              Transaction.timestamp < upper)
    credit = Transaction.side == "credit"
    interest = sa.and_(credit, Transaction.transaction_type == TransactionType.INTEREST)
    if db.engine.dialect.name == "postgresql":
        text = sa.Text()
        code_line = (sa.cast(Transaction.id, text) + "|" + sa.cast(Transaction.amount, text)
                     + "|" + Transaction.side + "|" + sa.cast(Transaction.balance_after, text))
        row = db.session.execute(
            sa.select(sa.func.count(),
                      sa.func.sum(Transaction.amount).filter(credit),
                      sa.func.sum(Transaction.amount).filter(Transaction.side == "debit"),
                      sa.func.sum(Transaction.amount).filter(interest),
                      sa.func.array_agg(aggregate_order_by(
                          Transaction.balance_after, Transaction.timestamp.desc(),
                          Transaction.id.desc()))[1],
                      sa.func.string_agg(code_line, aggregate_order_by(
                          sa.literal("\n"), Transaction.timestamp, Transaction.id)))
            .where(*window)
        ).one()
        count, total_in, total_out, interest_in, last, joined = row
        return _Figures(count, to_money(total_in), to_money(total_out), to_money(interest_in),
                        None if last is None else to_money(last), [joined] if count else [])
    rows = db.session.execute(
        sa.select(Transaction.id, Transaction.transaction_type, Transaction.side,
                  Transaction.amount, Transaction.balance_after)
        .where(*window).order_by(Transaction.timestamp, Transaction.id)
    ).all()
    total_in = total_out = interest_in = ZERO
    lines = []
    for leg_id, transaction_type, side, amount, balance in rows:
        amount, balance = to_money(amount), to_money(balance)
        if side == "credit":
            total_in += amount
            if transaction_type == TransactionType.INTEREST:
                interest_in += amount
        else:
            total_out += amount
        lines.append(_code_line(leg_id, amount, side, balance))
    return _Figures(len(rows), total_in, total_out, interest_in,
                    to_money(rows[-1].balance_after) if rows else None, lines)


def _statement_page(account: Account, period: Period, as_of: datetime, opening: Decimal,
                    window: tuple[datetime, datetime], page: int, per_page: int
                    ) -> Statement:
    lower, upper = window
    if page <= 1:
        # Most statements fit on one page (a busy month is some 210 lines): one line more
        # than a page is read, and when it does not come, the page is the whole statement.
        entries = _entries(account.id, lower, upper, limit=per_page + 1)
        if len(entries) <= per_page:
            return _whole_statement(account, period, as_of, opening, entries)
        figures = _period_figures(account.id, lower, upper)
        skipped, before, entries = 0, None, entries[:per_page]
    else:
        figures = _period_figures(account.id, lower, upper)
        pages = max(1, -(-figures.count // per_page))
        skipped = (min(page, pages) - 1) * per_page
        # The line before the page's first comes too: the page brings its balance forward.
        entries = _entries(account.id, lower, upper, offset=max(skipped - 1, 0),
                           limit=per_page + (1 if skipped else 0), named=1 if skipped else 0)
        before = entries.pop(0) if skipped and entries else None
    closing = opening if figures.last_balance is None else figures.last_balance
    result = Statement(account, period, as_of, opening, entries, figures.total_in,
                       figures.total_out, closing, interest=figures.interest,
                       count=figures.count, skipped=skipped, before=before)
    result.code = verification_code(result, figures.code_lines)
    return result


# ---------------------------------------------------------------- verification codes


def _code_line(leg_id: int, amount: Decimal, side: str, balance_after: Decimal) -> str:
    return f"{leg_id}|{amount:.2f}|{side}|{balance_after:.2f}"


def _canonical_text(st: Statement, entry_lines: list[str] | None = None) -> str:
    """What the code vouches for: account, period, balances and every entry, one per line
    (``entry_lines``: those lines already written, when ``st.entries`` are not all of them)."""
    lines = ["bankapp-statement-v1", st.account.account_number, st.period.start.isoformat(),
             st.period.end.isoformat(), f"{st.opening:.2f}", f"{st.closing:.2f}"]
    if entry_lines is None:
        entry_lines = [_code_line(e.id, e.amount, e.side, e.balance_after) for e in st.entries]
    return "\n".join(lines + entry_lines)


def verification_code(st: Statement, entry_lines: list[str] | None = None) -> str:
    """HMAC-SHA256 (keyed by SECRET_KEY) of the statement, as 20 base32 characters."""
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"bankapp.statement-code",
                   hashlib.sha256).digest()
    digest = hmac.new(key, _canonical_text(st, entry_lines).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:CODE_LENGTH]


def format_code(code: str) -> str:
    """``ABCDEFGH…`` → ``ABCD-EFGH-…`` for people to read and type."""
    return "-".join(code[i:i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


# Characters people confuse with base32 letters (which has no 0, 1 or 8).
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


def normalize_code(text: str | None) -> str:
    """What someone typed → the bare code, or a ``ReportError`` when it cannot be one."""
    cleaned = re.sub(r"[\s\-]", "", (text or "")).upper().translate(_LOOKALIKES)
    if not cleaned:
        raise ReportError(gettext("Enter the verification code printed on the statement."))
    if not re.fullmatch(f"[A-Z2-7]{{{CODE_LENGTH}}}", cleaned, re.ASCII):
        raise ReportError(gettext("A verification code has %(count)s letters and digits, such "
                                  "as ABCD-EFGH-IJKL-MNOP-QRST.", count=CODE_LENGTH))
    return cleaned


def record_issue(st: Statement, issued_to: User | None) -> StatementIssue:
    """Remember an issued statement (once per code) so its code can be verified later."""
    existing = db.session.scalar(sa.select(StatementIssue).where(StatementIssue.code == st.code))
    if existing is not None:
        return existing
    issue = StatementIssue(code=st.code, account_id=st.account.id, period_start=st.period.start,
                           period_end=st.period.end, issued_at=st.as_of,
                           issued_to=issued_to.id if issued_to is not None else None)
    try:
        with db.session.begin_nested():
            db.session.add(issue)
        db.session.commit()
    except IntegrityError:  # the same statement issued concurrently: keep the first
        db.session.rollback()
        issue = db.session.scalar(sa.select(StatementIssue).where(StatementIssue.code == st.code))
    return issue


@dataclass
class Verification:
    status: str  # "valid", "mismatch" or "unknown"
    issue: StatementIssue | None = None
    recomputed: Statement | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"


def verify_code(text: str, viewer: User) -> Verification:
    """Does ``text`` name an issued statement that still matches the ledger?

    Customers may only verify their own accounts' statements; another account's code is
    answered exactly like an unknown one, so codes reveal nothing about other customers.
    """
    code = normalize_code(text)
    issue = db.session.scalar(sa.select(StatementIssue).where(StatementIssue.code == code))
    if issue is None or not can_view_account(viewer, issue.account):
        return Verification("unknown")
    recomputed = statement(issue.account, issue.period_start, issue.period_end,
                           as_of=issue.issued_at)
    status = "valid" if hmac.compare_digest(recomputed.code, code) else "mismatch"
    return Verification(status, issue, recomputed)


# ---------------------------------------------------------------- access


def can_view_account(viewer: User, account: Account | None) -> bool:
    """Staff see every customer account; a customer sees only their own."""
    if account is None or account.account_type not in AccountType.CUSTOMER:
        return False
    return viewer.role in Role.STAFF or account.owner_id == viewer.id


def viewable_account(viewer: User, number: str) -> Account | None:
    """The customer account ``number`` if ``viewer`` may see it, else None (→ 404)."""
    account = ledger.find_customer_account(number)
    return account if can_view_account(viewer, account) else None


# ---------------------------------------------------------------- monthly summary


MONEY_IN_TYPES = {TransactionType.DEPOSIT: "deposits", TransactionType.TRANSFER_IN: "transfers_in",
                  TransactionType.INTEREST: "interest"}
MONEY_OUT_TYPES = {TransactionType.WITHDRAWAL: "withdrawals",
                   TransactionType.TRANSFER_OUT: "transfers_out"}


@dataclass
class MonthRow:
    month: date  # the first day of the month
    deposits: Decimal = ZERO
    withdrawals: Decimal = ZERO
    transfers_in: Decimal = ZERO
    transfers_out: Decimal = ZERO
    interest: Decimal = ZERO
    # Legs of other types (reversals, corrections) counted by their side.
    other_in: Decimal = ZERO
    other_out: Decimal = ZERO
    count: int = 0
    end_balance: Decimal = ZERO

    @property
    def money_in(self) -> Decimal:
        return self.deposits + self.transfers_in + self.interest + self.other_in

    @property
    def money_out(self) -> Decimal:
        return self.withdrawals + self.transfers_out + self.other_out

    @property
    def net(self) -> Decimal:
        return self.money_in - self.money_out

    @property
    def label(self) -> str:
        return self.month.strftime("%b %Y")

    def add(self, other: "MonthRow") -> None:
        for name in ("deposits", "withdrawals", "transfers_in", "transfers_out", "interest",
                     "other_in",
                     "other_out", "count", "end_balance"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Summary:
    accounts: list[Account]
    months: list[MonthRow]
    opening: Decimal  # balance before the first month
    has_other: bool = field(default=False)

    @property
    def has_interest(self) -> bool:
        return any(m.interest for m in self.months)

    @property
    def total_in(self) -> Decimal:
        return sum((m.money_in for m in self.months), ZERO)

    @property
    def total_out(self) -> Decimal:
        return sum((m.money_out for m in self.months), ZERO)


def month_starts(months: int, today: date | None = None) -> list[date]:
    """The first days of the last ``months`` months, oldest first, this month included."""
    first = month_start(today or local_today())
    return [add_months(first, -offset) for offset in range(months - 1, -1, -1)]


def _account_months(account: Account, starts: list[date]) -> tuple[Decimal, list[MonthRow]]:
    bounds = [day_start_utc(d) for d in starts] + [day_start_utc(add_months(starts[-1], 1))]
    lower, upper = bounds[0], bounds[-1]
    window = (Transaction.account_id == account.id, Transaction.timestamp >= lower,
              Transaction.timestamp < upper)
    month_index = _bucket(Transaction.timestamp, bounds).label("month_index")
    totals = db.session.execute(
        sa.select(month_index, Transaction.transaction_type, Transaction.side,
                  sa.func.sum(Transaction.amount), sa.func.count())
        .where(*window)
        .group_by(month_index, Transaction.transaction_type, Transaction.side)
    ).all()
    # Month-end balances: the last leg of each month (one pass over the same window).
    last_leg = sa.func.row_number().over(
        partition_by=month_index, order_by=(Transaction.timestamp.desc(), Transaction.id.desc()))
    ranked = (sa.select(month_index, Transaction.balance_after, last_leg.label("rank"))
              .where(*window).subquery())
    month_ends = dict(db.session.execute(
        sa.select(ranked.c.month_index, ranked.c.balance_after).where(ranked.c.rank == 1)
    ).all())
    opening = balance_before(account.id, lower)

    rows = [MonthRow(month) for month in starts]
    for index, transaction_type, side, amount, count in totals:
        row = rows[index]
        name = (MONEY_IN_TYPES.get(transaction_type) if side == "credit"
                else MONEY_OUT_TYPES.get(transaction_type))
        if name is None:
            name = "other_in" if side == "credit" else "other_out"
        setattr(row, name, getattr(row, name) + to_money(amount))
        row.count += count
    balance = opening
    for index, row in enumerate(rows):
        if index in month_ends:
            balance = to_money(month_ends[index])
        row.end_balance = balance
    return opening, rows


def monthly_summary(accounts: Account | list[Account], months: int = 12,
                    today: date | None = None) -> Summary:
    """Per month of the last ``months``: in/out by kind, net change and month-end balance.

    With several accounts the figures are added up (a transfer between two of them counts
    as a transfer out of one and into the other).
    """
    if isinstance(accounts, Account):
        accounts = [accounts]
    if not 1 <= months <= 12 * MAX_PERIOD_YEARS:
        raise ReportError(gettext("A summary covers 1 to %(months)s months.",
                                  months=12 * MAX_PERIOD_YEARS))
    starts = month_starts(months, today)
    total = [MonthRow(month) for month in starts]
    opening = ZERO
    for account in accounts:
        account_opening, rows = _account_months(account, starts)
        opening += account_opening
        for combined, row in zip(total, rows):
            combined.add(row)
    has_other = any(m.other_in or m.other_out for m in total)
    return Summary(list(accounts), total, opening, has_other)


# ---------------------------------------------------------------- bank-wide


@dataclass
class DayRow:
    day: date
    deposits: Decimal = ZERO
    deposit_count: int = 0
    withdrawals: Decimal = ZERO
    withdrawal_count: int = 0
    transfers: Decimal = ZERO
    transfer_count: int = 0

    @property
    def net_cash(self) -> Decimal:
        return self.deposits - self.withdrawals


_KIND_FIELDS = {"deposit": ("deposits", "deposit_count"),
                "withdrawal": ("withdrawals", "withdrawal_count"),
                "transfer": ("transfers", "transfer_count")}


def daily_totals(period: Period) -> list[DayRow]:
    """Per day of ``period``: deposits, withdrawals and transfers (sums and counts).

    Read from the 15-minute buckets the ledger keeps (``LedgerTotal``), not from the legs:
    at most 96 rows per kind and day, however busy the bank is.
    """
    lower, upper = period.utc_bounds()
    window = (LedgerTotal.bucket >= lower, LedgerTotal.bucket < upper)
    days = {period.start + timedelta(days=i): DayRow(period.start + timedelta(days=i))
            for i in range(period.days)}
    if db.engine.dialect.name == "postgresql":
        # Grouped in the database by the local calendar day.
        local_day = sa.cast(sa.func.timezone(str(bank_timezone()), LedgerTotal.bucket),
                            sa.Date).label("day")
        rows = db.session.execute(
            sa.select(local_day, LedgerTotal.kind, sa.func.sum(LedgerTotal.amount),
                      sa.func.sum(LedgerTotal.movements))
            .where(*window).group_by(local_day, LedgerTotal.kind)
        ).all()
    else:
        # SQLite knows no time zones: fold the buckets into local days here.
        tz = bank_timezone()
        rows = [(bucket.astimezone(tz).date(), kind, amount, count)
                for bucket, kind, amount, count in db.session.execute(
                    sa.select(LedgerTotal.bucket, LedgerTotal.kind, LedgerTotal.amount,
                              LedgerTotal.movements).where(*window))]
    for day, kind, amount, count in rows:
        row = days.get(day)
        if row is None:
            continue
        total_name, count_name = _KIND_FIELDS[kind]
        setattr(row, total_name, getattr(row, total_name) + to_money(amount))
        setattr(row, count_name, getattr(row, count_name) + int(count))
    return [days[d] for d in sorted(days)]


@dataclass
class AccountGroup:
    account_type: str
    status: str
    count: int
    balance: Decimal

    @property
    def type_label(self) -> str:
        return AccountType.label(self.account_type)


def accounts_by_type_and_status() -> list[AccountGroup]:
    rows = db.session.execute(
        sa.select(Account.account_type, Account.status, sa.func.count(), sa.func.sum(Account.balance))
        .group_by(Account.account_type, Account.status)
        .order_by(Account.account_type, Account.status)
    ).all()
    return [AccountGroup(t, s, n, to_money(b)) for t, s, n, b in rows]


@dataclass
class BalancesHeld:
    customer_total: Decimal
    customer_accounts: int
    internal_total: Decimal


def balances_held(groups: list[AccountGroup] | None = None) -> BalancesHeld:
    """What the bank owes its customers (and the book's own side), from the account rows."""
    groups = groups if groups is not None else accounts_by_type_and_status()
    customer = [g for g in groups if g.account_type in AccountType.CUSTOMER]
    internal = [g for g in groups if g.account_type not in AccountType.CUSTOMER]
    return BalancesHeld(sum((g.balance for g in customer), ZERO), sum(g.count for g in customer),
                        sum((g.balance for g in internal), ZERO))


@dataclass(frozen=True)
class Movement:
    id: int
    timestamp: datetime
    account_number: str
    transaction_type: str
    side: str
    amount: Decimal
    description: str

    @property
    def type_label(self) -> str:
        return TransactionType.label(self.transaction_type)


def _buckets_holding_the_largest(lower: datetime, upper: datetime, limit: int
                                 ) -> tuple[list[datetime], Decimal] | None:
    """The buckets that can hold the ``limit`` largest movements of [lower, upper), and the
    amount each of those movements reaches; None when a bucket's largest is not known.

    The ``limit`` largest bucket maxima are ``limit`` different movements, so the smallest
    of them (the floor) is reached by each of the largest movements, and only a bucket
    whose maximum reaches the floor can hold one: the top rows' buckets, and those whose
    maximum ties with the floor (looked for only when the next row has the floor too)."""
    window = (LedgerTotal.bucket >= lower, LedgerTotal.bucket < upper)
    top = db.session.execute(
        sa.select(LedgerTotal.bucket, LedgerTotal.max_amount).where(*window)
        .order_by(LedgerTotal.max_amount.desc().nulls_first()).limit(limit + 1)).all()
    if any(row.max_amount is None for row in top):
        return None
    if len(top) <= limit:
        return sorted({row.bucket for row in top}), ZERO
    floor = top[limit - 1].max_amount
    buckets = {row.bucket for row in top[:limit]}
    if top[limit].max_amount == floor:
        buckets.update(db.session.scalars(
            sa.select(LedgerTotal.bucket).where(*window, LedgerTotal.max_amount == floor)))
    return sorted(buckets), floor


def largest_movements(period: Period, limit: int = 10) -> list[Movement]:
    """The biggest customer movements in ``period`` (deposits, withdrawals, transfers).

    Read from the legs of the few 15-minute buckets that can hold them (each bucket row
    keeps its largest movement, ``LedgerTotal.max_amount``), not from every leg of the
    period; a period with buckets from before that was kept reads all its legs.
    """
    lower, upper = period.utc_bounds()
    legs = (Transaction.timestamp >= lower, Transaction.timestamp < upper)
    found = _buckets_holding_the_largest(lower, upper, limit)
    if found is not None:
        buckets, floor = found
        step = timedelta(minutes=BUCKET_MINUTES)
        legs += (sa.or_(sa.false(), *[sa.and_(Transaction.timestamp >= bucket,
                                              Transaction.timestamp < bucket + step)
                                      for bucket in buckets]),
                 Transaction.amount >= floor)
    top = (sa.select(Transaction.id)
           .where(*legs, movement_filter())
           .order_by(Transaction.amount.desc(), Transaction.id)
           .limit(limit).subquery())
    rows = db.session.execute(
        sa.select(Transaction.id, Transaction.timestamp, Account.account_number,
                  Transaction.transaction_type, Transaction.side, Transaction.amount,
                  Transaction.description)
        .join(top, top.c.id == Transaction.id)
        .join(Account, Account.id == Transaction.account_id)
        .order_by(Transaction.amount.desc(), Transaction.id)
    ).all()
    return [Movement(r.id, r.timestamp, r.account_number, r.transaction_type, r.side,
                     to_money(r.amount), r.description or "") for r in rows]


@dataclass
class SignupMonth:
    month: date
    count: int

    @property
    def label(self) -> str:
        return self.month.strftime("%b %Y")


def new_customers_per_month(months: int = 12, today: date | None = None) -> list[SignupMonth]:
    starts = month_starts(months, today)
    bounds = [day_start_utc(d) for d in starts] + [day_start_utc(add_months(starts[-1], 1))]
    month_index = _bucket(User.created_at, bounds).label("month_index")
    counts = dict(db.session.execute(
        sa.select(month_index, sa.func.count())
        .where(User.role == Role.CUSTOMER, User.created_at >= bounds[0],
               User.created_at < bounds[-1])
        .group_by(month_index)
    ).all())
    return [SignupMonth(month, counts.get(i, 0)) for i, month in enumerate(starts)]


@dataclass
class BankReport:
    period: Period
    days: list[DayRow]
    groups: list[AccountGroup]
    held: BalancesHeld
    largest: list[Movement]
    signups: list[SignupMonth]
    # When ``groups`` and ``held`` were counted: the first daily count after the period's
    # close (``ledger.first_count_after``), or the report's own time when they were counted
    # for it (a period not closed yet, or none counted since).
    counted_at: datetime = field(default_factory=now_utc)
    counted_for_report: bool = True

    @property
    def day_totals(self) -> DayRow:
        total = DayRow(self.period.start)
        for row in self.days:
            for name in ("deposits", "deposit_count", "withdrawals", "withdrawal_count",
                         "transfers", "transfer_count"):
                setattr(total, name, getattr(total, name) + getattr(row, name))
        return total


def bank_report(period: Period) -> BankReport:
    """The bank-wide report of ``period``. Its accounts and balances are those of the first
    daily count after the period closed; a period not closed yet, or with no count since,
    counts every account as it stands."""
    close = period.utc_bounds()[1]
    counted = ledger.first_count_after(close) if close <= now_utc() else []
    if counted:
        groups = [AccountGroup(c.account_type, c.status, c.accounts, to_money(c.balance))
                  for c in counted]
        extra = {"counted_at": counted[0].counted_at, "counted_for_report": False}
    else:
        groups, extra = accounts_by_type_and_status(), {}
    return BankReport(period, daily_totals(period), groups, balances_held(groups),
                      largest_movements(period), new_customers_per_month(), **extra)


# ---------------------------------------------------------------- loan statements


@dataclass
class LoanStatementLine:
    """One instalment as the statement shows it: what it asks, what was paid, what is left."""

    number: int
    due_on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    paid: Decimal
    due: Decimal  # still to pay
    overdue: Decimal  # still to pay and past its due date


@dataclass
class LoanStatement:
    """A loan as of one day: its schedule, the repayments and collections, the payoff."""

    loan: Loan
    day: date
    as_of: datetime
    lines: list[LoanStatementLine]
    repayments: list[LoanRepayment]
    payoff: Decimal

    @property
    def owner_name(self) -> str:
        return self.loan.borrower.full_name

    def total(self, name: str) -> Decimal:
        return sum((getattr(line, name) for line in self.lines), ZERO)


def loan_statement(loan: Loan, day: date | None = None) -> LoanStatement:
    """The statement of ``loan`` on ``day`` (the bank's today by default)."""
    day = day or lending.lending_today()
    rows = lending.instalments_of(loan)
    lines = [LoanStatementLine(r.number, r.due_on, r.principal_due, r.interest_due, r.fee_due,
                               r.total_paid, r.outstanding,
                               r.outstanding if r.due_on < day else ZERO) for r in rows]
    repayments = list(db.session.scalars(
        sa.select(LoanRepayment).where(LoanRepayment.loan_id == loan.id)
        .order_by(LoanRepayment.paid_on, LoanRepayment.id)))
    return LoanStatement(loan, day, now_utc(), lines, repayments,
                         lending.owed_on(loan, day, rows).payoff)


def loan_portfolio(day: date | None = None) -> Portfolio:
    """The loan portfolio on ``day`` (the loan book's today by default)."""
    return portfolio(day or lending.lending_today())


def viewable_loan(viewer: User, loan_id: int) -> Loan | None:
    """Loan ``loan_id`` if ``viewer`` may see it (staff, or its borrower), else None (→ 404)."""
    query = lending.loan_numbered(loan_id)
    if viewer.role not in Role.STAFF:
        query = query.where(Loan.borrower_id == viewer.id)
    return db.session.scalar(query)

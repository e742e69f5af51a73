"""A statement's lines as the page shows them, written in one pass.

A year of a busy account is 2,500 lines with a time and three figures each: the locale, the
currency, the time zone and the words of each transaction type and other party are looked up
once per statement here, not once per cell in the template (which cost most of the page).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask_babel import gettext
from markupsafe import Markup

from bankapp.platform.formatting import money_writer, timestamp_writer
from bankapp.reports.service import LINES_PER_PAGE, Statement, StatementEntry


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One entry with its words and figures written the page's way (``Markup`` where the
    template's ``_()`` would have marked a translation safe)."""

    entry: StatementEntry
    when: str
    type_name: Markup
    party: Markup | str  # "From Ada S." / "To Ada S.", or "" for an entry with no other party
    money_in: str
    money_out: str
    balance: str


def _translated(text: str, **variables) -> Markup:
    """What ``{{ _(text) }}`` or ``{% trans %}`` writes in an autoescaped template."""
    return Markup(gettext(text)) % variables


def statement_lines(entries: list[StatementEntry]) -> list[StatementLine]:
    """The page's lines of ``entries``, in their order."""
    money, when = money_writer(), timestamp_writer()
    type_names: dict[str, Markup] = {}
    parties: dict[tuple[str, str], Markup] = {}
    lines = []
    for e in entries:
        type_name = type_names.get(e.transaction_type)
        if type_name is None:
            type_name = type_names[e.transaction_type] = _translated(e.type_label)
        party = ""
        if e.counterparty:
            party = parties.get((e.side, e.counterparty))
            if party is None:
                party = parties[(e.side, e.counterparty)] = _translated(
                    "From %(name)s" if e.side == "credit" else "To %(name)s",
                    name=e.counterparty)
        lines.append(StatementLine(e, when(e.timestamp), type_name, party, money(e.money_in),
                                   money(e.money_out), money(e.balance_after)))
    return lines


@dataclass(frozen=True)
class LinePage:
    """Which of a statement's lines one page shows (what ``_pagination.pager`` reads), and
    the balances the page starts from and ends at."""

    page: int
    per_page: int
    total: int
    brought_forward: Decimal | None  # the balance before the page's first line (not page 1)
    carried_forward: Decimal | None  # the balance after its last line (not the last page)
    since: datetime | None  # when the line before the page's first was booked

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def line_page(st: Statement, per_page: int = LINES_PER_PAGE) -> LinePage:
    """Which page of its period's lines ``st.entries`` are, ``st`` having been read by pages
    of ``per_page`` lines (``service.statement(…, page=…)``)."""
    page = st.skipped // per_page + 1
    last_page = st.skipped + len(st.entries) >= st.count
    return LinePage(page, per_page, st.count,
                    st.before.balance_after if st.before else None,
                    st.entries[-1].balance_after if st.entries and not last_page else None,
                    st.before.timestamp if st.before else None)

"""Statements on paper: a PDF that looks like the statement page (fpdf2, core fonts).

Kept apart from ``exports`` so that fpdf2, Pillow and fontTools (about 40 MB per worker) are
imported only when someone asks for a PDF.
"""
from __future__ import annotations

import unicodedata

from flask import current_app
from flask_babel import gettext
from fpdf import FPDF
from fpdf.enums import TextMode
from fpdf.fonts import CoreFont, FontFace
from fpdf.util import escape_parens

from bankapp.platform.formatting import (
    bank_timezone,
    format_amount,
    format_day,
    format_rate,
    format_timestamp,
    money_writer,
    timestamp_writer,
)
from bankapp.reports.service import LoanStatement, Statement, format_code

_PDF_REPLACEMENTS = str.maketrans({"−": "-", "–": "-", "—": "-", "‘": "'", "’": "'",
                                   "“": '"', "”": '"', "…": "...", "€": "EUR",
                                   # Letters with no decomposition into a base letter.
                                   "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Œ": "OE",
                                   "œ": "oe", "ı": "i", "Ŧ": "T", "ŧ": "t"})


def pdf_text(text: str) -> str:
    """Text a core PDF font can draw (Latin-1): accents kept, other characters replaced."""
    text = str(text)
    if text.isascii():  # most of a statement (figures, times, references): nothing to do
        return text
    text = unicodedata.normalize("NFC", text.translate(_PDF_REPLACEMENTS))
    out = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        # Drop accents Latin-1 lacks (ő → o); anything else becomes "?".
        base = unicodedata.normalize("NFKD", char)
        base = "".join(c for c in base if ord(c) < 256 and not unicodedata.combining(c))
        out.append(base or "?")
    return "".join(out)


class _StatementPDF(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text

    def footer(self):
        self.set_y(-14)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, pdf_text(self.footer_text), align="L")
        self.cell(0, 5, pdf_text(gettext("Page %(number)s of %(pages)s", number=self.page_no(),
                                         pages="{nb}")), align="R")


def render_statement_pdf(st: Statement, bank_name: str = "bankapp") -> bytes:
    """The statement as an A4 PDF laid out like the page, with its verification code."""
    code = format_code(st.code)
    period = gettext("%(start)s to %(end)s", start=format_day(st.period.start),
                     end=format_day(st.period.end))
    pdf = _StatementPDF(gettext("%(bank)s statement %(number)s, %(period)s - verification code "
                                "%(code)s", bank=bank_name, number=st.account.account_number,
                                period=period, code=code))
    pdf.set_title(pdf_text(gettext("Statement %(number)s", number=st.account.account_number)
                           + f" {st.period.label()}"))
    pdf.set_author(bank_name)
    pdf.set_subject(pdf_text(gettext("Verification code %(code)s", code=code)))
    pdf.set_keywords(f"statement {st.account.account_number} {code}")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, pdf_text(gettext("%(bank)s - account statement", bank=bank_name)),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    details = [
        (gettext("Account"), f"{st.account.account_number} ({gettext(st.account.type_name)})"),
        (gettext("Owner"), st.owner_name),
        (gettext("Period"), f"{period} ({bank_timezone().key})"),
        (gettext("Issued"), format_timestamp(st.as_of)
         + ("" if st.complete else
            " · " + gettext("the period has not ended: entries up to this time"))),
        (gettext("Verification code"), code),
    ]
    _details(pdf, details)
    pdf.ln(3)

    pdf.set_font("Helvetica", size=10)
    # In the page's language (core fonts: Latin-1, which French fits): the currency goes by
    # its ISO code beside each money label, the figures grouped the language's way.
    unit = f" ({current_app.config['BANK_CURRENCY']})"
    summary = [(gettext("Opening balance") + unit, st.opening),
               (gettext("Money in") + unit, st.total_in),
               (gettext("Money out") + unit, st.total_out),
               (gettext("Closing balance") + unit, st.closing)]
    width = (pdf.w - pdf.l_margin - pdf.r_margin) / 4
    pdf.set_fill_color(238, 242, 255)
    for label, _ in summary:
        pdf.cell(width, 6, pdf_text(label), border="LTR", fill=True)
    pdf.ln()
    pdf.set_font("Helvetica", "B", 12)
    for _, value in summary:
        pdf.cell(width, 8, _pdf_money(value), border="LBR", align="R")
    pdf.ln(12)

    pdf.set_font("Helvetica", size=9)
    widths = (30, 24, 58, 24, 24, 26)
    headings = (gettext("Date"), gettext("Type"), gettext("Description"),
                gettext("In") + unit, gettext("Out") + unit, gettext("Balance") + unit)
    money, when = money_writer(number_only=True), timestamp_writer()
    type_names: dict[str, str] = {}  # translated once per statement, not per line
    parties: dict[tuple[str, str], str] = {}
    rows = [[pdf_text(format_day(st.period.start)), "", pdf_text(gettext("Opening balance")),
             "", "", _pdf_money(st.opening)]]
    for e in st.entries:
        type_name = type_names.get(e.type_label)
        if type_name is None:
            type_name = type_names[e.type_label] = pdf_text(gettext(e.type_label))
        rows.append([pdf_text(when(e.timestamp)), type_name, pdf_text(_described(e, parties)),
                     _pdf_money(e.money_in, money), _pdf_money(e.money_out, money),
                     _pdf_money(e.balance_after, money)])
    rows.append([pdf_text(format_day(st.period.end)), "", pdf_text(gettext("Totals")),
                 _pdf_money(st.total_in), _pdf_money(st.total_out), ""])
    rows.append([pdf_text(format_day(st.period.end)), "", pdf_text(gettext("Closing balance")),
                 "", "", _pdf_money(st.closing)])
    _lined_table(pdf, widths, ("L", "L", "L", "R", "R", "R"), 5.5,
                 [pdf_text(h) for h in headings], rows)
    pdf.ln(6)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(0, 5, pdf_text(gettext(
        "Verification code %(code)s. Anyone holding this statement can check that it matches "
        "the bank's ledger at /reports/verify/ (staff, or the account owner).", code=code)))
    return bytes(pdf.output())


def _details(pdf: FPDF, details: list[tuple[str, str]], label_width: float = 40) -> None:
    """Label and value lines under the title."""
    for label, value in details:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(label_width, 6, pdf_text(label))
        pdf.set_font("Helvetica", size=10)
        pdf.cell(0, 6, pdf_text(value), new_x="LMARGIN", new_y="NEXT")


_HEADINGS = FontFace(emphasis="BOLD", fill_color=(238, 242, 255))


def render_loan_statement_pdf(ls: LoanStatement, bank_name: str = "bankapp") -> bytes:
    """The loan statement as an A4 PDF: the loan, its schedule, its repayments, the payoff."""
    loan = ls.loan
    pdf = _StatementPDF(gettext("%(bank)s loan statement %(number)s, %(day)s", bank=bank_name,
                                number=loan.number, day=format_day(ls.day)))
    pdf.set_title(pdf_text(gettext("Loan statement %(number)s", number=loan.number)))
    pdf.set_author(bank_name)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, pdf_text(gettext("%(bank)s - loan statement", bank=bank_name)),
             new_x="LMARGIN", new_y="NEXT")
    unit = f" ({current_app.config['BANK_CURRENCY']})"
    details = [(gettext("Loan"), f"{loan.number} ({loan.product.name})"),
               (gettext("Borrower"), ls.owner_name),
               (gettext("Status"), gettext(loan.status_label)),
               (gettext("Amount") + unit, format_amount(loan.principal)),
               (gettext("Annual rate"), format_rate(loan.annual_rate)),
               (gettext("Account"), loan.account.account_number)]
    if loan.disbursed_on:
        details.append((gettext("Paid out"), format_day(loan.disbursed_on)))
    details += [(gettext("Issued"), format_timestamp(ls.as_of)),
                (gettext("Payoff on %(day)s", day=format_day(ls.day)) + unit,
                 format_amount(ls.payoff))]
    _details(pdf, details, 62)
    pdf.ln(4)

    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, pdf_text(gettext("Repayment schedule") + unit), new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    money = ("principal", "interest", "fees", "paid", "due", "overdue")
    headings = ("#", gettext("Due date"), gettext("Principal"), gettext("Interest"),
                gettext("Fees"), gettext("Paid"), gettext("Still due"), gettext("Overdue"))
    with pdf.table(col_widths=(8, 26, 24, 22, 20, 24, 24, 22), line_height=5,
                   text_align=("LEFT", "LEFT") + ("RIGHT",) * 6, headings_style=_HEADINGS,
                   borders_layout="HORIZONTAL_LINES") as table:
        table.row([pdf_text(h) for h in headings])
        for line in ls.lines:
            table.row([str(line.number), pdf_text(format_day(line.due_on)),
                       *(_pdf_money(getattr(line, name)) for name in money)])
        table.row(["", pdf_text(gettext("Total")), *(_pdf_money(ls.total(name))
                                                     for name in money)])
    pdf.ln(6)

    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, pdf_text(gettext("Repayments and collections") + unit), new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    if not ls.repayments:
        pdf.cell(0, 6, pdf_text(gettext("Nothing repaid yet.")), new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
    with pdf.table(col_widths=(30, 30, 30, 30, 25, 25), line_height=5,
                   text_align=("LEFT", "LEFT") + ("RIGHT",) * 4, headings_style=_HEADINGS,
                   borders_layout="HORIZONTAL_LINES") as table:
        table.row([pdf_text(h) for h in (gettext("Date"), gettext("Type"), gettext("Amount"),
                                         gettext("Principal"), gettext("Interest"),
                                         gettext("Fees"))])
        for r in ls.repayments:
            table.row([pdf_text(format_day(r.paid_on)),
                       pdf_text(gettext(r.kind_label)),
                       *(_pdf_money(v) for v in (r.amount, r.principal, r.interest, r.fees))])
    return bytes(pdf.output())


def _pdf_money(value, write=format_amount) -> str:
    return "" if value is None else pdf_text(write(value))


def _lined_table(pdf: FPDF, widths: tuple, aligns: tuple, line_height: float,
                 headings: list[str], rows: list[list[str]]) -> None:
    """A table drawn as ``pdf.table`` draws it with ``borders_layout="HORIZONTAL_LINES"``,
    ``_HEADINGS`` and no padding (the same widths, rules, wrapping, centring, and headings
    again at the top of each page), with one ``text`` per line of a cell.

    ``pdf.table`` breaks every cell's text into lines twice (to size the row, then to draw
    it): a month of a busy account took a second, almost all of it there. Here only a text
    wider than its column is broken into lines, by ``multi_cell`` as the table does.
    """
    scale = pdf.epw / sum(widths)  # the table's widths are fractions of the page's width
    widths = [width * scale for width in widths]
    room = [width - 2 * pdf.c_margin for width in widths]
    right = pdf.l_margin + pdf.epw
    last = len(rows)  # the headings are row 0

    def width_of(text: str) -> float:
        # A core font's width is its characters' widths added up, which is what
        # ``get_string_width`` returns after far more work (bidi, styles, fragments): the
        # same sum, in the same order, as ``CoreFont.get_text_width``.
        font = pdf.current_font
        if isinstance(font, CoreFont):
            return sum(map(font.cw.__getitem__, text)) * pdf.font_size_pt * 0.001 / pdf.k
        return pdf.get_string_width(text)

    def lines_of(index: int, text: str) -> list[tuple[str, float]]:
        """The cell's lines, each with its width."""
        if not text:
            return [(text, 0.0)]
        width = width_of(text)
        if width < room[index] - 0.001:
            return [(text, width)]
        return [(line, width_of(line)) for line in
                pdf.multi_cell(widths[index], line_height, text, dry_run=True, output="LINES")]

    def draw(index: int, cells: list[str]) -> None:
        heading = index == 0
        pdf.set_font(style="B" if heading else "")
        texts = [lines_of(i, text) for i, text in enumerate(cells)]
        height = max(len(lines) for lines in texts) * line_height
        if not heading and pdf.will_page_break(height):
            pdf.add_page(same=True)
            draw(0, headings)
            pdf.set_font(style="")
        top = pdf.y
        if heading:
            pdf.set_fill_color(*_HEADINGS.fill_color.colors255)
            pdf.rect(pdf.l_margin, top, pdf.epw, height, style="F")
            pdf.set_fill_color(0)  # back to the text's colour: ``text`` then sets none
        # The rule above every row but the headings, below every row but the last.
        if index > 0:
            pdf.line(pdf.l_margin, top, right, top)
        if index < last:
            pdf.line(pdf.l_margin, top + height, right, top + height)
        x = pdf.l_margin
        # Where ``cell`` puts a line's baseline in a line-high box.
        baseline = 0.5 * line_height + 0.3 * pdf.font_size
        placed = []
        for i, lines in enumerate(texts):
            # A cell's lines are centred in its row, as in the table.
            y = top + (height - len(lines) * line_height) / 2 + baseline
            for line, width in lines:
                if line:
                    # ``text`` writes what ``cell`` writes for a line, at a tenth of the cost.
                    left = (x + pdf.c_margin if aligns[i] == "L"
                            else x + widths[i] - pdf.c_margin - width)
                    placed.append((left, y, line))
                y += line_height
            x += widths[i]
        _write_texts(pdf, placed)
        pdf.set_xy(pdf.l_margin, top + height)

    pdf.set_font(style="B")
    heading_lines = max(len(lines_of(i, text)) for i, text in enumerate(headings))
    if rows and pdf.will_page_break((heading_lines + 1) * line_height):
        pdf.add_page(same=True)  # never the headings alone at the foot of a page
    draw(0, headings)
    for number, row in enumerate(rows, 1):
        draw(number, row)
    pdf.set_font(style="")


def _write_texts(pdf: FPDF, placed: list[tuple[float, float, str]]) -> None:
    """``pdf.text(x, y, text)`` for each of ``placed``, the same bytes in the page's content
    in one piece: ``text`` checks the font, colours and styles on every call, which cost a
    month's table more than the rest of its drawing. ``text`` writes the first (and sets the
    font on the page if it must); the others are written as it writes them, which holds for
    a core font filled in the text's colour, without underline or strike-through."""
    if not placed:
        return
    pdf.text(*placed[0])
    plain = (isinstance(pdf.current_font, CoreFont) and pdf.text_mode == TextMode.FILL
             and not (pdf.underline or pdf.strikethrough) and pdf.fill_color == pdf.text_color)
    if not plain:
        for x, y, text in placed[1:]:
            pdf.text(x, y, text)
        return
    k, height = pdf.k, pdf.h
    pdf._out("\n".join(f"BT {x * k:.2f} {(height - y) * k:.2f} Td ({escape_parens(text)}) Tj ET"
                       for x, y, text in placed[1:]))


def _described(entry, parties: dict | None = None) -> str:
    """The description cell: the other party first, as on the page. ``parties`` keeps each
    other party's words, translated once per statement."""
    if not entry.counterparty:
        return entry.description or "-"
    parties = {} if parties is None else parties
    key = (entry.side, entry.counterparty)
    party = parties.get(key)
    if party is None:
        party = parties[key] = (
            gettext("From %(name)s", name=entry.counterparty) if entry.side == "credit"
            else gettext("To %(name)s", name=entry.counterparty))
    return f"{party} · {entry.description}" if entry.description else party

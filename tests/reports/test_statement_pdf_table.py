"""The statement PDF draws its entries' table itself (fpdf2's table took a second a month):
it must look as fpdf2's table drew it, wrapped texts, rules and repeated headings included."""
from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone

import pytest
from fpdf import FPDF
from PIL import Image, ImageChops

from bankapp.reports.pdf import _HEADINGS, _lined_table, _write_texts

WIDTHS = (30, 24, 58, 24, 24, 26)
HEADINGS = ["Date", "Type", "Description", "In (USD)", "Out (USD)",
            "Balance carried to the next line (USD)"]  # a heading that wraps


def statement_rows(count: int) -> list[list[str]]:
    """Entries with short texts, and every seventh with a description over two or three
    lines; the amounts as the French write them (Latin-1 spaces)."""
    rows = []
    for n in range(count):
        description = (f"To Ada S. - Invoice {n}" if n % 7 else
                       f"From Bola Okafor-Mensah - rent, electricity and water for flat {n} "
                       "(second floor), paid in advance for the quarter")
        rows.append([f"Dec {n % 28 + 1}, 2026, 14:{n % 60:02d}", "Transfer in" if n % 2
                     else "Withdrawal", description, "1 234,50" if n % 2 else "",
                     "" if n % 2 else "98,00", f"{n * 1000 + 12:,}.34"])
    return rows


def drawn(rows, *, with_fpdf_table: bool) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    pdf.ln(150)  # the table starts low on the first page, as under the statement's head
    if with_fpdf_table:
        with pdf.table(col_widths=WIDTHS, text_align=("LEFT",) * 3 + ("RIGHT",) * 3,
                       line_height=5.5, headings_style=_HEADINGS, first_row_as_headings=True,
                       borders_layout="HORIZONTAL_LINES") as table:
            table.row(HEADINGS)
            for row in rows:
                table.row(row)
    else:
        _lined_table(pdf, WIDTHS, ("L",) * 3 + ("R",) * 3, 5.5, HEADINGS, rows)
    pdf.ln(6)
    pdf.multi_cell(0, 5, "Verification code ABCD-EFGH.")  # what follows the table
    return bytes(pdf.output())


def pages_of(pdf: bytes, folder, name: str) -> list[Image.Image]:
    (folder / f"{name}.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(folder / f"{name}.pdf"),
                    str(folder / name)], check=True, timeout=60)
    return [Image.open(path).convert("L") for path in sorted(folder.glob(f"{name}-*.png"))]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler's pdftoppm")
def test_the_statement_table_looks_like_fpdf_tables_on_every_page(tmp_path):
    rows = statement_rows(150)
    expected = pages_of(drawn(rows, with_fpdf_table=True), tmp_path, "fpdf")
    shown = pages_of(drawn(rows, with_fpdf_table=False), tmp_path, "lined")
    assert len(expected) > 2
    assert len(shown) == len(expected)
    for number, (page, reference) in enumerate(zip(shown, expected), 1):
        # Anti-aliasing may differ by a shade where positions round differently; a line,
        # a word or a rule out of place differs by far more.
        darkest_difference = ImageChops.difference(page, reference).getextrema()[1]
        assert darkest_difference <= 48, f"page {number} differs"


@pytest.mark.parametrize("style", ["", "B", "U"])
def test_the_table_writes_its_texts_byte_for_byte_as_fpdf_text_does(style):
    """The table writes a row's texts in one piece: the same PDF as ``text`` for each,
    parentheses and backslashes escaped, the font set on the page first, in any style."""
    placed = [(12.0, 40.25, "Dec 6, 2026, 14:05"), (42.5, 40.25, "Caf\xe9 (rent) \\ paid"),
              (180.123, 45.75, "1 234,50"), (12.0, 51.25, "")]

    def written(write) -> bytes:
        pdf = FPDF(orientation="P", unit="mm", format="A4")
        pdf.set_creation_date(datetime(2026, 12, 6, tzinfo=timezone.utc))
        pdf.add_page()
        pdf.set_font("Helvetica", style=style, size=9)
        write(pdf)
        return bytes(pdf.output())

    def each_with_text(pdf):
        for x, y, text in placed:
            pdf.text(x, y, text)

    assert written(lambda pdf: _write_texts(pdf, placed)) == written(each_with_text)

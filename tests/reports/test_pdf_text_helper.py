"""The PDF reading helper the report tests rely on reads every stream fpdf2 can write."""
import zlib

from tests.support.reports import pdf_text


def _compressed_ending_in_carriage_return() -> tuple[str, bytes]:
    for code in range(32, 256):
        text = f"BT (loan statement {chr(code)}) Tj ET"
        packed = zlib.compress(text.encode("latin-1"))
        if packed.endswith(b"\r"):
            return text, packed
    raise AssertionError("no sample found")


def test_pdf_text_reads_a_stream_whose_compressed_bytes_end_in_a_carriage_return():
    text, packed = _compressed_ending_in_carriage_return()
    pdf = b"%PDF-1.3\n4 0 obj\n<</Filter /FlateDecode>>\nstream\n" + packed + \
        b"\nendstream\nendobj\n%%EOF\n"
    assert text in pdf_text(pdf)

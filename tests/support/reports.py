"""Helpers for the report tests: post ledger movements at chosen moments."""
from __future__ import annotations

import csv
import io
import re
import zlib
from datetime import datetime
from decimal import Decimal

from bankapp import ledger


def deposit_at(account, amount, when: datetime, description="Deposit", actor=None):
    """A deposit stamped ``when`` (a past moment: the ledger imports history so)."""
    return ledger.deposit(account, Decimal(amount), description, actor, posted_at=when)


def withdraw_at(account, amount, when: datetime, description="Withdrawal", actor=None):
    return ledger.withdraw(account, Decimal(amount), description, actor, posted_at=when)


def transfer_at(source, destination, amount, when: datetime, description="Transfer",
                actor=None):
    return ledger.transfer(source, destination.account_number, Decimal(amount), description,
                           actor, posted_at=when)


def post_random_history(rng, account, other, moments, amount_of) -> Decimal:
    """Deposits, withdrawals and transfers to and from ``other`` on ``account``, one at each
    of ``moments`` (in order), each of ``amount_of(rng)``, never overdrawing ``account``;
    the balance they leave it."""
    balance = Decimal("0.00")
    for when in moments:
        amount = amount_of(rng)
        kind = rng.choice(["deposit", "withdraw", "in", "out"])
        if kind in ("withdraw", "out") and amount > balance:
            kind = "deposit"
        if kind == "deposit":
            deposit_at(account, amount, when)
        elif kind == "withdraw":
            withdraw_at(account, amount, when)
        elif kind == "in":
            transfer_at(other, account, amount, when)
        else:
            transfer_at(account, other, amount, when)
        balance += amount if kind in ("deposit", "in") else -amount
    return balance


def csv_rows(response, delimiter=",") -> list[list[str]]:
    """The cells of a CSV download (its byte-order mark dropped)."""
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig")),
                           delimiter=delimiter))


def pdf_text(data: bytes) -> str:
    """The text drawn in a PDF of core fonts (Latin-1), its compressed streams opened."""
    chunks = [data.decode("latin-1")]
    # The end-of-line before "endstream" is not part of the stream, but a compressed
    # stream may itself end in a carriage return: inflate from the start and let zlib
    # say where the stream ends rather than trimming bytes by pattern.
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            chunks.append(zlib.decompressobj().decompress(stream).decode("latin-1"))
        except zlib.error:
            pass
    return "\n".join(chunks)

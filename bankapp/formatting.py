"""Presentation of money and time, shared by templates, CSV and PDF output."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app


def format_money(value: Decimal | None, signed: bool = False) -> str:
    """``1234.5`` → ``1,234.50`` (``+1,234.50`` with ``signed``)."""
    if value is None:
        return ""
    value = Decimal(value).quantize(Decimal("0.01"))
    text = f"{abs(value):,.2f}"
    if value < 0:
        return "−" + text
    return ("+" + text) if signed and value > 0 else text


def bank_timezone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BANK_TIMEZONE") or "UTC")


def day_start_utc(day: date) -> datetime:
    """Midnight at the start of ``day`` in the bank's time zone, as a UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=bank_timezone()).astimezone(timezone.utc)


def format_timestamp(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp shown in the bank's time zone."""
    if value is None:
        return ""
    return value.astimezone(bank_timezone()).strftime(fmt)

"""Presentation of money and time, shared by templates, CSV and PDF output.

Numbers, dates and times are written the way the request's locale writes them (Babel's CLDR
data: ``1,234.50`` in English, ``1 234,50`` in French, ``1’234.50`` in Swiss German,
``12,34,567.00`` in Indian English), in the bank's time zone, and every amount shown to a
person carries the bank's currency (``BANK_CURRENCY``).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent
from flask import current_app

from bankapp.platform.i18n import current_locale

MINUS = "−"  # U+2212: a real minus sign, the width of the plus

# Each locale orders and spells these its own way (CLDR): a medium date ("Dec 1, 2026",
# "1 déc. 2026") and a 24-hour time, never an ambiguous 12/1/26.
TIME_FORMS = ("datetime", "seconds", "date", "time", "month")


def format_amount(value: Decimal | None, signed: bool = False, locale=None) -> str:
    """The number alone, in the locale's digits grouping: ``1234.5`` → ``1,234.50``."""
    return _signed(value, signed, lambda v: format_decimal(
        v, format="#,##0.00", locale=locale or current_locale(), decimal_quantization=True))


def format_money(value: Decimal | None, signed: bool = False, currency: str | None = None,
                 locale=None) -> str:
    """An amount with the bank's currency: ``$1,234.50`` (en), ``1 234,50 $US`` (fr);
    ``−`` before a negative amount, ``+`` before a positive one with ``signed``."""
    code = currency or current_app.config.get("BANK_CURRENCY", "USD")
    return _signed(value, signed, lambda v: format_currency(
        v, code, locale=locale or current_locale()))


def _signed(value, signed: bool, write) -> str:
    if value is None:
        return ""
    value = Decimal(value).quantize(Decimal("0.01"))
    text = write(abs(value))
    if value < 0:
        return MINUS + text
    return ("+" + text) if signed and value > 0 else text


def bank_timezone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BANK_TIMEZONE") or "UTC")


def day_start_utc(day: date) -> datetime:
    """Midnight at the start of ``day`` in the bank's time zone, as a UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=bank_timezone()).astimezone(timezone.utc)


def format_timestamp(value: datetime | None, form: str = "datetime", locale=None) -> str:
    """A UTC timestamp in the bank's time zone, written the locale's way.

    ``form`` is one of ``TIME_FORMS`` (``datetime``, ``seconds``, ``date``, ``time``,
    ``month``), or a ``strftime`` pattern (starting with ``%``) for machine-read output.
    """
    if value is None:
        return ""
    local = value.astimezone(bank_timezone())
    if form.startswith("%"):
        return local.strftime(form)
    locale = Locale.parse(locale or current_locale())
    if form in ("date", "month"):
        return format_day(local.date(), form, locale)
    clock = format_skeleton("Hms" if form == "seconds" else "Hm", local.time(), locale=locale)
    if form == "time":
        return clock
    day = format_date(local.date(), "medium", locale=locale)
    return locale.datetime_formats["medium"].format(clock, day)


def format_last_day(end: datetime | None, locale=None) -> str:
    """The last day a period ending at ``end`` covers, written the locale's way: a hold kept
    "until the end of 31 Dec" ends at the next day's midnight in the bank's time zone, which
    is shown as ``Dec 31, 2026``, not ``Jan 1, 2027, 00:00``."""
    if end is None:
        return ""
    local = end.astimezone(bank_timezone())
    day = local.date() - timedelta(days=1) if local.time() == time(0) else local.date()
    return format_day(day, "date", locale)


def format_rate(value: Decimal | None, locale=None) -> str:
    """An annual rate given in percent (``12.5``), the locale's way: ``12.5%``, ``12,5 %``."""
    if value is None:
        return ""
    return format_percent(Decimal(value).normalize() / 100, locale=locale or current_locale(),
                          decimal_quantization=False)


def format_day(value: date | None, form: str = "date", locale=None) -> str:
    """A calendar date (no time zone) written the locale's way: ``date`` or ``month``."""
    if value is None:
        return ""
    if form == "month":
        return format_skeleton("yMMM", value, locale=locale or current_locale())
    return format_date(value, "medium", locale=locale or current_locale())

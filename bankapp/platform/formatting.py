"""Presentation of money and time, shared by templates, CSV and PDF output.

Numbers, dates and times are written the way the request's locale writes them (Babel's CLDR
data: ``1,234.50`` in English, ``1 234,50`` in French, ``1’234.50`` in Swiss German,
``12,34,567.00`` in Indian English), in the bank's time zone, and every amount shown to a
person carries the bank's currency (``BANK_CURRENCY``).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, match_skeleton
from babel.numbers import format_currency, format_decimal, format_percent
from flask import current_app

from bankapp.platform.i18n import current_locale

MINUS = "−"  # U+2212: a real minus sign, the width of the plus

# Each locale orders and spells these its own way (CLDR): a medium date ("Dec 1, 2026",
# "1 déc. 2026") and a 24-hour time, never an ambiguous 12/1/26.
TIME_FORMS = ("datetime", "seconds", "date", "time", "month")


def format_amount(value: Decimal | None, signed: bool = False, locale=None) -> str:
    """The number alone, in the locale's digits grouping: ``1234.5`` → ``1,234.50``."""
    return _signed(value, signed, _number_writer(locale or current_locale(), None))


def format_money(value: Decimal | None, signed: bool = False, currency: str | None = None,
                 locale=None) -> str:
    """An amount with the bank's currency: ``$1,234.50`` (en), ``1 234,50 $US`` (fr);
    ``−`` before a negative amount, ``+`` before a positive one with ``signed``."""
    code = currency or current_app.config.get("BANK_CURRENCY", "USD")
    return _signed(value, signed, _number_writer(locale or current_locale(), code))


def money_writer(currency: str | None = None, locale=None, number_only: bool = False):
    """``format_money`` (or ``format_amount`` with ``number_only``) for many figures: the
    locale and the currency are looked up once, not per figure (a statement has thousands)."""
    locale = locale or current_locale()
    code = None if number_only else (currency or current_app.config.get("BANK_CURRENCY", "USD"))
    write = _number_writer(locale, code)
    return lambda value: _signed(value, False, write)


def timestamp_writer(form: str = "datetime", locale=None):
    """``format_timestamp`` for many timestamps, the time zone and locale looked up once."""
    # The locale itself (a ``Locale`` or its name) keys the caches below: ``str(locale)``
    # costs more than what they save.
    locale, zone = locale or current_locale(), bank_timezone()
    if form.startswith("%") or form in ("date", "month"):
        return lambda value: format_timestamp(value, form, locale)
    pattern = _clock_pattern(locale, "Hms" if form == "seconds" else "Hm")
    joined = _datetime_pattern(locale)

    def write(value: datetime | None) -> str:
        if value is None:
            return ""
        local = value.astimezone(zone)
        clock = _clock(local, pattern, locale)
        return clock if form == "time" else joined.format(clock, _medium_date(local.date(),
                                                                              locale))
    return write


def _signed(value, signed: bool, write) -> str:
    if value is None:
        return ""
    value = Decimal(value).quantize(Decimal("0.01"))
    text = write(abs(value))
    if value < 0:
        return MINUS + text
    return ("+" + text) if signed and value > 0 else text


def _babel_number(locale: Locale, currency: str | None):
    """Babel's writer of a positive amount (with ``currency``, or the number alone)."""
    if currency is None:
        return lambda v: format_decimal(v, format="#,##0.00", locale=locale,
                                        decimal_quantization=True)
    return lambda v: format_currency(v, currency, locale=locale)


# Amounts the fast writer must write exactly as Babel does before it is used for a locale:
# zero, cents, each count of digits around a thousands mark, and very large values.
_PROBES = tuple(Decimal(text) for text in (
    "0.00", "0.05", "1.00", "12.30", "999.99", "1000.00", "1234.50", "12345.67", "100000.00",
    "999999.99", "1234567.89", "12345678901.23", "1000000000000.01"))


@lru_cache(maxsize=64)
def _number_writer(locale, currency: str | None):
    """A writer of a positive cent amount the locale's way, as Babel writes it.

    Babel reads the locale's pattern and symbols again on every call, ten times the cost of
    the quick writer below, and a statement of a year has 7,500 figures. Where the locale
    groups by three and the currency has cents (English, French…), the figure is Python's
    ``{:,.2f}`` with the locale's marks, between the text Babel puts around a number: the
    same text, checked against Babel on ``_PROBES`` here. Elsewhere (Indian grouping,
    currencies without cents, any locale the check finds different) Babel writes each one.
    """
    parsed = Locale.parse(locale)
    babel = _babel_number(parsed, currency)
    symbols = parsed.number_symbols.get("latn", {})
    group, decimal = symbols.get("group"), symbols.get("decimal")
    sample = Decimal("1234567.89")
    written = babel(sample)
    number = f"1{group}234{group}567{decimal}89"
    if not group or not decimal or written.count(number) != 1:
        return babel
    prefix, suffix = written.split(number)
    marks = str.maketrans({",": group, ".": decimal})

    def fast(value: Decimal) -> str:
        return prefix + f"{value:,.2f}".translate(marks) + suffix

    if any(fast(probe) != babel(probe) for probe in _PROBES):
        return babel
    return fast


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
    if form in ("date", "month"):
        return format_day(local.date(), form, locale or current_locale())
    return timestamp_writer(form, locale)(value)


@lru_cache(maxsize=16)
def _clock_pattern(locale, skeleton: str):
    """The locale's pattern for a time skeleton, as ``format_skeleton`` picks it."""
    parsed = Locale.parse(locale)
    if skeleton not in parsed.datetime_skeletons:
        skeleton = match_skeleton(skeleton, parsed.datetime_skeletons) or skeleton
    return parsed.datetime_skeletons[skeleton]


# The patterns most locales use for a time, written without Babel (the same text).
_CLOCKS = {"HH:mm": "{0.hour:02d}:{0.minute:02d}", "H:mm": "{0.hour}:{0.minute:02d}",
           "HH:mm:ss": "{0.hour:02d}:{0.minute:02d}:{0.second:02d}",
           "H:mm:ss": "{0.hour}:{0.minute:02d}:{0.second:02d}"}


def _clock(local: datetime, pattern, locale) -> str:
    quick = _CLOCKS.get(pattern.pattern)
    if quick is not None:
        return quick.format(local)
    return format_datetime(local.time(), pattern, locale=locale)


@lru_cache(maxsize=16)
def _datetime_pattern(locale) -> str:
    return Locale.parse(locale).datetime_formats["medium"]


@lru_cache(maxsize=4096)
def _medium_date(day: date, locale) -> str:
    """A medium date, once per day and locale (a statement shows each day many times)."""
    return format_date(day, "medium", locale=locale)


def format_last_day(end: datetime | None, locale=None) -> str:
    """The last day a period ending at ``end`` covers, written the locale's way: a hold kept
    "until the end of 31 Dec" ends at the next day's midnight in the bank's time zone, which
    is shown as ``Dec 31, 2026``, not ``Jan 1, 2027, 00:00``."""
    if end is None:
        return ""
    local = end.astimezone(bank_timezone())
    day = local.date() - timedelta(days=1) if local.time() == time(0) else local.date()
    return format_day(day, "date", locale)


def format_count(value: int | None, locale=None) -> str:
    """A whole number of things the locale's way: ``12,340`` (en), ``12 340`` (fr)."""
    if value is None:
        return ""
    return format_decimal(value, locale=locale or current_locale())


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
    return _medium_date(value, locale or current_locale())

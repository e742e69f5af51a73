"""Repayment schedules: due dates, instalments and the interest of each period, exactly.

Pure arithmetic on ``Decimal`` (no database, no app): the loan pages, the application's
preview and the disbursement all build a schedule here, and the tests check it against
``numpy-financial``.

Rules
-----
* Due dates: every 7 days, or every month on the disbursement's day of the month (a day the
  month lacks falls on its last day; the next month goes back to the chosen day).
* Interest is on the *declining balance*, daily, actual/365: a period of ``d`` days (from
  the disbursement or the previous due date) costs ``balance × rate / 100 × d / 365``, with
  ``balance`` the principal still owed during that period. Each instalment's interest is
  rounded half-up to the cent once.
* Equal instalments (annuity): the instalment is ``pmt`` at the periodic rate (the annual
  rate / 12 for monthly, × 7 / 365 for weekly), rounded half-up to the cent; its principal
  is the instalment less the period's interest. Equal principal: the principal of
  instalment ``k`` is ``round(P × k / n) − round(P × (k − 1) / n)``, each half-up.
* The last instalment takes the remainder: its principal is whatever is still owed, so the
  principal parts always sum to the principal exactly (and the last instalment's total may
  differ from the others by what rounding and the uneven month lengths left over).
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from bankapp.models import Amortisation, RepaymentFrequency

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DAYS_IN_YEAR = 365
MONTHS_IN_YEAR = 12
WEEK = 7
LONGEST_PERIOD_DAYS = 31  # a month at most: no period of a schedule is longer


def half_up(value: Decimal) -> Decimal:
    """``value`` rounded half-up to the cent (0.005 → 0.01), whatever the context says."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Terms:
    """What a schedule is built from: the loan's amount, price and rhythm."""

    principal: Decimal
    annual_rate: Decimal  # percent a year
    term: int  # number of instalments
    frequency: str
    amortisation: str
    start: date  # the disbursement's date (bank time)


@dataclass(frozen=True)
class Instalment:
    number: int
    due_on: date
    days: int  # of the period it ends
    opening_principal: Decimal  # owed during the period
    principal: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest


def _on_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def due_dates(start: date, frequency: str, term: int) -> list[date]:
    """The ``term`` due dates after ``start``."""
    if frequency == RepaymentFrequency.WEEKLY:
        return [start + timedelta(days=WEEK * k) for k in range(1, term + 1)]
    dates = []
    for k in range(1, term + 1):
        months = start.month - 1 + k
        dates.append(_on_day(start.year + months // MONTHS_IN_YEAR,
                             months % MONTHS_IN_YEAR + 1, start.day))
    return dates


def period_interest(balance: Decimal, annual_rate: Decimal, days: int) -> Decimal:
    """Declining-balance interest of ``days`` days on ``balance`` (actual/365), half-up."""
    if days <= 0 or balance <= 0:
        return ZERO
    with localcontext() as context:
        context.prec = 40
        return half_up(balance * annual_rate * days / (100 * DAYS_IN_YEAR))


def periodic_rate(annual_rate: Decimal, frequency: str) -> Decimal:
    """The rate of one period as a fraction: annual / 12 a month, annual × 7 / 365 a week."""
    with localcontext() as context:
        context.prec = 40
        if frequency == RepaymentFrequency.WEEKLY:
            return annual_rate / 100 * WEEK / DAYS_IN_YEAR
        return annual_rate / 100 / MONTHS_IN_YEAR


def instalment_amount(principal: Decimal, annual_rate: Decimal, term: int,
                      frequency: str) -> Decimal:
    """The equal instalment (annuity, ``pmt``) at the periodic rate, half-up to the cent."""
    rate = periodic_rate(annual_rate, frequency)
    with localcontext() as context:
        context.prec = 40
        if rate == 0:
            return half_up(principal / term)
        return half_up(principal * rate / (1 - (1 + rate) ** -term))


def build_schedule(terms: Terms) -> list[Instalment]:
    """Every instalment of a loan repaid on time (see the module's rules)."""
    dates = due_dates(terms.start, terms.frequency, terms.term)
    annuity = (instalment_amount(terms.principal, terms.annual_rate, terms.term,
                                 terms.frequency)
               if terms.amortisation == Amortisation.EQUAL_INSTALMENTS else None)
    owed, previous, rows = terms.principal, terms.start, []
    for number, due in enumerate(dates, start=1):
        days = (due - previous).days
        interest = period_interest(owed, terms.annual_rate, days)
        if number == terms.term:
            principal = owed  # the last instalment takes the remainder
        elif annuity is not None:
            principal = min(max(annuity - interest, ZERO), owed)
        else:
            principal = min(_equal_principal(terms.principal, number, terms.term), owed)
        rows.append(Instalment(number, due, days, owed, principal, interest))
        owed -= principal
        previous = due
    return rows


def _equal_principal(principal: Decimal, number: int, term: int) -> Decimal:
    """Instalment ``number``'s share: the rounded cumulative share less the one before it,
    so the shares are never negative and always add up to the principal."""
    with localcontext() as context:
        context.prec = 40
        return (half_up(principal * number / term)
                - half_up(principal * (number - 1) / term))

"""Repayment schedules: exact cents, the principal repaid exactly, declining-balance interest."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankapp.lending.schedule import (
    LONGEST_PERIOD_DAYS,
    Terms,
    build_schedule,
    due_dates,
    half_up,
    instalment_amount,
    period_interest,
)
from bankapp.models import Amortisation, RepaymentFrequency

MONTHLY, WEEKLY = RepaymentFrequency.MONTHLY, RepaymentFrequency.WEEKLY
ANNUITY, EQUAL_PRINCIPAL = Amortisation.EQUAL_INSTALMENTS, Amortisation.EQUAL_PRINCIPAL

terms_strategy = st.builds(
    Terms,
    principal=st.decimals(min_value=Decimal("1.00"), max_value=Decimal("5000000.00"),
                          places=2),
    annual_rate=st.decimals(min_value=0, max_value=100, places=4),
    term=st.integers(min_value=1, max_value=120),
    frequency=st.sampled_from(RepaymentFrequency.ALL),
    amortisation=st.sampled_from(Amortisation.ALL),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
)


def test_half_up_rounds_half_a_cent_up():
    assert half_up(Decimal("0.005")) == Decimal("0.01")
    assert half_up(Decimal("2.675")) == Decimal("2.68")
    assert half_up(Decimal("0.0049999")) == Decimal("0.00")


def test_monthly_due_dates_fall_on_the_month_end_when_the_day_is_missing():
    assert due_dates(date(2027, 1, 31), MONTHLY, 3) == [
        date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]


def test_weekly_due_dates_are_seven_days_apart():
    assert due_dates(date(2027, 1, 1), WEEKLY, 2) == [date(2027, 1, 8), date(2027, 1, 15)]


def test_period_interest_is_actual_over_365_rounded_half_up():
    # 1000.00 at 36.5 % for 31 days: 1000 × 0.365 × 31 / 365 = 31.00 exactly.
    assert period_interest(Decimal("1000.00"), Decimal("36.5"), 31) == Decimal("31.00")
    # 100.00 at 10 % for 1 day: 0.027397… → 0.03.
    assert period_interest(Decimal("100.00"), Decimal("10"), 1) == Decimal("0.03")


def test_a_known_annuity_schedule():
    schedule = build_schedule(Terms(Decimal("1200.00"), Decimal("12"), 12, MONTHLY, ANNUITY,
                                    date(2027, 1, 15)))
    assert [row.total for row in schedule[:-1]] == [Decimal("106.62")] * 11
    assert schedule[0].interest == Decimal("12.23")  # 1200 × 12 % × 31 / 365
    assert sum(row.principal for row in schedule) == Decimal("1200.00")


def test_a_known_equal_principal_schedule_gives_the_remainder_to_the_last():
    schedule = build_schedule(Terms(Decimal("100.00"), Decimal("0"), 3, MONTHLY,
                                    EQUAL_PRINCIPAL, date(2027, 1, 15)))
    assert [row.principal for row in schedule] == [
        Decimal("33.33"), Decimal("33.34"), Decimal("33.33")]


@pytest.mark.parametrize("principal,rate,term,frequency", [
    (Decimal("1200.00"), Decimal("12"), 12, MONTHLY),
    (Decimal("50000.00"), Decimal("7.25"), 360, MONTHLY),
    (Decimal("999.99"), Decimal("99.9999"), 52, WEEKLY),
    (Decimal("10.00"), Decimal("0.0001"), 1, MONTHLY),
])
def test_the_equal_instalment_is_numpy_financials_pmt(principal, rate, term, frequency):
    periodic = float(rate) / 100 / 12 if frequency == MONTHLY else float(rate) / 100 * 7 / 365
    expected = -npf.pmt(periodic, term, float(principal))
    assert abs(float(instalment_amount(principal, rate, term, frequency)) - expected) <= 0.01


@settings(max_examples=300, deadline=None)
@given(terms_strategy)
def test_the_equal_instalment_matches_pmt_within_a_cent(terms):
    periodic = (float(terms.annual_rate) / 100 / 12 if terms.frequency == MONTHLY
                else float(terms.annual_rate) / 100 * 7 / 365)
    expected = (-npf.pmt(periodic, terms.term, float(terms.principal)) if periodic
                else float(terms.principal) / terms.term)
    amount = instalment_amount(terms.principal, terms.annual_rate, terms.term, terms.frequency)
    assert abs(float(amount) - expected) <= 0.01 + 1e-9 * expected


@settings(max_examples=300, deadline=None)
@given(terms_strategy)
def test_the_principal_parts_sum_to_the_principal_exactly(terms):
    schedule = build_schedule(terms)
    assert len(schedule) == terms.term
    assert sum(row.principal for row in schedule) == terms.principal
    assert all(row.principal >= 0 and row.interest >= 0 for row in schedule)
    assert all(row.total == row.total.quantize(Decimal("0.01")) for row in schedule)


@settings(max_examples=300, deadline=None)
@given(terms_strategy)
def test_due_dates_rise_and_no_period_is_longer_than_a_month(terms):
    """The loan portfolio finds each loan's running period among the instalments due within
    LONGEST_PERIOD_DAYS of the day (bankapp/lending/portfolio.py)."""
    schedule = build_schedule(terms)
    assert all(1 <= row.days <= LONGEST_PERIOD_DAYS for row in schedule)
    assert all(a.due_on < b.due_on for a, b in zip(schedule, schedule[1:]))


@settings(max_examples=300, deadline=None)
@given(terms_strategy)
def test_each_interest_is_the_declining_balance_interest_of_its_period(terms):
    """Recomputed with exact fractions: balance × rate × days / 36500, rounded half-up."""
    owed = Fraction(terms.principal)
    for row in build_schedule(terms):
        exact = owed * Fraction(terms.annual_rate) * row.days / 36500
        cents = int(exact * 100 + Fraction(1, 2))  # half-up (non-negative)
        assert row.interest == Decimal(cents) / 100
        assert row.opening_principal == Decimal(owed.numerator) / owed.denominator
        owed -= Fraction(row.principal)


@settings(max_examples=200, deadline=None)
@given(terms_strategy.filter(lambda t: t.amortisation == ANNUITY and t.term > 1))
def test_annuity_instalments_before_the_last_are_all_equal(terms):
    schedule = build_schedule(terms)
    amount = instalment_amount(terms.principal, terms.annual_rate, terms.term, terms.frequency)
    # Until the principal runs out (tiny loans at high rates), each instalment is the pmt.
    for row in schedule[:-1]:
        if row.principal + row.interest != amount:
            assert row.principal in (Decimal("0.00"), row.opening_principal)

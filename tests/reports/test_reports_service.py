"""Report figures: statements, periods in the bank's time zone, summaries, bank-wide totals."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import Account, JournalEntry, Role, StatementIssue, Transaction
from bankapp.reports import service
from bankapp.reports.service import ReportError
from support.reports import deposit_at, post_random_history, transfer_at, withdraw_at

D = Decimal
UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def ny(*args) -> datetime:
    """A moment given in New York time, as the ledger stores it (UTC)."""
    return datetime(*args, tzinfo=NEW_YORK).astimezone(UTC)


@pytest.fixture
def new_york(app):
    app.config["BANK_TIMEZONE"] = "America/New_York"
    return app


# ---------------------------------------------------------------- statement arithmetic


@pytest.mark.parametrize("seed", range(6))
def test_statement_opening_plus_in_minus_out_is_closing_on_random_histories(
        seed, customer, make_user, funded_account):
    rng = random.Random(seed)
    account = funded_account(customer)
    other = funded_account(make_user(), "100000.00")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = sorted(start + timedelta(minutes=rng.randint(1, 60 * 24 * 120))
                     for _ in range(rng.randint(5, 40)))
    balance = post_random_history(rng, account, other, moments,
                                  lambda rng: D(rng.randint(1, 50_000)) / 100)
    # Any window of the history adds up, wherever it starts and ends.
    for _ in range(4):
        first = date(2026, 1, 1) + timedelta(days=rng.randint(0, 120))
        last = first + timedelta(days=rng.randint(0, 60))
        st = service.statement(account, first, last)
        assert st.opening + st.total_in - st.total_out == st.closing
        running = st.opening
        for entry in st.entries:
            running += entry.amount if entry.side == "credit" else -entry.amount
            assert entry.balance_after == running
    whole = service.statement(account, date(2025, 12, 1), date(2026, 12, 31))
    assert whole.opening == D("0.00") and whole.closing == balance


def test_statement_opening_is_the_balance_before_the_period(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "100.00", datetime(2026, 1, 10, 12, tzinfo=UTC))
    withdraw_at(account, "30.00", datetime(2026, 1, 20, 12, tzinfo=UTC))
    deposit_at(account, "5.50", datetime(2026, 2, 3, 12, tzinfo=UTC))
    st = service.statement(account, date(2026, 2, 1), date(2026, 2, 28))
    assert (st.opening, st.total_in, st.total_out, st.closing) == (
        D("70.00"), D("5.50"), D("0.00"), D("75.50"))
    assert [e.amount for e in st.entries] == [D("5.50")]


def test_an_empty_period_has_no_entries_and_closes_at_its_opening(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "42.00", datetime(2026, 1, 5, tzinfo=UTC))
    st = service.statement(account, date(2026, 3, 1), date(2026, 3, 31))
    assert st.entries == []
    assert st.opening == st.closing == D("42.00")
    assert st.total_in == st.total_out == D("0.00")


def test_statement_of_a_new_account_opens_and_closes_at_zero(customer, funded_account):
    st = service.statement(funded_account(customer), date(2026, 1, 1), date(2026, 1, 31))
    assert st.opening == st.closing == D("0.00") and st.entries == []


def test_statement_of_the_current_period_stops_at_its_issue_time(customer, funded_account):
    account = funded_account(customer)
    issued = datetime(2026, 3, 10, 12, tzinfo=UTC)
    deposit_at(account, "10.00", issued - timedelta(hours=1))
    deposit_at(account, "99.00", issued + timedelta(hours=1))
    st = service.statement(account, date(2026, 3, 1), date(2026, 3, 31), as_of=issued)
    assert st.closing == D("10.00") and not st.complete


# ---------------------------------------------------------------- time zone boundaries


def test_statement_days_are_the_banks_days_not_utcs(new_york, customer, funded_account):
    account = funded_account(customer)
    # 23:59:59 on 31 January in New York is already 1 February in UTC.
    deposit_at(account, "1.00", ny(2026, 1, 31, 23, 59, 59))
    deposit_at(account, "2.00", ny(2026, 2, 1, 0, 0, 0))
    deposit_at(account, "4.00", ny(2026, 2, 28, 23, 59, 59))
    deposit_at(account, "8.00", ny(2026, 3, 1, 0, 0, 0))
    st = service.statement(account, date(2026, 2, 1), date(2026, 2, 28))
    assert [e.amount for e in st.entries] == [D("2.00"), D("4.00")]
    assert st.opening == D("1.00") and st.closing == D("7.00")


def test_a_period_bound_is_local_midnight_converted_to_utc(new_york):
    lower, upper = service.Period(date(2026, 7, 1), date(2026, 7, 31)).utc_bounds()
    assert lower == datetime(2026, 7, 1, 4, tzinfo=UTC)  # EDT, UTC−4
    assert upper == datetime(2026, 8, 1, 4, tzinfo=UTC)
    lower, _ = service.Period(date(2026, 1, 1), date(2026, 1, 1)).utc_bounds()
    assert lower == datetime(2026, 1, 1, 5, tzinfo=UTC)  # EST, UTC−5


def test_monthly_summary_counts_a_late_evening_leg_in_its_local_month(
        new_york, customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", ny(2026, 1, 31, 23, 30))
    deposit_at(account, "20.00", ny(2026, 2, 1, 0, 0))
    summary = service.monthly_summary(account, months=2, today=date(2026, 2, 15))
    january, february = summary.months
    assert (january.deposits, january.end_balance) == (D("10.00"), D("10.00"))
    assert (february.deposits, february.end_balance) == (D("20.00"), D("30.00"))


def test_daily_totals_count_legs_in_their_local_day(new_york, customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", ny(2026, 3, 1, 23, 30))  # 04:30 UTC on 2 March
    deposit_at(account, "5.00", ny(2026, 3, 2, 0, 0))
    withdraw_at(account, "3.00", ny(2026, 3, 2, 22, 0))
    days = service.daily_totals(service.Period(date(2026, 3, 1), date(2026, 3, 3)))
    assert [(d.day, d.deposits, d.deposit_count, d.withdrawals) for d in days] == [
        (date(2026, 3, 1), D("10.00"), 1, D("0.00")),
        (date(2026, 3, 2), D("5.00"), 1, D("3.00")),
        (date(2026, 3, 3), D("0.00"), 0, D("0.00")),
    ]


# ---------------------------------------------------------------- periods


@pytest.mark.parametrize("start, end, message", [
    ("", "2026-01-31", "Enter the start date"),
    ("2026-01-01", None, "Enter the end date"),
    ("01/02/2026", "2026-01-31", "must look like"),
    ("2026-02-30", "2026-03-31", "does not exist"),
    ("２０２６-01-01", "2026-01-31", "must look like"),
    ("2026-02-01", "2026-01-31", "end date is before the start date"),
    ("2020-01-01", "2025-01-01", "at most 5 years"),
    ("0001-01-01", "0001-12-31", "between the years 1900 and 2999"),
    ("9999-12-31", "9999-12-31", "between the years 1900 and 2999"),
])
def test_bad_periods_are_refused_with_a_message(app, start, end, message):
    with pytest.raises(ReportError, match=message):
        service.parse_period(start, end)


def test_a_period_of_five_years_less_a_day_is_allowed(app):
    period = service.parse_period("2020-01-01", "2024-12-31")
    assert period.days == 1827


@pytest.mark.parametrize("preset, expected", [
    ("this-month", (date(2026, 3, 1), date(2026, 3, 15))),
    ("last-month", (date(2026, 2, 1), date(2026, 2, 28))),
    ("last-90-days", (date(2025, 12, 16), date(2026, 3, 15))),
    ("last-12-months", (date(2025, 4, 1), date(2026, 3, 15))),
    ("last-year", (date(2025, 1, 1), date(2025, 12, 31))),
])
def test_period_presets(app, preset, expected):
    period = service.preset_period(preset, today=date(2026, 3, 15))
    assert (period.start, period.end) == expected


# ---------------------------------------------------------------- verification codes


def test_verification_code_is_stable_and_grouped(customer, funded_account):
    account = funded_account(customer, "10.00")
    first = service.statement(account, date(2020, 1, 1), date(2024, 1, 1))
    again = service.statement(account, date(2020, 1, 1), date(2024, 1, 1))
    assert first.code == again.code and len(first.code) == 20
    assert service.format_code(first.code).count("-") == 4


def test_verification_code_changes_with_any_entry(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", datetime(2026, 1, 5, tzinfo=UTC))
    before = service.statement(account, date(2026, 1, 1), date(2026, 1, 31)).code
    deposit_at(account, "0.01", datetime(2026, 1, 6, tzinfo=UTC))
    assert service.statement(account, date(2026, 1, 1), date(2026, 1, 31)).code != before


def _issued(account, owner, start=date(2026, 1, 1), end=date(2026, 1, 31)):
    st = service.statement(account, start, end)
    service.record_issue(st, owner)
    return st


def test_an_issued_code_verifies(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", datetime(2026, 1, 5, tzinfo=UTC))
    st = _issued(account, customer)
    result = service.verify_code(service.format_code(st.code).lower(), customer)
    assert result.valid and result.recomputed.closing == D("10.00")


def test_a_code_with_a_changed_character_is_unknown(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", datetime(2026, 1, 5, tzinfo=UTC))
    code = _issued(account, customer).code
    tampered = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert service.verify_code(tampered, customer).status == "unknown"


def test_a_code_no_longer_matches_when_the_ledger_was_altered(customer, funded_account):
    account = funded_account(customer)
    deposit_at(account, "10.00", datetime(2026, 1, 5, tzinfo=UTC))
    st = _issued(account, customer)
    # Someone edits a ledger row behind the ledger's back.
    db.session.execute(sa.update(Transaction).where(Transaction.id == st.entries[0].id)
                       .values(amount=D("11.00")))
    db.session.commit()
    assert service.verify_code(st.code, customer).status == "mismatch"


def test_a_customer_cannot_verify_another_customers_statement(customer, make_user,
                                                              funded_account):
    stranger = make_user()
    st = _issued(funded_account(stranger, "5.00"), stranger)
    assert service.verify_code(st.code, customer).status == "unknown"
    teller = make_user(role=Role.TELLER)
    assert service.verify_code(st.code, teller).valid


def test_issuing_the_same_statement_twice_keeps_one_record(customer, funded_account):
    account = funded_account(customer, "5.00")
    _issued(account, customer)
    _issued(account, customer)
    assert db.session.scalar(sa.select(sa.func.count(StatementIssue.id))) == 1


@pytest.mark.parametrize("text, message", [
    ("", "Enter the verification code"),
    ("ABCD", "has 20 letters"),
    ("ABCD-EFGH-IJKL-MNOP-QRS!", "has 20 letters"),
])
def test_malformed_codes_are_refused_with_a_message(customer, text, message):
    with pytest.raises(ReportError, match=message):
        service.verify_code(text, customer)


# ---------------------------------------------------------------- monthly summary


def test_monthly_summary_splits_kinds_and_tracks_month_end_balances(
        customer, make_user, funded_account):
    account = funded_account(customer)
    other = funded_account(make_user(), "1000.00")
    deposit_at(account, "100.00", datetime(2025, 12, 20, tzinfo=UTC))
    deposit_at(account, "50.00", datetime(2026, 1, 3, tzinfo=UTC))
    withdraw_at(account, "20.00", datetime(2026, 1, 4, tzinfo=UTC))
    transfer_at(other, account, "7.00", datetime(2026, 1, 5, tzinfo=UTC))
    transfer_at(account, other, "2.00", datetime(2026, 3, 5, tzinfo=UTC))
    summary = service.monthly_summary(account, months=3, today=date(2026, 3, 31))
    january, february, march = summary.months
    assert summary.opening == D("100.00")
    assert (january.deposits, january.withdrawals, january.transfers_in, january.net,
            january.end_balance) == (D("50.00"), D("20.00"), D("7.00"), D("37.00"), D("137.00"))
    assert (february.net, february.end_balance) == (D("0.00"), D("137.00"))
    assert (march.transfers_out, march.end_balance) == (D("2.00"), D("135.00"))


def test_summary_of_several_accounts_adds_them_up(customer, funded_account):
    savings = funded_account(customer)
    checking = funded_account(customer, account_type="CHECKING")
    deposit_at(savings, "10.00", datetime(2026, 1, 3, tzinfo=UTC))
    deposit_at(checking, "5.00", datetime(2026, 1, 4, tzinfo=UTC))
    summary = service.monthly_summary([savings, checking], months=1, today=date(2026, 1, 31))
    assert summary.months[0].deposits == D("15.00")
    assert summary.months[0].end_balance == D("15.00")


def test_summary_counts_twelve_months_by_default(customer, funded_account):
    summary = service.monthly_summary(funded_account(customer), today=date(2026, 3, 15))
    assert [m.month for m in summary.months][0] == date(2025, 4, 1)
    assert len(summary.months) == 12 and summary.months[-1].month == date(2026, 3, 1)


# ---------------------------------------------------------------- bank-wide


def test_bank_figures_count_each_movement_once(customer, make_user, funded_account):
    account = funded_account(customer)
    other = funded_account(make_user())
    when = datetime(2026, 4, 2, 12, tzinfo=UTC)
    deposit_at(account, "300.00", when)
    withdraw_at(account, "40.00", when)
    transfer_at(account, other, "60.00", when)
    report = service.bank_report(service.Period(date(2026, 4, 1), date(2026, 4, 30)))
    totals = report.day_totals
    assert (totals.deposits, totals.deposit_count, totals.withdrawals, totals.transfers,
            totals.transfer_count) == (D("300.00"), 1, D("40.00"), D("60.00"), 1)
    assert report.held.customer_total == D("260.00") and report.held.customer_accounts == 2
    assert report.held.internal_total == D("-260.00")
    assert [m.amount for m in report.largest] == [D("300.00"), D("60.00"), D("40.00")]


def test_new_customers_are_counted_per_month(app, make_user):
    make_user(created_at=datetime(2026, 2, 10, tzinfo=UTC))
    make_user(created_at=datetime(2026, 2, 11, tzinfo=UTC))
    make_user(created_at=datetime(2026, 3, 1, tzinfo=UTC))
    make_user(role=Role.TELLER, created_at=datetime(2026, 3, 2, tzinfo=UTC))
    months = service.new_customers_per_month(3, today=date(2026, 3, 20))
    assert [(m.month, m.count) for m in months] == [
        (date(2026, 1, 1), 0), (date(2026, 2, 1), 2), (date(2026, 3, 1), 1)]


def test_a_journal_entry_is_read_with_its_reference(customer, funded_account):
    account = funded_account(customer, "5.00")
    st = service.statement(account, date(2000, 1, 1), date(2004, 1, 1))
    assert st.entries == []
    today = service.local_today()
    st = service.statement(account, today, today)
    reference = db.session.scalar(sa.select(JournalEntry.reference))
    assert [e.reference for e in st.entries] == [reference]


# ---------------------------------------------------------------- type labels


TRANSACTION_LABELS = {
    "DEPOSIT": "Deposit", "WITHDRAWAL": "Withdrawal", "TRANSFER_IN": "Transfer in",
    "TRANSFER_OUT": "Transfer out", "REVERSAL": "Reversal", "CASH_IN": "Cash in",
    "CASH_OUT": "Cash out", "SOMETHING_NEW": "SOMETHING_NEW",  # unknown: shown as stored
}
ACCOUNT_LABELS = {
    "SAVINGS": "Savings", "CHECKING": "Checking", "VAULT": "Vault cash", "TILL": "Teller till",
    "OVER_SHORT": "Cash over/short", "SOMETHING_NEW": "SOMETHING_NEW",
}


@pytest.mark.parametrize("code, label", TRANSACTION_LABELS.items())
def test_report_rows_name_transaction_types_as_the_ledger_does(code, label):
    moment = datetime(2026, 1, 5, tzinfo=UTC)
    entry = service.StatementEntry(1, moment, "REF", code, "", "credit", D("1.00"), D("1.00"))
    movement = service.Movement(1, moment, "ACC-000000001", code, "credit", D("1.00"), "")
    leg = Transaction(transaction_type=code)
    assert entry.type_label == movement.type_label == leg.type_label == label


@pytest.mark.parametrize("code, label", ACCOUNT_LABELS.items())
def test_bank_report_names_account_types_as_the_accounts_do(code, label):
    group = service.AccountGroup(code, "active", 1, D("0.00"))
    assert group.type_label == Account(account_type=code).type_label == label


def test_a_statement_labels_each_kind_of_movement(customer, make_user, funded_account):
    account = funded_account(customer)
    other = funded_account(make_user(), "50.00")
    deposit_at(account, "30.00", datetime(2026, 1, 5, tzinfo=UTC))
    withdraw_at(account, "5.00", datetime(2026, 1, 6, tzinfo=UTC))
    transfer_at(other, account, "2.00", datetime(2026, 1, 7, tzinfo=UTC))
    transfer_at(account, other, "1.00", datetime(2026, 1, 8, tzinfo=UTC))
    st = service.statement(account, date(2026, 1, 1), date(2026, 1, 31))
    assert [e.type_label for e in st.entries] == [
        "Deposit", "Withdrawal", "Transfer in", "Transfer out"]


# ---------------------------------------------------------------- ledger totals


def test_the_ledger_keeps_movement_totals_per_quarter_hour(customer, make_user, funded_account):
    from bankapp.models import LedgerTotal

    account = funded_account(customer)
    other = funded_account(make_user())
    deposit_at(account, "10.10", datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    deposit_at(account, "0.20", datetime(2026, 5, 1, 9, 14, 59, tzinfo=UTC))
    deposit_at(account, "5.00", datetime(2026, 5, 1, 9, 15, tzinfo=UTC))
    transfer_at(account, other, "1.00", datetime(2026, 5, 1, 9, 20, tzinfo=UTC))
    rows = db.session.execute(
        sa.select(LedgerTotal.bucket, LedgerTotal.kind, LedgerTotal.amount, LedgerTotal.movements)
        .where(LedgerTotal.bucket >= datetime(2026, 5, 1, tzinfo=UTC))
        .order_by(LedgerTotal.bucket, LedgerTotal.kind)).all()
    assert [(b.astimezone(UTC).strftime("%H:%M"), k, a, n) for b, k, a, n in rows] == [
        ("09:00", "deposit", D("10.30"), 2),
        ("09:15", "deposit", D("5.00"), 1),
        ("09:15", "transfer", D("1.00"), 1),
    ]
    from bankapp import ledger

    assert ledger.reconcile().problems == []


def test_a_leg_a_microsecond_before_a_quarter_hour_stays_in_its_bucket(customer, funded_account):
    from bankapp import ledger
    from bankapp.models import LedgerTotal

    account = funded_account(customer)
    deposit_at(account, "3.00", datetime(2026, 5, 1, 10, 14, 59, 999999, tzinfo=UTC))
    bucket = db.session.scalar(sa.select(LedgerTotal.bucket)
                               .where(LedgerTotal.bucket < datetime(2026, 6, 1, tzinfo=UTC)))
    assert bucket == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert ledger.reconcile().problems == []


def test_reconcile_reports_ledger_totals_that_disagree_with_the_legs(customer, funded_account):
    from bankapp import ledger
    from bankapp.models import LedgerTotal

    funded_account(customer, "25.00")
    db.session.execute(sa.update(LedgerTotal).values(amount=D("26.00")))
    db.session.commit()
    problems = ledger.reconcile().problems
    assert len(problems) == 1 and "ledger totals" in problems[0] and "25.00" in problems[0]

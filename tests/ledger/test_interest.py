"""Interest on savings: daily accrual on end-of-day balances, monthly postings, carried cents."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger.interest import (
    accrual_numerator,
    end_of_day_balances,
    local_today,
    next_month,
    settle,
)
from bankapp.models import (
    Account,
    AccountType,
    EntryType,
    InterestPosting,
    JournalEntry,
    Transaction,
    TransactionType,
    User,
)
from support.backoffice import (  # noqa: F401  (fixtures)
    admin,
    admin_client,
    assert_clean_book,
    audit_rows,
    balance,
)
from support.database import POSTGRES, empty_database
from support.web import post_form

D = Decimal
UTC = timezone.utc
NOVEMBER = date(2025, 11, 1)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def saving(owner: User, opened: date = NOVEMBER, deposit: str | None = None) -> Account:
    """A savings account opened at midnight (UTC) on ``opened``, with ``deposit`` paid in at
    that moment (history is imported with ``posted_at``)."""
    account = ledger.open_account(owner, AccountType.SAVINGS)
    account.created_at = at(opened, 0)
    db.session.commit()
    if deposit is not None:
        ledger.deposit(account, D(deposit), "Savings", owner, posted_at=at(opened, 0))
    return account


def rate(percent: str, start: date, account_type: str = AccountType.SAVINGS) -> None:
    ledger.set_rate(account_type, D(percent), start, None, today=start)


def interest_legs(account: Account) -> list[Transaction]:
    return list(db.session.scalars(sa.select(Transaction).where(
        Transaction.account_id == account.id,
        Transaction.transaction_type == TransactionType.INTEREST).order_by(Transaction.id)))


def posting_row(account: Account, month: date) -> InterestPosting:
    return db.session.scalar(sa.select(InterestPosting).where(
        InterestPosting.account_id == account.id, InterestPosting.month == month))


# ---------------------------------------------------------------- the worked example


def test_a_month_of_interest_is_paid_from_gl_interest_and_the_book_balances(customer):
    account = saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))

    run = ledger.post_interest(NOVEMBER)

    # 1,000.00 × 2.5 % × 30 days / 365 = 2.0547945…: 2.05 paid, 0.0047945… carried.
    assert (run.credited, run.total) == (1, D("2.05"))
    assert balance(account) == D("1002.05")
    assert balance(ledger.interest_account()) == D("-2.05")
    row = posting_row(account, NOVEMBER)
    assert (row.accrued, row.posted, row.carry) == (D("75000"), D("2.05"), D("175"))
    entry = row.entry
    assert entry.entry_type == EntryType.INTEREST and entry.description == "Interest for November 2025"
    assert {(leg.account.account_number, leg.side) for leg in entry.legs} == {
        (account.account_number, "credit"), ("GL-INTEREST", "debit")}
    assert audit_rows("ledger.interest")[0].details["month"] == "2025-11"
    assert_clean_book()


def test_the_carried_fraction_is_paid_in_the_next_month(customer):
    account = saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))
    ledger.post_interest(NOVEMBER)
    ledger.post_interest(date(2025, 12, 1))

    # December: 1,000.00 × 2.5 × 31 = 77,500 plus the 175 carried = 77,675 / 36,500 = 2.128…
    december = posting_row(account, date(2025, 12, 1))
    assert (december.accrued, december.posted) == (D("77500"), D("2.13"))
    assert december.carry == D("77675") - D("2.13") * 36500


def test_a_rate_change_applies_from_its_day(customer):
    account = saving(customer, deposit="3650.00")
    rate("1", date(2025, 1, 1))
    rate("2", date(2025, 11, 16))

    ledger.post_interest(NOVEMBER)

    # 15 days at 1 % and 15 at 2 %: 3,650 × (15 + 30) / 36,500 = 4.50 exactly.
    assert posting_row(account, NOVEMBER).posted == D("4.50")


def test_interest_accrues_on_the_end_of_day_balance(customer):
    account = saving(customer)
    rate("36.5", date(2025, 1, 1))  # 0.1 % a day: easy to read
    ledger.deposit(account, D("1000.00"), "In", customer, posted_at=at(date(2025, 11, 10), 9))
    # Spent the same day: this day's end-of-day balance is 0, it earns nothing.
    ledger.withdraw(account, D("1000.00"), "Out", customer, posted_at=at(date(2025, 11, 10), 17))
    ledger.deposit(account, D("1000.00"), "In", customer, posted_at=at(date(2025, 11, 30), 23))

    ledger.post_interest(NOVEMBER)

    assert posting_row(account, NOVEMBER).posted == D("1.00")  # one day of 1,000.00


def test_days_are_counted_in_the_bank_time_zone(app, customer):
    app.config["BANK_TIMEZONE"] = "America/New_York"
    account = saving(customer)
    rate("36.5", date(2025, 1, 1))
    # 03:00 UTC on 1 December is 22:00 on 30 November in New York: a November day.
    ledger.deposit(account, D("1000.00"), "In", customer,
                   posted_at=datetime(2025, 12, 1, 3, tzinfo=UTC))

    assert end_of_day_balances(account.id, date(2025, 11, 29), date(2025, 11, 30)) == [
        D("0.00"), D("1000.00")]
    ledger.post_interest(NOVEMBER)
    assert posting_row(account, NOVEMBER).posted == D("1.00")


# ---------------------------------------------------------------- idempotency and catching up


def test_posting_a_month_twice_pays_it_once(customer):
    account = saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))

    ledger.post_interest(NOVEMBER)
    again = ledger.post_interest(NOVEMBER)

    assert (again.credited, again.already) == (0, 1)
    assert [leg.amount for leg in interest_legs(account)] == [D("2.05")]
    assert_clean_book()


def test_the_interest_entry_carries_a_system_idempotency_key(customer):
    account = saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))
    ledger.post_interest(NOVEMBER)
    key = f"interest:{account.id}:2025-11"

    entry = ledger.find_posting(None, key)

    assert entry is not None and entry.actor_id is None
    # The same key posted again by the bank is refused by the database itself.
    twin = JournalEntry(reference="x" * 32, entry_type=EntryType.INTEREST, channel="system",
                        idempotency_key=key)
    db.session.add(twin)
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_missed_months_are_caught_up_in_order(customer):
    account = saving(customer, opened=date(2025, 9, 1), deposit="1000.00")
    rate("2.5", date(2025, 1, 1))

    run = ledger.post_interest(NOVEMBER)

    months = [row.month for row in db.session.scalars(
        sa.select(InterestPosting).order_by(InterestPosting.id))]
    assert months == [date(2025, 9, 1), date(2025, 10, 1), NOVEMBER]
    assert run.caught_up == 2
    # September 30 days, October 31, November 30: 91 days of 1,000.00 at 2.5 %.
    assert sum(leg.amount for leg in interest_legs(account)) == D("6.23")  # 6.2328… once


def test_a_frozen_account_is_paid_its_interest_once_active_again(customer, admin):  # noqa: F811
    account = saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))
    ledger.freeze_account(account, "Under review", admin)

    frozen = ledger.post_interest(NOVEMBER)
    assert (frozen.held, interest_legs(account)) == (1, [])
    assert posting_row(account, NOVEMBER).carry == D("75000")

    ledger.unfreeze_account(account, "Cleared", admin)
    ledger.post_interest(date(2025, 12, 1))
    # November's 75,000 and December's 77,500: 152,500 / 36,500 = 4.178… → 4.18.
    assert [leg.amount for leg in interest_legs(account)] == [D("4.18")]
    assert_clean_book()


# ---------------------------------------------------------------- batches


def test_a_frozen_account_in_the_middle_of_a_batch_is_carried_while_the_others_are_paid(
        customer, admin):  # noqa: F811
    first, frozen, last = (saving(customer, deposit="1000.00") for _ in range(3))
    rate("2.5", date(2025, 1, 1))
    ledger.freeze_account(frozen, "Under review", admin)

    run = ledger.post_interest(NOVEMBER, batch_size=3)

    assert (run.credited, run.held, run.total) == (2, 1, D("4.10"))
    assert [len(interest_legs(account)) for account in (first, frozen, last)] == [1, 0, 1]
    assert posting_row(frozen, NOVEMBER).carry == D("75000")
    assert_clean_book()


def test_every_account_is_paid_once_across_batches_and_reruns(customer):
    accounts = [saving(customer, deposit="1000.00") for _ in range(5)]
    rate("2.5", date(2025, 1, 1))

    first = ledger.post_interest(NOVEMBER, batch_size=2)
    again = ledger.post_interest(NOVEMBER, batch_size=3)

    assert (first.credited, again.credited, again.already) == (5, 0, 5)
    assert [[leg.amount for leg in interest_legs(account)] for account in accounts] == \
        [[D("2.05")]] * 5
    assert_clean_book()


@pytest.mark.skipif(not POSTGRES, reason="row locks are PostgreSQL's (SQLite locks the file)")
def test_a_rerun_of_a_paid_month_locks_no_account(customer):
    """The daily job runs again once the month is paid: it counts the accounts as paid
    from their rows and leaves their rows unlocked (customers' postings never wait on it)."""
    from support.queries import counted_statements

    for _ in range(3):
        saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))
    ledger.post_interest(NOVEMBER, batch_size=2)

    with counted_statements() as rerun:
        assert ledger.post_interest(NOVEMBER, batch_size=2).already == 3

    assert not [statement for statement in rerun if "FOR UPDATE" in statement.upper()]


def test_a_batch_reads_the_months_legs_once_not_once_per_account(customer):
    """The accrual of a batch's accounts is read in set-based queries: the number of reads
    of the legs does not follow the number of accounts."""
    from support.queries import counted_statements

    def leg_reads(statements: list[str]) -> int:
        return sum(1 for statement in statements
                   if statement.lstrip().upper().startswith("SELECT")
                   and re.search(r"\bFROM transactions\b", statement))

    rate("2.5", date(2025, 1, 1))
    for _ in range(2):
        saving(customer, deposit="1000.00")
    with counted_statements() as two_accounts:
        assert ledger.post_interest(NOVEMBER, batch_size=50).credited == 2
    for _ in range(6):
        saving(customer, deposit="1000.00")
    ledger.post_interest(NOVEMBER, batch_size=50)  # the six new ones' November
    with counted_statements() as eight_accounts:
        assert ledger.post_interest(date(2025, 12, 1), batch_size=50).credited == 8

    assert leg_reads(two_accounts) == leg_reads(eight_accounts) > 0


def fill_up(account: Account, target: Decimal) -> None:
    """Bring ``account``'s balance to ``target`` at the start of November, in legs a leg can
    hold, against two of the bank's own accounts (neither may pass the largest balance)."""
    sources = [ledger.internal_account(),
               ledger.internal_account(AccountType.EXPENSE, "GL-TEST", "Test funding")]
    largest_leg, count = D("99999999.99"), 0
    while (missing := target - balance(account)) > 0:
        amount = min(missing, largest_leg)
        ledger.post(EntryType.DEPOSIT,
                    [ledger.Leg(account, TransactionType.DEPOSIT, amount),
                     ledger.Leg(sources[count % 2], TransactionType.DEPOSIT, -amount)],
                    "Fill", None, "teller", None, posted_at=at(NOVEMBER, 0))
        count += 1


def test_an_account_the_ledger_refuses_is_carried_while_the_others_are_paid(customer):
    """A credit the ledger refuses (it would take the balance past what an account can
    hold) is carried like a frozen account's, and the batch's other accounts are paid."""
    first, full, last = (saving(customer, deposit="1000.00") for _ in range(3))
    fill_up(full, ledger.MAX_BALANCE - D("10000000.00"))  # a month's interest is ~20 M
    rate("2.5", date(2025, 1, 1))

    run = ledger.post_interest(NOVEMBER, batch_size=3)

    assert (run.credited, run.refused, run.total) == (2, 1, D("4.10"))
    assert [len(interest_legs(account)) for account in (first, full, last)] == [1, 0, 1]
    assert posting_row(full, NOVEMBER).posted == D("0.00")
    assert posting_row(full, NOVEMBER).carry == posting_row(full, NOVEMBER).accrued > 0
    assert ledger.post_interest(NOVEMBER, batch_size=3).already == 3
    assert_clean_book()


def test_a_batch_partly_paid_by_an_earlier_run_pays_only_the_rest(customer):
    """Savings were paid November; checking accounts got their rate after: the next run's
    batches hold paid and unpaid accounts side by side."""
    accounts = []
    for account_type in [AccountType.SAVINGS, AccountType.CHECKING] * 3:
        account = ledger.open_account(customer, account_type)
        account.created_at = at(NOVEMBER, 0)
        db.session.commit()
        ledger.deposit(account, D("1000.00"), "Opening", customer, posted_at=at(NOVEMBER, 0))
        accounts.append(account)
    rate("2.5", date(2025, 1, 1))
    assert ledger.post_interest(NOVEMBER, batch_size=4).credited == 3
    rate("2.5", date(2025, 1, 1), AccountType.CHECKING)

    run = ledger.post_interest(NOVEMBER, batch_size=4)

    assert (run.credited, run.already) == (3, 3)
    assert [[leg.amount for leg in interest_legs(account)] for account in accounts] == \
        [[D("2.05")]] * 6
    assert_clean_book()


def test_an_account_whose_months_entry_exists_is_not_paid_again_and_the_others_are(customer):
    """The month's entry of the middle account is there already but not its row (written
    by hand, say): its key is a replay, and the batch's others are still paid, once."""
    first, middle, last = (saving(customer, deposit="1000.00") for _ in range(3))
    rate("2.5", date(2025, 1, 1))
    earlier = ledger.post(EntryType.INTEREST,
                          [ledger.Leg(middle, TransactionType.INTEREST, D("2.05")),
                           ledger.Leg(ledger.interest_account(), TransactionType.INTEREST,
                                      D("-2.05"))],
                          "Interest for November 2025", None, "system",
                          f"interest:{middle.id}:2025-11")

    run = ledger.post_interest(NOVEMBER, batch_size=3)

    assert (run.credited, run.already) == (2, 1)
    assert [leg.entry_id for leg in interest_legs(middle)] == [earlier.entry_id]
    assert [len(interest_legs(account)) for account in (first, middle, last)] == [1, 1, 1]
    assert_clean_book()


@pytest.mark.skipif(not POSTGRES, reason="the batch statement is ledger_post()'s (PostgreSQL)")
def test_a_batchs_postings_go_to_the_database_in_one_statement(customer):
    """Whatever the number of accounts in the batch: one ledger_post() statement, and the
    same statements in all (the postings' rows in one INSERT)."""
    from support.queries import counted_statements

    rate("2.5", date(2025, 1, 1))
    for _ in range(2):
        saving(customer, deposit="1000.00")
    ledger.post_interest(NOVEMBER, batch_size=50)
    with counted_statements() as two_accounts:
        assert ledger.post_interest(date(2025, 12, 1), batch_size=50).credited == 2
    for _ in range(6):
        saving(customer, deposit="1000.00")
    ledger.post_interest(date(2025, 12, 1), batch_size=50)  # the six new ones' months
    with counted_statements() as eight_accounts:
        assert ledger.post_interest(date(2026, 1, 1), batch_size=50).credited == 8

    assert sum("ledger_post(" in statement for statement in eight_accounts) == 1
    assert len(two_accounts) == len(eight_accounts)


def test_an_account_with_no_rate_earns_nothing(customer):
    account = ledger.open_account(customer, AccountType.CHECKING)
    account.created_at = at(NOVEMBER, 0)
    db.session.commit()
    ledger.deposit(account, D("1000.00"), "In", customer, posted_at=at(NOVEMBER, 0))
    rate("2.5", date(2025, 1, 1))  # savings only

    run = ledger.post_interest(NOVEMBER)

    assert (run.credited, interest_legs(account)) == (0, [])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("text, message", [
    ("2026-13", "not a month"),
    ("2026-00", "not a month"),
    ("2026-1", "YYYY-MM"),
    ("November", "YYYY-MM"),
    ("", "YYYY-MM"),
    ("0999-01", "between"),
])
def test_a_month_that_is_not_one_is_refused(text, message):
    with pytest.raises(ledger.InterestError, match=message):
        ledger.parse_month(text)


def test_this_month_and_the_future_are_refused(customer):
    this_month = local_today().replace(day=1)
    for month in (this_month, next_month(this_month), date(2999, 12, 1)):
        with pytest.raises(ledger.InterestError, match="has not ended"):
            ledger.post_interest(month)
    assert db.session.scalar(sa.select(sa.func.count(InterestPosting.id))) == 0


@pytest.mark.parametrize("text, message", [
    ("-1", "no sign"), ("1e3", "no sign"), ("NaN", "no sign"), ("", "no sign"),
    ("2,5,1", "no sign"), ("1 000", "no sign"), ("100.5", "at most 100"),
    ("2.55555", "four decimal"), ("2,55555", "four decimal"),
])
def test_a_rate_that_is_not_one_is_refused(text, message):
    with pytest.raises(ledger.InterestError, match=message):
        ledger.parse_rate(text)


@pytest.mark.parametrize("text", ["0,5", "0.5", "0,50"])
def test_a_rate_takes_either_decimal_mark(text):
    assert ledger.parse_rate(text) == Decimal("0.5")


def test_a_rate_cannot_start_on_a_day_that_has_begun(app):
    yesterday = local_today() - timedelta(days=1)
    with pytest.raises(ledger.InterestError, match="starts today"):
        ledger.set_rate(AccountType.SAVINGS, D("2.5"), yesterday, None)
    assert ledger.rate_history() == []


def test_a_future_rate_can_be_replaced_until_it_starts(admin):  # noqa: F811
    start = local_today() + timedelta(days=10)
    ledger.set_rate(AccountType.SAVINGS, D("2.5"), start, admin)
    ledger.set_rate(AccountType.SAVINGS, D("2.25"), start, admin)

    assert [(r.annual_rate, r.effective_from) for r in ledger.rate_history()] == [
        (D("2.2500"), start)]
    assert [row.details["replaces"] for row in audit_rows("interest.rate_set")] == [None, "2.5000"]


# ---------------------------------------------------------------- command line and admin page


def test_cli_sets_a_rate_and_posts_a_month(runner, customer):
    start = (local_today() + timedelta(days=1)).isoformat()
    result = runner.invoke(args=["set-rate", "SAVINGS", "2.5", "--from", start])
    assert result.exit_code == 0, result.output
    assert f"SAVINGS: 2.5 % a year from {start}" in result.output

    result = runner.invoke(args=["post-interest", "--month", "2025-11"])
    assert result.exit_code == 0, result.output
    assert "interest 2025-11: 0 account(s) credited" in result.output


@pytest.mark.parametrize("args, message", [
    (["post-interest", "--month", "2026-13"], "not a month"),
    (["post-interest", "--month", "2999-01"], "has not ended"),
    (["set-rate", "SAVINGS", "--", "-1"], "no sign"),
    (["set-rate", "SAVINGS", "1e9"], "no sign"),
    (["set-rate", "SAVINGS", "2.5", "--from", "2020-01-01"], "starts today"),
    (["set-rate", "SAVINGS", "2.5", "--from", "2026-02-30"], "YYYY-MM-DD"),
])
def test_cli_refuses_bad_input_and_changes_nothing(runner, args, message):
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert message in result.output
    assert ledger.rate_history() == []


def test_admin_adds_a_rate_on_the_interest_page(admin_client):  # noqa: F811
    start = (local_today() + timedelta(days=3)).isoformat()
    response = post_form(admin_client, "/admin/interest/",
                         {"account_type": "SAVINGS", "annual_rate": "1.75",
                          "effective_from": start}, follow_redirects=True)
    assert response.status_code == 200
    assert f"SAVINGS earns 1.75 % a year from {start}" in response.get_data(as_text=True)
    assert ledger.rate_history()[0].created_by.email == "admin@example.com"


def test_the_rate_start_date_is_a_native_date_picker(admin_client):  # noqa: F811
    page = admin_client.get("/admin/interest/").get_data(as_text=True)
    [tag] = re.findall(r'<input[^>]*name="effective_from"[^>]*>', page)
    assert 'type="date"' in tag and "YYYY-MM-DD" not in page


@pytest.mark.parametrize("rate_text, start, message", [
    ("1e9", "2999-01-01", "no sign"),
    ("-1", "2999-01-01", "no sign"),
    ("2.5", "2020-01-01", "starts today"),
    ("2.5", "tomorrow", "YYYY-MM-DD"),
])
def test_admin_interest_page_rerenders_bad_input(admin_client, rate_text, start, message):  # noqa: F811
    response = post_form(admin_client, "/admin/interest/",
                         {"account_type": "SAVINGS", "annual_rate": rate_text,
                          "effective_from": start})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert ledger.rate_history() == []


def test_customers_cannot_open_the_interest_page(customer_client):
    assert customer_client.get("/admin/interest/").status_code == 403


# ---------------------------------------------------------------- statements and summaries


def test_statement_and_summary_show_interest_as_its_own_kind(customer_client, customer):
    account = saving(customer, deposit="1000.00")
    rate("2.5", date(2025, 1, 1))
    ledger.post_interest(NOVEMBER)
    today = local_today()

    page = customer_client.get(f"/reports/statement/{account.account_number}/"
                               f"?start={today.replace(day=1)}&end={today}").get_data(as_text=True)
    assert "<td>Interest</td>" in page and 'id="total-interest">$2.05<' in page

    from bankapp.reports.service import monthly_summary

    summary = monthly_summary(account)
    assert summary.months[-1].interest == D("2.05") and summary.has_interest
    assert summary.months[-1].deposits == D("0.00")


# ---------------------------------------------------------------- the rounding property


def _expected_cents(numerators) -> Decimal:
    """The year's exact accrual rounded half-up once, worked out with fractions."""
    exact = Fraction(sum(numerators, Decimal(0))) / 36500
    return D((exact * 100 + Fraction(1, 2)).__floor__()) / 100


def _days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


balances_paths = st.lists(st.decimals(min_value=D("0"), max_value=D("250000"), places=2),
                          min_size=365, max_size=365)
rates = st.sampled_from([D("0.0001"), D("0.5"), D("1.1"), D("2.5"), D("3.3333"), D("7.125")])


@given(balances=balances_paths, rate_a=rates, rate_b=rates, change=st.integers(0, 364))
@settings(max_examples=300, deadline=None)
def test_twelve_monthly_postings_equal_the_yearly_accrual_rounded_once(balances, rate_a,
                                                                       rate_b, change):
    days = _days_of(2025)
    day_rates = [rate_a if n < change else rate_b for n in range(len(days))]
    carry, posted = D(0), D("0.00")
    numerators = []
    for month in range(1, 13):
        picked = [n for n, day in enumerate(days) if day.month == month]
        accrued = accrual_numerator([balances[n] for n in picked], [day_rates[n] for n in picked])
        paid, carry = settle(carry, accrued)
        assert paid >= 0 and abs(carry) <= D("182.5")  # less than half a cent either way
        posted += paid
        numerators.append(accrued)
    assert posted == _expected_cents(b * r for b, r in zip(balances, day_rates))


movements = st.lists(st.tuples(st.integers(0, 364), st.booleans(),
                               st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)),
                     min_size=1, max_size=12)


@given(path=movements, yearly=rates)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
def test_a_year_posted_through_the_ledger_equals_the_exact_accrual(app, path, yearly):
    empty_database()
    owner = User(email="saver@example.com", password_hash="x")
    db.session.add(owner)
    db.session.commit()
    account = saving(owner, opened=date(2024, 12, 1))
    ledger.set_rate(AccountType.SAVINGS, yearly, date(2024, 12, 1), None,
                    today=date(2024, 12, 1))
    days = _days_of(2025)
    balance_of_day, current, events = [], D("0.00"), dict()
    for day_index, is_deposit, amount in sorted(path):
        events.setdefault(day_index, []).append((is_deposit, amount))
    for n, day in enumerate(days):
        for is_deposit, amount in events.get(n, []):
            if is_deposit:
                ledger.deposit(account, amount, "In", owner, posted_at=at(day))
                current += amount
            elif amount <= current:
                ledger.withdraw(account, amount, "Out", owner, posted_at=at(day))
                current -= amount
        balance_of_day.append(current)

    for month in range(1, 13):
        ledger.post_interest(date(2025, month, 1))

    paid = sum((leg.amount for leg in interest_legs(account)), D("0.00"))
    assert paid == _expected_cents(b * yearly for b in balance_of_day)
    assert_clean_book()

"""Scheduled and standing-order transfers: the calendar, the rules an order must meet, and
the run that posts what is due (once per occurrence, oldest first, failures recorded)."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.notifications import outbox
from bankapp.audit import Action
from bankapp.extensions import db, mail
from bankapp.ledger import InvalidSchedule, Schedule
from bankapp.models import (
    Frequency,
    JournalEntry,
    OccurrenceStatus,
    OrderStatus,
    ScheduledOccurrence,
)
from support.backoffice import audit_rows, balance

TODAY = date(2026, 1, 10)


@pytest.fixture
def bob(make_user):
    return make_user(email="bob@example.com", first_name="Bob", last_name="Brown")


@pytest.fixture
def source(customer, funded_account):
    return funded_account(customer, "1000.00", "CHECKING")


@pytest.fixture
def payee_account(bob, funded_account):
    return funded_account(bob)


def order(owner, source, destination, amount="100.00", **schedule):
    schedule.setdefault("frequency", Frequency.MONTHLY)
    schedule.setdefault("start_on", date(2026, 1, 31))
    if schedule["frequency"] == Frequency.MONTHLY:
        schedule.setdefault("day_of_month", 31)
    return ledger.create_order(owner, source, destination, D(amount), today=TODAY, **schedule)


def occurrences(made) -> list[tuple[str, str]]:
    return [(o.due_on.isoformat(), o.status) for o in reversed(ledger.occurrences_of(made))]


def entries() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


# ---------------------------------------------------------------- the calendar


def test_monthly_on_the_31st_falls_on_each_months_last_day():
    schedule = Schedule(Frequency.MONTHLY, date(2026, 1, 1), day_of_month=31)
    assert schedule.upcoming(schedule.first(), 0, 4) == [
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_monthly_on_the_29th_is_the_29th_of_february_in_a_leap_year():
    schedule = Schedule(Frequency.MONTHLY, date(2028, 1, 30), day_of_month=29)
    assert schedule.upcoming(schedule.first(), 0, 2) == [date(2028, 2, 29), date(2028, 3, 29)]


def test_monthly_never_starts_before_its_start_date():
    schedule = Schedule(Frequency.MONTHLY, date(2026, 1, 20), day_of_month=5)
    assert schedule.first() == date(2026, 2, 5)


def test_monthly_crosses_the_year():
    schedule = Schedule(Frequency.MONTHLY, date(2026, 12, 15), day_of_month=15)
    assert schedule.upcoming(schedule.first(), 0, 2) == [date(2026, 12, 15), date(2027, 1, 15)]


def test_weekly_is_every_seven_days_from_the_start():
    schedule = Schedule(Frequency.WEEKLY, date(2026, 2, 26))
    assert schedule.upcoming(schedule.first(), 0, 3) == [
        date(2026, 2, 26), date(2026, 3, 5), date(2026, 3, 12)]


def test_once_is_one_date():
    schedule = Schedule(Frequency.ONCE, date(2026, 3, 1))
    assert schedule.upcoming(schedule.first(), 0, 5) == [date(2026, 3, 1)]


def test_an_end_date_is_the_last_possible_payment_day():
    schedule = Schedule(Frequency.WEEKLY, date(2026, 3, 1), end_on=date(2026, 3, 15))
    assert schedule.upcoming(schedule.first(), 0, 9) == [
        date(2026, 3, 1), date(2026, 3, 8), date(2026, 3, 15)]


def test_a_count_ends_the_order_after_that_many_payments():
    schedule = Schedule(Frequency.MONTHLY, date(2026, 3, 1), day_of_month=1, max_occurrences=2)
    assert schedule.upcoming(schedule.first(), 0, 9) == [date(2026, 3, 1), date(2026, 4, 1)]


# ---------------------------------------------------------------- creating an order (bad input)


@pytest.mark.parametrize("schedule, field, message", [
    ({"start_on": date(2026, 1, 9)}, "start_on", "after today"),
    ({"start_on": TODAY}, "start_on", "after today"),
    ({"start_on": None}, "start_on", "date of the first payment"),
    ({"start_on": date(2036, 1, 1)}, "start_on", "within 5 years"),
    ({"day_of_month": 0}, "day_of_month", "from 1 to 31"),
    ({"day_of_month": 32}, "day_of_month", "from 1 to 31"),
    ({"day_of_month": None}, "day_of_month", "from 1 to 31"),
    ({"end_on": date(2026, 1, 30)}, "end_on", "on or after the first payment date"),
    ({"start_on": date(2026, 2, 1), "day_of_month": 31, "end_on": date(2026, 2, 27)},
     "end_on", "No payment falls"),
    ({"end_on": date(2026, 6, 1), "max_occurrences": 3}, "end_on", "not both"),
    ({"max_occurrences": 0}, "max_occurrences", "from 1 to 1000"),
    ({"max_occurrences": 1001}, "max_occurrences", "from 1 to 1000"),
    ({"frequency": "daily"}, "frequency", "once, weekly or monthly"),
    ({"frequency": Frequency.ONCE, "end_on": date(2026, 3, 1)}, "end_on", "one-off"),
], ids=lambda value: str(value)[:40])
def test_a_schedule_the_bank_cannot_keep_is_refused(customer, source, payee_account, schedule,
                                                    field, message):
    with pytest.raises(InvalidSchedule) as refused:
        order(customer, source, payee_account, **schedule)
    assert refused.value.field == field and message in str(refused.value)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        ledger.scheduled.ScheduledOrder)) == 0


@pytest.mark.parametrize("amount, message", [
    ("0", "greater than zero"), ("-5", "greater than zero"), ("10.005", "two decimal places"),
    ("NaN", "finite"), ("Infinity", "finite"), ("1000000.01", "per-transaction limit"),
])
def test_an_order_amount_must_be_a_valid_amount(customer, source, payee_account, amount,
                                                message):
    with pytest.raises(ledger.LedgerError) as refused:
        order(customer, source, payee_account, amount)
    assert message in str(refused.value)


def test_a_float_amount_is_refused(customer, source, payee_account):
    with pytest.raises(ledger.InvalidAmount):
        ledger.create_order(customer, source, payee_account, 10.5, frequency=Frequency.ONCE,
                            start_on=date(2026, 2, 1), today=TODAY)


def test_an_order_cannot_pay_the_account_it_pays_from(customer, source):
    with pytest.raises(InvalidSchedule) as refused:
        order(customer, source, source)
    assert refused.value.field == "to_account" and "paid from" in str(refused.value)


def test_an_order_must_pay_from_the_owners_own_account(customer, bob, source, payee_account):
    with pytest.raises(InvalidSchedule) as refused:
        order(bob, source, payee_account)
    assert refused.value.field == "from_account"


def test_an_order_from_a_frozen_account_is_refused(customer, source, payee_account, make_user):
    teller = make_user(role="teller")
    ledger.freeze_account(source, "checks", teller)
    with pytest.raises(ledger.AccountNotActive):
        order(customer, source, payee_account)


def test_creating_an_order_is_audited_and_its_first_date_is_set(customer, source,
                                                                 payee_account):
    made = order(customer, source, payee_account, start_on=date(2026, 2, 1))
    assert made.next_due_on == date(2026, 2, 28) and made.status == OrderStatus.ACTIVE
    [row] = audit_rows(Action.SCHEDULED_CREATE)
    assert row.actor_id == customer.id and row.details["amount"] == "100.00"


def test_a_replayed_creation_makes_one_order(customer, source, payee_account):
    first = order(customer, source, payee_account, idempotency_key="k" * 32)
    again = order(customer, source, payee_account, idempotency_key="k" * 32)
    assert first.id == again.id and len(audit_rows(Action.SCHEDULED_CREATE)) == 1


# ---------------------------------------------------------------- running


def test_a_run_posts_every_occurrence_due_and_moves_the_order_on(customer, source,
                                                                 payee_account):
    made = order(customer, source, payee_account)
    report = ledger.run_due(date(2026, 3, 31))
    assert report.posted == 3
    assert occurrences(made) == [("2026-01-31", "posted"), ("2026-02-28", "posted"),
                                 ("2026-03-31", "posted")]
    assert balance(source) == D("700.00") and balance(payee_account) == D("300.00")
    db.session.refresh(made)
    assert made.next_due_on == date(2026, 4, 30) and made.occurrence_count == 3
    assert ledger.reconcile().clean


def test_running_twice_posts_each_occurrence_once(customer, source, payee_account):
    order(customer, source, payee_account)
    ledger.run_due(date(2026, 2, 28))
    before = entries()
    report = ledger.run_due(date(2026, 2, 28))
    assert report.posted == 0 and entries() == before
    assert balance(payee_account) == D("200.00")


def test_a_refused_occurrence_in_a_batch_fails_alone_and_the_others_post(customer, source,
                                                                        bob, funded_account):
    short = funded_account(customer, "50.00", "CHECKING")
    payees = [funded_account(bob) for _ in range(3)]
    made = [order(customer, paying, payee, frequency=Frequency.ONCE, start_on=date(2026, 2, 1))
            for paying, payee in zip((source, short, source), payees)]

    report = ledger.run_due(date(2026, 2, 1), batch_size=3)

    assert (report.posted, report.failed) == (2, 1)
    assert [occurrences(one) for one in made] == [
        [("2026-02-01", "posted")], [("2026-02-01", "failed")], [("2026-02-01", "posted")]]
    assert [balance(payee) for payee in payees] == [D("100.00"), D("0.00"), D("100.00")]
    assert ledger.reconcile().clean


def test_a_batch_loads_its_orders_accounts_and_owners_once_not_once_per_order(
        customer, source, bob, funded_account):
    from support.queries import counted_statements

    def order_reads(orders: int, day: date) -> int:
        for _ in range(orders):
            order(customer, source, funded_account(bob), amount="1.00",
                  frequency=Frequency.ONCE, start_on=day)
        with counted_statements() as statements:
            assert ledger.run_due(day, batch_size=25).posted == orders
        return sum(1 for statement in statements
                   if statement.lstrip().upper().startswith("SELECT")
                   and re.search(r"\bFROM (scheduled_orders|accounts|users)\b", statement))

    assert order_reads(2, date(2026, 2, 1)) == order_reads(6, date(2026, 2, 2)) > 0


def test_an_occurrence_posts_under_its_order_and_date_key_as_the_owner(customer, source,
                                                                       payee_account):
    made = order(customer, source, payee_account, frequency=Frequency.ONCE,
                 start_on=date(2026, 2, 1))
    ledger.run_due(date(2026, 2, 1))
    entry = db.session.scalar(sa.select(JournalEntry).where(JournalEntry.entry_type == "TRANSFER"))
    assert entry.idempotency_key == f"scheduled:{made.id}:2026-02-01"
    assert entry.actor_id == customer.id and entry.channel == "system"
    assert "(due 2026-02-01)" in entry.description


def test_an_occurrence_already_posted_under_its_key_is_not_posted_again(customer, source,
                                                                        payee_account):
    """As when a run died after its posting committed but before it saw the answer: the
    ledger's key answers with the earlier entry."""
    made = order(customer, source, payee_account, frequency=Frequency.ONCE,
                 start_on=date(2026, 2, 1))
    ledger.transfer(source, payee_account, D("100.00"), "", customer,
                    idempotency_key=f"scheduled:{made.id}:2026-02-01")
    report = ledger.run_due(date(2026, 2, 1))
    assert report.posted == 0 and report.skipped == 1
    assert balance(payee_account) == D("100.00")


def test_missed_days_are_caught_up_in_date_order_across_orders(customer, source, bob,
                                                               payee_account, funded_account):
    """The source holds enough for two payments: the two earliest due dates get it."""
    ledger.withdraw(source, D("800.00"), "", customer)
    late = order(customer, source, payee_account, start_on=date(2026, 1, 20), day_of_month=20)
    early = order(customer, source, funded_account(bob), start_on=date(2026, 1, 15),
                  day_of_month=15)
    ledger.run_due(date(2026, 2, 16))
    assert occurrences(early) == [("2026-01-15", "posted"), ("2026-02-15", "failed")]
    assert occurrences(late) == [("2026-01-20", "posted")]


def test_insufficient_funds_records_a_failed_occurrence_and_keeps_the_next(customer, source,
                                                                            payee_account):
    made = order(customer, source, payee_account, "600.00")
    with mail.record_messages() as messages:
        report = ledger.run_due(date(2026, 2, 28))
        outbox.deliver_committed()
    assert report.posted == 1 and report.failed == 1
    [failed] = [o for o in ledger.occurrences_of(made) if o.status == OccurrenceStatus.FAILED]
    assert failed.due_on == date(2026, 2, 28) and "Insufficient funds" in failed.reason
    db.session.refresh(made)
    assert made.status == OrderStatus.ACTIVE and made.next_due_on == date(2026, 3, 31)
    [alert] = messages
    assert alert.recipients == [customer.email] and "2026-02-28" in alert.body
    assert "Insufficient funds" in alert.body
    [row] = audit_rows(Action.SCHEDULED_FAILED)
    assert row.details["due_on"] == "2026-02-28" and row.details["paused"] is False


def test_a_frozen_source_pauses_the_order(customer, source, payee_account, make_user):
    made = order(customer, source, payee_account)
    ledger.freeze_account(source, "checks", make_user(role="teller"))
    report = ledger.run_due(date(2026, 3, 31))
    assert report.paused == 1 and report.posted == 0
    db.session.refresh(made)
    assert made.status == OrderStatus.PAUSED and "not active" in made.status_reason
    assert occurrences(made) == [("2026-01-31", "failed")]  # not retried every day after


def test_a_frozen_destination_fails_the_occurrence_but_not_the_order(customer, source,
                                                                     payee_account, make_user):
    made = order(customer, source, payee_account)
    ledger.freeze_account(payee_account, "checks", make_user(role="teller"))
    ledger.run_due(date(2026, 1, 31))
    db.session.refresh(made)
    assert occurrences(made) == [("2026-01-31", "failed")] and made.status == OrderStatus.ACTIVE


def test_a_one_off_payment_completes_the_order(customer, source, payee_account):
    made = order(customer, source, payee_account, frequency=Frequency.ONCE,
                 start_on=date(2026, 2, 1))
    ledger.run_due(date(2026, 12, 31))
    db.session.refresh(made)
    assert made.status == OrderStatus.COMPLETED and made.next_due_on is None
    assert balance(payee_account) == D("100.00")


def test_a_counted_order_stops_after_its_count_failures_included(customer, source,
                                                                 payee_account):
    made = order(customer, source, payee_account, "400.00", max_occurrences=3)
    ledger.run_due(date(2027, 1, 31))
    assert [status for _, status in occurrences(made)] == ["posted", "posted", "failed"]
    db.session.refresh(made)
    assert made.status == OrderStatus.COMPLETED


def test_a_paused_order_is_not_paid_and_resumes_after_today(customer, source, payee_account):
    made = order(customer, source, payee_account)
    ledger.pause_order(made, customer)
    assert ledger.run_due(date(2026, 3, 31)).posted == 0
    ledger.resume_order(made, customer, today=date(2026, 3, 5))
    assert made.status == OrderStatus.ACTIVE and made.next_due_on == date(2026, 3, 31)
    assert [row.action for row in audit_rows()
            if row.action.startswith("scheduled.") and row.actor_id] == [
        Action.SCHEDULED_CREATE, Action.SCHEDULED_PAUSE, Action.SCHEDULED_RESUME]


def test_a_cancelled_order_pays_nothing_more(customer, source, payee_account):
    made = order(customer, source, payee_account)
    ledger.cancel_order(made, customer)
    assert ledger.run_due(date(2026, 12, 31)).posted == 0
    assert made.status == OrderStatus.CANCELLED and made.next_due_on is None


@pytest.mark.parametrize("change", ["pause", "resume", "cancel"])
def test_a_change_that_does_not_apply_is_refused(customer, source, payee_account, change):
    made = order(customer, source, payee_account)
    ledger.cancel_order(made, customer)
    with pytest.raises(ledger.LedgerError):
        if change == "resume":
            ledger.resume_order(made, customer, TODAY)
        else:
            getattr(ledger, f"{change}_order")(made, customer)


def test_a_paused_order_whose_source_is_frozen_cannot_resume(customer, source, payee_account,
                                                             make_user):
    made = order(customer, source, payee_account)
    ledger.freeze_account(source, "checks", make_user(role="teller"))
    ledger.run_due(date(2026, 1, 31))
    with pytest.raises(ledger.AccountNotActive):
        ledger.resume_order(made, customer, TODAY)


def test_every_run_is_audited_with_what_it_did(customer, source, payee_account):
    order(customer, source, payee_account)
    ledger.run_due(date(2026, 2, 28), trigger="cron")
    [run] = audit_rows(Action.SCHEDULED_RUN)
    assert run.details == {"as_of": "2026-02-28", "posted": 2, "failed": 0, "paused": 0,
                           "skipped": 0, "unfinished": False, "trigger": "cron"}
    assert len(audit_rows(Action.SCHEDULED_POSTED)) == 2


def test_a_run_out_of_time_stops_and_the_next_goes_on(customer, source, payee_account):
    order(customer, source, payee_account)
    first = ledger.run_due(date(2026, 3, 31), seconds=0)
    assert first.unfinished and first.posted == 0
    second = ledger.run_due(date(2026, 3, 31))
    assert not second.unfinished and second.posted == 3


def test_occurrence_rows_are_unique_per_order_and_date(customer, source, payee_account):
    from sqlalchemy.exc import IntegrityError

    made = order(customer, source, payee_account)
    for _ in range(2):
        db.session.add(ScheduledOccurrence(order_id=made.id, due_on=date(2026, 1, 31),
                                           status=OccurrenceStatus.FAILED, reason="x"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()

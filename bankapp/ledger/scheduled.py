"""Scheduled transfers: a one-off payment on a future date, or a standing order.

An order pays ``amount`` from one of its owner's accounts to another account (a saved payee
or one of their own) on each due date of its schedule:

* ``once``: on ``start_on``;
* ``weekly``: on ``start_on`` and every 7 days after;
* ``monthly``: on ``day_of_month`` of every month from ``start_on``'s month on (the first
  due date is never before ``start_on``); a day the month lacks (29th–31st) falls on the
  month's last day, and the next month goes back to the chosen day (31 Jan, 28 Feb, 31 Mar).

It ends after ``end_on`` (inclusive) or ``max_occurrences`` occurrences, whichever is given.

Running (``run_due``, from ``flask run-scheduled`` or the cron route)
-------------------------------------------------------------------
Every occurrence due up to the run's date is handled, oldest first across all orders, so a
job that did not run for days catches up in order. An occurrence is one ``ledger.transfer``
whose idempotency key is ``scheduled:<order id>:<due date>`` under the order's owner as
actor (the unique key is per actor, and the order id makes it unique per order). In the
same transaction the occurrence row is written (UNIQUE order + due date) and the order's
``next_due_on`` moves on by a conditional UPDATE that only succeeds from the date being
paid. So a second run, or two hosts at once, post each occurrence once: the twin meets the
unique key (or the spent balance) and ``post()`` answers with the first entry, or its
UPDATE finds the order moved on and everything it wrote rolls back.

Orders go ``BATCH_SIZE`` per transaction (``core.in_batch``), all due on the same date (so
the oldest-first order holds across orders): the batch locks their accounts in ascending id,
then the orders, reads the orders with their accounts and owners in a few queries under the
locks, and posts each occurrence's transfer in a savepoint of its own, its rows right after;
a refused one is recorded as failed while the others commit. A second run waits for the
batch's locks, then finds those occurrences paid.

A refused occurrence (insufficient funds, a limit, a closed destination) is recorded as
failed with the ledger's reason, the owner is alerted, and the order moves on to its next
date. A source account that is not active (frozen) pauses the order as well: it is not
retried every day until someone notices. Payments that fall due while an order is paused
are not made later: resuming starts from the next due date after today.

Nothing here writes a leg: money moves only through ``ledger.transfer``.
"""
from __future__ import annotations

import calendar
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import gettext
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from bankapp.notifications import alerts
from bankapp import audit as audit_trail
from bankapp.platform.i18n import N_, status_label
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.platform.formatting import bank_timezone
from bankapp.ledger.amounts import clean_description, validate_amount
from bankapp.ledger.core import atomically, in_batch, require_customer_account, transfer
from bankapp.ledger.errors import AccountNotActive, LedgerError
from bankapp.models import (
    Account,
    AccountStatus,
    Channel,
    Frequency,
    OccurrenceStatus,
    OrderStatus,
    ScheduledOccurrence,
    ScheduledOrder,
    User,
    now_utc,
)

log = logging.getLogger("bankapp.scheduled")

MAX_OCCURRENCES = 1000
MAX_DESCRIPTION = 140
# How far ahead an order may start: a typo such as 2062 for 2026 is refused.
MAX_YEARS_AHEAD = 5


# An order's note (``status_reason``), stored in English and translated where it is shown
# (``stored_message`` in bankapp/platform/i18n.py): the page reading it may be in another language than the job
# or the request that wrote it.
PAUSED_BY_YOU = N_("Paused by you.")
CANCELLED_BY_YOU = N_("Cancelled by you.")
ENDED_WHILE_PAUSED = N_("Its last payment date passed while it was paused.")
PAUSED_SOURCE_NOT_ACTIVE = N_("Paused: the account it pays from is not active.")


class InvalidSchedule(LedgerError):
    """A schedule the bank cannot keep; ``field`` names the form field it is about."""

    default_message = "This schedule is not valid."

    def __init__(self, message: str | None = None, field: str | None = None):
        super().__init__(message)
        self.field = field


class OrderChanged(LedgerError):
    """The order moved on (another run, a pause) while this occurrence was being posted."""

    default_message = "This order changed meanwhile."


def bank_today() -> date:
    """Today's date in ``BANK_TIMEZONE``: the default date a run pays up to."""
    return datetime.now(bank_timezone()).date()


# ---------------------------------------------------------------- the calendar


def _on_day(year: int, month: int, day: int) -> date:
    """``day`` of that month, or its last day when the month is shorter."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Schedule:
    frequency: str
    start_on: date
    day_of_month: int | None = None
    end_on: date | None = None
    max_occurrences: int | None = None

    @classmethod
    def of(cls, order: ScheduledOrder) -> "Schedule":
        return cls(order.frequency, order.start_on, order.day_of_month, order.end_on,
                   order.max_occurrences)

    def first(self) -> date | None:
        """The first due date, or None when the end comes before it."""
        due = self.start_on
        if self.frequency == Frequency.MONTHLY:
            due = _on_day(due.year, due.month, self.day_of_month)
            if due < self.start_on:
                due = self._following(due)
        return self._within_end(due)

    def _following(self, due: date) -> date | None:
        if self.frequency == Frequency.WEEKLY:
            return due + timedelta(days=7)
        if self.frequency == Frequency.MONTHLY:
            year, month = (due.year + 1, 1) if due.month == 12 else (due.year, due.month + 1)
            return _on_day(year, month, self.day_of_month)
        return None

    def _within_end(self, due: date | None) -> date | None:
        if due is None or (self.end_on is not None and due > self.end_on):
            return None
        return due

    def after(self, due: date, occurrences: int) -> date | None:
        """The due date after ``due`` once ``occurrences`` have been made; None: it ends."""
        if self.max_occurrences is not None and occurrences >= self.max_occurrences:
            return None
        return self._within_end(self._following(due))

    def upcoming(self, due: date | None, occurrences: int, count: int) -> list[date]:
        """``due`` and the dates after it, at most ``count`` of them."""
        dates = []
        while due is not None and len(dates) < count:
            dates.append(due)
            occurrences += 1
            due = self.after(due, occurrences)
        return dates


# ---------------------------------------------------------------- customers' orders


def create_order(owner: User, source: Account, destination: Account, amount, *,
                 frequency: str, start_on: date | None, today: date,
                 day_of_month: int | None = None, end_on: date | None = None,
                 max_occurrences: int | None = None, description: str = "",
                 idempotency_key: str | None = None) -> ScheduledOrder:
    """Set up an order paying from ``source`` (``owner``'s) to ``destination``; audited.

    Raises ``InvalidSchedule`` (with the field it is about) or another ``LedgerError``; a
    replayed ``idempotency_key`` answers with the order it already made.
    """
    amount = validate_amount(amount)
    description = clean_description(description)
    if len(description) > MAX_DESCRIPTION:
        raise InvalidSchedule(gettext("The description may be at most %(count)s characters.",
                                      count=MAX_DESCRIPTION),
                              "description")
    require_customer_account(source)
    require_customer_account(destination)
    if source.owner_id != owner.id:
        raise InvalidSchedule(gettext("Choose one of your own accounts to pay from."),
                              "from_account")
    if destination.id == source.id:
        raise InvalidSchedule(gettext("A payment cannot go to the account it is paid from: choose "
                                      "another payee or account."), "to_account")
    if source.status != AccountStatus.ACTIVE:
        raise AccountNotActive(gettext("The account %(number)s is %(status)s and cannot pay.",
                                       number=source.account_number,
                                       status=status_label(source.status)))
    if destination.status == AccountStatus.CLOSED:
        raise InvalidSchedule(gettext("That account is closed and cannot receive money."),
                              "to_account")
    schedule = _valid_schedule(frequency, start_on, today, day_of_month, end_on,
                               max_occurrences)
    replay = _order_by_key(owner, idempotency_key)
    if replay is not None:
        return replay
    order = ScheduledOrder(
        user_id=owner.id, source_account_id=source.id, destination_account_id=destination.id,
        amount=amount, description=description, frequency=frequency,
        day_of_month=schedule.day_of_month, start_on=start_on, end_on=end_on,
        max_occurrences=max_occurrences, next_due_on=schedule.first(),
        status=OrderStatus.ACTIVE, idempotency_key=idempotency_key)

    def work() -> ScheduledOrder:
        db.session.add(order)
        db.session.flush()
        audit_trail.record(Action.SCHEDULED_CREATE, actor=owner,
                           target_type=TargetType.SCHEDULED_ORDER, target_id=order.id,
                           details={"from": source.account_number,
                                    "to": destination.account_number, "amount": amount,
                                    "frequency": frequency, "first_due_on": order.next_due_on,
                                    "day_of_month": order.day_of_month, "end_on": end_on,
                                    "max_occurrences": max_occurrences})
        return order

    try:
        return atomically(work, Action.SCHEDULED_CREATE)
    except IntegrityError:
        replay = _order_by_key(owner, idempotency_key)
        if replay is None:
            raise
        return replay


def owned_order(owner: User, order_id: int) -> sa.Select:
    """The select of ``owner``'s order with this id: anyone else's is not found."""
    return sa.select(ScheduledOrder).where(ScheduledOrder.id == order_id,
                                           ScheduledOrder.user_id == owner.id)


def _order_by_key(owner: User, key: str | None) -> ScheduledOrder | None:
    if not key:
        return None
    return db.session.scalar(sa.select(ScheduledOrder).where(
        ScheduledOrder.user_id == owner.id, ScheduledOrder.idempotency_key == key))


def _valid_schedule(frequency, start_on, today, day_of_month, end_on,
                    max_occurrences) -> Schedule:
    """The schedule, or ``InvalidSchedule`` naming what is wrong with it."""
    if frequency not in Frequency.ALL:
        raise InvalidSchedule(gettext("Choose once, weekly or monthly."), "frequency")
    if start_on is None:
        raise InvalidSchedule(gettext("Enter the date of the first payment."), "start_on")
    if start_on <= today:
        raise InvalidSchedule(gettext("The first payment date must be after today (for a payment "
                                      "today, make a transfer)."), "start_on")
    if start_on > _years_after(today, MAX_YEARS_AHEAD):
        raise InvalidSchedule(gettext("The first payment must be within %(years)s years.",
                                      years=MAX_YEARS_AHEAD),
                              "start_on")
    if frequency == Frequency.MONTHLY:
        if isinstance(day_of_month, bool) or not isinstance(day_of_month, int) \
                or not 1 <= day_of_month <= 31:
            raise InvalidSchedule(gettext("Choose a day of the month from 1 to 31."),
                                  "day_of_month")
    else:
        day_of_month = None
    if frequency == Frequency.ONCE and (end_on is not None or max_occurrences is not None):
        raise InvalidSchedule(gettext("A one-off payment has no end date or number of payments."),
                              "end_on")
    if end_on is not None and max_occurrences is not None:
        raise InvalidSchedule(gettext("Give an end date or a number of payments, not both."),
                              "end_on")
    if end_on is not None and end_on < start_on:
        raise InvalidSchedule(gettext("The end date must be on or after the first payment date."),
                              "end_on")
    if max_occurrences is not None and not 1 <= max_occurrences <= MAX_OCCURRENCES:
        raise InvalidSchedule(gettext("The number of payments must be from 1 to %(most)s.",
                                      most=MAX_OCCURRENCES),
                              "max_occurrences")
    schedule = Schedule(frequency, start_on, day_of_month, end_on, max_occurrences)
    if schedule.first() is None:
        raise InvalidSchedule(gettext("No payment falls between the first payment date and the end "
                                      "date."), "end_on")
    return schedule


def _years_after(day: date, years: int) -> date:
    return _on_day(day.year + years, day.month, day.day)


def pause_order(order: ScheduledOrder, actor: User) -> ScheduledOrder:
    """Stop an active order's payments until it is resumed."""
    return _change_status(order, actor, Action.SCHEDULED_PAUSE, (OrderStatus.ACTIVE,),
                          {"status": OrderStatus.PAUSED, "status_reason": PAUSED_BY_YOU},
                          "Only an active order can be paused.")


def resume_order(order: ScheduledOrder, actor: User, today: date) -> ScheduledOrder:
    """Restart a paused order from its next due date after today (missed ones are not paid)."""
    source = db.session.get(Account, order.source_account_id, populate_existing=True)
    if source.status != AccountStatus.ACTIVE:
        raise AccountNotActive(gettext("The account %(number)s is %(status)s: the order can "
                                       "resume once it is active again.",
                                       number=source.account_number,
                                       status=status_label(source.status)))
    schedule = Schedule.of(order)
    due, count = order.next_due_on, order.occurrence_count
    while due is not None and due <= today:
        due = schedule.after(due, count)  # skipped while paused: not an occurrence
    values = ({"status": OrderStatus.ACTIVE, "status_reason": None, "next_due_on": due}
              if due is not None else
              {"status": OrderStatus.COMPLETED, "next_due_on": None,
               "status_reason": ENDED_WHILE_PAUSED})
    return _change_status(order, actor, Action.SCHEDULED_RESUME, (OrderStatus.PAUSED,), values,
                          "Only a paused order can be resumed.")


def cancel_order(order: ScheduledOrder, actor: User) -> ScheduledOrder:
    """End an order for good: no further payment is made."""
    return _change_status(order, actor, Action.SCHEDULED_CANCEL,
                          (OrderStatus.ACTIVE, OrderStatus.PAUSED),
                          {"status": OrderStatus.CANCELLED, "next_due_on": None,
                           "status_reason": CANCELLED_BY_YOU},
                          "This order has already ended.")


def _change_status(order: ScheduledOrder, actor: User, action: str, allowed: tuple,
                   values: dict, refusal: str) -> ScheduledOrder:
    def work() -> None:
        # Conditional: a run moving the order on, or a second click, cannot be overwritten.
        changed = db.session.execute(
            sa.update(ScheduledOrder)
            .where(ScheduledOrder.id == order.id, ScheduledOrder.status.in_(allowed),
                   ScheduledOrder.next_due_on == order.next_due_on)
            .values(updated_at=now_utc(), **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            raise OrderChanged(refusal)
        audit_trail.record(action, actor=actor, target_type=TargetType.SCHEDULED_ORDER,
                           target_id=order.id,
                           details={"status": values["status"],
                                    "next_due_on": values.get("next_due_on")})

    try:
        atomically(work, action)
    finally:
        db.session.refresh(order)
    return order


def occurrences_of(order: ScheduledOrder) -> list[ScheduledOccurrence]:
    """The order's occurrences, newest first, with their entries."""
    return list(db.session.scalars(
        sa.select(ScheduledOccurrence).where(ScheduledOccurrence.order_id == order.id)
        .options(joinedload(ScheduledOccurrence.entry))
        .order_by(ScheduledOccurrence.due_on.desc())))


# ---------------------------------------------------------------- running the due occurrences


@dataclass
class RunReport:
    """What one run did: occurrences posted, failed, and orders paused."""

    as_of: date
    posted: int = 0
    failed: int = 0
    paused: int = 0
    skipped: int = 0  # handled meanwhile by another run
    unfinished: bool = False  # stopped at its time budget: run again for the rest
    orders: set[int] = field(default_factory=set)

    def summary(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "posted": self.posted, "failed": self.failed,
                "paused": self.paused, "skipped": self.skipped, "unfinished": self.unfinished}


# Occurrences per transaction: their orders, accounts, and the report buckets of the transfers
# they make, stay locked until it commits. Each occurrence's transfer is a savepoint (a
# PostgreSQL subtransaction): past 64 in one transaction every session's snapshots slow down.
BATCH_SIZE = 50


def run_due(as_of: date, trigger: str = "cli", seconds: float | None = None,
            batch_size: int = BATCH_SIZE) -> RunReport:
    """Post (or record as failed) every occurrence due on or before ``as_of``, oldest first.

    Safe to run twice and on two hosts at once: each occurrence is posted once. With
    ``seconds``, stops starting new batches after that long (``unfinished``): a request
    must end within its host's time limit, and the next call goes on where this one stopped.
    The run itself is audited (``scheduled.run``) with what it did.
    """
    report = RunReport(as_of)
    deadline = time.monotonic() + seconds if seconds is not None else None
    passed: set[int] = set()  # orders another run is handling right now: leave them to it
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            report.unfinished = True
            break
        due = _due_orders(as_of, passed, batch_size)
        if not due:
            break
        accounts = {account_id for row in due for account_id in row[1:]}
        outcomes = in_batch(lambda: _run_batch([row[0] for row in due], as_of), "scheduled",
                            lock=list(accounts))
        for order_id, outcome in outcomes:
            report.orders.add(order_id)
            if outcome == "skipped":
                report.skipped += 1
                passed.add(order_id)
            else:
                setattr(report, outcome, getattr(report, outcome) + 1)
                if outcome == "paused":
                    report.failed += 1
    audit_trail.record(Action.SCHEDULED_RUN, actor=None, details={**report.summary(),
                                                                  "trigger": trigger})
    db.session.commit()
    return report


def _due_orders(as_of: date, passed: set[int], limit: int) -> list[sa.Row]:
    """The next batch: (id, source, destination) of up to ``limit`` active orders due on the
    oldest due date, by id. One date per batch keeps the oldest-first order across orders:
    an order's next occurrence always falls after the one paid."""
    query = (sa.select(ScheduledOrder.id, ScheduledOrder.source_account_id,
                       ScheduledOrder.destination_account_id, ScheduledOrder.next_due_on)
             .where(ScheduledOrder.status == OrderStatus.ACTIVE,
                    ScheduledOrder.next_due_on <= as_of)
             .order_by(ScheduledOrder.next_due_on, ScheduledOrder.id).limit(limit))
    if passed:
        query = query.where(ScheduledOrder.id.not_in(passed))
    rows = db.session.execute(query).all()
    db.session.commit()  # end the read: each batch is its own transaction
    return [row[:3] for row in rows if row.next_due_on == rows[0].next_due_on]


def _run_batch(order_ids: list[int], as_of: date) -> list[tuple[int, str]]:
    """Each order's due occurrence, its accounts locked. The orders are locked too and read
    under the lock (a pause, another run's move waits for the batch): one another run moved
    on since it was read is left for the next batch (or found paid)."""
    orders = db.session.scalars(
        sa.select(ScheduledOrder).where(ScheduledOrder.id.in_(order_ids))
        .options(selectinload(ScheduledOrder.source), selectinload(ScheduledOrder.destination),
                 selectinload(ScheduledOrder.user))
        .order_by(ScheduledOrder.id).with_for_update(of=ScheduledOrder)
        .execution_options(populate_existing=True)).all()
    return [(order.id, _run_occurrence(order, order.next_due_on)) for order in orders
            if order.status == OrderStatus.ACTIVE and order.next_due_on is not None
            and order.next_due_on <= as_of]


def occurrence_key(order: ScheduledOrder, due: date) -> str:
    """The ledger idempotency key of one occurrence (with the owner as actor)."""
    return f"scheduled:{order.id}:{due.isoformat()}"


def _run_occurrence(order: ScheduledOrder, due: date) -> str:
    """Post one occurrence; ``posted``, ``failed``, ``paused`` or ``skipped`` (done by a twin).

    Runs inside a batch (``_run_batch``) that holds the order's and its accounts' locks."""
    occurrences = order.occurrence_count + 1
    following = Schedule.of(order).after(due, occurrences)
    description = f"{order.description or f'Scheduled payment {order.id}'} (due {due.isoformat()})"

    try:
        posting = transfer(order.source, order.destination, order.amount, description,
                           order.user, channel=Channel.SYSTEM,
                           idempotency_key=occurrence_key(order, due))
    except IntegrityError:
        return "skipped"  # another run recorded this occurrence
    except LedgerError as refusal:
        source = db.session.get(Account, order.source_account_id, populate_existing=True)
        pause = isinstance(refusal, AccountNotActive) and source.status != AccountStatus.ACTIVE
        return _record_failure(order, due, following, str(refusal), pause)
    if posting.replayed:
        return "skipped"
    # The occurrence's rows follow the transfer (its own savepoint) in the batch, not through
    # ``also``: so the transfer can take the fast path. The batch holds the order's lock and
    # read it under the lock, so the move cannot find it changed; if it ever did, the error
    # rolls the whole batch back rather than leave a payment without its occurrence.
    db.session.execute(sa.insert(ScheduledOccurrence).values(
        order_id=order.id, due_on=due, status=OccurrenceStatus.POSTED,
        entry_id=posting.entry_id, created_at=now_utc()))
    _move_on(order, due, following)
    audit_trail.record(Action.SCHEDULED_POSTED, actor=None,
                       target_type=TargetType.SCHEDULED_ORDER, target_id=order.id,
                       details={"due_on": due, "reference": posting.reference,
                                "amount": order.amount})
    return "posted"


def _record_failure(order: ScheduledOrder, due: date, following: date | None, reason: str,
                    pause: bool) -> str:
    pause_reason = PAUSED_SOURCE_NOT_ACTIVE if pause else None

    def work() -> None:
        db.session.add(ScheduledOccurrence(order_id=order.id, due_on=due,
                                           status=OccurrenceStatus.FAILED, reason=reason[:255]))
        _move_on(order, due, following, pause_reason)
        audit_trail.record(Action.SCHEDULED_FAILED, actor=None,
                           target_type=TargetType.SCHEDULED_ORDER, target_id=order.id,
                           details={"due_on": due, "reason": reason, "paused": pause,
                                    "amount": order.amount})
        alerts.scheduled_payment_failed(order, due, reason, paused=pause)

    try:
        atomically(work, Action.SCHEDULED_FAILED)
    except (OrderChanged, IntegrityError):
        return "skipped"
    log.info("scheduled order %s: occurrence %s failed: %s", order.id, due, reason)
    return "paused" if pause else "failed"


def _move_on(order: ScheduledOrder, due: date, following: date | None,
             pause_reason: str | None = None) -> None:
    """Advance the order past ``due``, only if it still stands at ``due`` (else roll back)."""
    if following is None:
        status, reason = OrderStatus.COMPLETED, None
    elif pause_reason:
        status, reason = OrderStatus.PAUSED, pause_reason
    else:
        status, reason = OrderStatus.ACTIVE, None
    changed = db.session.execute(
        sa.update(ScheduledOrder)
        .where(ScheduledOrder.id == order.id, ScheduledOrder.status == OrderStatus.ACTIVE,
               ScheduledOrder.next_due_on == due)
        .values(next_due_on=following, status=status, status_reason=reason,
                occurrence_count=ScheduledOrder.occurrence_count + 1, updated_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise OrderChanged()

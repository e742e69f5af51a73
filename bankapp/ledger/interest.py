"""Interest on customer accounts: accrued daily, posted monthly from ``GL-INTEREST``.

Rates
-----
``interest_rates`` holds a history per account type: an annual rate in percent from a date
on. The rate of a day is the one with the latest ``effective_from`` on or before it, so a
change applies from its date. Dates already begun are never re-rated: ``set_rate`` takes
today or a later day (a future rate can be replaced until it starts).

Accrual (actual/365)
--------------------
Each day of the month in ``BANK_TIMEZONE`` earns ``end-of-day balance × rate / 100 / 365``.
The end-of-day balance is the ``balance_after`` of the account's last leg of that day (or of
the last leg before it). Nothing is rounded while accruing: a month's accrual is kept exactly
as a *numerator*, ``Σ balance × rate`` over its days, and ``interest = numerator / 36500``.

Posting and rounding
--------------------
``post_interest(month)`` credits each account with one INTEREST entry (customer credit,
``GL-INTEREST`` debit: the bank's expense, which goes negative; the book still sums to zero).
What is paid is the month's accrual plus the carry of the month before, rounded half-up to
the cent; the remainder (under half a cent either way) is carried to the next month. So the
postings of a year add up to the year's exact accrual rounded once. A frozen or closed
account is paid nothing that month: its whole accrual is carried until it can be credited.

Each account's month is one INTEREST entry, its audit line and the ``interest_postings`` row
(unique per account and month; the entry's idempotency key is
``interest:<account id>:<YYYY-MM>``). Accounts go in ascending id, a batch per transaction
(``core.in_batch``; 200 accounts on PostgreSQL, ``FAST_BATCH_SIZE``, else 50): the batch locks
its accounts and ``GL-INTEREST`` in id order, reads the month's legs, carries and statuses of
all of them in a few queries, posts their entries (``core.post_each``: on PostgreSQL one
``ledger_post()`` call each, all in one statement; else each ``post()`` in a savepoint of its
own), writes their rows in one INSERT, and commits. So the job runs while the bank serves: a
customer's row is held for one batch (a fraction of a second). A credit the ledger refuses (the
account frozen, a balance at its limit) writes nothing and is carried, while the batch's
others are paid. Running the command again, or on two hosts at once, pays each month once
(the second run waits for the first one's batch, then finds it paid). Months
an account missed (the job did not run) are caught up in order.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext

from flask_babel import gettext
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from bankapp import audit as audit_trail
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.platform.formatting import bank_timezone, day_start_utc
from bankapp.ledger import fast
from bankapp.ledger.accounts import internal_account
from bankapp.ledger.amounts import CENT
from bankapp.ledger.core import (
    AuditNote,
    EntryToPost,
    Leg,
    Posting,
    atomically,
    in_batch,
    post,
    post_each,
)
from bankapp.ledger.errors import AccountNotActive, LedgerError
from bankapp.models import (
    Account,
    AccountStatus,
    AccountType,
    Channel,
    EntryType,
    InterestPosting,
    InterestRate,
    Transaction,
    TransactionType,
    User,
    now_utc,
)

log = logging.getLogger("bankapp.ledger")

INTEREST_NUMBER = "GL-INTEREST"
# interest = numerator / (100 percent × 365 days)
DAYS_IN_YEAR = 365
NUMERATOR_PER_UNIT = Decimal(100 * DAYS_IN_YEAR)
MAX_RATE = Decimal("100")
RATE_PLACES = Decimal("0.0001")
ZERO = Decimal("0")


class InterestError(LedgerError):
    default_message = "Interest cannot be posted for that month."


# ---------------------------------------------------------------- input


def parse_month(text: object) -> date:
    """``YYYY-MM`` → the first day of that month, or ``InterestError`` saying why not."""
    cleaned = text.strip() if isinstance(text, str) else ""
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", cleaned, re.ASCII)
    if not match:
        raise InterestError(gettext("Give the month as YYYY-MM, such as 2026-11."))
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise InterestError(gettext("%(month)s is not a month: months run from 01 to 12.",
                                    month=cleaned))
    if not 1900 <= year <= 2999:
        raise InterestError(gettext("The year must be between 1900 and 2999."))
    return date(year, month, 1)


def parse_rate(text: object) -> Decimal:
    """An annual rate in percent as typed (``2.5`` or ``2,5``): 0 to 100, at most four
    decimals. A rate is never grouped in thousands, so its one mark, ``.`` or ``,``, can only
    be the decimal mark (the amount fields' rule: either mark where it is unambiguous)."""
    cleaned = text.strip() if isinstance(text, str) else ""
    if not re.fullmatch(r"[0-9]{1,3}(?:[.,][0-9]+)?", cleaned, re.ASCII):
        raise InterestError(gettext("Enter the annual rate in percent, such as 2.5 (no sign, no "
                                    "exponent)."))
    rate = Decimal(cleaned.replace(",", "."))
    if rate != rate.quantize(RATE_PLACES):
        raise InterestError(gettext("A rate has at most four decimal places."))
    if rate > MAX_RATE:
        raise InterestError(gettext("A rate is at most 100 percent a year."))
    return rate.quantize(RATE_PLACES)


def local_today(now: datetime | None = None) -> date:
    return (now or now_utc()).astimezone(bank_timezone()).date()


def next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


# ---------------------------------------------------------------- rates


def set_rate(account_type: str, rate: Decimal, effective_from: date, actor: User | None, *,
             today: date | None = None) -> InterestRate:
    """Add the rate of ``account_type`` from ``effective_from`` on (audited).

    ``effective_from`` must be today or later (days begun are not re-rated); a rate set for
    that same day before is replaced, since it has not applied to any day that ended.
    """
    if account_type not in AccountType.CUSTOMER:
        raise InterestError(gettext("Choose SAVINGS or CHECKING."))
    if isinstance(rate, bool) or not isinstance(rate, Decimal) or not rate.is_finite():
        raise InterestError(gettext("The rate must be an exact decimal."))
    if not ZERO <= rate <= MAX_RATE or rate != rate.quantize(RATE_PLACES):
        raise InterestError(gettext("A rate is 0 to 100 percent, with at most four decimals."))
    today = today or local_today()
    if effective_from < today:
        raise InterestError(gettext("A new rate starts today (%(today)s) or later: days that "
                                    "have begun keep their rate.", today=today.isoformat()))

    def work() -> InterestRate:
        row = db.session.scalar(sa.select(InterestRate).where(
            InterestRate.account_type == account_type,
            InterestRate.effective_from == effective_from))
        previous = row.annual_rate if row is not None else None
        if row is None:
            row = InterestRate(account_type=account_type, effective_from=effective_from)
            db.session.add(row)
        row.annual_rate = rate
        row.created_by_id = actor.id if actor is not None else None
        audit_trail.record(Action.INTEREST_RATE_SET, actor=actor,
                           target_type=TargetType.INTEREST_RATE, target_id=account_type,
                           details={"annual_rate": rate, "effective_from": effective_from,
                                    "replaces": previous})
        db.session.flush()
        return row

    try:
        return atomically(work, Action.INTEREST_RATE_SET)
    except IntegrityError:  # the same day set concurrently: the first one stands
        raise InterestError(gettext("Another rate for that day was set at the same moment; "
                                    "look at the list and try again.")) from None


def rate_history(account_type: str | None = None) -> list[InterestRate]:
    """Every rate, newest date first (of one account type when given)."""
    query = sa.select(InterestRate).order_by(InterestRate.effective_from.desc(),
                                             InterestRate.account_type)
    if account_type is not None:
        query = query.where(InterestRate.account_type == account_type)
    return list(db.session.scalars(query))


def daily_rates(account_type: str, first: date, last: date) -> list[Decimal]:
    """The annual rate (percent) of each day ``first``..``last``; 0 before any rate."""
    history = db.session.execute(
        sa.select(InterestRate.effective_from, InterestRate.annual_rate)
        .where(InterestRate.account_type == account_type, InterestRate.effective_from <= last)
        .order_by(InterestRate.effective_from)).all()
    rates, current, index = [], ZERO, 0
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        while index < len(history) and history[index][0] <= day:
            current = Decimal(history[index][1])
            index += 1
        rates.append(current)
    return rates


# ---------------------------------------------------------------- accrual


def end_of_day_balances(account_id: int, first: date, last: date) -> list[Decimal]:
    """The balance at the end of each day ``first``..``last`` (bank time), from the legs."""
    return month_balances([account_id], first, last)[account_id]


def month_balances(account_ids: list[int], first: date, last: date
                   ) -> dict[int, list[Decimal]]:
    """``end_of_day_balances`` of many accounts in two queries (a batch of the job)."""
    if not account_ids:
        return {}
    lower, upper = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    before = (sa.select(Transaction.balance_after)
              .where(Transaction.account_id == Account.id, Transaction.timestamp < lower)
              .order_by(Transaction.timestamp.desc(), Transaction.id.desc()).limit(1)
              .correlate(Account).scalar_subquery())
    openings = dict(db.session.execute(
        sa.select(Account.id, before).where(Account.id.in_(account_ids))).all())
    zone = bank_timezone()
    closing: dict[int, dict[date, Decimal]] = {account_id: {} for account_id in account_ids}
    for account_id, timestamp, balance_after in db.session.execute(
            sa.select(Transaction.account_id, Transaction.timestamp, Transaction.balance_after)
            .where(Transaction.account_id.in_(account_ids), Transaction.timestamp >= lower,
                   Transaction.timestamp < upper)
            .order_by(Transaction.account_id, Transaction.timestamp, Transaction.id)):
        closing[account_id][timestamp.astimezone(zone).date()] = Decimal(balance_after)  # last wins
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    result = {}
    for account_id in account_ids:
        opening, closes = openings.get(account_id), closing[account_id]
        balances, balance = [], Decimal(opening if opening is not None else 0)
        for day in days:
            balance = closes.get(day, balance)
            balances.append(balance.quantize(CENT))
        result[account_id] = balances
    return result


def accrual_numerator(balances: list[Decimal], rates: list[Decimal]) -> Decimal:
    """``Σ balance × rate`` over the days: exact (interest = this / 36500)."""
    with localcontext() as exact:
        exact.prec = 60
        return sum((b * r for b, r in zip(balances, rates, strict=True)), ZERO)


def settle(carry_in: Decimal, accrued: Decimal) -> tuple[Decimal, Decimal]:
    """What to pay this month (cents, half-up) and the numerator carried to the next one."""
    with localcontext() as exact:
        exact.prec = 60
        owed = carry_in + accrued
        # floor(owed / 365 + ½) cents: half a cent rounds up (towards +∞, so a carried
        # −0.005 never becomes a negative payment).
        cents = ((2 * owed + DAYS_IN_YEAR) / (2 * DAYS_IN_YEAR)).to_integral_value(ROUND_FLOOR)
        posted = (cents * CENT).quantize(CENT)
        return posted, owed - posted * NUMERATOR_PER_UNIT


def as_money(numerator: Decimal, places: str = "0.000001") -> Decimal:
    """A numerator shown as currency (for people: reports, the worked example)."""
    with localcontext() as exact:
        exact.prec = 60
        return (numerator / NUMERATOR_PER_UNIT).quantize(Decimal(places))


# ---------------------------------------------------------------- posting


def interest_account() -> Account:
    """``GL-INTEREST``: the bank's interest expense (created on first use)."""
    return internal_account(AccountType.EXPENSE, INTEREST_NUMBER, "Interest paid")


@dataclass
class InterestRun:
    """What ``post_interest`` did for one month."""

    month: date
    credited: int = 0
    total: Decimal = field(default_factory=lambda: Decimal("0.00"))
    already: int = 0
    nothing: int = 0
    held: int = 0
    refused: int = 0
    caught_up: int = 0

    def add(self, other: "InterestRun") -> None:
        """Count ``other`` (a batch's run) in this one."""
        for name in ("credited", "total", "already", "nothing", "held", "refused",
                     "caught_up"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        return (f"interest {self.month:%Y-%m}: {self.credited} account(s) credited "
                f"{self.total:,.2f}; {self.nothing} earned less than a cent or nothing; "
                f"{self.held} not active (carried); {self.refused} refused by the ledger "
                f"(carried); {self.already} already posted; "
                f"{self.caught_up} earlier month(s) caught up")


def require_ended(month: date, now: datetime | None = None) -> None:
    """Refuse a month that has not ended in the bank's time zone."""
    ends = day_start_utc(next_month(month))
    if ends > (now or now_utc()):
        raise InterestError(gettext("%(month)s has not ended yet: interest is posted after "
                                    "its last day (%(zone)s).", month=f"{month:%B %Y}",
                                    zone=bank_timezone()))


# Accounts per transaction: their rows and GL-INTEREST's stay locked until it commits.
# Posted one by one (SQLite, LEDGER_FAST_PATH=0), each account's posting is a savepoint (a
# PostgreSQL subtransaction): past 64 in one transaction every session's snapshots slow down
# (the subtransaction cache overflows), so stay under it.
BATCH_SIZE = 50
# Through ledger_post() (``core.post_each``) a batch is one statement in one savepoint, so what
# bounds it is how long its rows stay locked. Measured on the full-size bench bank under load
# (bench/README.md, "Interest in one statement per batch"): a batch of 200 held its rows about
# 0.18 s, as long as a batch of 50 posted one by one did (0.19 s at 264 accounts/s).
FAST_BATCH_SIZE = 200


def post_interest(month: date, batch_size: int | None = None) -> InterestRun:
    """Post ``month``'s interest on every account whose type has a rate by then.

    Accounts go in ascending id, ``batch_size`` per transaction (``core.in_batch``; by
    default ``FAST_BATCH_SIZE`` through ``ledger_post()``, else ``BATCH_SIZE``): each
    account's month is still its own entry and row.
    """
    if batch_size is None:
        batch_size = FAST_BATCH_SIZE if fast.enabled() else BATCH_SIZE
    require_ended(month)
    run = InterestRun(month)
    month_end = next_month(month) - timedelta(days=1)
    first_rates = dict(db.session.execute(
        sa.select(InterestRate.account_type, sa.func.min(InterestRate.effective_from))
        .where(InterestRate.effective_from <= month_end)
        .group_by(InterestRate.account_type)).all())
    rates = {account_type: daily_rates(account_type, month, month_end)
             for account_type in first_rates}
    # Paid already (a rerun, a run going on after one that stopped): counted, never locked.
    # Only a committed row says so, and a paid month is never unpaid; the batch still checks
    # the others under its locks (a twin run may be paying them right now).
    # A scalar subquery with LIMIT: one index probe per account listed. As EXISTS, PostgreSQL
    # hashed the whole table instead on every page (100 ms a page at 200,000 rows).
    paid = (sa.select(sa.literal(1))
            .where(InterestPosting.account_id == Account.id, InterestPosting.month >= month)
            .limit(1).correlate(Account).scalar_subquery()).is_not(None)
    expense_id, after = None, 0
    while True:
        page = db.session.execute(
            sa.select(Account.id, paid)
            .where(Account.account_type.in_(list(first_rates)),
                   Account.created_at < day_start_utc(next_month(month)), Account.id > after)
            .order_by(Account.id).limit(batch_size)).all()
        db.session.rollback()  # end the read: the batch is a transaction of its own
        if not page:
            return run
        after = page[-1][0]
        account_ids = [account_id for account_id, done in page if not done]
        run.already += len(page) - len(account_ids)
        if not account_ids:
            continue
        if expense_id is None:
            expense_id = interest_account().id
        batch = in_batch(lambda: _post_batch(account_ids, month, expense_id, rates,
                                             first_rates), "interest",
                         lock=[*account_ids, expense_id])
        run.add(batch)


def _post_batch(account_ids: list[int], month: date, expense_id: int,
                rates: dict[str, list[Decimal]], first_rates: dict[str, date]) -> InterestRun:
    """One batch, its accounts locked: read what each owes in a few queries, then post each."""
    batch = InterestRun(month)
    expense = db.session.get(Account, expense_id)
    accounts = db.session.scalars(
        sa.select(Account).where(Account.id.in_(account_ids)).order_by(Account.id)
        .execution_options(populate_existing=True)).all()
    latest = _latest_postings(account_ids)
    on_time = []
    for account in accounts:
        last = latest.get(account.id)
        if last is not None and last.month >= month:
            batch.already += 1
            continue
        opened = account.created_at.astimezone(bank_timezone()).date()
        start = (next_month(last.month) if last is not None
                 else max(opened, first_rates[account.account_type]).replace(day=1))
        if start < month:  # months missed: caught up one by one, this one last
            _post_account(account, month, expense, batch)
        else:
            on_time.append(account)
    month_end = next_month(month) - timedelta(days=1)
    balances = month_balances([account.id for account in on_time], month, month_end)
    credits = []
    for account in on_time:
        last = latest.get(account.id)
        carry_in = Decimal(last.carry) if last is not None else ZERO
        accrued = accrual_numerator(balances[account.id], rates[account.account_type])
        posted, carry = settle(carry_in, accrued)
        if posted > 0 and account.status == AccountStatus.ACTIVE:
            credits.append(_Credit(account, accrued, carry_in, posted, carry))
        else:
            _settle_month(account, month, expense, batch, accrued, carry_in, account.status)
    _credit_all(credits, month, expense, batch)
    return batch


@dataclass(frozen=True)
class _Credit:
    """An account's month to pay in a batch, as settled."""

    account: Account
    accrued: Decimal
    carry_in: Decimal
    posted: Decimal
    carry: Decimal


def _credit_all(credits: list[_Credit], month: date, expense: Account, run: InterestRun
                ) -> None:
    """Pay the batch's credits: their entries in one ``post_each`` (on PostgreSQL one
    statement), then their ``interest_postings`` rows in one INSERT, in the batch's
    transaction. An entry the ledger refuses (nothing of it written) is carried like a frozen
    account's month (``_settle_month``); a replayed one (its key used already) writes no row."""
    results = post_each([_interest_entry(credit.account, month, expense, credit.posted)
                         for credit in credits])
    rows = []
    for credit, result in zip(credits, results, strict=True):
        if isinstance(result, LedgerError):
            _carry_refused(credit.account, month, run, credit.accrued, credit.carry_in, result)
        elif result.replayed:
            run.already += 1
        else:
            rows.append({"account_id": credit.account.id, "month": month,
                         "accrued": credit.accrued, "posted": credit.posted,
                         "carry": credit.carry, "entry_id": result.entry_id})
            run.credited += 1
            run.total += credit.posted
    if rows:  # one statement for the lot (executemany: a multi-row INSERT)
        db.session.execute(sa.insert(InterestPosting), rows)


def _latest_postings(account_ids: list[int]) -> dict[int, sa.Row]:
    """Each account's latest ``interest_postings`` row (its month and carry), if any."""
    other = aliased(InterestPosting)
    newest = (sa.select(sa.func.max(other.month))
              .where(other.account_id == InterestPosting.account_id).scalar_subquery())
    return {row.account_id: row for row in db.session.execute(
        sa.select(InterestPosting.account_id, InterestPosting.month, InterestPosting.carry)
        .where(InterestPosting.account_id.in_(account_ids), InterestPosting.month == newest))}


def _post_account(account: Account, month: date, expense: Account, run: InterestRun) -> None:
    """Post ``month`` for one account, after any earlier month it has not been paid yet."""
    last = db.session.scalar(sa.select(sa.func.max(InterestPosting.month))
                             .where(InterestPosting.account_id == account.id))
    if last is not None and last >= month:
        run.already += 1
        return
    first_rate = db.session.scalar(
        sa.select(sa.func.min(InterestRate.effective_from))
        .where(InterestRate.account_type == account.account_type))
    opened = account.created_at.astimezone(bank_timezone()).date()
    start = next_month(last) if last is not None else max(opened, first_rate).replace(day=1)
    while start < month:
        _post_month(account, start, expense, None)
        run.caught_up += 1
        start = next_month(start)
    _post_month(account, month, expense, run)


def _post_month(account: Account, month: date, expense: Account, run: InterestRun | None
                ) -> None:
    """One month of one account, read on its own (catching up)."""
    month_end = next_month(month) - timedelta(days=1)
    accrued = accrual_numerator(end_of_day_balances(account.id, month, month_end),
                                daily_rates(account.account_type, month, month_end))
    carry_in = db.session.scalar(
        sa.select(InterestPosting.carry)
        .where(InterestPosting.account_id == account.id, InterestPosting.month < month)
        .order_by(InterestPosting.month.desc()).limit(1))
    carry_in = Decimal(carry_in) if carry_in is not None else ZERO
    status = db.session.scalar(sa.select(Account.status).where(Account.id == account.id))
    _settle_month(account, month, expense, run, accrued, carry_in, status)


def _settle_month(account: Account, month: date, expense: Account, run: InterestRun | None,
                  accrued: Decimal, carry_in: Decimal, status: str) -> None:
    """Pay (or carry) what ``month`` accrued plus the carry before it; count it on ``run``."""
    posted, carry = settle(carry_in, accrued)
    if posted > 0 and status == AccountStatus.ACTIVE:
        try:
            replayed = _credit(account, month, expense, accrued, posted, carry)
        except LedgerError as refusal:
            _carry_refused(account, month, run, accrued, carry_in, refusal)
        else:
            if run is not None:
                if replayed:
                    run.already += 1
                else:
                    run.credited += 1
                    run.total += posted
        return
    if posted > 0:  # not active: nothing paid, all of it carried
        posted, carry = Decimal("0.00"), carry_in + accrued
    recorded = _record_only(account, month, accrued, carry)
    if run is not None:
        if not recorded:
            run.already += 1
        elif status != AccountStatus.ACTIVE and carry > 0:
            run.held += 1
        else:
            run.nothing += 1


def _carry_refused(account: Account, month: date, run: InterestRun | None, accrued: Decimal,
                   carry_in: Decimal, refusal: LedgerError) -> None:
    """The ledger refused the month's credit (nothing of it was written): the account frozen
    since it was read, or a balance that would pass its limit. Nothing is paid, all of it is
    carried in the month's row, as for a frozen account, and the job goes on with the
    others."""
    if not isinstance(refusal, AccountNotActive):
        log.warning("interest %s of account %s carried: the ledger refused it (%s)",
                    f"{month:%Y-%m}", account.id, refusal)
    recorded = _record_only(account, month, accrued, carry_in + accrued)
    if run is not None:
        if not recorded:
            run.already += 1
        elif isinstance(refusal, AccountNotActive):
            run.held += 1
        else:
            run.refused += 1


def _interest_entry(account: Account, month: date, expense: Account, posted: Decimal
                    ) -> EntryToPost:
    """The month's INTEREST entry of ``account``, as ``post()`` is asked to write it."""
    label = f"{month:%Y-%m}"
    legs = (Leg(account, TransactionType.INTEREST, posted),
            Leg(expense, TransactionType.INTEREST, -posted))
    note = AuditNote(Action.INTEREST, TargetType.ACCOUNT, account.account_number,
                     {"amount": posted, "month": label})
    return EntryToPost(EntryType.INTEREST, legs, f"Interest for {month:%B %Y}", None,
                       Channel.SYSTEM, f"interest:{account.id}:{label}", audit=note)


def _credit(account: Account, month: date, expense: Account, accrued: Decimal,
            posted: Decimal, carry: Decimal) -> bool:
    """One INTEREST entry with its ``interest_postings`` row; True if it was posted before."""
    entry = _interest_entry(account, month, expense, posted)
    # The row is written right after post() (its own savepoint), not through ``also``: so
    # the entry can take the fast path (``also`` needs the entry written by the ORM). The
    # batch holds the account's lock and read its rows under it: no other run can have
    # written this month's row meanwhile, and the batch commits both or neither.
    posting: Posting = post(entry.entry_type, list(entry.legs), entry.description, None,
                            entry.channel, entry.idempotency_key, audit=entry.audit)
    if not posting.replayed:
        _insert_row(account, month, accrued, posted, carry, posting.entry_id)
    return posting.replayed


def _record_only(account: Account, month: date, accrued: Decimal, carry: Decimal) -> bool:
    """A month with nothing to pay: only its row (the carry). False if it existed already."""
    try:
        atomically(lambda: _insert_row(account, month, accrued, Decimal("0.00"), carry, None),
                   "interest")
    except IntegrityError:
        return False
    return True


def _insert_row(account: Account, month: date, accrued: Decimal, posted: Decimal,
                carry: Decimal, entry_id: int | None) -> None:
    db.session.execute(sa.insert(InterestPosting).values(
        account_id=account.id, month=month, accrued=accrued, posted=posted, carry=carry,
        entry_id=entry_id))


def parse_rate_date(text: object) -> date:
    """``YYYY-MM-DD`` for a rate's first day."""
    cleaned = text.strip() if isinstance(text, str) else ""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", cleaned, re.ASCII):
            raise ValueError
        return date.fromisoformat(cleaned)
    except ValueError:
        raise InterestError(gettext("Give the first day as YYYY-MM-DD, such as "
                                    "2026-12-01.")) from None


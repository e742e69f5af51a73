"""Loans from application to payoff: apply, approve or reject, disburse, repay, write off.

Each function takes the person acting as an argument and never reads the request; each
change is one transaction with its audit line, and money moves only through
``ledger.post()`` (the legs are drawn in ``bankapp/lending/__init__.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp import audit as audit_trail
from bankapp import ledger
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger.amounts import clean_reason
from bankapp.ledger.core import MAX_ATTEMPTS
from bankapp.lending.errors import LendingError, LoanChanged
from bankapp.lending.schedule import Instalment, Terms, build_schedule, period_interest
from bankapp.platform.formatting import format_money
from bankapp.models import (
    Account,
    AccountStatus,
    AccountType,
    Channel,
    EntryType,
    JournalEntry,
    Loan,
    LoanInstalment,
    LoanProduct,
    LoanRepayment,
    LoanRun,
    LoanStatus,
    RepaymentKind,
    Role,
    TransactionType,
    User,
    now_utc,
)

ZERO = Decimal("0.00")
FEES_NUMBER = "GL-LOAN-FEES"
INTEREST_NUMBER = "GL-LOAN-INTEREST"
LOSS_NUMBER = "GL-LOAN-LOSS"


def fee_income_account() -> Account:
    return ledger.internal_account(AccountType.INCOME, FEES_NUMBER, "Loan fee income")


def interest_income_account() -> Account:
    return ledger.internal_account(AccountType.INCOME, INTEREST_NUMBER, "Loan interest income")


def loss_account() -> Account:
    return ledger.internal_account(AccountType.EXPENSE, LOSS_NUMBER, "Loan losses")


def lending_today() -> date:
    """The loan book's today: today in ``BANK_TIMEZONE``, or the date the collections last ran
    for when a run caught up ahead of it (``flask run-loans --as-of``): what is due, overdue
    and owed is reckoned on the day the book has been run to."""
    last = db.session.scalar(sa.select(sa.func.max(LoanRun.as_of)))
    today = ledger.bank_today()
    return max(today, last) if last is not None else today


def approval_threshold() -> Decimal:
    """Loans above this principal need an admin's approval (``LOAN_APPROVAL_THRESHOLD``)."""
    return Decimal(current_app.config["LOAN_APPROVAL_THRESHOLD"])


# ---------------------------------------------------------------- applying


def check_terms(product: LoanProduct, principal: Decimal, term: int) -> None:
    """Refuse an amount or a term outside the product's bounds (``LendingError``)."""
    if not isinstance(principal, Decimal) or not principal.is_finite():
        raise LendingError(gettext("Enter the amount as an exact decimal."), "principal")
    if not product.principal_min <= principal <= product.principal_max:
        raise LendingError(gettext("This product lends from %(low)s to %(high)s.",
                                   low=format_money(product.principal_min),
                                   high=format_money(product.principal_max)), "principal")
    if principal != principal.quantize(Decimal("0.01")):
        raise LendingError(gettext("Use at most two decimal places."), "principal")
    if isinstance(term, bool) or not isinstance(term, int) \
            or not product.term_min <= term <= product.term_max:
        raise LendingError(gettext("This product is repaid in %(low)d to %(high)d repayments.",
                                   low=product.term_min, high=product.term_max), "term")


def preview(product: LoanProduct, principal: Decimal, term: int,
            start: date | None = None) -> list[Instalment]:
    """The schedule a loan on these terms would have if paid out ``start`` (today)."""
    check_terms(product, principal, term)
    return build_schedule(Terms(principal, product.annual_rate, term, product.frequency,
                                product.amortisation, start or lending_today()))


@dataclass(frozen=True)
class Application:
    product: LoanProduct | None
    account: Account | None  # as the form found it among the borrower's accounts
    principal: Decimal
    term: int
    purpose: str = ""
    idempotency_key: str | None = None


def apply(borrower: User, asked: Application) -> Loan:
    """Submit ``borrower``'s application (audited); a replayed key finds the first one."""
    if asked.idempotency_key:
        earlier = db.session.scalar(sa.select(Loan).where(
            Loan.borrower_id == borrower.id, Loan.idempotency_key == asked.idempotency_key))
        if earlier is not None:
            return earlier
    product = asked.product
    if product is None or not product.active:
        raise LendingError(gettext("Choose one of the loan products offered."), "product")
    account = asked.account
    if account is None or account.owner_id != borrower.id \
            or account.account_type not in AccountType.CUSTOMER:
        raise LendingError(gettext("Choose one of your own accounts."), "account")
    if account.status != AccountStatus.ACTIVE:
        raise LendingError(gettext("This account is frozen or closed: choose an active one."),
                           "account")
    check_terms(product, asked.principal, asked.term)
    purpose = " ".join((asked.purpose or "").split())
    if len(purpose) > 255:
        raise LendingError(gettext("The purpose may be at most 255 characters."), "purpose")

    def work() -> Loan:
        loan = Loan(product_id=product.id, borrower_id=borrower.id, account_id=account.id,
                    principal=asked.principal, term=asked.term, purpose=purpose,
                    frequency=product.frequency, annual_rate=product.annual_rate,
                    amortisation=product.amortisation, grace_days=product.grace_days,
                    late_fee_kind=product.late_fee_kind, late_fee=product.late_fee,
                    disbursement_fee=product.disbursement_fee,
                    needs_admin=asked.principal > approval_threshold(),
                    idempotency_key=asked.idempotency_key, status=LoanStatus.SUBMITTED)
        db.session.add(loan)
        db.session.flush()
        _audit(Action.LOAN_APPLY, borrower, loan, principal=asked.principal, term=asked.term,
               product=product.name, account=account.account_number)
        return loan

    try:
        return ledger.atomically(work, Action.LOAN_APPLY)
    except IntegrityError:  # the same key submitted twice at once: the first one stands
        loan = db.session.scalar(sa.select(Loan).where(
            Loan.borrower_id == borrower.id, Loan.idempotency_key == asked.idempotency_key))
        if loan is None:
            raise
        return loan


def _audit(action: str, actor: User | None, loan: Loan, **details) -> None:
    audit_trail.record(action, actor=actor, target_type=TargetType.LOAN, target_id=loan.id,
                       details=details)


# ---------------------------------------------------------------- deciding


def _check_decider(loan: Loan, staff: User) -> None:
    if staff.role not in Role.STAFF:
        raise LendingError(gettext("Only bank staff decide on loan applications."))
    if staff.id == loan.borrower_id:
        raise LendingError(gettext("Nobody approves or rejects their own application."))


def _decide(loan: Loan, staff: User, status: str, reason: str | None) -> None:
    """Move ``loan`` from submitted to ``status`` by a conditional UPDATE (a decision taken
    meanwhile by someone else wins) with its audit line, in one transaction."""
    def work() -> None:
        changed = db.session.execute(
            sa.update(Loan).where(Loan.id == loan.id, Loan.status == LoanStatus.SUBMITTED)
            .values(status=status, decided_by_id=staff.id, decided_at=now_utc(),
                    decision_reason=reason)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise LendingError(gettext("This application was decided already."))
        action = Action.LOAN_APPROVE if status == LoanStatus.APPROVED else Action.LOAN_REJECT
        _audit(action, staff, loan, reason=reason, principal=loan.principal)

    ledger.atomically(work, "loan decision")
    db.session.refresh(loan)


def approve(loan: Loan, staff: User, today: date | None = None) -> Loan:
    """Approve ``loan`` and pay it out. Above ``LOAN_APPROVAL_THRESHOLD`` only an admin may
    (maker-checker); nobody approves their own. A disbursement the account refuses (frozen
    meanwhile) leaves the loan approved, to be paid out with ``disburse`` later."""
    _check_decider(loan, staff)
    if loan.needs_admin and staff.role != Role.ADMIN:
        raise LendingError(gettext("A loan above %(limit)s needs an admin's approval.",
                                   limit=format_money(approval_threshold())))
    _decide(loan, staff, LoanStatus.APPROVED, None)
    return disburse(loan, staff, today)


def reject(loan: Loan, staff: User, reason: str) -> Loan:
    """Reject ``loan`` with a reason (required, audited)."""
    _check_decider(loan, staff)
    _decide(loan, staff, LoanStatus.REJECTED, clean_reason(reason))
    return loan


# ---------------------------------------------------------------- paying out


def disbursement_key(loan: Loan) -> str:
    return f"loan:{loan.id}:disbursement"


def loan_account(loan: Loan) -> Account:
    """The loan's account in the book, ``LN-<id>``, opened on first use."""
    return ledger.internal_account(AccountType.LOAN, loan.number, f"Loan {loan.id}")


def disburse(loan: Loan, actor: User | None, today: date | None = None) -> Loan:
    """Pay out an approved loan: the principal less the fee to the borrower's account, the
    fee to GL-LOAN-FEES, the loan account debited; its schedule starts ``today``.

    Idempotent: the bank's key ``loan:<id>:disbursement`` posts once, and the loan moves from
    approved to active by a conditional UPDATE in the same transaction.
    """
    if loan.status == LoanStatus.ACTIVE:
        return loan
    if loan.status != LoanStatus.APPROVED:
        raise LendingError(gettext("Only an approved loan is paid out."))
    today = today or lending_today()
    book = loan_account(loan)
    fee = loan.disbursement_fee
    legs = [ledger.Leg(book, TransactionType.LOAN_PAYOUT, -loan.principal),
            ledger.Leg(loan.account, TransactionType.LOAN_PAYOUT, loan.principal - fee)]
    if fee > 0:
        legs.append(ledger.Leg(fee_income_account(), TransactionType.LOAN_FEE, fee))
    schedule = build_schedule(Terms(loan.principal, loan.annual_rate, loan.term,
                                    loan.frequency, loan.amortisation, today))

    def activate(entry: JournalEntry) -> None:
        changed = db.session.execute(
            sa.update(Loan).where(Loan.id == loan.id, Loan.status == LoanStatus.APPROVED)
            .values(status=LoanStatus.ACTIVE, loan_account_id=book.id, disbursed_on=today,
                    disbursement_entry_id=entry.id, version=Loan.version + 1)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise LoanChanged()
        db.session.add_all(LoanInstalment(
            loan_id=loan.id, number=row.number, due_on=row.due_on,
            principal_due=row.principal, interest_due=row.interest, fee_due=ZERO,
            principal_paid=ZERO, interest_paid=ZERO, fee_paid=ZERO) for row in schedule)

    note = ledger.AuditNote(Action.LOAN_DISBURSE, TargetType.LOAN, loan.id,
                            {"principal": loan.principal, "fee": fee,
                             "account": loan.account.account_number,
                             "by": getattr(actor, "id", None)})
    try:
        ledger.post(EntryType.LOAN_DISBURSEMENT, legs, f"Loan {loan.id} paid out", None,
                    Channel.SYSTEM, disbursement_key(loan), audit=note, also=activate)
    except LoanChanged:
        pass  # paid out meanwhile by a twin: its entry stands
    db.session.refresh(loan)
    return loan


# ---------------------------------------------------------------- what is owed


@dataclass
class Owed:
    """What a loan owes on ``day``: due now (overdue included), and to pay it off."""

    day: date
    fees: Decimal = ZERO
    interest: Decimal = ZERO  # due, plus the running period's interest to the day (payoff)
    principal: Decimal = ZERO  # all principal still owed
    due: Decimal = ZERO  # fees, interest and principal of the instalments due by ``day``
    overdue: Decimal = ZERO  # of instalments due before ``day``
    accrued: Decimal = ZERO  # the running period's interest to the day, not yet paid

    @property
    def payoff(self) -> Decimal:
        return self.fees + self.interest + self.principal


def instalments_of(loan: Loan, *, fresh: bool = False) -> list[LoanInstalment]:
    query = (sa.select(LoanInstalment).where(LoanInstalment.loan_id == loan.id)
             .order_by(LoanInstalment.number))
    if fresh:
        query = query.execution_options(populate_existing=True)
    return list(db.session.scalars(query))


def _running(rows: list[LoanInstalment], day: date) -> tuple[LoanInstalment | None, date]:
    """The first instalment not yet due on ``day`` and the start of its period."""
    for index, row in enumerate(rows):
        if row.due_on > day:
            return row, rows[index - 1].due_on if index else None
    return None, day


def accrued_interest(loan: Loan, rows: list[LoanInstalment], day: date) -> Decimal:
    """The running period's interest to ``day`` (declining balance, actual/365), less what
    was paid of it; never more than the instalment's scheduled interest."""
    row, start = _running(rows, day)
    if row is None:
        return ZERO
    start = start or loan.disbursed_on
    owed = sum((r.principal_due - r.principal_paid for r in rows if r.number >= row.number),
               ZERO)
    to_day = min(period_interest(owed, loan.annual_rate, (day - start).days), row.interest_due)
    return max(to_day - row.interest_paid, ZERO)


def owed_on(loan: Loan, day: date, rows: list[LoanInstalment] | None = None) -> Owed:
    """What ``loan`` owes on ``day`` (see ``Owed``)."""
    rows = instalments_of(loan) if rows is None else rows
    owed = Owed(day)
    if loan.status != LoanStatus.ACTIVE:
        return owed
    for row in rows:
        owed.principal += row.principal_due - row.principal_paid
        if row.due_on <= day:
            owed.fees += row.fee_due - row.fee_paid
            owed.interest += row.interest_due - row.interest_paid
            owed.due += row.outstanding
            if row.due_on < day:
                owed.overdue += row.outstanding
    owed.accrued = accrued_interest(loan, rows, day)
    owed.interest += owed.accrued
    return owed


# ---------------------------------------------------------------- repaying


@dataclass
class Allocation:
    """How a repayment pays a loan: per instalment (fees, interest, principal), and whether
    it pays the loan off (the running period's interest set to the day, later ones to 0)."""

    parts: dict[int, list[Decimal]] = field(default_factory=dict)  # id → [fee, int, prin]
    payoff: bool = False
    running_interest: tuple[int, Decimal] | None = None  # (id, interest due to the day)
    # Principal paid ahead: the interest of periods not begun, on the new declining balance.
    new_interest: dict[int, Decimal] = field(default_factory=dict)

    @property
    def fees(self) -> Decimal:
        return sum((p[0] for p in self.parts.values()), ZERO)

    @property
    def interest(self) -> Decimal:
        return sum((p[1] for p in self.parts.values()), ZERO)

    @property
    def principal(self) -> Decimal:
        return sum((p[2] for p in self.parts.values()), ZERO)

    @property
    def total(self) -> Decimal:
        return self.fees + self.interest + self.principal


def allocate(loan: Loan, rows: list[LoanInstalment], amount: Decimal, day: date) -> Allocation:
    """Split ``amount`` (at most the payoff) over the loan, in this order:

    1. each instalment due by ``day``, oldest first: its fees, then interest, then principal;
    2. what is left pays principal ahead, instalment by instalment; interest is never paid
       for days not yet borrowed.

    An amount equal to the payoff pays everything off: the running period's interest to the
    day is added to what it pays, and the interest of later periods is cancelled.
    """
    owed = owed_on(loan, day, rows)
    allocation = Allocation(payoff=amount == owed.payoff)
    left = amount
    for row in rows:
        if row.due_on > day or left <= 0:
            continue
        parts = [ZERO, ZERO, ZERO]
        for index, (due, paid) in enumerate(((row.fee_due, row.fee_paid),
                                              (row.interest_due, row.interest_paid),
                                              (row.principal_due, row.principal_paid))):
            parts[index] = min(due - paid, left)
            left -= parts[index]
        allocation.parts[row.id] = parts
    running, _ = _running(rows, day)
    if allocation.payoff and running is not None and owed.accrued > 0:
        allocation.parts.setdefault(running.id, [ZERO, ZERO, ZERO])[1] += owed.accrued
        left -= owed.accrued
    if allocation.payoff and running is not None:
        allocation.running_interest = (running.id, running.interest_paid + owed.accrued)
    for row in rows:
        if row.due_on <= day or left <= 0:
            continue
        part = min(row.principal_due - row.principal_paid, left)
        if part > 0:
            allocation.parts.setdefault(row.id, [ZERO, ZERO, ZERO])[2] += part
            left -= part
    assert left == 0, "an amount above the payoff was allocated"
    if not allocation.payoff:
        _reprice_ahead(loan, rows, allocation, day)
    return allocation


def _reprice_ahead(loan: Loan, rows: list[LoanInstalment], allocation: Allocation,
                   day: date) -> None:
    """After principal paid ahead, the periods that have not begun are charged interest on
    the principal left (declining balance), not on the schedule's."""
    remaining = [row.principal_due - row.principal_paid
                 - allocation.parts.get(row.id, [ZERO, ZERO, ZERO])[2] for row in rows]
    start = loan.disbursed_on
    for index, row in enumerate(rows):
        if start > day:
            owed = sum(remaining[index:], ZERO)
            interest = max(period_interest(owed, loan.annual_rate, (row.due_on - start).days),
                           row.interest_paid)
            if interest != row.interest_due:
                allocation.new_interest[row.id] = interest
        start = row.due_on


def repayment_legs(loan: Loan, allocation: Allocation) -> list[ledger.Leg]:
    """The customer pays the total; the loan gets the principal, GL-LOAN-INTEREST the
    interest, GL-LOAN-FEES the fees (legs of zero left out)."""
    legs = [ledger.Leg(loan.account, TransactionType.LOAN_REPAYMENT, -allocation.total)]
    for account, transaction_type, amount in (
            (loan.loan_account, TransactionType.LOAN_REPAYMENT, allocation.principal),
            (interest_income_account(), TransactionType.LOAN_REPAYMENT, allocation.interest),
            (fee_income_account(), TransactionType.LOAN_FEE, allocation.fees)):
        if amount > 0:
            legs.append(ledger.Leg(account, transaction_type, amount))
    return legs


def record_allocation(loan: Loan, seen_version: int, allocation: Allocation, kind: str,
                      day: date, entry: JournalEntry) -> bool:
    """Write ``allocation`` onto the instalments and the repayment row (inside the posting's
    transaction); the loan's version must still be the one it was computed from, else
    ``LoanChanged`` rolls everything back. True when it leaves nothing owed (paid off)."""
    changed = db.session.execute(
        sa.update(Loan).where(Loan.id == loan.id, Loan.version == seen_version,
                              Loan.status == LoanStatus.ACTIVE)
        .values(version=Loan.version + 1)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise LoanChanged()
    for row_id, (fee, interest, principal) in allocation.parts.items():
        db.session.execute(
            sa.update(LoanInstalment).where(LoanInstalment.id == row_id)
            # round(): SQLite adds in binary floating point (as the ledger's legs do).
            .values(fee_paid=sa.func.round(LoanInstalment.fee_paid + fee, 2),
                    interest_paid=sa.func.round(LoanInstalment.interest_paid + interest, 2),
                    principal_paid=sa.func.round(LoanInstalment.principal_paid + principal, 2))
            .execution_options(synchronize_session=False))
    for row_id, interest in allocation.new_interest.items():
        db.session.execute(sa.update(LoanInstalment).where(LoanInstalment.id == row_id)
                           .values(interest_due=interest)
                           .execution_options(synchronize_session=False))
    if allocation.payoff:
        if allocation.running_interest is not None:
            running_id, interest = allocation.running_interest
            db.session.execute(sa.update(LoanInstalment).where(LoanInstalment.id == running_id)
                               .values(interest_due=interest)
                               .execution_options(synchronize_session=False))
        db.session.execute(  # later periods: not borrowed, no interest
            sa.update(LoanInstalment).where(LoanInstalment.loan_id == loan.id,
                                            LoanInstalment.due_on > day,
                                            LoanInstalment.id != (
                                                allocation.running_interest or (0,))[0])
            .values(interest_due=LoanInstalment.interest_paid)
            .execution_options(synchronize_session=False))
    db.session.add(LoanRepayment(loan_id=loan.id, entry_id=entry.id, kind=kind, paid_on=day,
                                 amount=allocation.total, principal=allocation.principal,
                                 interest=allocation.interest, fees=allocation.fees))
    left = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(
            LoanInstalment.principal_due + LoanInstalment.interest_due + LoanInstalment.fee_due
            - LoanInstalment.principal_paid - LoanInstalment.interest_paid
            - LoanInstalment.fee_paid), 0)).where(LoanInstalment.loan_id == loan.id))
    if Decimal(left).quantize(Decimal("0.01")) == 0:
        db.session.execute(sa.update(Loan).where(Loan.id == loan.id)
                           .values(status=LoanStatus.PAID_OFF, closed_on=day)
                           .execution_options(synchronize_session=False))
        _audit(Action.LOAN_PAID_OFF, None, loan, on=day)
        return True
    return False


def post_repayment(loan: Loan, amount: Decimal, kind: str, day: date, actor: User | None,
                   channel: str, key: str | None, *,
                   answer: ledger.PostingAnswer | None = None,
                   also: Callable[[JournalEntry], None] | None = None
                   ) -> ledger.Posting | None:
    """Post one repayment of ``amount`` (≤ the payoff on ``day``) on ``loan``, allocated and
    recorded in the same transaction; retried on the new state when the loan changed. A
    collection takes at most what is due, and posts nothing (None) when nothing is."""
    for _ in range(MAX_ATTEMPTS):
        db.session.refresh(loan)
        if loan.status != LoanStatus.ACTIVE:
            raise LendingError(gettext("This loan is %(status)s: there is nothing to repay.",
                                       status=gettext(loan.status_label)), "amount")
        rows = instalments_of(loan, fresh=True)
        owed = owed_on(loan, day, rows)
        payoff = owed.payoff
        if kind == RepaymentKind.COLLECTION:
            # A collection takes only what is due (``amount`` is what was available): after
            # a repayment that landed meanwhile, less or nothing.
            amount = min(amount, owed.due)
            if amount <= 0:
                return None
        if amount > payoff:
            raise LendingError(gettext("That is more than the loan owes: paying it off today "
                                       "takes %(payoff)s.", payoff=format_money(payoff)), "amount")
        if payoff - owed.accrued < amount < payoff:
            # All the principal paid ahead, and part of the running period's interest to the
            # day: a loan with nothing borrowed but interest still owed. Pay off, or less.
            raise LendingError(gettext(
                "That repays all the principal but not the interest to today: pay "
                "%(payoff)s to pay the loan off, or at most %(most)s.",
                payoff=format_money(payoff), most=format_money(payoff - owed.accrued)),
                "amount")
        allocation = allocate(loan, rows, amount, day)
        if allocation.payoff and kind == RepaymentKind.REPAYMENT:
            kind = RepaymentKind.PAYOFF
        seen, chosen_kind = loan.version, kind
        action = Action.LOAN_COLLECT if kind == RepaymentKind.COLLECTION else Action.LOAN_REPAY
        note = ledger.AuditNote(action, TargetType.LOAN, loan.id,
                                {"amount": amount, "fees": allocation.fees,
                                 "interest": allocation.interest,
                                 "principal": allocation.principal, "on": day, "kind": kind})
        try:
            return ledger.post(
                EntryType.LOAN_REPAYMENT, repayment_legs(loan, allocation),
                f"Loan {loan.id} {chosen_kind}", actor, channel, key, audit=note,
                also=lambda entry: _record(loan, seen, allocation, chosen_kind, day, entry,
                                           also), answer=answer)
        except LoanChanged:
            continue  # a collection or another repayment landed: allocate on the new state
    raise LoanChanged()


def _record(loan: Loan, seen: int, allocation: Allocation, kind: str, day: date,
            entry: JournalEntry, also: Callable[[JournalEntry], None] | None) -> None:
    record_allocation(loan, seen, allocation, kind, day, entry)
    if also is not None:
        also(entry)


def repay(loan: Loan, customer: User, amount, *, idempotency_key: str | None,
          channel: str = Channel.WEB, today: date | None = None,
          answer: ledger.PostingAnswer | None = None,
          also: Callable[[JournalEntry], None] | None = None) -> ledger.Posting:
    """The borrower repays ``amount`` from the loan's account: any amount up to the payoff
    (more is refused, nothing moves); exactly the payoff pays the loan off. ``also`` and
    ``answer``: what the API stores with the posting, in its transaction."""
    if loan.borrower_id != customer.id:
        raise LendingError(gettext("This is not your loan."))
    amount = ledger.validate_amount(amount)
    if idempotency_key:
        earlier = ledger.find_posting(customer, idempotency_key)
        if earlier is not None:
            return ledger.Posting(earlier, replayed=True)
    return post_repayment(loan, amount, RepaymentKind.REPAYMENT, today or lending_today(),
                          customer, channel, idempotency_key, answer=answer, also=also)


def payoff_amount(loan: Loan, day: date | None = None) -> Decimal:
    """What paying ``loan`` off costs on ``day`` (today)."""
    return owed_on(loan, day or lending_today()).payoff


# ---------------------------------------------------------------- finding loans


MAX_ID = 2**31 - 1  # an INTEGER column: a larger id names no loan (and must not overflow)


def loan_numbered(loan_id: int) -> sa.Select:
    """The select of the loan with this id (none for an id no column can hold)."""
    if not 0 < loan_id <= MAX_ID:
        return sa.select(Loan).where(sa.false())
    return sa.select(Loan).where(Loan.id == loan_id)


def owned_loan(user: User, loan_id: int) -> sa.Select:
    """The select of ``user``'s loan with this id: anyone else's is not found."""
    return loan_numbered(loan_id).where(Loan.borrower_id == user.id)


def loans_of(user: User) -> list[Loan]:
    return list(db.session.scalars(sa.select(Loan).where(Loan.borrower_id == user.id)
                                   .order_by(Loan.id.desc())))


def queue(staff: User) -> list[Loan]:
    """Applications waiting for a decision, oldest first (a teller sees the ones they may
    approve flagged by ``needs_admin``)."""
    return list(db.session.scalars(sa.select(Loan).where(Loan.status.in_(
        (LoanStatus.SUBMITTED, LoanStatus.APPROVED))).order_by(Loan.id)))


# ---------------------------------------------------------------- writing off


def write_off(loan: Loan, admin: User, reason: str, today: date | None = None) -> Loan:
    """An admin writes off what is left of an active loan: the principal still owed moves
    from the loan account to GL-LOAN-LOSS (a bank expense); interest and fees not paid were
    never income (cash basis) and are cancelled. Audited with the reason."""
    if admin.role != Role.ADMIN:
        raise LendingError(gettext("Only an admin writes a loan off."))
    reason = clean_reason(reason)
    today = today or lending_today()
    for _ in range(MAX_ATTEMPTS):
        db.session.refresh(loan)
        if loan.status != LoanStatus.ACTIVE:
            raise LendingError(gettext("Only an active loan is written off."))
        seen = loan.version
        principal = owed_on(loan, today).principal

        def close(entry: JournalEntry | None = None) -> None:
            changed = db.session.execute(
                sa.update(Loan).where(Loan.id == loan.id, Loan.version == seen,
                                      Loan.status == LoanStatus.ACTIVE)
                .values(status=LoanStatus.WRITTEN_OFF, closed_on=today,
                        version=Loan.version + 1, decision_reason=reason)
                .execution_options(synchronize_session=False)).rowcount
            if changed != 1:
                raise LoanChanged()
            if entry is None:  # nothing left in the book: the audit line is the record
                _audit(Action.LOAN_WRITE_OFF, admin, loan, principal=ZERO, reason=reason)

        try:
            if principal == 0:
                ledger.atomically(close, Action.LOAN_WRITE_OFF)
            else:
                legs = [ledger.Leg(loan_account(loan), TransactionType.LOAN_WRITE_OFF,
                                   principal),
                        ledger.Leg(loss_account(), TransactionType.LOAN_WRITE_OFF, -principal)]
                note = ledger.AuditNote(Action.LOAN_WRITE_OFF, TargetType.LOAN, loan.id,
                                        {"principal": principal, "reason": reason})
                ledger.post(EntryType.LOAN_WRITE_OFF, legs, f"Loan {loan.id} written off",
                            admin, Channel.TELLER, f"loan:{loan.id}:write-off", audit=note,
                            also=close)
        except LoanChanged:
            continue
        db.session.refresh(loan)
        return loan
    raise LoanChanged()

"""Teller back office: the desk, customer search, cash at the counter, tills, approvals,
loan applications, verification, freezes, holds and reversals. Tellers and admins only; some actions admins only."""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from bankapp import ledger
from bankapp.extensions import db
from bankapp.lending import portfolio as lending_portfolio
from bankapp.lending import services as lending
from bankapp.ledger.fields import ConfirmForm
from bankapp.platform.formatting import day_start_utc, format_amount, format_money
from bankapp.platform.i18n import status_label
from bankapp.models import (
    AccountStatus,
    FactorResetRequest,
    Hold,
    Loan,
    LoanStatus,
    PendingPosting,
    PendingPostingKind,
    Role,
    User,
    now_utc,
)
from bankapp.identity import directory
from bankapp.identity.security import role_required
from bankapp.backoffice.teller import services
from bankapp.backoffice.teller.forms import (
    ApproveForm,
    CashForm,
    CloseShiftForm,
    CounterPostingForm,
    FactorResetForm,
    HoldForm,
    ReasonForm,
    ReleaseForm,
)

bp = Blueprint("teller", __name__, url_prefix="/teller", template_folder="templates")


staff_only = role_required(*Role.STAFF)
admin_only = role_required(Role.ADMIN)
PER_PAGE = 20


def _me() -> User:
    return current_user._get_current_object()


def _show_error(form, error: ledger.LedgerError, amount_field: str = "amount") -> None:
    """Put a ledger refusal next to the field it concerns, or at the top of the form."""
    if isinstance(error, (ledger.InvalidAmount, ledger.LimitExceeded)) and amount_field in form:
        form[amount_field].errors.append(str(error))
    elif isinstance(error, ledger.InvalidDescription) and "description" in form:
        form["description"].errors.append(str(error))
    elif isinstance(error, ledger.ReasonRequired) and "reason" in form:
        form["reason"].errors.append(str(error))
    else:
        form.form_errors.append(str(error))


# ---------------------------------------------------------------- desk and customers


@bp.app_context_processor
def approvals_waiting() -> dict:
    """Staff pages show, beside "Teller desk" in the menu, how many requests wait on them."""
    if not (current_user.is_authenticated and current_user.role in Role.STAFF):
        return {}
    return {"approvals_waiting": services.waiting_for(_me())}


@bp.route("/")
@staff_only
def desk():
    """The teller's desk: search, today's counter postings, the till's cash, what waits."""
    me = _me()
    till = ledger.find_till(me)
    return render_template("teller/desk.html", day=services.desk_day(me),
                           till_number=ledger.till_number(me), cash=ledger.cash_held(till))


@bp.route("/customers/")
@staff_only
def customers():
    """Search customers by email, phone, name or account number."""
    query = request.args.get("q", "").strip()[:100]
    page = db.paginate(directory.customer_search(query), per_page=PER_PAGE, error_out=False)
    return render_template("teller/customers.html", query=query, page=page)


@bp.route("/customers/<int:user_id>/")
@staff_only
def customer(user_id: int):
    """A customer's details, verification state, accounts and recent activity."""
    # Staff and unknown ids alike: 404.
    person = db.first_or_404(services.customer_by_id(user_id))
    return _render_customer(person, FactorResetForm(formdata=None))


def _render_customer(person: User, reset_form: FactorResetForm, status: int = 200,
                     reset_error: str | None = None):
    return render_template("teller/customer.html", person=person, verify_form=ConfirmForm(),
                           activity=ledger.latest_activity(person, limit=20),
                           reset_form=reset_form, reset_error=reset_error,
                           pending_reset=services.pending_reset_of(person),
                           reset_needs_approval=services.reset_needs_approval(person),
                           threshold=ledger.approval_threshold()), status


@bp.route("/customers/<int:user_id>/reset-second-factor/", methods=["POST"])
@staff_only
def reset_second_factor(user_id: int):
    """Remove a customer's second factors (identity checked at the counter), or above the
    policy ask an admin to."""
    person = db.first_or_404(services.customer_by_id(user_id))
    form = FactorResetForm()
    if not form.validate_on_submit():
        return _render_customer(person, form, 400)
    try:
        request_made = services.reset_second_factor(person, _me(), form.reason.data)
    except services.ResetRefused as refusal:
        return _render_customer(person, form, 409, reset_error=refusal.message)
    if request_made is None:
        flash(gettext("%(name)s's second factor is reset: every session has ended and they "
                      "have been emailed. They set up a new one at their next sign-in.",
                      name=person.full_name), "success")
    else:
        flash(gettext("%(name)s's accounts hold more than %(threshold)s: the reset waits for "
                      "an admin's approval.", name=person.full_name,
                      threshold=format_money(ledger.approval_threshold())), "warning")
    return redirect(url_for(".customer", user_id=person.id), code=303)


@bp.route("/resets/<int:request_id>/<any(approve, reject):decision>/", methods=["POST"])
@admin_only
def decide_reset(request_id: int, decision: str):
    """Approve (carry out) or reject a waiting second-factor reset."""
    waiting = db.get_or_404(FactorResetRequest, request_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        if decision == "approve":
            services.approve_reset(waiting, _me())
        else:
            services.reject_reset(waiting, _me())
    except services.ResetRefused as refusal:
        flash(refusal.message, "error")
    else:
        flash(gettext("The second factor of %(name)s is reset.", name=waiting.customer.full_name)
              if decision == "approve" else
              gettext("The reset for %(name)s is rejected: nothing changed.",
                      name=waiting.customer.full_name), "success")
    return redirect(url_for(".approvals"), code=303)


@bp.route("/customers/<int:user_id>/verify/", methods=["POST"])
@staff_only
def verify(user_id: int):
    """Mark the customer's identity as checked at the counter."""
    person = db.first_or_404(services.customer_by_id(user_id))
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if services.verify_customer(person, _me()):
        flash(gettext("%(name)s is now verified.", name=person.full_name), "success")
    else:
        flash(gettext("%(name)s was already verified.", name=person.full_name), "info")
    return redirect(url_for(".customer", user_id=person.id), code=303)


# ---------------------------------------------------------------- cash at the counter


@bp.route("/accounts/<account_number>/deposit/", methods=["GET", "POST"])
@staff_only
def deposit(account_number: str):
    """Take cash into the teller's till and credit the customer's account."""
    return _counter_posting(account_number, PendingPostingKind.DEPOSIT)


@bp.route("/accounts/<account_number>/withdraw/", methods=["GET", "POST"])
@staff_only
def withdraw(account_number: str):
    """Pay cash out of the teller's till and debit the customer's account."""
    return _counter_posting(account_number, PendingPostingKind.WITHDRAWAL)


def _counter_posting(account_number: str, kind: str):
    account = db.first_or_404(ledger.customer_accounts_numbered(account_number))
    form = CounterPostingForm()
    if form.validate_on_submit():
        try:
            result = ledger.teller_posting(kind, account, form.amount.amount,
                                           form.description.data, _me(),
                                           idempotency_key=form.key)
        except ledger.LedgerError as error:
            _show_error(form, error)
        else:
            if isinstance(result, ledger.Requested):
                flash(_requested_message(result), "warning" if result.replayed else "success")
                return redirect(url_for(".approvals"), code=303)
            deposit = kind == PendingPostingKind.DEPOSIT
            if result.replayed:
                flash(gettext("This form was already submitted: the deposit was posted once, "
                              "shown below.") if deposit else
                      gettext("This form was already submitted: the withdrawal was posted once, "
                              "shown below."), "warning")
            else:
                flash(gettext("Deposit posted.") if deposit else gettext("Withdrawal posted."),
                      "success")
            return redirect(url_for(".entry", reference=result.reference), code=303)
    return render_template("teller/posting.html", form=form, account=account, kind=kind,
                           threshold=ledger.approval_threshold())


def _requested_message(result: ledger.Requested) -> str:
    if result.replayed:
        return gettext("This form was already submitted: the request is waiting for approval.")
    threshold = format_amount(ledger.approval_threshold())
    if result.pending.kind == PendingPostingKind.DEPOSIT:
        return gettext("The amount is above %(threshold)s: the deposit waits for an admin's "
                       "approval. No money has moved yet.", threshold=threshold)
    return gettext("The amount is above %(threshold)s: the withdrawal waits for an admin's "
                   "approval. No money has moved yet.", threshold=threshold)


@bp.route("/entries/<reference>/")
@staff_only
def entry(reference: str):
    """One journal entry, its legs and (for admins) the reversal form."""
    posted = db.first_or_404(ledger.entry_by_reference(reference))
    return render_template("teller/entry.html", entry=posted, form=ReasonForm(),
                           reversal=ledger.reversal_of(posted))


@bp.route("/entries/<reference>/reverse/", methods=["POST"])
@admin_only
def reverse(reference: str):
    """Reverse a posted entry with a compensating entry (the original is never edited)."""
    posted = db.first_or_404(ledger.entry_by_reference(reference))
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            posting = ledger.reverse_entry(posted, form.reason.data, _me())
        except ledger.LedgerError as error:
            _show_error(form, error)
        else:
            flash(gettext("Entry reversed."), "success")
            return redirect(url_for(".entry", reference=posting.reference), code=303)
    return render_template("teller/entry.html", entry=posted, form=form,
                           reversal=ledger.reversal_of(posted))


# ---------------------------------------------------------------- freezes


@bp.route("/accounts/<account_number>/freeze/", methods=["GET", "POST"])
@staff_only
def freeze(account_number: str):
    """Freeze an account (no debit or credit) with a reason."""
    return _status_change(account_number, freeze=True)


@bp.route("/accounts/<account_number>/unfreeze/", methods=["GET", "POST"])
@staff_only
def unfreeze(account_number: str):
    """Make a frozen account active again, with a reason."""
    return _status_change(account_number, freeze=False)


def _status_change(account_number: str, *, freeze: bool):
    account = db.first_or_404(ledger.customer_accounts_numbered(account_number))
    form = ReasonForm()
    if form.validate_on_submit():
        change = ledger.freeze_account if freeze else ledger.unfreeze_account
        try:
            change(account, form.reason.data, _me())
        except ledger.LedgerError as error:
            _show_error(form, error)
        else:
            flash(gettext("Account %(number)s is now %(status)s.", number=account.account_number,
                          status=status_label(account.status)), "success")
            return redirect(url_for(".customer", user_id=account.owner_id), code=303)
    return render_template("teller/status_change.html", form=form, account=account,
                           freeze=freeze, frozen=account.status == AccountStatus.FROZEN)


# ---------------------------------------------------------------- holds


@bp.route("/accounts/<account_number>/holds/", methods=["GET", "POST"])
@staff_only
def holds(account_number: str):
    """An account's holds; place a new one."""
    account = db.first_or_404(ledger.customer_accounts_numbered(account_number))
    form = HoldForm()
    if form.validate_on_submit():
        try:
            hold = ledger.place_hold(account, form.amount.amount, form.reason.data,
                                     _end_of_day(form.until.data), _me())
        except ledger.LedgerError as error:
            _show_error(form, error)
        else:
            flash(gettext("%(amount)s is on hold on %(number)s.",
                          amount=format_money(hold.amount), number=account.account_number),
                  "success")
            return redirect(url_for(".holds", account_number=account.account_number), code=303)
    return _render_holds(account, form)


def _render_holds(account, form, error: str | None = None):
    return render_template("teller/holds.html", account=account, form=form,
                           release_form=ReleaseForm(), error=error,
                           holds=ledger.hold_history(account), now=now_utc(),
                           available=ledger.available_balance(account))


def _end_of_day(text: str | None):
    """``YYYY-MM-DD`` → the end of that day in the bank's time zone (a hold's expiry)."""
    try:
        day = date.fromisoformat((text or "").strip())
    except ValueError:
        raise ledger.HoldError(gettext("Give the last day of the hold as YYYY-MM-DD.")) from None
    return day_start_utc(day + timedelta(days=1))


@bp.route("/holds/<int:hold_id>/release/", methods=["POST"])
@staff_only
def release_hold(hold_id: int):
    """Release a hold before it expires."""
    hold = db.get_or_404(Hold, hold_id)
    if not ReleaseForm().validate_on_submit():
        abort(400)
    try:
        ledger.release_hold(hold.id, _me())
    except ledger.LedgerError as error:
        return _render_holds(hold.account, HoldForm(formdata=None), error=str(error)), 409
    flash(gettext("The hold of %(amount)s is released.", amount=format_money(hold.amount)),
          "success")
    return redirect(url_for(".holds", account_number=hold.account.account_number), code=303)


# ---------------------------------------------------------------- maker-checker


@bp.route("/approvals/")
@staff_only
def approvals():
    """Pending counter postings: all of them for admins, a teller's own for tellers."""
    return _render_approvals()


def _render_approvals(errors: dict[int, str] | None = None):
    checker = current_user.role == Role.ADMIN
    page = db.paginate(services.pending_requests(_me(), everyone=checker),
                       per_page=PER_PAGE, error_out=False)
    return render_template("teller/approvals.html", page=page, checker=checker,
                           errors=errors or {},
                           reject_form=ReasonForm(), decide_form=ConfirmForm(),
                           resets=db.session.scalars(services.pending_resets(
                               requested_by=None if checker else _me())).all(),
                           decided=services.recent_decisions(_me(), everyone=checker))


@bp.route("/approvals/<int:pending_id>/")
@admin_only
def review(pending_id: int):
    """The confirm step: whose money, how much, who asked; then one button approves."""
    pending = db.get_or_404(PendingPosting, pending_id)
    return render_template("teller/review.html", pending=pending, account=pending.account,
                           form=ApproveForm(amount=str(pending.amount)),
                           available=ledger.available_balance(pending.account))


@bp.route("/approvals/<int:pending_id>/approve/", methods=["POST"])
@admin_only
def approve(pending_id: int):
    """Approve a pending request from its review page: only now is it posted."""
    pending = db.get_or_404(PendingPosting, pending_id)
    form = ApproveForm()
    if not form.validate_on_submit():
        abort(400)
    if form.amount.data != str(pending.amount):
        flash(gettext("Review the request before approving it: nothing was posted."), "warning")
        return redirect(url_for(".review", pending_id=pending.id), code=303)
    try:
        posting = ledger.approve_posting(pending, _me())
    except ledger.LedgerError as error:
        return _render_approvals({pending.id: str(error)})
    flash(gettext("Request #%(id)s approved and posted.", id=pending.id), "success")
    return redirect(url_for(".entry", reference=posting.reference), code=303)


@bp.route("/approvals/<int:pending_id>/reject/", methods=["POST"])
@admin_only
def reject(pending_id: int):
    """Reject a pending request with a reason; no money moves."""
    pending = db.get_or_404(PendingPosting, pending_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _render_approvals({pending.id: " ".join(map(str, form.reason.errors))
                                  or gettext("Give a reason.")})
    try:
        ledger.reject_posting(pending, _me(), form.reason.data)
    except ledger.LedgerError as error:
        return _render_approvals({pending.id: str(error)})
    flash(gettext("Request #%(id)s rejected.", id=pending.id), "success")
    return redirect(url_for(".approvals"), code=303)


# ---------------------------------------------------------------- tills


@bp.route("/tills/")
@admin_only
def tills():
    """Every teller's till and the cash it holds."""
    return render_template("teller/tills.html", tills=services.tills_overview(),
                           vault=ledger.internal_account())


@bp.route("/tills/<int:user_id>/allocate/", methods=["GET", "POST"])
@admin_only
def allocate(user_id: int):
    """Move cash from the vault into a teller's till."""
    staff = db.first_or_404(sa.select(User).where(User.id == user_id,
                                                  User.role.in_(Role.STAFF)))
    return _cash_movement(staff, allocate=True)


@bp.route("/tills/<int:user_id>/settle/", methods=["GET", "POST"])
@admin_only
def settle(user_id: int):
    """Return cash from a teller's till to the vault (also once they are no longer staff)."""
    return _cash_movement(db.first_or_404(services.till_holder(user_id)), allocate=False)


def _cash_movement(teller: User, *, allocate: bool):
    till = ledger.find_till(teller)  # showing the form writes nothing (no till yet: zero cash)
    form = CashForm()
    if form.validate_on_submit():
        move = ledger.allocate_cash if allocate else ledger.settle_cash
        try:
            till = till or ledger.till_for(teller)
            posting = move(till, form.amount.amount, _me(), idempotency_key=form.key)
        except ledger.LedgerError as error:
            _show_error(form, error)
        else:
            done = gettext("Cash allocated.") if allocate else gettext("Cash settled.")
            flash(gettext("Already posted: %(what)s", what=done) if posting.replayed else done,
                  "success")
            return redirect(url_for(".tills"), code=303)
    return render_template("teller/cash.html", form=form, teller=teller,
                           till_number=ledger.till_number(teller), cash=ledger.cash_held(till),
                           allocate=allocate)


@bp.route("/till/close/", methods=["GET", "POST"])
@staff_only
def close_shift():
    """Count the till, book any over/short and settle the cash to the vault."""
    till = ledger.find_till(_me())  # showing the form writes nothing (no till yet: zero cash)
    form = CloseShiftForm()
    if form.validate_on_submit():
        try:
            till = till or ledger.till_for(_me())
            closed = ledger.close_shift(till, form.counted.amount, _me(),
                                        idempotency_key=form.key)
        except ledger.LedgerError as error:
            _show_error(form, error, amount_field="counted")
        else:
            flash(_close_message(closed), "success" if not closed.difference else "warning")
            return redirect(url_for(".desk"), code=303)
    return render_template("teller/close_shift.html", form=form,
                           till_number=ledger.till_number(_me()), cash=ledger.cash_held(till))


def _close_message(closed: ledger.ShiftClose) -> str:
    figures = {"expected": format_money(closed.expected), "counted": format_money(closed.counted),
               "difference": format_money(abs(closed.difference))}
    if closed.difference > 0:
        text = gettext("Expected %(expected)s, counted %(counted)s: cash over by "
                       "%(difference)s.", **figures)
    elif closed.difference < 0:
        text = gettext("Expected %(expected)s, counted %(counted)s: cash short by "
                       "%(difference)s.", **figures)
    else:
        text = gettext("Expected %(expected)s, counted %(counted)s: the till balanced.",
                       **figures)
    prefix = (gettext("This shift was already closed.") if closed.replayed
              else gettext("Shift closed."))
    return f"{prefix} {text}"


# ---------------------------------------------------------------- loan applications


@bp.route("/loans/")
@staff_only
def loan_queue():
    """Loan applications waiting for a decision (or, approved, for their payout)."""
    return render_template("teller/loans.html", loans=lending.queue(_me()),
                           threshold=lending.approval_threshold())


@bp.route("/loans/<int:loan_id>/")
@staff_only
def loan_review(loan_id: int):
    """One application or loan: the borrower, the terms, the schedule, the decision forms."""
    return _loan_page(db.first_or_404(lending.loan_numbered(loan_id)), ReasonForm())


def _loan_page(loan: Loan, form: ReasonForm, status: int = 200):
    today = lending.lending_today()
    return render_template("teller/loan.html", loan=loan, form=form, confirm=ConfirmForm(),
                           today=today, owed=lending.owed_on(loan, today),
                           rows=lending.instalments_of(loan),
                           threshold=lending.approval_threshold()), status


@bp.route("/loans/<int:loan_id>/<any(approve, disburse):decision>", methods=["POST"])
@staff_only
def loan_approve(loan_id: int, decision: str):
    """Approve and pay out (or pay out an approved loan the account refused before)."""
    loan = db.first_or_404(lending.loan_numbered(loan_id))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        (lending.approve if decision == "approve" else lending.disburse)(loan, _me())
    except ledger.LedgerError as refusal:
        form = ReasonForm(formdata=None)
        form.form_errors.append(str(refusal))
        return _loan_page(loan, form, 422)
    flash(gettext("Loan %(number)s approved and paid out.", number=loan.number), "success")
    return redirect(url_for(".loan_review", loan_id=loan.id), code=303)


@bp.route("/loans/<int:loan_id>/<any(reject, 'write-off'):decision>", methods=["POST"])
@staff_only
def loan_reject(loan_id: int, decision: str):
    """Reject an application, or (admins) write a loan off; a reason either way."""
    loan = db.first_or_404(lending.loan_numbered(loan_id))
    form = ReasonForm()
    if not form.validate_on_submit():
        return _loan_page(loan, form, 422)
    try:
        if decision == "reject":
            lending.reject(loan, _me(), form.reason.data)
        else:
            lending.write_off(loan, _me(), form.reason.data)
    except ledger.LedgerError as refusal:
        _show_error(form, refusal)
        return _loan_page(loan, form, 422)
    flash(gettext("Loan %(number)s: %(status)s.", number=loan.number,
                  status=gettext(loan.status_label)), "success")
    return redirect(url_for(".loan_review", loan_id=loan.id), code=303)


@bp.route("/loans/portfolio/")
@staff_only
def loan_portfolio():
    """The loan portfolio today: by status, outstanding, PAR1/30/90, this month's repayments."""
    return render_template("teller/loan_portfolio.html",
                           report=lending_portfolio.portfolio(lending.lending_today()),
                           status_names=LoanStatus.LABELS)

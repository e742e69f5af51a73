"""Customer views: dashboard, accounts, deposits, withdrawals and transfers."""
from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from bankapp import audit, ledger
from bankapp.audit import Action, TargetType
from bankapp.banking.forms import CashForm, LimitForm, OpenAccountForm, TransferForm
from bankapp.identity import factors, passkeys, stepup
from bankapp.extensions import db
from bankapp.platform.formatting import format_money
from bankapp.models import Account, AccountStatus, AccountType
from bankapp.payments.payees import masked_name, payee_of, payees_of

bp = Blueprint("accounts", __name__, template_folder="templates")


HISTORY_PAGE_SIZE = 25


@bp.route("/dashboard/")
@login_required
def dashboard():
    """The customer's accounts, balances and latest activity (staff start at their desk)."""
    if current_user.is_staff:
        return redirect(url_for("teller.desk"))
    accounts = current_user.accounts
    return render_template(
        "accounts/dashboard.html",
        accounts=accounts,
        total=sum((a.balance for a in accounts), start=Decimal("0.00")),
        activity=ledger.latest_activity(current_user),
        open_form=OpenAccountForm(),
    )


@bp.route("/accounts/open/", methods=["GET", "POST"])
@login_required
def open_account():
    """Open a savings or checking account."""
    form = OpenAccountForm()
    if form.validate_on_submit():
        account = ledger.open_account(current_user, form.account_type.data)
        flash(gettext("Your %(type)s account %(number)s is open.",
                      type=gettext(account.type_label).lower(), number=account.account_number),
              "success")
        return redirect(url_for("accounts.detail", account_number=account.account_number))
    return render_template("accounts/open.html", form=form)


@bp.route("/accounts/<account_number:account_number>/")
@login_required
def detail(account_number: str):
    """Balance, status and the history of one account, newest first."""
    # Someone else's account is as unknown as a missing one: 404 either way.
    account = db.first_or_404(sa.select(Account).where(
        Account.account_number == account_number, Account.owner_id == current_user.id))
    page = db.paginate(ledger.customer_history(account), per_page=HISTORY_PAGE_SIZE,
                       error_out=False)
    return render_template("accounts/detail.html", account=account, page=page,
                           available=ledger.available_balance(account),
                           holds=ledger.active_holds(account))


@bp.route("/accounts/<account_number:account_number>/deposit/", methods=["GET", "POST"],
          defaults={"operation": "deposit"}, endpoint="deposit")
@bp.route("/accounts/<account_number:account_number>/withdraw/", methods=["GET", "POST"],
          defaults={"operation": "withdraw"}, endpoint="withdraw")
@login_required
def cash(account_number: str, operation: str):
    """Deposit into, or withdraw from, one of the customer's accounts."""
    account = db.first_or_404(sa.select(Account).where(
        Account.account_number == account_number, Account.owner_id == current_user.id))
    form = CashForm()
    if form.validate_on_submit():
        post = ledger.deposit if operation == "deposit" else ledger.withdraw
        try:
            with objects_kept_after_commit():  # the redirect needs nothing read again
                posting = post(account, form.amount.amount, form.description.data,
                               current_user, idempotency_key=form.idempotency_key.data)
        except ledger.LedgerError as error:
            form.form_errors.append(str(error))
        else:
            done = (gettext("Deposit of %(amount)s posted.", amount=format_money(form.amount.amount))
                    if operation == "deposit" else
                    gettext("Withdrawal of %(amount)s posted.",
                            amount=format_money(form.amount.amount)))
            flash_posting(posting, done)
            return redirect(url_for("accounts.detail", account_number=account.account_number))
    return render_template("accounts/cash.html", form=form, account=account, operation=operation)


@bp.route("/accounts/transfer/", methods=["GET", "POST"])
@login_required
def transfer():
    """Send money to any active account by its number, after a confirmation step."""
    form = TransferForm()
    if not form.is_submitted():
        form.from_account.data = request.args.get("from", form.from_account.data)
        form.payee.data = request.args.get("payee", "")
        return _transfer_form(form)
    # Both accounts in one query. The one valid source is the named account when it is this
    # customer's and active, as the form offers only those (with labels when it is shown).
    typed = form.to_account.data
    named = ledger.find_customer_accounts(form.from_account.data, typed)
    source = named.get(form.from_account.data)
    offered = source is not None and source.owner_id == current_user.id and source.is_active
    form.from_account.choices = [source.account_number] if offered else []
    if not form.validate_on_submit() or not _choose_destination(form):
        return _transfer_form(form)
    if form.to_account.data == typed:
        destination = named.get((typed or "").strip().upper())
    else:  # a saved payee's account
        destination = ledger.find_customer_account(form.to_account.data)
    problem = _transfer_problem(source, destination)
    if problem:
        form.to_account.errors = [*form.to_account.errors, problem]
        return _transfer_form(form)
    if "edit" in request.form:
        return _transfer_form(form)
    step_up = stepup.step_up_for(current_user, destination, form.amount.amount)
    if form.confirmed.data != "yes":
        return _confirmation(form, source, destination, step_up)
    # A confirmed form sent again (same one-time key) replays its posting: no new code.
    if step_up and ledger.find_posting(current_user, form.idempotency_key.data) is None:
        refused = _refuse_without_approval(form, source, destination, step_up)
        if refused is not None:
            return refused
    try:
        with objects_kept_after_commit():
            posting = ledger.transfer(source, destination, form.amount.amount,
                                      form.description.data, current_user,
                                      idempotency_key=form.idempotency_key.data)
    except ledger.LedgerError as error:
        form.form_errors.append(str(error))
        return _transfer_form(form)
    flash_posting(posting, gettext("Transfer of %(amount)s to %(number)s posted.",
                                   amount=format_money(form.amount.amount),
                                   number=destination.account_number))
    return redirect(url_for("accounts.detail", account_number=source.account_number))


def _transfer_form(form: TransferForm):
    """The transfer page: the customer's active accounts with their balances, and their
    saved payees."""
    sources = [a for a in current_user.accounts if a.status == AccountStatus.ACTIVE]
    form.from_account.choices = [
        SelectChoice(a.account_number,
                     f"{a.account_number} · {gettext(a.type_label)} · {format_money(a.balance)}")
        for a in sources
    ]
    saved = payees_of(current_user)
    form.payee.choices = [SelectChoice("", gettext("Another account: enter its number"))] + [
        SelectChoice(str(p.id), f"{p.nickname} · {p.account.account_number}") for p in saved]
    if not saved:
        form.to_account.label.text = gettext("To account number")
    return render_template("accounts/transfer.html", form=form, has_sources=bool(sources),
                           has_payees=bool(saved))


@contextmanager
def objects_kept_after_commit():
    """Commits inside keep what the session has loaded instead of expiring it.

    After a posting the view only needs numbers it already holds (the accounts', the
    entry's reference, the user's): without this, reading them again after the commit costs
    a second connection checkout and one query each. Nothing after the block may rely on a
    balance read before the commit.
    """
    session = db.session()
    expiring, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = expiring


LOCKED_STEP_UP = _l("Too many wrong codes: payments that need a code cannot be approved for "
                    "%(minutes)s minutes. Transfers between your own accounts still work.")
CHANGED_DETAILS = _l("The transfer details are not the ones this page showed (or the page "
                     "expired): check them and enter a new code.")
PASSKEY_REFUSED = _l("Your passkey did not approve this transfer (the request may have "
                     "expired, been used already or been made for other details): nothing was "
                     "sent. Try again, or enter a code.")


def _locked_message() -> str:
    return str(LOCKED_STEP_UP) % {"minutes": current_app.config["MFA_LOCKOUT_MINUTES"]}


def _confirmation(form: TransferForm, source: Account, destination: Account,
                  step_up: stepup.StepUp, status: int = 200):
    """The confirmation page; with the code field, and the signed details it approves, when
    the transfer needs step-up."""
    form.code.data = form.passkey_assertion.data = ""  # a code is never shown back
    approval, has_passkey = None, False
    if step_up:
        approval = stepup.approval_token(current_user, source, destination, form.amount.amount,
                                         form.idempotency_key.data)
        has_passkey = factors.passkey_count(current_user) > 0
        if factors.is_locked(current_user) and not form.form_errors:
            form.form_errors.append(_locked_message())
    return render_template("accounts/transfer_confirm.html", form=form, source=source,
                           destination=destination, payee=masked_name(destination),
                           step_up=step_up, approval=approval, has_passkey=has_passkey), status


def _refuse_without_approval(form: TransferForm, source: Account, destination: Account,
                             step_up: stepup.StepUp):
    """The confirmation page again unless this POST carries a good code (or passkey
    assertion) for exactly the details its page showed; None once the transfer is approved."""
    user = current_user._get_current_object()
    amount, key = form.amount.amount, form.idempotency_key.data
    assertion = form.passkey_assertion.data or None
    if not stepup.approval_matches(form.approval.data, user, source, destination, amount, key):
        form.form_errors.append(CHANGED_DETAILS)  # the code is not even checked
        return _confirmation(form, source, destination, step_up)
    if not form.code.data and assertion is None:
        form.code.errors.append(gettext("Enter the code."))
        return _confirmation(form, source, destination, step_up)
    try:
        stepup.approve_transfer(user, form.code.data, source=source, destination=destination,
                                amount=amount, idempotency_key=key, step_up=step_up,
                                passkey_assertion=assertion)
    except (factors.SecondFactorRefused, passkeys.PasskeyRefused) as refusal:
        if ledger.find_posting(user, key) is not None:
            return None  # a double click: its twin used the code and posted; replay that
        if isinstance(refusal, passkeys.PasskeyRefused):
            form.form_errors.append(PASSKEY_REFUSED)
            return _confirmation(form, source, destination, step_up)
        if refusal.locked:
            form.form_errors.append(_locked_message())
            return _confirmation(form, source, destination, step_up, status=429)
        form.code.errors.append(refusal.message)
        return _confirmation(form, source, destination, step_up)
    return None


def _choose_destination(form: TransferForm) -> bool:
    """Put the chosen payee's number in ``to_account``; False (with an error) when the form
    names neither a payee of this customer nor a number."""
    if form.payee.data:
        payee = payee_of(current_user, int(form.payee.data)) if form.payee.data.isdigit() else None
        if payee is None:
            form.payee.errors = [*form.payee.errors, gettext("Choose one of your saved payees.")]
            return False
        form.to_account.data, form.payee.data = payee.account.account_number, ""
    if not (form.to_account.data or "").strip():
        form.to_account.errors = [*form.to_account.errors,
                                  gettext("Enter the destination account number, or choose "
                                          "a saved payee.")]
        return False
    return True


def _transfer_problem(source: Account, destination: Account | None) -> str | None:
    """Why a transfer cannot go ahead, checked before asking the customer to confirm."""
    if destination is None:
        return str(ledger.UnknownAccount())
    if destination.id == source.id:
        return str(ledger.SameAccount())
    if destination.status != AccountStatus.ACTIVE:
        return gettext("That account cannot receive money.")
    return None


def flash_posting(posting: ledger.Posting, message: str) -> None:
    if posting.replayed:
        flash(gettext("This form was already submitted; nothing new was posted. "
                      "Reference %(reference)s.", reference=posting.reference), "warning")
    else:
        flash(gettext("%(message)s Reference %(reference)s.", message=message,
                      reference=posting.reference), "success")


@bp.app_template_global()
def account_type_label(account_type: str) -> str:
    return AccountType.LABELS.get(account_type, account_type)


@bp.route("/")
def home():
    """The front door: the dashboard for a logged-in user, the login page otherwise."""
    if current_user.is_authenticated:
        return redirect(url_for("accounts.dashboard"))
    return redirect(url_for("auth.login"))


@bp.route("/accounts/limits/", methods=["GET", "POST"])
@login_required
def limits():
    """The customer's daily outgoing limit: lower it at once, raise it in 24 h or with a code."""
    form = LimitForm()
    if form.validate_on_submit():
        try:
            change = ledger.set_own_limit(current_user, ledger.parse_limit(form.daily_limit.data),
                                          stepped_up=_limit_step_up(form.code.data))
        except (ledger.LedgerError, factors.SecondFactorRefused) as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        else:
            flash(gettext("Your daily limit becomes %(amount)s now.",
                          amount=format_money(change.limit)) if change.at_once
                  else gettext("Your daily limit becomes %(amount)s in 24 hours.",
                               amount=format_money(change.limit)), "success")
            return redirect(url_for("accounts.limits"), code=303)
    return render_template("accounts/limits.html", form=form,
                           status=ledger.limit_status(current_user))


def _limit_step_up(code: str | None) -> bool:
    """A raise typed with a code is approved at once when the code is right (audited)."""
    if not (code or "").strip() or not current_user.mfa_enabled:
        return False
    factor = factors.verify_second_factor(current_user, code)
    audit.record(Action.STEP_UP_SUCCESS, actor=current_user, target_type=TargetType.USER,
                 target_id=current_user.id, details={"for": "daily limit", "factor": factor})
    return True

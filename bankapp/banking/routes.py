"""Customer views: dashboard, accounts, deposits, withdrawals and transfers."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

from flask import (Blueprint, abort, flash, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict
from wtforms.fields.choices import SelectChoice

from bankapp import ledger
from bankapp.banking import services
from bankapp.banking.forms import (
    CashForm,
    HistoryFilterForm,
    LimitForm,
    OpenAccountForm,
    TransferForm,
)
from bankapp.identity import factors
from bankapp.extensions import db
from bankapp.platform.forms import show_errors
from bankapp.platform import database
from bankapp.platform.formatting import format_money
from bankapp.platform.urls import RECOVERY_QUERY
from bankapp.models import AccountStatus, AccountType
from bankapp.payments.payees import payees_of

bp = Blueprint("accounts", __name__, template_folder="templates")


HISTORY_PAGE_SIZE = 25


@bp.route("/dashboard/")
@login_required
def dashboard():
    """The customer's accounts, balances and latest activity (staff start at their desk)."""
    if current_user.is_staff:
        return redirect(url_for("teller.desk"))
    return render_template("accounts/dashboard.html", board=services.dashboard(current_user),
                           open_form=OpenAccountForm())


@bp.route("/accounts/open/", methods=["GET", "POST"])
@login_required
def open_account():
    """Open a savings or checking account."""
    form = OpenAccountForm()
    if form.validate_on_submit():
        try:
            account = ledger.open_account(current_user, form.account_type.data)
        except ledger.LedgerError as error:
            form.form_errors.append(str(error))
            return render_template("accounts/open.html", form=form), 422
        flash(gettext("Your new %(name)s %(number)s is open.",
                      name=gettext(account.type_name).lower(), number=account.account_number),
              "success")
        return redirect(url_for("accounts.detail", account_number=account.account_number))
    return render_template("accounts/open.html", form=form)


@bp.route("/accounts/<account_number:account_number>/")
@login_required
def detail(account_number: str):
    """Balance, status and the history of one account, newest first."""
    # Someone else's account is as unknown as a missing one: 404 either way.
    account = db.first_or_404(ledger.owned_account(current_user, account_number))
    search = HistoryFilterForm(request.args)
    wanted = ledger.HistoryFilter()
    if request.args and search.validate():
        wanted = services.history_filter(search.q.data, search.start.data, search.end.data,
                                         search.least.amount, search.most.amount,
                                         search.type.data)
    history = services.history_page(account, wanted, request.args.get("page", 1, type=int),
                                    HISTORY_PAGE_SIZE)
    holds, available = ledger.holds_and_available(account)
    return render_template("accounts/detail.html", account=account, page=history.page,
                           names=history.names, search=search, searched=wanted.active,
                           available=available, holds=holds)


@bp.route("/accounts/<account_number:account_number>/deposit/", methods=["GET", "POST"],
          defaults={"operation": "deposit"}, endpoint="deposit")
@bp.route("/accounts/<account_number:account_number>/withdraw/", methods=["GET", "POST"],
          defaults={"operation": "withdraw"}, endpoint="withdraw")
@login_required
def cash(account_number: str, operation: str):
    """Deposit into, or withdraw from, one of the customer's accounts."""
    if operation == "deposit" and not ledger.may_deposit(current_user.role):
        abort(404)  # production: deposits come from tellers, transfers and interest
    account = db.first_or_404(ledger.owned_account(current_user, account_number))
    form = CashForm()
    if form.validate_on_submit():
        post = ledger.deposit if operation == "deposit" else ledger.withdraw
        try:
            # The redirect needs nothing read again after the commit.
            with database.objects_kept_after_commit():
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


# The transfer the confirmation page shows, kept in the (signed) session between the form's
# POST and the page's GET: the fields as the form sent them.
PENDING_TRANSFER = "pending_transfer"
PENDING_FIELDS = ("from_account", "payee", "to_account", "amount", "description",
                  "idempotency_key")
# What a refused confirmation (a wrong code, changed details) says on the page it redirects
# to, once: the (field, message) pairs, and whether wrong codes have just locked approval.
CONFIRM_REFUSAL = "transfer_confirm_refusal"


@bp.route("/accounts/transfer/", methods=["GET", "POST"])
@login_required
def transfer():
    """Send money to any active account by its number, after a confirmation step.

    Post/Redirect/Get: the form's POST redirects to the confirmation page (a GET), a refused
    confirmation (a wrong code) back to it with the reason, and the confirmed POST to the
    account's page, so Back or reload never sends a form again nor shows a stale
    confirmation: once a transfer is sent or refused, the confirmation page is gone."""
    form = TransferForm()
    if not form.is_submitted():
        return _transfer_form(form, preselect=request.args)
    # The form offers one source: the named account, when it is this customer's and active.
    named = services.named_accounts(current_user, form.from_account.data, form.to_account.data)
    form.from_account.choices = [named.source.account_number] if named.source else []
    if not form.validate_on_submit():
        return _transfer_form(form)
    asked = _transfer_request(form)
    outcome = services.transfer(current_user._get_current_object(), asked, named)
    if outcome.page == services.CONFIRM:
        session[PENDING_TRANSFER] = {name: form[name].data or "" for name in PENDING_FIELDS}
        if outcome.errors:
            session[CONFIRM_REFUSAL] = {"errors": [[field, str(message)]
                                                   for field, message in outcome.errors],
                                        "too_many_codes": outcome.too_many_codes}
        # A recovery code typed (?with=recovery): the page keeps its box on the full keyboard.
        key, value = RECOVERY_QUERY
        keep = {key: value} if request.args.get(key) == value else {}
        return redirect(url_for("accounts.confirm_transfer", **keep), code=303)
    session.pop(PENDING_TRANSFER, None)  # sent, refused or being changed: no page confirms it
    if outcome.page != services.POSTED:
        return _transfer_page(form, outcome)
    flash_posting(outcome.posting, gettext("%(amount)s sent to %(name)s.",
                                           amount=format_money(form.amount.amount),
                                           name=outcome.holder))
    return redirect(url_for("accounts.detail", account_number=outcome.source.account_number),
                    code=303)


@bp.route("/accounts/transfer/confirm/")
@login_required
def confirm_transfer():
    """The confirmation page of the transfer the form just checked (with why its last
    confirmation was refused, once); once it is sent (or when there is none) the form."""
    pending = session.get(PENDING_TRANSFER)
    refusal = session.pop(CONFIRM_REFUSAL, None)
    if not pending:
        return redirect(url_for("accounts.transfer"), code=303)
    form = TransferForm(formdata=MultiDict({**pending, "csrf_token": generate_csrf()}))
    named = services.named_accounts(current_user, form.from_account.data, form.to_account.data)
    form.from_account.choices = [named.source.account_number] if named.source else []
    outcome = (services.transfer(current_user._get_current_object(), _transfer_request(form),
                                 named) if form.validate() else None)
    if outcome is None or outcome.page != services.CONFIRM:
        # Things changed since (the account closed, the payee removed): the form says what.
        session.pop(PENDING_TRANSFER, None)
        return _transfer_page(form, outcome) if outcome else _transfer_form(form)
    if refusal:  # what the refused POST said, which includes what this page would add
        outcome = dataclasses.replace(
            outcome, errors=tuple((field, message) for field, message in refusal["errors"]),
            too_many_codes=refusal["too_many_codes"])
    return _transfer_page(form, outcome)


def _transfer_request(form: TransferForm) -> services.TransferRequest:
    return services.TransferRequest(
        form.from_account.data, form.to_account.data, form.payee.data, form.amount.amount,
        form.description.data, form.idempotency_key.data, edit="edit" in request.form,
        confirmed=form.confirmed.data == "yes", approval=form.approval.data,
        code=form.code.data, passkey_assertion=form.passkey_assertion.data or None)


def _transfer_page(form: TransferForm, outcome: services.TransferOutcome):
    """The form again, or the confirmation page, with the errors the transfer met."""
    show_errors(form, outcome.errors)
    if outcome.page == services.FORM:
        return _transfer_form(form)
    form.code.data = form.passkey_assertion.data = ""  # a code is never shown back
    status = 429 if outcome.too_many_codes else 200
    return render_template("accounts/transfer_confirm.html", form=form, source=outcome.source,
                           destination=outcome.destination, payee=outcome.holder,
                           step_up=outcome.step_up, approval=outcome.approval,
                           has_passkey=outcome.has_passkey), status


def _transfer_form(form: TransferForm, preselect=None):
    """The transfer page: the customer's active accounts with their balances, and their
    saved payees; ``preselect`` (a link's ``?from=…&payee=…``) chooses a source or a payee."""
    if preselect is not None:
        form.from_account.data = preselect.get("from", form.from_account.data)
        form.payee.data = preselect.get("payee", "")
    sources = [a for a in current_user.accounts if a.status == AccountStatus.ACTIVE]
    available = ledger.available_balances(sources) if sources else {}
    form.from_account.choices = [SelectChoice(a.account_number, a.account_number)
                                 for a in sources]
    if not form.from_account.data and sources:
        form.from_account.data = sources[0].account_number
    saved = payees_of(current_user)
    # Where money most often goes first: the customer's own accounts, then their payees.
    own = sources if len(sources) > 1 else []
    form.payee.choices = ([SelectChoice(a.account_number, a.account_number) for a in own]
                          + [SelectChoice(str(p.id), p.nickname) for p in saved]
                          + [SelectChoice("", "")])
    form.payee.data = form.payee.data or ""
    if not (own or saved):
        form.to_account.label.text = gettext("To account number")
    return render_template("accounts/transfer.html", form=form, sources=sources,
                           available=available, own=own, payees=saved,
                           has_sources=bool(sources), has_choices=bool(own or saved))


def flash_posting(posting: ledger.Posting, message: str) -> None:
    """Say what was posted (a replayed form: that nothing new was). The entry's 32-character
    reference is not part of the sentence: the statement lists it."""
    if posting.replayed:
        flash(gettext("This form was already submitted; nothing new was posted."), "warning")
    else:
        flash(message, "success")


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
            change = services.change_daily_limit(current_user._get_current_object(),
                                                 form.daily_limit.data, form.code.data)
        except (ledger.LedgerError, factors.SecondFactorRefused) as error:
            form.form_errors.append(str(error))
        else:
            flash(gettext("Your daily limit becomes %(amount)s now.",
                          amount=format_money(change.limit)) if change.at_once
                  else gettext("Your daily limit becomes %(amount)s in 24 hours.",
                               amount=format_money(change.limit)), "success")
            return redirect(url_for("accounts.limits"), code=303)
    return render_template("accounts/limits.html", form=form,
                           status=ledger.limit_status(current_user))

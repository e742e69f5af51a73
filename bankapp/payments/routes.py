"""Customer views: saved payees, scheduled payments and alert settings."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from bankapp import ledger
from bankapp.notifications import alerts
from bankapp.extensions import db
from bankapp.ledger.fields import ConfirmForm
from bankapp.platform.forms import show_errors
from bankapp.platform.formatting import format_money
from bankapp.ledger.amounts import parse_amount
from bankapp.models import Account, AccountStatus, Frequency, OrderStatus, ScheduledOrder
from bankapp.identity.security import recently_authenticated
from bankapp.identity.web import ask_for_password_again
from bankapp.payments import payees, services
from bankapp.payments.forms import (
    AlertSettingsForm,
    PayeeConfirmForm,
    PayeeLookupForm,
    PayeeRenameForm,
    ScheduledOrderForm,
)

bp = Blueprint("payments", __name__, template_folder="templates")


# ---------------------------------------------------------------- payees


@bp.route("/accounts/payees/", methods=["GET", "POST"])
@login_required
def payee_list():
    """The customer's payees; posting the form looks a number up for them to confirm."""
    form = PayeeLookupForm()
    if form.validate_on_submit():
        try:
            account, nickname = payees.look_up(current_user, form.account_number.data,
                                               form.nickname.data)
        except payees.PayeeRefused as refusal:
            _show_refusal(form, refusal)
            return _payee_page(form, refusal.status)
        confirm = PayeeConfirmForm(token=payees.confirmation_token(current_user, account,
                                                                  nickname))
        return render_template("payments/payee_confirm.html", form=confirm, account=account,
                               nickname=nickname, holder=payees.masked_name(account))
    return _payee_page(form)


def _payee_page(form, status: int = 200):
    return render_template("payments/payees.html", form=form,
                           payees=payees.payees_of(current_user)), status


def _show_refusal(form, refusal) -> None:
    show_errors(form, ((refusal.field, str(refusal)),))


@bp.route("/accounts/payees/confirm/", methods=["POST"])
@login_required
def payee_confirm():
    """Save the payee the confirmation page showed."""
    form = PayeeConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        payee = payees.add_confirmed(current_user, form.token.data)
    except payees.PayeeRefused as refusal:
        flash(str(refusal), "error")
        return redirect(url_for("payments.payee_list"))
    flash(gettext("“%(nickname)s” is saved: you can now pick it when you pay.",
                  nickname=payee.nickname), "success")
    return redirect(url_for("payments.payee_list"))


@bp.route("/accounts/payees/<int:payee_id>/rename/", methods=["GET", "POST"])
@login_required
def payee_rename(payee_id: int):
    """Give a payee another name."""
    # Another customer's payee is as unknown as a missing one: 404 either way.
    payee = db.first_or_404(payees.owned_payee(current_user, payee_id))
    form = PayeeRenameForm(nickname=payee.nickname)
    if form.validate_on_submit():
        try:
            payees.rename(current_user, payee, form.nickname.data)
        except payees.PayeeRefused as refusal:
            _show_refusal(form, refusal)
        else:
            flash(gettext("Payee renamed to “%(nickname)s”.", nickname=payee.nickname), "success")
            return redirect(url_for("payments.payee_list"))
    return render_template("payments/payee_rename.html", form=form, payee=payee)


@bp.route("/accounts/payees/<int:payee_id>/remove/", methods=["GET", "POST"])
@login_required
def payee_remove(payee_id: int):
    """Forget a payee, after a confirmation."""
    payee = db.first_or_404(payees.owned_payee(current_user, payee_id))
    form = ConfirmForm()
    if form.validate_on_submit():
        nickname = payee.nickname
        payees.remove(current_user, payee)
        flash(gettext("“%(nickname)s” is no longer a saved payee.", nickname=nickname),
              "success")
        return redirect(url_for("payments.payee_list"))
    return render_template("payments/payee_remove.html", form=form, payee=payee)


# ---------------------------------------------------------------- scheduled payments


@bp.route("/accounts/scheduled/")
@login_required
def scheduled_list():
    """The customer's scheduled payments, open ones first, with their next dates."""
    orders = db.session.scalars(
        sa.select(ScheduledOrder).where(ScheduledOrder.user_id == current_user.id)
        .order_by(ScheduledOrder.next_due_on.is_(None), ScheduledOrder.next_due_on,
                  ScheduledOrder.id.desc()))
    return render_template("payments/scheduled.html", orders=list(orders))


@dataclass(frozen=True)
class OrderChoices:
    """What the order form offers: the active accounts to pay from (with what is available in
    each), the saved payees and the customer's own accounts to pay to; the account behind each
    destination's value."""

    sources: list[Account]
    available: dict[int, Decimal]
    payees: list
    own: list[Account]
    destinations: dict[str, Account]


def _destination_choices() -> tuple[list, list[Account], dict[str, Account]]:
    """Payees first, then the customer's own accounts; and the account behind each value."""
    saved = payees.payees_of(current_user)
    accounts = {p.account.account_number: p.account for p in saved}
    own = []
    for account in current_user.accounts:
        if account.status != AccountStatus.CLOSED and account.account_number not in accounts:
            accounts[account.account_number] = account
            own.append(account)
    return saved, own, accounts


@bp.route("/accounts/scheduled/new/", methods=["GET", "POST"])
@login_required
def scheduled_new():
    """Set up a one-off payment on a future date, or a standing order."""
    form = ScheduledOrderForm()
    offered = _order_choices(form)
    if not form.validate_on_submit():
        return _order_form(form, offered)
    source = next((a for a in offered.sources if a.account_number == form.from_account.data),
                  None)
    destination = offered.destinations.get(form.to_account.data)
    outcome = services.schedule_payment(current_user._get_current_object(), source,
                                        destination, _order_request(form))
    if (order := outcome.order) is None:
        show_errors(form, outcome.errors)
        return _order_form(form, offered, needs_code=outcome.needs_code)
    flash(gettext("Scheduled: %(amount)s to %(number)s, first on %(day)s.",
                  amount=format_money(order.amount), number=destination.account_number,
                  day=order.next_due_on.isoformat()), "success")
    return redirect(url_for("payments.scheduled_detail", order_id=order.id), code=303)


def _order_choices(form: ScheduledOrderForm) -> OrderChoices:
    """Offer the customer's active accounts to pay from, their payees and accounts to pay
    to; the accounts behind the choices."""
    sources = [a for a in current_user.accounts if a.status == AccountStatus.ACTIVE]
    form.from_account.choices = [SelectChoice(a.account_number, a.account_number)
                                 for a in sources]
    if not form.is_submitted() and not form.from_account.data and sources:
        form.from_account.data = sources[0].account_number
    saved, own, destinations = _destination_choices()
    form.to_account.choices = [SelectChoice(number, number) for number in destinations]
    # Unknown numbers are answered by the service with a message, not WTForms' generic one.
    form.to_account.validate_choice = False
    available = ledger.available_balances(sources) if sources else {}
    return OrderChoices(sources, available, saved, own, destinations)


def _order_request(form: ScheduledOrderForm) -> services.OrderRequest:
    return services.OrderRequest(
        form.amount.amount, form.frequency.data, form.start_on.data,
        form.end_on.data, form.max_occurrences.data, form.description.data,
        form.idempotency_key.data, form.code.data)


def _order_form(form, offered: OrderChoices, needs_code: bool | None = None):
    form.code.data = ""  # a code is never shown back
    if needs_code is None:
        needs_code = current_user.mfa_enabled
    return render_template("payments/scheduled_new.html", form=form, offered=offered,
                           has_sources=bool(offered.sources), needs_code=needs_code)


@bp.route("/accounts/scheduled/<int:order_id>/")
@login_required
def scheduled_detail(order_id: int):
    """One order: its schedule, next dates and every occurrence (posted or failed, why)."""
    # Another customer's order is as unknown as a missing one: 404 either way.
    order = db.first_or_404(ledger.owned_order(current_user, order_id))
    schedule = ledger.Schedule.of(order)
    upcoming = (schedule.upcoming(order.next_due_on, order.occurrence_count, 3)
                if order.status == OrderStatus.ACTIVE else [])
    return render_template("payments/scheduled_detail.html", order=order, upcoming=upcoming,
                           occurrences=ledger.occurrences_of(order), form=ConfirmForm())


@bp.route("/accounts/scheduled/<int:order_id>/<any(pause, resume, cancel):change>/",
          methods=["POST"])
@login_required
def scheduled_change(order_id: int, change: str):
    """Pause, resume or cancel an order."""
    order = db.first_or_404(ledger.owned_order(current_user, order_id))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = current_user._get_current_object()
    try:
        if change == "pause":
            ledger.pause_order(order, user)
        elif change == "resume":
            ledger.resume_order(order, user, ledger.bank_today())
        else:
            ledger.cancel_order(order, user)
    except ledger.LedgerError as refusal:
        flash(str(refusal), "error")
    else:
        flash({"pause": gettext("The order is paused."),
               "resume": gettext("The order is running again."),
               "cancel": gettext("The order is cancelled.")}[change], "success")
    return redirect(url_for("payments.scheduled_detail", order_id=order.id))


@bp.app_template_global()
def frequency_text(order: ScheduledOrder) -> str:
    """``Monthly on day 31 (the last day in shorter months)``, ``Weekly from 2026-01-05``."""
    if order.frequency == Frequency.MONTHLY:
        if order.day_of_month > 28:
            return gettext("Monthly on day %(day)s (the last day in shorter months)",
                           day=order.day_of_month)
        return gettext("Monthly on day %(day)s", day=order.day_of_month)
    if order.frequency == Frequency.WEEKLY:
        return gettext("Weekly from %(day)s", day=order.start_on.isoformat())
    return gettext("Once, on %(day)s", day=order.start_on.isoformat())


bp.add_app_template_global(payees.masked_name, "masked_name")


# ---------------------------------------------------------------- alert settings


@bp.route("/accounts/notifications/", methods=["GET", "POST"])
@login_required
def notifications():
    """The customer's email alerts: which ones, and the amounts they watch."""
    settings = alerts.settings_for(current_user)
    form = AlertSettingsForm(obj=settings if request.method == "GET" else None)
    if request.method == "GET":
        form.large_transfer_threshold.data = _amount_text(settings.large_transfer_threshold)
        form.low_balance_floor.data = _amount_text(settings.low_balance_floor)
    if form.validate_on_submit():
        threshold = _amount_if(form.large_transfer_on, form.large_transfer_threshold)
        floor = _amount_if(form.low_balance_on, form.low_balance_floor)
        if not form.errors:
            try:
                alerts.save_settings(current_user, large_transfer_threshold=threshold,
                                     low_balance_floor=floor,
                                     scheduled_failed_on=form.scheduled_failed_on.data,
                                     hold_placed_on=form.hold_placed_on.data,
                                     recent_sign_in=recently_authenticated())
            except alerts.RecentSignInNeeded:
                return ask_for_password_again(
                    gettext("Confirm your password first: switching alerts off needs a "
                            "recent sign-in."), url_for("payments.notifications"))
            flash(gettext("Your alert settings are saved."), "success")
            return redirect(url_for("payments.notifications"))
    return render_template("payments/notifications.html", form=form)


def _amount_text(value) -> str:
    return "" if value is None else str(value)


def _amount_if(switch, amount_field):
    """The amount an alert watches when it is switched on (errors on the field otherwise)."""
    if not switch.data:
        return None
    try:
        return parse_amount(amount_field.data or "")
    except ledger.LedgerError as error:
        amount_field.errors = [*amount_field.errors, str(error)]
        return None

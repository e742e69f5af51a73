"""Customer views: my loans, applying (with the schedule shown first), a loan's page, repaying."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from bankapp import ledger
from bankapp.extensions import db
from bankapp.lending import products, services
from bankapp.lending.errors import LendingError
from bankapp.lending.forms import ApplyForm, RepayForm
from bankapp.models import AccountStatus, Role
from bankapp.platform.formatting import format_money
from bankapp.identity.security import role_required

bp = Blueprint("loans", __name__, url_prefix="/loans", template_folder="templates")

customers_only = role_required(Role.CUSTOMER)


def _me():
    return current_user._get_current_object()


@bp.route("/")
@login_required
@customers_only
def loan_list():
    """The customer's loans and applications."""
    return render_template("lending/loans.html", loans=services.loans_of(_me()))


@bp.route("/apply/", methods=["GET", "POST"])
@login_required
@customers_only
def apply():
    """Apply for a loan: choose, see the full schedule, then submit."""
    form = ApplyForm()
    offered = {str(p.id): p for p in products.active_products()}
    accounts = {a.account_number: a for a in current_user.accounts
                if a.status == AccountStatus.ACTIVE and not a.is_internal}
    form.product.choices = [SelectChoice(key, p.name) for key, p in offered.items()]
    form.account.choices = [SelectChoice(n, f"{n} · {format_money(a.balance)}")
                            for n, a in accounts.items()]
    if not form.validate_on_submit():
        return _apply_page(form, offered)
    asked = services.Application(offered.get(form.product.data),
                                 accounts.get(form.account.data), form.principal.amount,
                                 form.term.data, form.purpose.data, form.idempotency_key.data)
    try:
        if not form.apply.data:
            return _apply_page(form, offered, services.preview(
                asked.product, asked.principal, asked.term) if asked.product else None)
        loan = services.apply(_me(), asked)
    except LendingError as refusal:
        _field_error(form, refusal, {"principal": "principal", "term": "term",
                                     "account": "account", "product": "product"})
        return _apply_page(form, offered, status=422)
    flash(gettext("Your application for %(amount)s was sent. The bank will decide on it soon.",
                  amount=format_money(loan.principal)), "success")
    return redirect(url_for("loans.loan_detail", loan_id=loan.id))


def _field_error(form, refusal: LendingError, fields: dict[str, str]) -> None:
    name = fields.get(getattr(refusal, "field", None) or "")
    (form[name].errors.append if name else form.form_errors.append)(str(refusal))


def _apply_page(form, offered, schedule=None, status: int = 200):
    return render_template("lending/apply.html", form=form, products=list(offered.values()),
                           schedule=schedule), status


@bp.route("/<int:loan_id>/")
@login_required
@customers_only
def loan_detail(loan_id: int):
    """A loan: status, schedule, what is paid and due, the payoff today, a repayment form."""
    loan = db.first_or_404(services.owned_loan(_me(), loan_id))
    return _detail_page(loan, RepayForm())


def _detail_page(loan, form, status: int = 200):
    today = services.lending_today()
    return render_template("lending/loan.html", loan=loan, form=form, today=today,
                           owed=services.owed_on(loan, today),
                           rows=services.instalments_of(loan)), status


@bp.route("/<int:loan_id>/repay/", methods=["POST"])
@login_required
@customers_only
def repay(loan_id: int):
    """Repay any amount up to the payoff from the loan's account."""
    loan = db.first_or_404(services.owned_loan(_me(), loan_id))
    form = RepayForm()
    if not form.validate_on_submit():
        return _detail_page(loan, form, 422)
    try:
        services.repay(loan, _me(), form.amount.amount,
                       idempotency_key=form.idempotency_key.data)
    except ledger.LedgerError as refusal:
        form.amount.errors.append(str(refusal))
        return _detail_page(loan, form, 422)
    flash(gettext("Repaid %(amount)s.", amount=format_money(form.amount.amount)), "success")
    return redirect(url_for("loans.loan_detail", loan_id=loan.id))

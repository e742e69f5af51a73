"""Admin views: users (roles, activation), the audit trail, undelivered email and the periodic
jobs. Admins only."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user

from bankapp.backoffice.admin import services
from bankapp import ledger, schedule
from bankapp.backoffice.admin.forms import (
    AuditFilterForm,
    InterestRateForm,
    LoanProductForm,
    RoleForm,
)
from bankapp.audit import TargetType
from bankapp.notifications.outbox import undelivered
from bankapp.extensions import db
from bankapp.lending import products
from bankapp.lending.errors import LendingError
from bankapp.ledger.fields import ConfirmForm
from bankapp.platform.i18n import N_, role_label
from bankapp.models import OutboxMessage, Role, User
from bankapp.identity.security import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


admin_only = role_required(Role.ADMIN)
PER_PAGE = 25


@bp.route("/users/")
@admin_only
def users():
    """List and search users."""
    query = request.args.get("q", "").strip()[:100]
    page = db.paginate(services.user_search(query), per_page=PER_PAGE, error_out=False)
    return render_template("admin/users.html", page=page, query=query,
                           confirm_form=ConfirmForm())


@bp.route("/users/<int:user_id>/")
@admin_only
def user(user_id: int):
    """One user: role and activation."""
    return _render_user(db.get_or_404(User, user_id))


def _render_user(person: User, role_form: RoleForm | None = None, error: str | None = None):
    role_form = role_form or RoleForm(role=person.role)
    return render_template("admin/user.html", person=person, role_form=role_form,
                           confirm_form=ConfirmForm(), error=error)


@bp.route("/users/<int:user_id>/role/", methods=["POST"])
@admin_only
def change_role(user_id: int):
    """Give a user another role."""
    person = db.get_or_404(User, user_id)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            services.change_role(person, form.role.data, current_user._get_current_object())
        except services.AdminError as error:
            db.session.rollback()
            form.role.errors.append(str(error))
        else:
            flash(gettext("%(email)s is now %(role)s.", email=person.email,
                          role=role_label(person.role)), "success")
            return redirect(url_for(".user", user_id=person.id), code=303)
    return _render_user(person, role_form=form)


@bp.route("/users/<int:user_id>/deactivate/", methods=["POST"])
@admin_only
def deactivate(user_id: int):
    """Deactivate a user: no more logins, and their sessions end."""
    return _activation(user_id, services.deactivate,
                       N_("%(email)s has been deactivated."))


@bp.route("/users/<int:user_id>/reactivate/", methods=["POST"])
@admin_only
def reactivate(user_id: int):
    """Let a deactivated user log in again."""
    return _activation(user_id, services.reactivate,
                       N_("%(email)s has been reactivated."))


def _activation(user_id: int, change, done: str):
    person = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        change(person, current_user._get_current_object())
    except services.AdminError as error:
        db.session.rollback()
        return _render_user(person, error=str(error))
    flash(gettext(done, email=person.email), "success")
    return redirect(url_for(".user", user_id=person.id), code=303)


@bp.route("/users/<int:user_id>/end-sessions/", methods=["POST"])
@admin_only
def end_user_sessions(user_id: int):
    """Sign a user out everywhere: every session and API token ends."""
    person = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.end_user_sessions(person, current_user._get_current_object())
    flash(gettext("Every session of %(email)s has ended.", email=person.email), "success")
    return redirect(url_for(".user", user_id=person.id), code=303)


@bp.route("/sessions/end-all/", methods=["POST"])
@admin_only
def end_all_sessions():
    """Sign everyone out, this admin included: every session and API token ends."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.end_all_sessions(current_user._get_current_object())
    flash(gettext("Every session has ended, yours included: sign in again."), "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/audit/")
@admin_only
def audit():
    """The audit trail, filtered by actor, action, target and dates."""
    form = AuditFilterForm(request.args)
    filters = {}
    if form.validate():
        filters = {name: form[name].data for name in
                   ("actor", "action", "target_type", "target_id", "date_from", "date_to")}
        filters = {name: value for name, value in filters.items() if value}
    page = services.audit_page(filters, request.args.get("older", type=int), PER_PAGE)
    args = {key: value for key, value in request.args.items()
            if key not in ("page", "older") and value}
    return render_template("admin/audit.html", form=form, page=page, args=args,
                           target_types=TargetType.all())


@bp.route("/jobs/")
@admin_only
def jobs():
    """Each periodic job: schedule, last success (marked when it missed its window), and the
    latest runs."""
    return render_template("admin/jobs.html", statuses=schedule.job_statuses(),
                           runs=db.session.scalars(schedule.recent_runs()).all())


@bp.route("/mail/")
@admin_only
def mail():
    """Email not delivered yet: dead (attempts used up) first, then pending."""
    page = db.paginate(undelivered(), per_page=PER_PAGE, error_out=False)
    return render_template("admin/mail.html", page=page, confirm_form=ConfirmForm())


@bp.route("/mail/<int:message_id>/retry/", methods=["POST"])
@admin_only
def retry_mail(message_id: int):
    """Send one email again now, with a fresh set of attempts."""
    message = db.get_or_404(OutboxMessage, message_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.retry_mail(message, current_user._get_current_object())
    except services.AdminError as error:
        db.session.rollback()
        flash(str(error), "warning")
    else:
        flash(gettext("The email to %(email)s is queued again.", email=message.recipient),
              "success")
    return redirect(url_for(".mail"), code=303)


@bp.route("/interest/", methods=["GET", "POST"])
@admin_only
def interest_rates():
    """The interest rate history; add a rate from a day on."""
    form = InterestRateForm()
    if form.validate_on_submit():
        try:
            row = ledger.set_rate(form.account_type.data, ledger.parse_rate(form.annual_rate.data),
                                  ledger.parse_rate_date(form.effective_from.data),
                                  current_user._get_current_object())
        except ledger.InterestError as error:
            form.form_errors.append(str(error))
        else:
            flash(gettext("%(type)s earns %(rate)s %% a year from %(day)s.",
                          type=row.account_type,
                          rate=f"{row.annual_rate.normalize():f}",
                          day=row.effective_from.isoformat()), "success")
            return redirect(url_for(".interest_rates"), code=303)
    return render_template("admin/interest.html", form=form, rates=ledger.rate_history())


@bp.route("/loan-products/", methods=["GET", "POST"])
@admin_only
def loan_products():
    """The loan products; add one (the rules of ``flask create-loan-product``, audited)."""
    form = LoanProductForm()
    if not form.is_submitted():
        form.currency.data = current_app.config["BANK_CURRENCY"]  # the only one it takes
    if not form.validate_on_submit():
        return _products_page(form, 422 if form.is_submitted() else 200)
    try:
        product = products.create_product(products.parse_product(form.product_fields()),
                                          current_user._get_current_object())
    except LendingError as error:
        db.session.rollback()
        target = form._fields.get(error.field or "")
        (target.errors.append if target else form.form_errors.append)(str(error))
        return _products_page(form, 422)
    flash(gettext("Loan product “%(name)s” added: customers may apply for it now.",
                  name=product.name), "success")
    return redirect(url_for(".loan_products"), code=303)


def _products_page(form: LoanProductForm, status: int):
    return render_template("admin/loan_products.html", form=form,
                           products=products.all_products()), status

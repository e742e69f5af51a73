"""Report views: parse the query string, call the report service, render or send a file."""
from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from bankapp import ledger
from bankapp.platform import replica
from bankapp.models import AccountType, Role
from bankapp.reports import charts, exports, lines, service
from bankapp.reports.service import ReportError
from bankapp.identity.security import role_required

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")
# A loan's statement lives beside the loan's page (/loans/<id>/statement/); the lending
# module sits below the reports and so cannot serve it itself.
loan_bp = Blueprint("loan_statements", __name__, url_prefix="/loans",
                    template_folder="templates")


FORMATS = ("html", "csv", "pdf")


def _period_from_args(default_preset: str = "this-month") -> service.Period:
    """The period the query string asks for: a preset, or custom start and end dates."""
    preset = request.args.get("preset", "")
    if preset and preset != "custom":
        return service.preset_period(preset)
    if not request.args.get("start") and not request.args.get("end") and preset != "custom":
        return service.preset_period(default_preset)
    return service.parse_period(request.args.get("start"), request.args.get("end"))


def _customer_accounts(user):
    return [a for a in user.accounts if a.account_type in AccountType.CUSTOMER]


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.route("/")
@login_required
def index():
    """Choose an account (or all) and a period, then open a statement or a summary."""
    args = request.args
    error = None
    if args.get("report"):
        try:
            return redirect(_chosen_report_url(args))
        except ReportError as exc:
            error = str(exc)
    return render_template(
        "reports/index.html", accounts=_customer_accounts(current_user), presets=service.PRESETS,
        error=error, args=args, is_staff=current_user.role in Role.STAFF,
    ), (400 if error else 200)


def _chosen_report_url(args) -> str:
    number = (args.get("account") or "").strip().upper()
    if args.get("report") == "summary":
        if number != "ALL" and service.viewable_account(current_user, number) is None:
            raise ReportError(gettext("Choose one of your accounts, or all accounts."))
        return url_for("reports.summary", account=number.lower() if number == "ALL" else number)
    if args.get("report") != "statement":
        raise ReportError(gettext("Choose a statement or a monthly summary."))
    if not number or number == "ALL":
        raise ReportError(gettext("A statement covers one account: choose which."))
    if service.viewable_account(current_user, number) is None:
        raise ReportError(gettext("No account of yours has that number."))
    period = _period_from_args()
    return url_for("reports.statement", account_number=number,
                   start=period.start.isoformat(), end=period.end.isoformat())


@bp.route("/statement/<account_number>/")
@login_required
def statement(account_number: str):
    """A bank statement for one account and period, as a page, CSV or PDF."""
    account = service.viewable_account(current_user, account_number)
    if account is None:
        abort(404)
    output = request.args.get("format", "html")
    try:
        if output not in FORMATS:
            raise ReportError(gettext("Choose the format html, csv or pdf."))
        period = _period_from_args()
    except ReportError as exc:
        return render_template("reports/statement.html", account=account, st=None,
                               error=str(exc), args=request.args), 400
    # The page reads one page of the period's lines; the files have every line.
    page = request.args.get("page", 1, type=int) if output == "html" else None
    # Its time first, on the primary (it waits for postings in flight), then its lines, on
    # the replica once that has every posting of the account.
    st = replica.read(service.statement, account, period.start, period.end,
                      as_of=ledger.settled_time(account.id), page=page,
                      per_page=lines.LINES_PER_PAGE, fresh=[account])
    service.record_issue(st, current_user)
    if output == "csv":
        layout = "data" if request.args.get("layout") == "data" else "local"
        return _download(exports.statement_csv(st, layout), "text/csv",
                         exports.statement_filename(st, "csv"))
    if output == "pdf":
        return _download(exports.statement_pdf(st), "application/pdf",
                         exports.statement_filename(st, "pdf"))
    return render_template("reports/statement.html", account=account, st=st, error=None,
                           lines=lines.statement_lines(st.entries), shown=lines.line_page(st),
                           code=service.format_code(st.code), args=request.args)


@bp.route("/verify/")
@login_required
def verify():
    """Check a statement's verification code against the ledger (staff or the owner)."""
    code = request.args.get("code")
    result, error = None, None
    if code is not None:
        try:
            result = service.verify_code(code, current_user)
        except ReportError as exc:
            error = str(exc)
    return render_template("reports/verify.html", result=result, error=error, code=code or "",
                           format_code=service.format_code), (400 if error else 200)


@bp.route("/summary/")
@login_required
def summary():
    """The last 12 months per month, as a table and two charts."""
    number = (request.args.get("account") or "all").strip()
    if number.lower() == "all":
        accounts = _customer_accounts(current_user)
        if not accounts:
            return render_template("reports/summary.html", summary=None, accounts=[],
                                   error=gettext("You have no account to summarise yet."),
                                   label=gettext("All accounts")), 200
        label = gettext("All accounts")
    else:
        account = service.viewable_account(current_user, number)
        if account is None:
            abort(404)
        accounts, label = [account], f"{account.account_number} ({gettext(account.type_label)})"
    report = replica.read(service.monthly_summary, accounts, months=12, fresh=accounts)
    return render_template("reports/summary.html", summary=report, accounts=accounts,
                           label=label, error=None,
                           bar_chart=charts.in_out_bar_chart(report),
                           line_chart=charts.balance_line_chart(report))


@bp.route("/bank/")
@role_required(*Role.STAFF)
def bank():
    """Bank-wide figures for staff: daily totals, accounts, balances, largest movements."""
    output = request.args.get("format", "html")
    table = request.args.get("table", "")
    try:
        period = _period_from_args()
        if output not in ("html", "csv"):
            raise ReportError(gettext("Choose the format html or csv."))
        if output == "csv" and table not in exports.BANK_TABLES:
            raise ReportError(gettext("Choose a table to export: %(tables)s.",
                                      tables=", ".join(exports.BANK_TABLES)))
    except ReportError as exc:
        return render_template("reports/bank.html", report=None, error=str(exc),
                               args=request.args, presets=service.PRESETS), 400
    report = replica.read(service.bank_report, period)
    if output == "csv":
        filename = f"bank-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        return _download(exports.bank_table_csv(report, table), "text/csv", filename)
    return render_template("reports/bank.html", report=report, error=None, args=request.args,
                           presets=service.PRESETS, tables=exports.BANK_TABLES)


@bp.route("/loan-portfolio/")
@role_required(*Role.STAFF)
def loan_portfolio():
    """The loan portfolio on the loan book's today as CSV (the page is the teller's)."""
    report = service.loan_portfolio()
    return _download(exports.loan_portfolio_csv(report), "text/csv",
                     f"loan-portfolio-{report.day.isoformat()}.csv")


@loan_bp.route("/<int:loan_id>/statement/")
@login_required
def loan_statement(loan_id: int):
    """A loan's statement (schedule, repayments, payoff today) as a page, CSV or PDF: its
    borrower's, or any loan's for staff."""
    loan = service.viewable_loan(current_user, loan_id)
    if loan is None:
        abort(404)
    output = request.args.get("format", "html")
    if output not in FORMATS:
        return render_template("reports/loan_statement.html", ls=None, loan=loan,
                               error=gettext("Choose the format html, csv or pdf.")), 400
    ls = service.loan_statement(loan)
    if output == "csv":
        layout = "data" if request.args.get("layout") == "data" else "local"
        return _download(exports.loan_statement_csv(ls, layout), "text/csv",
                         exports.loan_statement_filename(ls, "csv"))
    if output == "pdf":
        return _download(exports.loan_statement_pdf(ls), "application/pdf",
                         exports.loan_statement_filename(ls, "pdf"))
    return render_template("reports/loan_statement.html", ls=ls, loan=loan, error=None)

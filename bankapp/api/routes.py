"""API views: parse the request, call the ledger or a query, answer JSON."""
from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, render_template, request, url_for
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from bankapp import ledger
from bankapp.platform import replica
from bankapp.api.idempotency import Answer, already_answered, post_once, request_status
from bankapp.api.openapi import openapi_document
from bankapp.api.payload import (
    ACCOUNT_NUMBER_RE,
    IDEMPOTENCY_KEY_RE,
    MAX_BODY_BYTES,
    Fields,
    decode_cursor,
    encode_cursor,
    idempotency_key,
    limit_param,
    read_json_object,
    request_fingerprint,
    search_param,
    time_param,
)
from bankapp.api.problems import PROBLEM_TYPES, Problem, ledger_problem, problem_response, render_problem
from bankapp.api.representations import (
    account_json,
    customer_json,
    loan_json,
    money,
    timestamp,
    transaction_json,
)
from bankapp.audit import events
from bankapp.identity import directory, lookups, stepup
from bankapp.identity import services as identity_services
from bankapp.identity.factors import SecondFactorRefused, needs_enrolment, verify_second_factor
from bankapp.api.tokens import (
    api_user,
    caller_checked_first,
    caller_with_accounts,
    issue_access_token,
    signed_token_required,
    staff_required,
    token_lifetime,
    token_required,
)
from bankapp.extensions import csrf, db, limiter
from bankapp.lending import services as lending
from bankapp.models import Account, AccountType, Channel, EntryType, Role, Transaction, User
from bankapp.identity.services import LoginRefused, LoginThrottled, authenticate, login_rate_key
from bankapp.platform.urls import public_base_url

bp = Blueprint("api", __name__, url_prefix="/api", template_folder="templates")
# Bearer tokens are never sent by a browser on its own: a cross-site form cannot use them.
csrf.exempt(bp)


bp.register_error_handler(Problem, render_problem)


@bp.before_request
def limit_body_size():
    request.max_content_length = MAX_BODY_BYTES


@bp.after_request
def never_cache(response):
    # Balances and tokens must not be kept by any cache.
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- tokens


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


_TOO_MANY = "Too many token requests; wait a minute before trying again."


def _email_rate_key() -> str:
    """Rate-limit key per email address, so one account is not guessed at from many IPs."""
    # Runs in the limiter's before_request, ahead of the blueprint's own size limit.
    request.max_content_length = MAX_BODY_BYTES
    try:
        data = json.loads(request.get_data(cache=True) or b"{}")
    except (ValueError, RecursionError, HTTPException):
        data = {}
    return login_rate_key(data.get("email") if isinstance(data, dict) else None)


@bp.post("/v1/token")
@limiter.limit(_login_rate_limit, key_func=get_remote_address, error_message=_TOO_MANY)
@limiter.shared_limit(_login_rate_limit, scope="login-email", key_func=_email_rate_key,
                      error_message=_TOO_MANY)
def token():
    """Exchange an email and password for a short-lived bearer access token."""
    fields = Fields(read_json_object(), ("email", "password", "otp"))
    email = fields.text("email", max_length=254)
    password = fields.text("password", max_length=1024)
    otp = fields.text("otp", required=False, max_length=64)
    fields.check()
    # The login form's checks and counts: one answer (and one timing) for an unknown email,
    # a wrong password and a deactivated account; each refusal audited as a token refusal.
    try:
        user = authenticate(email, password, via_api=True)
    except LoginThrottled:
        raise _token_refused(None, email, "throttled", Problem(429, _TOO_MANY)) from None
    except LoginRefused as refusal:
        g.setdefault(events.ALREADY_AUDITED, True)
        if refusal.unverified:
            raise Problem(403, "Verify your email address before using the API.") from None
        raise Problem(401, "The email or password is incorrect.",
                      headers={"WWW-Authenticate": 'Bearer realm="bankapp"'}) from None
    check_second_factor(user, otp)  # a wrong code is audited there (mfa.failure)
    identity_services.record_api_token(user, email)
    return jsonify(access_token=issue_access_token(user), token_type="Bearer",
                   expires_in=token_lifetime())


def _token_refused(user: User | None, email: str, reason: str, problem: Problem) -> Problem:
    """Audit a refused token request; the refusal's problem (no second, security row)."""
    db.session.rollback()  # nothing of the refused request is kept but its audit row
    identity_services.record_api_token(user, email, refused=reason)
    g.setdefault(events.ALREADY_AUDITED, True)
    return problem


def check_second_factor(user: User, otp: str | None) -> None:
    """A token needs the second factor too, as the login does; wrong codes count the same."""
    if needs_enrolment(user):
        raise Problem(403, "Set up two-step sign-in on the website before using the API.",
                      code="mfa-enrolment-required")
    if not user.mfa_enabled:
        return
    if not otp:
        raise Problem(401, "This account uses two-step sign-in: send the current code from "
                      "the authenticator app (or a recovery code) as \"otp\".",
                      code="mfa-required",
                      headers={"WWW-Authenticate": 'Bearer realm="bankapp"'})
    try:
        verify_second_factor(user, otp)
    except SecondFactorRefused as refusal:
        raise factor_problem(refusal) from None


def factor_problem(refusal: SecondFactorRefused) -> Problem:
    """A refused code: ``mfa-locked`` (429) while locked, else ``mfa-failed`` (401)."""
    if refusal.locked:
        return Problem(429, refusal.message, code="mfa-locked")
    return Problem(401, refusal.message, code="mfa-failed",
                   headers={"WWW-Authenticate": 'Bearer realm="bankapp"'})


@bp.post("/v1/token/revoke")
@token_required
def revoke_token():
    """Void every access token issued to the caller so far (this one included)."""
    api_user().revoke_api_tokens()
    db.session.commit()
    return "", 204


# ---------------------------------------------------------------- accounts


def _not_found() -> Problem:
    return Problem(404, "No account of yours has that number.")


def _customer_account(number: str, found: dict[str, Account] | None = None) -> Account:
    number = (number or "").strip().upper()
    if not ACCOUNT_NUMBER_RE.fullmatch(number):
        raise _not_found()
    if found is None:
        found = ledger.find_customer_accounts(number)
    account = found.get(number)
    if account is None:
        raise _not_found()
    return account


def own_account(number: str, found: dict[str, Account] | None = None) -> Account:
    """The caller's account ``number``; anyone else's answers 404 exactly like a missing one.

    ``found``: accounts already looked up (``ledger.find_customer_accounts``, or
    ``tokens.caller_with_accounts`` as light rows).
    """
    account = _customer_account(number, found)
    if account.owner_id != g.api_user.id:
        raise _not_found()
    return account


def postable_account(number: str, found: dict):
    """An account the caller may post to (their own, or any customer's for tellers/admins),
    as a light row from ``found`` (``tokens.caller_with_accounts``)."""
    if g.api_user.role in Role.STAFF:
        return _customer_account(number, found)
    return own_account(number, found)


@bp.get("/v1/accounts")
@token_required
def list_accounts():
    """The caller's own accounts."""
    accounts = db.session.scalars(
        sa.select(Account).where(Account.owner_id == g.api_user.id).order_by(Account.id))
    return jsonify(accounts=[account_json(account) for account in accounts])


@bp.post("/v1/accounts")
@token_required
def open_account():
    """Open a savings or checking account for the caller."""
    fields = Fields(read_json_object(), ("account_type",))
    account_type = fields.text("account_type", max_length=16)
    if account_type is not None and account_type.upper() not in AccountType.CUSTOMER:
        fields.value_errors.append({"pointer": "#/account_type",
                                    "detail": "Choose SAVINGS or CHECKING."})
    fields.check()
    try:
        account = ledger.open_account(g.api_user, account_type.upper())
    except ledger.LedgerError as error:
        raise ledger_problem(error) from None
    response = jsonify(account_json(account))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_account", number=account.account_number)
    return response


@bp.get("/v1/accounts/<number>")
@token_required
def get_account(number):
    """One of the caller's accounts."""
    return jsonify(account_json(own_account(number)))


@bp.get("/v1/accounts/<number>/transactions")
@token_required
def list_transactions(number):
    """The account's ledger legs, newest first, a page at a time (keyset pagination)."""
    account = own_account(number)
    limit = limit_param()
    start = time_param("start", end=False)
    end = time_param("end", end=True)
    after = decode_cursor(request.args.get("cursor"))
    if start is not None and end is not None and start > end:
        raise Problem(422, "'start' must not be after 'end'.", code="validation-error",
                      errors=[{"parameter": "start", "detail": "Must not be after 'end'."}])
    query = ledger.customer_history(account).options(selectinload(Transaction.entry))
    if start is not None:
        query = query.where(Transaction.timestamp >= start)
    if end is not None:
        query = query.where(Transaction.timestamp < end)
    if after is not None:
        # Strictly after the last row served, in (timestamp, id) order: rows inserted
        # meanwhile are newer and never shift the pages still to come.
        moment, row_id = after
        query = query.where(sa.or_(
            Transaction.timestamp < moment,
            sa.and_(Transaction.timestamp == moment, Transaction.id < row_id)))
    rows = replica.read(lambda: list(db.session.scalars(query.limit(limit + 1))),
                        fresh=[account])
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].timestamp, page[-1].id) if more else None
    names = replica.read(lambda: ledger.counterparties(page))
    return jsonify(transactions=[transaction_json(leg, names.get(leg.id)) for leg in page],
                   next_cursor=next_cursor)


# ---------------------------------------------------------------- postings


def _answer_response(answer: Answer, key: str):
    if answer.status >= 400:
        response = problem_response(answer.status, answer.body)
    else:
        response = jsonify(answer.body)
        response.status_code = answer.status
        response.headers["Location"] = url_for("api.posting_status", key=key)
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _cash_posting(number: str, operation: str):
    with caller_checked_first():
        key = idempotency_key()
        data = read_json_object()
        fields = Fields(data, ("amount", "description"))
        amount = fields.amount()
        description = fields.text("description", required=False, default="")
        fields.check()
    # One query: the caller's row (checked, then g.api_user) and the account.
    number = (number or "").strip().upper()
    account = postable_account(number, caller_with_accounts(number, number))
    if operation == "deposit" and not ledger.may_deposit(g.api_user.role):
        raise Problem(403, "Deposits are made at the bank's counter; customers cannot deposit "
                      "into their accounts here.", code="self-deposits-off")
    post, entry_type = ((ledger.deposit, EntryType.DEPOSIT) if operation == "deposit"
                        else (ledger.withdraw, EntryType.WITHDRAWAL))
    user = g.api_user
    answer = post_once(user, key, operation, request_fingerprint(data),
                       lambda **once: post(account, amount, description, user,
                                           channel=Channel.API, **once),
                       expected={"entry_type": entry_type,
                                 "account": account.account_number, "amount": money(amount)},
                       description=description, account_id=account.id)
    return _answer_response(answer, key)


@bp.post("/v1/accounts/<number>/deposits")
@signed_token_required
def deposit(number):
    """Deposit into an account (the caller's own; any customer's for tellers/admins)."""
    return _cash_posting(number, "deposit")


@bp.post("/v1/accounts/<number>/withdrawals")
@signed_token_required
def withdraw(number):
    """Withdraw from an account (the caller's own; any customer's for tellers/admins)."""
    return _cash_posting(number, "withdrawal")


@bp.post("/v1/transfers")
@signed_token_required
def transfer():
    """Transfer from one of the caller's accounts to any active customer account."""
    with caller_checked_first():
        key = idempotency_key()
        data = read_json_object()
        fields = Fields(data, ("from_account", "to_account", "amount", "description", "otp"))
        from_number = fields.account_number("from_account")
        to_number = fields.account_number("to_account")
        amount = fields.amount()
        description = fields.text("description", required=False, default="")
        otp = fields.text("otp", required=False, max_length=64)
        fields.check()
    # One query: the caller's row (checked, then g.api_user) and both accounts.
    found = caller_with_accounts(from_number, to_number)
    source = own_account(from_number, found)
    destination = found.get(to_number, to_number)  # a number the ledger refuses as unknown
    user = g.api_user
    # Whether the number exists shows in the answer (403 step-up, 422 unknown, a posting):
    # the same look-up budget as the payees page.
    if not lookups.may_reveal(user, to_number, found.get(to_number), via="api-transfer"):
        raise Problem(429, "You have looked up many account numbers recently: try again later.")
    step_up_transfer(user, key, source, destination, amount, otp)
    # The code is no part of the request: a retry with a newer code is the same transfer.
    fingerprint = request_fingerprint({k: v for k, v in data.items() if k != "otp"})
    answer = post_once(user, key, "transfer", fingerprint,
                       lambda **once: ledger.transfer(source, destination, amount, description,
                                                      user, channel=Channel.API, **once),
                       expected={"entry_type": EntryType.TRANSFER, "from_account": from_number,
                                 "to_account": to_number, "amount": money(amount)},
                       description=description, account_id=source.id)
    return _answer_response(answer, key)


def step_up_transfer(user, key: str, source, destination, amount, otp: str | None) -> None:
    """A transfer the step-up rule catches needs ``otp`` (403 ``step-up-required`` without
    it); a retry of an already answered key replays that answer and needs no code.

    ``user``, ``source`` and ``destination`` are light rows (``destination`` a number when
    no account has it)."""
    if isinstance(destination, str):
        return  # unknown: the ledger refuses it, and nothing can be paid to it
    step_up = stepup.step_up_for(user, destination, amount)
    if not step_up or already_answered(user, key):
        return
    if not otp:
        raise Problem(403, f"This transfer needs a fresh second-factor code because "
                           f"{step_up.why}: send the current code from the authenticator "
                           "app (or a recovery code) as \"otp\" in the same request.",
                      code="step-up-required",
                      errors=[{"pointer": "#/otp", "detail": "Required for this transfer."}])
    try:
        stepup.approve_transfer(api_user(), otp, source=source, destination=destination,
                                amount=amount, idempotency_key=key, step_up=step_up)
    except SecondFactorRefused as refusal:
        raise factor_problem(refusal) from None


@bp.get("/v1/transfers/<path:key>")
@token_required
def posting_status(key):
    """What became of the caller's posting request with this Idempotency-Key."""
    found = request_status(g.api_user, key) if IDEMPOTENCY_KEY_RE.fullmatch(key) else None
    if found is None:
        raise Problem(404, "No answer to a request with this Idempotency-Key is on record (none "
                           "reached the bank, or it is older than the retention window); it is "
                           "safe to send it again with the same key: a posting is never made "
                           "twice.")
    state = "posted" if 200 <= found.status < 300 else "refused"
    return jsonify(idempotency_key=key, operation=found.operation, status=state,
                   reference=found.reference,
                   response={"status": found.status, "body": found.body},
                   created_at=timestamp(found.created_at),
                   completed_at=timestamp(found.completed_at))


# ---------------------------------------------------------------- staff


@bp.get("/v1/customers")
@staff_required
def customers():
    """Find customers by name, email, phone or account number (tellers and admins), as the
    teller's search page does, sorted by name."""
    query = directory.customer_search(search_param()).limit(limit_param())
    return jsonify(customers=[customer_json(user) for user in db.session.scalars(query)])


# ---------------------------------------------------------------- description


@bp.get("/v1/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document(server_url=public_base_url()))


@bp.get("/docs")
def docs():
    """The API reference, generated from the OpenAPI document."""
    return render_template("api/docs.html", spec=openapi_document(server_url=public_base_url()),
                           problems=PROBLEM_TYPES)


# ---------------------------------------------------------------- loans


def _own_loan(loan_id: int, user=None):
    loan = db.session.scalar(lending.owned_loan(user or g.api_user, loan_id))
    if loan is None:
        raise _not_found()
    return loan


@bp.get("/v1/loans")
@token_required
def list_loans():
    """The caller's loans and applications, newest first."""
    return jsonify(loans=[loan_json(loan) for loan in lending.loans_of(g.api_user)])


@bp.get("/v1/loans/<int:loan_id>")
@token_required
def get_loan(loan_id: int):
    """One of the caller's loans, with its schedule, what is due and the payoff today."""
    loan = _own_loan(loan_id)
    rows = lending.instalments_of(loan)
    return jsonify(loan_json(loan, lending.owed_on(loan, lending.lending_today(), rows), rows))


@bp.post("/v1/loans/<int:loan_id>/repayments")
@token_required
def repay_loan(loan_id: int):
    """Repay any amount up to the payoff from the loan's account (step-up as transfers)."""
    with caller_checked_first():
        key = idempotency_key()
        data = read_json_object()
        fields = Fields(data, ("amount", "otp"))
        amount = fields.amount()
        otp = fields.text("otp", required=False, max_length=64)
        fields.check()
    user = api_user()
    loan = _own_loan(loan_id, user)
    step_up_repayment(user, key, loan, amount, otp)
    fingerprint = request_fingerprint({k: v for k, v in data.items() if k != "otp"})
    answer = post_once(user, key, "loan-repayment", fingerprint,
                       lambda idempotency_key, also=None, answer=None: _repay(
                           loan, user, amount, idempotency_key, also, answer),
                       expected={"entry_type": EntryType.LOAN_REPAYMENT,
                                 "account": loan.account.account_number,
                                 "amount": money(amount)},
                       description=f"Loan {loan.id} repayment", account_id=loan.account_id)
    return _answer_response(answer, key)


def _repay(loan, user, amount, key, also, answer):
    return lending.repay(loan, user, amount, idempotency_key=key, channel=Channel.API,
                         answer=answer, also=also)


def step_up_repayment(user, key: str, loan, amount, otp: str | None) -> None:
    """As a transfer to the caller's own account: a code only above the step-up threshold."""
    step_up = stepup.StepUp((stepup.ABOVE_THRESHOLD,), stepup.step_up_threshold()) \
        if user.mfa_enabled and amount > stepup.step_up_threshold() else None
    if not step_up or already_answered(user, key):
        return
    if not otp:
        raise Problem(403, f"This repayment needs a fresh second-factor code because "
                           f"{step_up.why}: send the current code from the authenticator "
                           "app (or a recovery code) as \"otp\" in the same request.",
                      code="step-up-required",
                      errors=[{"pointer": "#/otp", "detail": "Required for this repayment."}])
    try:
        stepup.approve_transfer(api_user(), otp, source=loan.account,
                                destination=loan.loan_account, amount=amount,
                                idempotency_key=key, step_up=step_up)
    except SecondFactorRefused as refusal:
        raise factor_problem(refusal) from None

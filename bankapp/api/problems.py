"""RFC 9457 problem details: the one shape of every API error."""
from __future__ import annotations

from bankapp import ledger
from bankapp.audit import events
from bankapp.platform.problems import problem_response, status_phrase

# code → (status, title, what it means); the docs page lists them under #problem-<code>.
PROBLEM_TYPES: dict[str, tuple[int, str, str]] = {
    "invalid-json": (400, "Malformed request body",
                     "The body is not a JSON object (syntax error, wrong encoding, duplicate key)."),
    "invalid-request": (400, "Invalid request",
                        "A field, header or query parameter has the wrong type or form; "
                        "see `errors`. Amounts must be JSON strings such as \"12.50\"."),
    "validation-error": (422, "Validation failed",
                         "The request is well-formed but a value is not acceptable; see `errors`."),
    "invalid-amount": (422, "Invalid amount", "The amount is not a positive amount in cents."),
    "limit-exceeded": (422, "Limit exceeded",
                       "The amount is above the per-transaction limit, or the receiving "
                       "balance would exceed the largest balance an account can hold."),
    "insufficient-funds": (422, "Insufficient funds",
                           "The balance does not cover the amount; nothing was posted."),
    "same-account": (422, "Same account", "The source and destination accounts are the same."),
    "unknown-account": (422, "Unknown destination account",
                        "No active customer account has the destination number."),
    "invalid-description": (422, "Invalid description", "The description is too long."),
    "ledger-refused": (422, "Transaction refused", "The ledger refused the transaction."),
    "account-not-active": (409, "Account not active",
                           "The account is frozen or closed and cannot move money."),
    "mfa-required": (401, "Second factor required",
                     "The account uses two-step sign-in: send `otp` (the current code from the "
                     "authenticator app, or a recovery code) with the email and password."),
    "mfa-failed": (401, "Second factor refused",
                   "The `otp` is wrong, already used or malformed; wrong codes count toward "
                   "the account's lockout."),
    "mfa-locked": (429, "Second factor locked",
                   "Too many wrong codes: second-factor checks for this account are locked "
                   "for a while (MFA_LOCKOUT_MINUTES)."),
    "mfa-enrolment-required": (403, "Second factor not set up",
                               "The account's role needs two-step sign-in; set it up on the "
                               "website first."),
    "step-up-required": (403, "Transfer needs a second-factor code",
                         "The caller has two-step sign-in and this transfer goes to an account "
                         "they never paid before or is above the step-up threshold "
                         "(STEP_UP_THRESHOLD): send the current code from the authenticator "
                         "app (or a recovery code) as `otp` in the same request. The code "
                         "approves that transfer only; a retry of an already answered "
                         "Idempotency-Key needs none."),
    "self-deposits-off": (403, "Deposits are made at the counter",
                          "This bank does not let customers deposit into their own accounts "
                          "(CUSTOMER_SELF_DEPOSITS is off): cash is deposited by a teller."),
    "idempotency-key-reused": (422, "Idempotency key reused",
                               "This Idempotency-Key was already used with a different request."),
    "rate-limited": (429, "Too many API calls",
                     "The caller's calls (all their tokens together) are over the bank's "
                     "API_RATE_LIMIT: wait the seconds Retry-After says."),
}


def problem_type(code: str | None) -> str:
    return f"/api/docs#problem-{code}" if code else "about:blank"


class Problem(Exception):
    """An API error response; raise it from a view, the blueprint renders it."""

    def __init__(self, status: int, detail: str, *, code: str | None = None,
                 title: str | None = None, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.title = title or (PROBLEM_TYPES[code][1] if code else status_phrase(status))
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict:
        body = {"type": problem_type(self.code), "title": self.title, "status": self.status,
                "detail": self.detail}
        if self.code:
            body["code"] = self.code
        if self.errors:
            body["errors"] = self.errors
        return body


def render_problem(problem: Problem):
    events.record_problem(problem.status, problem.detail)  # 401, 403, 404, 429
    return problem_response(problem.status, problem.body(), problem.headers)


# Most specific first: every ledger refusal maps onto a status and a problem type.
_LEDGER_CODES: list[tuple[type[ledger.LedgerError], str]] = [
    (ledger.InsufficientFunds, "insufficient-funds"),
    (ledger.AccountNotActive, "account-not-active"),
    (ledger.InvalidAmount, "invalid-amount"),
    (ledger.SameAccount, "same-account"),
    (ledger.UnknownAccount, "unknown-account"),
    (ledger.LimitExceeded, "limit-exceeded"),
    (ledger.InvalidDescription, "invalid-description"),
    (ledger.LedgerError, "ledger-refused"),
]


def ledger_problem(error: ledger.LedgerError) -> Problem:
    """The problem for a ledger refusal: 409 for an inactive account, 422 otherwise."""
    for error_class, code in _LEDGER_CODES:
        if isinstance(error, error_class):
            return Problem(PROBLEM_TYPES[code][0], str(error), code=code)
    raise AssertionError("unreachable")

"""The OpenAPI 3.1 description of the API, written by hand to match ``routes.py``.

``tests/api/test_api_schemathesis.py`` checks the implementation against it (every response's
status, content type and body), and ``/api/docs`` renders it.
"""
from __future__ import annotations

from copy import deepcopy

MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["12.50"]}
AMOUNT_IN = {
    "type": "string", "maxLength": 32, "pattern": r"^[0-9][0-9,]{0,12}(\.[0-9]{1,2})?$",
    "description": 'A positive amount as a JSON string, such as "12.50" (at most two '
                   "decimals, optional comma thousands separators). JSON numbers are refused.",
    "examples": ["12.50"],
}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["USD"],
            "description": "ISO 4217 code of the bank's currency (BANK_CURRENCY), the unit of "
                           "every amount in this object."}
ACCOUNT_NUMBER = {"type": "string", "pattern": r"^[A-Za-z0-9-]{1,20}$",
                  "examples": ["ACC-000000001"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
DESCRIPTION_IN = {"type": "string", "maxLength": 255, "pattern": r"^[^\u0000-\u001f\u007f]*$",
                  "description": "Free text shown on the statement (no control characters)."}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str, headers: dict | None = None) -> dict:
    response = {"description": description,
                "content": {"application/problem+json": {"schema": _ref("Problem")}}}
    if headers:
        response["headers"] = headers
    return response


_ERROR_RESPONSES = {
    "400": _problem("Malformed JSON, a wrong JSON type (an amount sent as a number), a "
                    "missing Idempotency-Key or an unparseable query parameter."),
    "401": _problem("Missing, expired, tampered or revoked access token.",
                    {"WWW-Authenticate": {"schema": {"type": "string"},
                                          "description": "Bearer challenge."}}),
    "403": _problem("The caller's role may not do this, or the user is not verified."),
    "404": _problem("No such resource, or not the caller's (the same answer either way)."),
    "409": _problem("The account is frozen or closed."),
    "413": _problem("The request body is larger than 64 KiB."),
    "422": _problem("Validation failed (see `errors`), or the ledger refused the posting "
                    "(insufficient funds, limit, same account, unknown destination)."),
    "429": _problem("Too many attempts; wait and retry."),
}
# Every call with a token counts against the caller's API_RATE_LIMIT.
_RATE_LIMITED = _problem("The caller's API calls are over `API_RATE_LIMIT` (problem "
                         "`rate-limited`); wait the seconds `Retry-After` says.",
                         {"Retry-After": {"schema": {"type": "string"},
                                          "description": "Seconds to wait."}})


def _with_rate_limit(paths: dict) -> dict:
    """``paths`` with the 429 of the per-caller limit on every operation that takes a token."""
    for operations in paths.values():
        for operation in operations.values():
            if operation.get("security") != []:
                operation["responses"].setdefault("429", deepcopy(_RATE_LIMITED))
    return paths


def _errors(*codes: str) -> dict:
    return {code: deepcopy(_ERROR_RESPONSES[code]) for code in codes}


_IDEMPOTENT_POSTING_ERRORS = ("400", "401", "403", "404", "409", "413", "422")

SCHEMAS = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri-reference",
                     "description": "about:blank, or /api/docs#problem-<code>."},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "Machine-readable problem code."},
            "errors": {"type": "array", "items": _ref("FieldError")},
        },
    },
    "FieldError": {
        "type": "object",
        "required": ["detail"],
        "properties": {
            "pointer": {"type": "string", "description": "JSON pointer into the body, "
                                                        "such as #/amount."},
            "parameter": {"type": "string", "description": "Query parameter name."},
            "header": {"type": "string", "description": "Header name."},
            "detail": {"type": "string"},
        },
    },
    "TokenRequest": {
        "type": "object", "additionalProperties": False, "required": ["email", "password"],
        "properties": {"email": {"type": "string", "maxLength": 254},
                       "password": {"type": "string", "maxLength": 1024},
                       "otp": {"type": "string", "maxLength": 64,
                               "description": "For an account with two-step sign-in: the "
                                              "current code from the authenticator app, or "
                                              "an unused recovery code."}},
    },
    "TokenResponse": {
        "type": "object", "required": ["access_token", "token_type", "expires_in"],
        "properties": {"access_token": {"type": "string"},
                       "token_type": {"const": "Bearer"},
                       "expires_in": {"type": "integer", "description": "Seconds."}},
    },
    "Account": {
        "type": "object",
        "required": ["account_number", "account_type", "name", "status", "balance",
                     "currency", "created_at"],
        "properties": {
            "account_number": {"type": "string"},
            "account_type": {"enum": ["SAVINGS", "CHECKING"]},
            "name": {"type": ["string", "null"]},
            "status": {"enum": ["active", "frozen", "closed"]},
            "balance": MONEY,
            "currency": CURRENCY,
            "created_at": TIMESTAMP,
        },
    },
    "AccountList": {
        "type": "object", "required": ["accounts"],
        "properties": {"accounts": {"type": "array", "items": _ref("Account")}},
    },
    "OpenAccountRequest": {
        "type": "object", "additionalProperties": False, "required": ["account_type"],
        "properties": {"account_type": {"enum": ["SAVINGS", "CHECKING"]}},
    },
    "Transaction": {
        "type": "object",
        "description": "One ledger leg on the account.",
        "required": ["reference", "transaction_type", "side", "amount", "signed_amount",
                     "balance_after", "currency", "description", "counterparty", "timestamp"],
        "properties": {
            "reference": {"type": "string", "description": "The journal entry's reference."},
            "transaction_type": {"enum": ["DEPOSIT", "WITHDRAWAL", "TRANSFER_IN",
                                          "TRANSFER_OUT", "REVERSAL", "CASH_IN", "CASH_OUT"]},
            "side": {"enum": ["credit", "debit"]},
            "amount": MONEY,
            "signed_amount": MONEY,
            "balance_after": MONEY,
            "currency": CURRENCY,
            "description": {"type": "string"},
            "counterparty": {
                "type": ["string", "null"],
                "description": "The other party of a transfer as the account's owner knows "
                               "it: one of their own accounts (type and number), a saved "
                               "payee's nickname, or the holder's masked name (B** B****); "
                               "null for cash, interest and other lines with no other "
                               "customer."},
            "timestamp": TIMESTAMP,
        },
    },
    "TransactionPage": {
        "type": "object", "required": ["transactions", "next_cursor"],
        "properties": {
            "transactions": {"type": "array", "items": _ref("Transaction")},
            "next_cursor": {"type": ["string", "null"],
                            "description": "Pass as `cursor` for the next (older) page; "
                                           "null on the last page."},
        },
    },
    "CashPostingRequest": {
        "type": "object", "additionalProperties": False, "required": ["amount"],
        "properties": {"amount": AMOUNT_IN, "description": DESCRIPTION_IN},
        "examples": [{"amount": "12.50", "description": "Cash at the counter"}],
    },
    "TransferRequest": {
        "type": "object", "additionalProperties": False,
        "required": ["from_account", "to_account", "amount"],
        "properties": {"from_account": ACCOUNT_NUMBER, "to_account": ACCOUNT_NUMBER,
                       "amount": AMOUNT_IN, "description": DESCRIPTION_IN,
                       "otp": {"type": "string", "maxLength": 64,
                               "description": "Step-up: for a caller with two-step sign-in, "
                                              "the current code from the authenticator app "
                                              "(or an unused recovery code) approving this "
                                              "transfer, needed when it goes to an account "
                                              "the caller never paid before or is above the "
                                              "step-up threshold (not between the caller's "
                                              "own accounts). Not part of the request's "
                                              "identity: a retry with the same "
                                              "Idempotency-Key and a newer code is the same "
                                              "request, and a retry of an answered key needs "
                                              "no code."}},
        "examples": [{"from_account": "ACC-000000001", "to_account": "ACC-000000002",
                      "amount": "12.50", "description": "Rent"}],
    },
    "Posting": {
        "type": "object",
        "description": "A posted journal entry, from the caller's side: `account` for a "
                       "deposit or withdrawal, `from_account`/`to_account` for a transfer; "
                       "`balance_after` is the caller's (source) account's balance.",
        "required": ["reference", "entry_type", "channel", "description", "created_at",
                     "amount", "balance_after"],
        "properties": {
            "reference": {"type": "string"},
            "entry_type": {"enum": ["DEPOSIT", "WITHDRAWAL", "TRANSFER", "LOAN_REPAYMENT"]},
            "channel": {"type": "string"},
            "description": {"type": "string"},
            "created_at": TIMESTAMP,
            "account": {"type": "string"},
            "from_account": {"type": "string"},
            "to_account": {"type": "string"},
            "amount": MONEY,
            "balance_after": MONEY,
            "currency": CURRENCY,
        },
    },
    "Loan": {
        "type": "object",
        "description": "A loan or application of the caller. `as_of`, `due`, `overdue`, "
                       "`payoff` and `schedule` are on the single loan only.",
        "required": ["id", "loan_number", "product", "status", "principal", "term",
                     "frequency", "annual_rate", "amortisation", "account", "disbursed_on",
                     "closed_on", "currency", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "loan_number": {"type": "string"},
            "product": {"type": "string"},
            "status": {"enum": ["submitted", "approved", "rejected", "active", "paid_off",
                                "written_off"]},
            "principal": MONEY,
            "term": {"type": "integer", "description": "Number of repayments."},
            "frequency": {"enum": ["weekly", "monthly"]},
            "annual_rate": {"type": "string", "description": "Percent a year."},
            "amortisation": {"enum": ["equal_instalments", "equal_principal"]},
            "account": {"type": "string"},
            "disbursed_on": {"type": ["string", "null"], "format": "date"},
            "closed_on": {"type": ["string", "null"], "format": "date"},
            "currency": CURRENCY,
            "created_at": TIMESTAMP,
            "as_of": {"type": "string", "format": "date"},
            "due": MONEY, "overdue": MONEY,
            "payoff": {**MONEY, "description": "What repaying the loan in full costs on "
                                               "`as_of`: interest only to that day."},
            "schedule": {"type": "array", "items": _ref("Instalment")},
        },
    },
    "Instalment": {
        "type": "object",
        "required": ["number", "due_on", "principal", "interest", "fees", "paid",
                     "outstanding"],
        "properties": {"number": {"type": "integer"},
                       "due_on": {"type": "string", "format": "date"},
                       "principal": MONEY, "interest": MONEY, "fees": MONEY, "paid": MONEY,
                       "outstanding": MONEY},
    },
    "LoanList": {
        "type": "object", "required": ["loans"],
        "properties": {"loans": {"type": "array", "items": _ref("Loan")}},
    },
    "RepaymentRequest": {
        "type": "object", "additionalProperties": False, "required": ["amount"],
        "properties": {"amount": MONEY,
                       "otp": {"type": "string", "maxLength": 64,
                               "description": "Above the step-up threshold, for a caller "
                                              "with two-step sign-in."}},
    },
    "PostingStatus": {
        "type": "object",
        "required": ["idempotency_key", "operation", "status", "reference", "response",
                     "created_at", "completed_at"],
        "properties": {
            "idempotency_key": {"type": "string"},
            "operation": {"enum": ["deposit", "withdrawal", "transfer"]},
            "status": {"enum": ["posted", "refused"]},
            "reference": {"type": ["string", "null"]},
            "response": {
                "type": "object", "required": ["status", "body"],
                "properties": {"status": {"type": "integer"},
                               "body": {"type": "object",
                                        "description": "The Posting or the Problem "
                                                       "first answered."}},
            },
            "created_at": TIMESTAMP,
            "completed_at": TIMESTAMP,
        },
    },
    "Customer": {
        "type": "object",
        "required": ["id", "email", "first_name", "last_name", "phone_number", "is_active",
                     "is_verified", "accounts"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": {"type": ["string", "null"]},
            "last_name": {"type": ["string", "null"]},
            "phone_number": {"type": ["string", "null"]},
            "is_active": {"type": "boolean"},
            "is_verified": {"type": "boolean"},
            "accounts": {"type": "array", "items": _ref("Account")},
        },
    },
    "CustomerList": {
        "type": "object", "required": ["customers"],
        "properties": {"customers": {"type": "array", "items": _ref("Customer")}},
    },
}

PARAMETERS = {
    "AccountNumber": {"name": "number", "in": "path", "required": True,
                      "schema": ACCOUNT_NUMBER, "description": "An account number."},
    "LoanId": {"name": "loan_id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
               "description": "A loan's id."},
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": True,
        "description": "Required on postings: 1–64 visible ASCII characters, unique per "
                       "request (a UUID). A retry with the same key and body replays the "
                       "first answer (header Idempotent-Replayed: true) and posts nothing; the "
                       "same key with another body answers 422.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                   "pattern": "^[\\x21-\\x7e]+$"},
        "example": "5f0c3b8e-8d1c-4a49-9a57-0c5a6f2d4c11",
    },
    "Limit": {"name": "limit", "in": "query", "required": False,
              "description": "Page size, 1 to 200 (default 50).",
              "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    "Cursor": {"name": "cursor", "in": "query", "required": False,
               "description": "The `next_cursor` of the previous page (opaque).",
               "schema": {"type": "string"}},
    "Start": {"name": "start", "in": "query", "required": False,
              "description": "Only legs at or after this date (bank time zone) or RFC 3339 "
                             "date-time with offset.",
              "schema": {"type": "string", "examples": ["2026-11-01"]}},
    "End": {"name": "end", "in": "query", "required": False,
            "description": "Only legs before this date-time, or through the end of this "
                           "date (bank time zone).",
            "schema": {"type": "string", "examples": ["2026-11-30"]}},
    "Query": {"name": "q", "in": "query", "required": False,
              "description": "Text in the customer's name, email, phone or account number.",
              "schema": {"type": "string", "maxLength": 100}},
}


def _param(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def _body(schema: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _posting_operation(summary: str, description: str, body: str, operation_id: str,
                       path_params: list | None = None) -> dict:
    responses = {"201": {**_json(_ref("Posting"), "Posted (or the replay of the first "
                                                  "answer)."),
                         "headers": {"Location": {"schema": {"type": "string"},
                                                  "description": "The request's status URL."}}}}
    responses.update(_errors(*_IDEMPOTENT_POSTING_ERRORS))
    return {"summary": summary, "description": description, "operationId": operation_id,
            "tags": ["Postings"],
            "parameters": [*(path_params or []), _param("IdempotencyKey")],
            "requestBody": _body(body), "responses": responses}


def _transfer_operation() -> dict:
    operation = _posting_operation(
        "Transfer", "Transfer from one of the caller's accounts to any active customer "
        "account. Channel api. Step-up: a caller with two-step sign-in sends `otp` when the "
        "transfer goes to an account they never paid before or is above the step-up "
        "threshold; without it the answer is 403 `step-up-required`, a wrong code 401 "
        "`mfa-failed`, too many wrong codes 429 `mfa-locked`. These answers are not stored "
        "under the Idempotency-Key: send the request again with a code.",
        "TransferRequest", "transfer")
    responses = operation["responses"]
    responses["401"]["description"] = ("Missing, expired, tampered or revoked access token; "
                                       "or a wrong `otp` (problem `mfa-failed`).")
    responses["403"]["description"] = ("The caller's role may not do this, the user is not "
                                       "verified, or the transfer needs `otp` (problem "
                                       "`step-up-required`).")
    responses["429"] = _problem("Too many wrong codes: the caller's second-factor checks "
                                "are locked for a while (problem `mfa-locked`).")
    return operation


def _repayment_operation() -> dict:
    operation = _posting_operation(
        "Repay a loan", "Repay any amount up to the payoff from the loan's account; exactly "
        "the payoff pays the loan off (interest to the day only). More than the payoff is "
        "refused (422), as is a loan that is not active. Allocation: fees, then interest, "
        "then principal, oldest instalment first; the rest repays principal ahead. Step-up "
        "as for a transfer to one's own account: above the step-up threshold a caller with "
        "two-step sign-in sends `otp` (403 `step-up-required` without it).",
        "RepaymentRequest", "repayLoan", [_param("LoanId")])
    operation["tags"] = ["Loans"]
    operation["responses"]["429"] = _problem("Too many wrong codes (problem `mfa-locked`).")
    return operation


PATHS = {
    "/api/v1/token": {
        "post": {
            "summary": "Get an access token",
            "description": "Exchange email and password for a bearer token (HS256 JWT, 15 "
                           "minutes by default). A password change, deactivation or "
                           "/token/revoke voids every token issued before. Rate-limited per "
                           "IP and per email. An account with two-step sign-in also needs "
                           "`otp` (problem `mfa-required` without it, `mfa-failed` for a "
                           "wrong code, `mfa-locked` after too many); an account whose role "
                           "needs two-step sign-in but has none gets `mfa-enrolment-required`.",
            "operationId": "createToken", "tags": ["Tokens"], "security": [],
            "requestBody": _body("TokenRequest"),
            "responses": {"200": _json(_ref("TokenResponse"), "A new access token."),
                          **_errors("400", "401", "403", "413", "422", "429")},
        },
    },
    "/api/v1/token/revoke": {
        "post": {
            "summary": "Revoke all of the caller's tokens",
            "operationId": "revokeTokens", "tags": ["Tokens"],
            "responses": {"204": {"description": "Every earlier token is void."},
                          **_errors("401", "403")},
        },
    },
    "/api/v1/accounts": {
        "get": {
            "summary": "List the caller's accounts", "operationId": "listAccounts",
            "tags": ["Accounts"],
            "responses": {"200": _json(_ref("AccountList"), "The caller's accounts."),
                          **_errors("401", "403")},
        },
        "post": {
            "summary": "Open an account", "operationId": "openAccount", "tags": ["Accounts"],
            "requestBody": _body("OpenAccountRequest"),
            "responses": {"201": {**_json(_ref("Account"), "The new account."),
                                  "headers": {"Location": {"schema": {"type": "string"}}}},
                          **_errors("400", "401", "403", "413", "422")},
        },
    },
    "/api/v1/accounts/{number}": {
        "get": {
            "summary": "One of the caller's accounts", "operationId": "getAccount",
            "tags": ["Accounts"], "parameters": [_param("AccountNumber")],
            "responses": {"200": _json(_ref("Account"), "The account."),
                          **_errors("401", "403", "404")},
        },
    },
    "/api/v1/accounts/{number}/transactions": {
        "get": {
            "summary": "The account's transactions, newest first",
            "description": "Keyset pagination: follow `next_cursor` until it is null. Rows "
                           "posted meanwhile never shift or repeat the pages still to come.",
            "operationId": "listTransactions", "tags": ["Accounts"],
            "parameters": [_param("AccountNumber"), _param("Start"), _param("End"),
                           _param("Limit"), _param("Cursor")],
            "responses": {"200": _json(_ref("TransactionPage"), "A page of legs."),
                          **_errors("400", "401", "403", "404", "422")},
        },
    },
    "/api/v1/accounts/{number}/deposits": {
        "post": _posting_operation(
            "Deposit", "Deposit into the caller's account (tellers and admins: any customer "
            "account). Channel api.", "CashPostingRequest", "deposit",
            [_param("AccountNumber")]),
    },
    "/api/v1/accounts/{number}/withdrawals": {
        "post": _posting_operation(
            "Withdraw", "Withdraw from the caller's account (tellers and admins: any "
            "customer account). Channel api.", "CashPostingRequest", "withdraw",
            [_param("AccountNumber")]),
    },
    "/api/v1/transfers": {
        "post": _transfer_operation(),
    },
    "/api/v1/transfers/{key}": {
        "get": {
            "summary": "What became of a posting request",
            "description": "Look up a deposit, withdrawal or transfer by its Idempotency-Key: "
                           "posted (with the reference and its answer, built from the "
                           "posting), refused (with the stored problem), or 404 when the request was never posted "
                           "(safe to resend with the same key).",
            "operationId": "getPostingStatus", "tags": ["Postings"],
            "parameters": [{"name": "key", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 64}}],
            "responses": {"200": _json(_ref("PostingStatus"), "The request's outcome."),
                          **_errors("401", "403", "404")},
        },
    },
    "/api/v1/loans": {
        "get": {
            "summary": "List the caller's loans", "operationId": "listLoans", "tags": ["Loans"],
            "responses": {"200": _json(_ref("LoanList"), "The caller's loans, newest first."),
                          **_errors("401", "403")},
        },
    },
    "/api/v1/loans/{loan_id}": {
        "get": {
            "summary": "One of the caller's loans, with its schedule", "operationId": "getLoan",
            "tags": ["Loans"], "parameters": [_param("LoanId")],
            "responses": {"200": _json(_ref("Loan"), "The loan, its schedule and payoff."),
                          **_errors("401", "403", "404")},
        },
    },
    "/api/v1/loans/{loan_id}/repayments": {
        "post": _repayment_operation(),
    },
    "/api/v1/customers": {
        "get": {
            "summary": "Find customers (tellers and admins)", "operationId": "listCustomers",
            "tags": ["Staff"], "parameters": [_param("Query"), _param("Limit")],
            "description": "Customers whose email, phone number (as stored, or typed the "
                           "local way of BANK_PHONE_REGION), name (first, last or full) or "
                           "an account number holds the query, sorted by last and first "
                           "name; every customer without a query.",
            "responses": {"200": _json(_ref("CustomerList"), "Matching customers."),
                          **_errors("400", "401", "403", "422")},
        },
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document", "operationId": "getOpenApi", "tags": ["Meta"],
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        },
    },
}


def openapi_document(server_url: str | None = None) -> dict:
    """A fresh copy of the OpenAPI document (callers may not change the shared one).

    ``server_url`` is the bank's public origin (``PUBLIC_URL``): clients generated from the
    document talk to it, never to whatever Host the document was fetched through.
    """
    document = deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "bankapp API",
            "version": "1.0.0",
            "description": "Accounts, transactions and idempotent postings for programs. "
                           "Amounts are JSON strings (\"12.50\"), never numbers. Errors are "
                           "RFC 9457 problem details (application/problem+json).",
        },
        "security": [{"bearerAuth": []}],
        "paths": _with_rate_limit(deepcopy(PATHS)),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"}},
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
        },
    })
    if server_url:
        document["servers"] = [{"url": server_url, "description": "This bank"}]
    return document

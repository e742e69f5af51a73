"""Deposits, withdrawals and transfers through the API: amounts, idempotency, refusals."""
import json
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.api.idempotency import ledger_key, prune_records
from bankapp.api.payload import request_fingerprint
from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.ledger import fast
from bankapp.models import (AccountStatus, ApiIdempotencyKey, AuditEvent, Channel, JournalEntry,
                            now_utc)
from support.api import assert_problem, balance, bearer, entry_count, new_key, send
from support.database import POSTGRES


def deposit(client, user, account, body, key=None, **kwargs):
    return send(client, "POST", f"/api/v1/accounts/{account.account_number}/deposits", user,
                body, key=key or new_key(), **kwargs)


def withdraw(client, user, account, body, key=None):
    return send(client, "POST", f"/api/v1/accounts/{account.account_number}/withdrawals", user,
                body, key=key or new_key())


def transfer(client, user, body, key=None):
    return send(client, "POST", "/api/v1/transfers", user, body, key=key or new_key())


@pytest.fixture
def account(customer, funded_account):
    return funded_account(customer, "100.00")


# ---------------------------------------------------------------- the happy paths

def test_deposit_posts_through_the_api_channel(client, customer, account):
    response = deposit(client, customer, account, {"amount": "12.50", "description": "Gift"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["account"] == account.account_number
    assert (body["amount"], body["balance_after"], body["entry_type"]) == (
        "12.50", "112.50", "DEPOSIT")
    assert balance(account) == Decimal("112.50")
    entry = db.session.scalar(sa.select(JournalEntry).where(
        JournalEntry.reference == body["reference"]))
    assert entry.channel == Channel.API == body["channel"]


def test_a_customer_cannot_deposit_by_api_when_self_deposits_are_off(app, client, customer,
                                                                     account):
    # Production's default: cash a customer says they have is not money a teller received.
    app.config["CUSTOMER_SELF_DEPOSITS"] = False
    response = deposit(client, customer, account, {"amount": "1000000.00"})
    problem = assert_problem(response, 403)
    assert problem["code"] == "self-deposits-off"
    assert balance(account) == Decimal("100.00") and entry_count() == 1


def test_a_teller_still_deposits_by_api_when_self_deposits_are_off(app, client, customer,
                                                                   account, make_user):
    app.config["CUSTOMER_SELF_DEPOSITS"] = False
    teller = make_user(email="teller@example.com", role="teller")
    assert deposit(client, teller, account, {"amount": "15.00"}).status_code == 201
    assert balance(account) == Decimal("115.00")


def test_withdrawal_lowers_the_balance(client, customer, account):
    response = withdraw(client, customer, account, {"amount": "40"})
    assert response.status_code == 201
    assert response.get_json()["balance_after"] == "60.00"
    assert balance(account) == Decimal("60.00")


def test_transfer_moves_money_and_hides_the_destination_balance(
        client, customer, account, make_user, funded_account):
    other = funded_account(make_user(), "5.00")
    response = transfer(client, customer, {"from_account": account.account_number,
                                           "to_account": other.account_number.lower(),
                                           "amount": "30.00",
                                           "description": "Rent"})
    assert response.status_code == 201
    body = response.get_json()
    assert (body["from_account"], body["to_account"], body["balance_after"]) == (
        account.account_number, other.account_number, "70.00")
    assert "35.00" not in response.get_data(as_text=True)
    assert balance(other) == Decimal("35.00")


# ---------------------------------------------------------------- the caller

def revoked_token(customer) -> dict:
    headers = bearer(customer)
    customer.revoke_api_tokens()
    db.session.commit()
    return headers


def test_a_transfer_with_a_revoked_token_is_401_and_nothing_moves(client, customer, account,
                                                                 funded_account):
    other = funded_account(customer)
    body = {"from_account": account.account_number, "to_account": other.account_number,
            "amount": "1.00"}
    entries = entry_count()
    response = send(client, "POST", "/api/v1/transfers", body=body, key=new_key(),
                    headers=revoked_token(customer))
    assert "revoked" in assert_problem(response, 401)["detail"]
    assert balance(account) == Decimal("100.00") and entry_count() == entries


def test_a_revoked_token_gets_its_401_before_the_transfer_body_is_judged(client, customer):
    response = send(client, "POST", "/api/v1/transfers", body={"amount": "1.00"},
                    headers=revoked_token(customer))  # no key, no accounts: a 400 otherwise
    assert "revoked" in assert_problem(response, 401)["detail"]


@pytest.mark.parametrize("kind", ["deposits", "withdrawals"])
def test_a_revoked_token_gets_its_401_before_the_cash_body_is_judged(client, customer, account,
                                                                     kind):
    response = send(client, "POST", f"/api/v1/accounts/{account.account_number}/{kind}",
                    body={"amount": "-1"}, headers=revoked_token(customer))  # a 400 otherwise
    assert "revoked" in assert_problem(response, 401)["detail"]


def test_a_deposit_to_someone_elses_account_is_404_like_a_missing_one(client, customer,
                                                                     funded_account, make_user):
    """The caller and the account are read in one query; the owner check is the same."""
    theirs = funded_account(make_user())
    for number in (theirs.account_number, "ACC-999999999", "not-a-number"):
        response = send(client, "POST", f"/api/v1/accounts/{number}/deposits",
                        body={"amount": "1.00"}, key=new_key(), headers=bearer(customer))
        assert_problem(response, 404)


def test_a_transfer_by_a_deactivated_caller_is_401(client, customer, account, funded_account):
    headers = bearer(customer)
    customer.is_active = False
    db.session.commit()
    body = {"from_account": account.account_number,
            "to_account": funded_account(customer).account_number, "amount": "1.00"}
    response = send(client, "POST", "/api/v1/transfers", body=body, key=new_key(),
                    headers=headers)
    assert_problem(response, 401)


# ---------------------------------------------------------------- amounts

@pytest.mark.parametrize("raw_amount", ["12.5", "12", "1e2", "NaN", "Infinity", "-Infinity",
                                        "1e400", "-0"])
def test_amounts_sent_as_json_numbers_are_refused(client, customer, account, raw_amount):
    response = deposit(client, customer, account, None,
                       raw=f'{{"amount": {raw_amount}, "description": "x"}}')
    problem = assert_problem(response, 400)
    assert problem["errors"] == [{"pointer": "#/amount", "detail":
                                  f'Amounts must be JSON strings such as "12.50", not numbers '
                                  f'(got {raw_amount}).'}]
    assert balance(account) == Decimal("100.00")


@pytest.mark.parametrize("amount, status, message", [
    ("abc", 422, "Enter an amount such as 12.50"),
    ("0", 422, "greater than zero"),
    ("-5", 422, "greater than zero"),
    ("1.234", 422, "two decimal places"),
    ("NaN", 422, "Enter an amount such as 12.50"),
    ("1e3", 422, "Enter an amount such as 12.50"),
    ("2000000.00", 422, "limit"),
    (True, 400, "not a boolean"),
    (None, 400, "not null"),
    (["1"], 400, "not an array"),
])
def test_bad_amounts_are_refused_with_a_message(client, customer, account, amount, status,
                                                message):
    problem = assert_problem(deposit(client, customer, account, {"amount": amount}), status)
    assert message in problem["errors"][0]["detail"]
    assert balance(account) == Decimal("100.00")


@pytest.mark.parametrize("raw", ["{", "[]", '"12.50"', "", '{"amount": "1", "amount": "900"}',
                                 "\xff"])
def test_malformed_bodies_are_400(client, customer, account, raw):
    problem = assert_problem(deposit(client, customer, account, None, raw=raw), 400)
    assert problem["code"] == "invalid-json"


def test_unknown_fields_are_refused(client, customer, account):
    problem = assert_problem(deposit(client, customer, account, {"amount": "1", "amout": "2"}),
                             422)
    assert problem["errors"][0]["pointer"] == "#/amout"


@pytest.mark.parametrize("description", ["\x00", "a" * 256, "\ud800"])
def test_descriptions_that_cannot_be_stored_are_refused(client, customer, account, description):
    problem = assert_problem(
        deposit(client, customer, account, {"amount": "1", "description": description}), 422)
    assert problem["errors"][0]["pointer"] == "#/description"


def test_oversized_body_is_413(client, customer, account):
    response = deposit(client, customer, account, {"amount": "1", "description": "x" * 70000})
    assert_problem(response, 413)


# ---------------------------------------------------------------- refusals

def test_overdraft_is_422_and_nothing_moves(client, customer, account):
    problem = assert_problem(withdraw(client, customer, account, {"amount": "100.01"}), 422)
    assert problem["code"] == "insufficient-funds"
    assert problem["type"] == "/api/docs#problem-insufficient-funds"
    assert balance(account) == Decimal("100.00")


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
def test_inactive_account_is_409(client, customer, account, status):
    account.status = status
    db.session.commit()
    problem = assert_problem(deposit(client, customer, account, {"amount": "1"}), 409)
    assert problem["code"] == "account-not-active"


@pytest.mark.parametrize("to_account, code", [
    ("ACC-000000000", "unknown-account"),
    ("GL-VAULT", "unknown-account"),  # the bank's own accounts are never a destination
    (None, "same-account"),
])
def test_transfer_refusals_are_422(client, customer, account, to_account, code):
    body = {"from_account": account.account_number,
            "to_account": to_account or account.account_number, "amount": "1.00"}
    problem = assert_problem(transfer(client, customer, body), 422)
    assert problem["code"] == code


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
def test_transfer_to_an_inactive_account_is_409_and_nothing_moves(client, customer, account,
                                                                  make_user, funded_account,
                                                                  status):
    destination = funded_account(make_user())
    destination.status = status
    db.session.commit()
    body = {"from_account": account.account_number,
            "to_account": destination.account_number, "amount": "1.00"}
    problem = assert_problem(transfer(client, customer, body), 409)
    assert problem["code"] == "account-not-active" and "destination" in problem["detail"]
    assert balance(account) == Decimal("100.00") and balance(destination) == Decimal("0.00")


def test_transfer_to_a_malformed_account_number_is_a_field_error(client, customer, account):
    body = {"from_account": account.account_number, "to_account": "ACC 1;--", "amount": "1"}
    problem = assert_problem(transfer(client, customer, body), 422)
    assert problem["errors"][0]["pointer"] == "#/to_account"


# ---------------------------------------------------------------- idempotency

@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "k" * 65},
                                     {"Idempotency-Key": "has space"}])
def test_postings_require_a_valid_idempotency_key(client, customer, account, headers):
    response = send(client, "POST", f"/api/v1/accounts/{account.account_number}/deposits",
                    customer, {"amount": "1"}, headers=headers)
    problem = assert_problem(response, 400)
    assert problem["errors"][0]["header"] == "Idempotency-Key"
    assert balance(account) == Decimal("100.00")


def test_retry_with_the_same_key_replays_the_answer_and_posts_once(client, customer, account):
    key = new_key()
    first = deposit(client, customer, account, {"amount": "10.00"}, key=key)
    entries = entry_count()
    # Same request, fields in another order and other whitespace: the same request.
    again = deposit(client, customer, account, None, key=key, raw='{ "amount":"10.00" }')
    assert (again.status_code, again.get_json()) == (first.status_code, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert entry_count() == entries
    assert balance(account) == Decimal("110.00")


def test_same_key_with_another_body_is_422(client, customer, account):
    key = new_key()
    deposit(client, customer, account, {"amount": "10.00"}, key=key)
    problem = assert_problem(deposit(client, customer, account, {"amount": "11.00"}, key=key),
                             422)
    assert problem["code"] == "idempotency-key-reused"
    assert balance(account) == Decimal("110.00")


def test_same_key_on_another_endpoint_is_422(client, customer, account):
    key = new_key()
    deposit(client, customer, account, {"amount": "10.00"}, key=key)
    assert_problem(withdraw(client, customer, account, {"amount": "10.00"}, key=key), 422)


def test_refusals_are_stored_and_replayed(client, customer, account):
    key = new_key()
    first = withdraw(client, customer, account, {"amount": "500.00"}, key=key)
    assert_problem(first, 422)
    ledger.deposit(account, Decimal("1000.00"), "now it would cover", customer)
    entries = entry_count()
    # The retry would be covered now: it posts, meets the stored refusal when it records its
    # answer, and is rolled back whole.
    again = withdraw(client, customer, account, {"amount": "500.00"}, key=key)
    assert (again.status_code, again.get_json()) == (422, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert entry_count() == entries
    assert balance(account) == Decimal("1100.00")


def test_keys_are_per_user(client, customer, account, make_user, funded_account):
    other_user = make_user()
    other = funded_account(other_user, "1.00")
    key = new_key()
    assert deposit(client, customer, account, {"amount": "1"}, key=key).status_code == 201
    assert deposit(client, other_user, other, {"amount": "1"}, key=key).status_code == 201


def test_a_posting_whose_answer_was_not_recorded_is_replayed_from_the_ledger(
        client, customer, account):
    # An entry posted under this key with no stored answer (an earlier version of bankapp
    # recorded the answer in a later transaction, and its worker could die in between).
    key = new_key()
    posting = ledger.deposit(account, Decimal("10.00"), "", customer, channel=Channel.API,
                             idempotency_key=ledger_key(key))
    entries = entry_count()
    response = deposit(client, customer, account, {"amount": "10.00"}, key=key)
    assert response.status_code == 201
    assert response.headers["Idempotent-Replayed"] == "true"
    assert response.get_json()["reference"] == posting.reference
    assert entry_count() == entries
    assert balance(account) == Decimal("110.00")


@pytest.mark.skipif(not POSTGRES, reason="the lean engine is PostgreSQL's fast path")
def test_an_api_transfer_to_an_account_paid_before_sends_nothing_on_the_sessions_connection(
        client, customer, account, make_user, funded_account):
    """Whether the destination tells its customer anything new is read on its own (on the
    lean engine, like the caller and the posting): a transfer to an account paid before
    opens no transaction of the session (no BEGIN, no ROLLBACK, no connection of its own)."""
    other = funded_account(make_user(), "5.00")
    body = {"from_account": account.account_number, "to_account": other.account_number,
            "amount": "1.00"}
    first = transfer(client, customer, body)
    assert first.status_code == 201, first.get_json()  # paid once: known from now on
    headers = bearer(customer)
    db.session.commit()  # the test's reads end, as a request of its own would start afresh
    sent = []

    def on_execute(connection, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        response = send(client, "POST", "/api/v1/transfers", body=body, key=new_key(),
                        headers=headers)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", on_execute)
    assert response.status_code == 201
    assert sent == []
    assert balance(other) == Decimal("7.00")


def test_an_api_transfer_past_the_look_up_budget_is_refused_and_moves_nothing(
        app, client, customer, account, make_user, funded_account):
    app.config["PAYEE_LOOKUP_LIMIT"] = "1 per hour"
    first, second = (funded_account(make_user(), "5.00") for _ in range(2))
    paid = transfer(client, customer, {"from_account": account.account_number,
                                       "to_account": first.account_number, "amount": "1.00"})
    assert paid.status_code == 201, paid.get_json()
    refused = transfer(client, customer, {"from_account": account.account_number,
                                          "to_account": second.account_number,
                                          "amount": "1.00"})
    assert_problem(refused, 429)
    assert balance(second) == Decimal("5.00")
    assert balance(account) == Decimal("99.00")
    looked_up = db.session.scalars(sa.select(AuditEvent.target_id).where(
        AuditEvent.action == Action.PAYEE_LOOKUP)).all()
    assert looked_up == [first.account_number]


@pytest.mark.skipif(not POSTGRES, reason="the lean engine is PostgreSQL's fast path")
def test_an_api_transfer_to_a_new_number_looks_it_up_in_one_statement(
        client, customer, account, make_user, funded_account):
    """The look-up of a number the customer never paid (its lock, re-check, budget and audit
    line) is one call of ``payee_lookup()`` in the known check's statement, on the lean
    engine, its own transaction: the whole transfer is three statements there (the caller,
    the check with the look-up, the posting) and none on the session's engine. The look-up
    is still audited, and the transfer posted."""
    other = funded_account(make_user(), "5.00")
    body = {"from_account": account.account_number, "to_account": other.account_number,
            "amount": "1.00"}
    headers = bearer(customer)
    db.session.commit()  # the test's reads end, as a request of its own would start afresh
    lean, sent = fast.lean_engine(), {"session": [], "lean": []}

    def listener(name):
        def on_execute(connection, cursor, statement, parameters, context, executemany):
            sent[name].append(statement)
        return on_execute

    listeners = [(db.engine, listener("session")), (lean, listener("lean"))]
    for engine, on_execute in listeners:
        sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        response = send(client, "POST", "/api/v1/transfers", body=body, key=new_key(),
                        headers=headers)
    finally:
        for engine, on_execute in listeners:
            sa.event.remove(engine, "before_cursor_execute", on_execute)
    assert response.status_code == 201, response.get_json()
    assert sent["session"] == []
    assert len(sent["lean"]) == 3, sent["lean"]
    assert sum("payee_lookup(" in statement for statement in sent["lean"]) == 1
    [looked_up] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == Action.PAYEE_LOOKUP)).all()
    assert (looked_up.actor_id, looked_up.target_id) == (customer.id, body["to_account"])
    assert looked_up.details == {"found": True, "via": "api-transfer"}
    assert balance(other) == Decimal("6.00")


@pytest.mark.skipif(not POSTGRES, reason="the lean engine is PostgreSQL's fast path")
def test_an_api_transfer_checks_out_one_lean_connection(client, customer, account, make_user,
                                                        funded_account):
    """The caller, the look-up and the posting share the request's one connection of the
    lean engine (``fast.one_connection``), each still its own transaction."""
    other = funded_account(make_user(), "5.00")
    headers = bearer(customer)
    db.session.commit()
    events = {"checkout": [], "checkin": []}
    listeners = {name: (lambda *args, seen=seen: seen.append(True))  # noqa: E731
                 for name, seen in events.items()}
    for name, listener in listeners.items():
        sa.event.listen(fast.lean_engine(), name, listener)
    try:
        response = send(client, "POST", "/api/v1/transfers", key=new_key(), headers=headers,
                        body={"from_account": account.account_number,
                              "to_account": other.account_number, "amount": "1.00"})
    finally:
        for name, listener in listeners.items():
            sa.event.remove(fast.lean_engine(), name, listener)
    assert response.status_code == 201, response.get_json()
    assert (len(events["checkout"]), len(events["checkin"])) == (1, 1)  # and given back


@pytest.mark.skipif(not POSTGRES, reason="the lean engine is PostgreSQL's fast path")
def test_an_api_transfer_between_own_accounts_makes_no_orm_session(app, customer, account,
                                                                  funded_account):
    """Caller, accounts and posting are read and written on the lean engine: nothing makes
    the request's ORM session, not even the hooks at its end (the rollback at teardown, the
    mail sent after the answer), which have nothing to do without one."""
    savings = funded_account(customer, "0.00")
    body = {"from_account": account.account_number, "to_account": savings.account_number,
            "amount": "1.00"}
    headers = bearer(customer)
    made = []
    factory = db.session.registry.createfunc

    def counting_factory():
        made.append(True)
        return factory()

    db.session.registry.createfunc = counting_factory
    try:
        with app.app_context():  # a context of its own, whose session nobody made yet
            response = send(app.test_client(), "POST", "/api/v1/transfers", body=body,
                            key=new_key(), headers=headers)
    finally:
        db.session.registry.createfunc = factory
    assert response.status_code == 201, response.get_json()
    assert made == []
    assert balance(savings) == Decimal("1.00")


def test_an_api_posting_commits_once_and_stores_no_copy_of_its_answer(
        app, client, customer, account):
    """One transaction writes the entry: the session's one commit on the generic path; on
    PostgreSQL's fast path one autocommitted ledger_post() call (its own transaction), and no
    other statement writes. The answer is not stored beside the entry: it is built from it."""
    transactions = []

    def on_commit(connection):
        transactions.append("commit")

    def on_execute(connection, cursor, statement, parameters, context, executemany):
        if "ledger_post(" in statement or statement.lstrip().upper().startswith(
                ("INSERT", "UPDATE", "DELETE")):
            transactions.append(statement)

    listeners = [(db.engine, "commit", on_commit)]
    if fast.enabled():
        listeners.append((fast.lean_engine(), "after_cursor_execute", on_execute))
    for target, name, listener in listeners:
        sa.event.listen(target, name, listener)
    try:
        response = deposit(client, customer, account, {"amount": "10.00"})
    finally:
        for target, name, listener in listeners:
            sa.event.remove(target, name, listener)
    assert response.status_code == 201
    assert len(transactions) == 1, transactions
    assert stored_keys() == set()


def test_an_answer_stored_by_an_earlier_release_is_replayed(app, client, customer, account):
    # Releases before migration 0028 stored each posting's answer beside its entry; a retry
    # after the upgrade gets that stored answer back.
    key = new_key()
    first = deposit(client, customer, account, {"amount": "4.00"}, key=key)
    stored = {**first.get_json(), "description": "as stored then"}
    with app.test_request_context(f"/api/v1/accounts/{account.account_number}/deposits",
                                  method="POST"):
        fingerprint = request_fingerprint({"amount": "4.00"})
    db.session.add(ApiIdempotencyKey(
        user_id=customer.id, key=key, operation="deposit", request_fingerprint=fingerprint,
        response_status=201, response_body=stored, entry_reference=stored["reference"],
        created_at=now_utc(), completed_at=now_utc()))
    db.session.commit()
    again = deposit(client, customer, account, {"amount": "4.00"}, key=key)
    assert (again.status_code, again.get_json()) == (201, stored)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(account) == Decimal("104.00")


@pytest.mark.skipif(not POSTGRES, reason="ledger_post() is PostgreSQL's")
def test_ledger_post_still_stores_the_answer_the_previous_release_sends(customer, account):
    """During an upgrade the previous release still calls ledger_post() with its answer's
    body, and reads its answers back from api_idempotency_keys: the function stores it.
    That release calls it with its own time and without the time zone (migration 0029 kept
    that function beside the new one)."""
    key, at = new_key(), now_utc()
    vault = ledger.internal_account()
    params = fast.parameters(
        entry_type="DEPOSIT", description="", actor_id=customer.id, channel=Channel.API,
        idempotency_key=ledger_key(key), reference=uuid.uuid4().hex, at=at,
        legs=[fast.FastLeg(account.id, "DEPOSIT", Decimal("5.00"), Decimal("0.00"),
                           ledger.MAX_BALANCE, None, 0),
              fast.FastLeg(vault.id, "DEPOSIT", Decimal("-5.00"), -ledger.MAX_BALANCE,
                           ledger.MAX_BALANCE, None, 0)],
        bucket=at, audit=None, answer=None, charge=None, timezone="UTC")
    params.update(answer_key=key, answer_operation="deposit", answer_fingerprint="its own",
                  answer_body=json.dumps({"entry_type": "DEPOSIT"}), answer_account=account.id)
    del params["timezone"]
    previous_call = sa.text("SELECT * FROM ledger_post({})".format(", ".join(
        f"CAST(:{name} AS {sql_type})" for name, sql_type in fast._PARAMETERS
        if name != "timezone")))
    result = fast._result(db.session.execute(previous_call, params).one(), params)
    db.session.commit()
    assert result.outcome == "posted"
    record = db.session.scalar(sa.select(ApiIdempotencyKey).where(ApiIdempotencyKey.key == key))
    assert (record.response_status, record.response_body, record.request_fingerprint) == (
        201, {"entry_type": "DEPOSIT", "balance_after": "105.00"}, "its own")


@pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL")
def test_concurrent_retries_with_the_same_key_post_exactly_once(app, customer, account):
    key, url = new_key(), f"/api/v1/accounts/{account.account_number}/deposits"
    headers = {**bearer(customer), "Idempotency-Key": key}
    barrier = threading.Barrier(6)
    answers = []

    def retry():
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            response = client.post(url, json={"amount": "7.00"}, headers=headers)
            answers.append((response.status_code, response.get_json()))
            db.session.remove()

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    assert entry_count() == 2  # the opening deposit and this one
    assert balance(account) == Decimal("107.00")
    # The twins wait for the first to commit, then replay its answer.
    assert [status for status, _ in answers] == [201] * 6
    assert all(body == answers[0][1] for _, body in answers)


# ---------------------------------------------------------------- request status

def test_status_of_a_posted_request(client, customer, account):
    key = new_key()
    first = deposit(client, customer, account, {"amount": "3.00"}, key=key)
    response = send(client, "GET", f"/api/v1/transfers/{key}", customer)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["operation"], body["reference"]) == (
        "posted", "deposit", first.get_json()["reference"])
    assert body["response"] == {"status": 201, "body": first.get_json()}


def test_status_of_a_refused_request(client, customer, account):
    key = new_key()
    first = withdraw(client, customer, account, {"amount": "999.00"}, key=key)
    body = send(client, "GET", f"/api/v1/transfers/{key}", customer).get_json()
    assert (body["status"], body["reference"]) == ("refused", None)
    assert body["response"] == {"status": 422, "body": first.get_json()}


def test_status_of_an_unknown_key_is_404(client, customer):
    assert_problem(send(client, "GET", f"/api/v1/transfers/{new_key()}", customer), 404)


def test_status_of_another_users_key_is_404(client, customer, account, make_user):
    key = new_key()
    deposit(client, customer, account, {"amount": "3.00"}, key=key)
    assert_problem(send(client, "GET", f"/api/v1/transfers/{key}", make_user()), 404)


# ---------------------------------------------------------------- pruning old answers

def age(key: str, days: int) -> None:
    """Make the stored answer for ``key`` look ``days`` days old."""
    db.session.execute(sa.update(ApiIdempotencyKey).where(ApiIdempotencyKey.key == key)
                       .values(created_at=now_utc() - timedelta(days=days)))
    db.session.commit()


def stored_keys() -> set[str]:
    return set(db.session.scalars(sa.select(ApiIdempotencyKey.key)))


def refuse(client, customer, account, key: str) -> None:
    """A withdrawal the account cannot cover, under ``key``: its refusal is stored."""
    assert_problem(withdraw(client, customer, account, {"amount": "999.00"}, key=key), 422)


def test_pruning_deletes_old_answers_and_keeps_recent_ones(client, customer, account):
    old, also_old, recent = new_key(), new_key(), new_key()
    for key in (old, also_old, recent):
        refuse(client, customer, account, key)
    age(old, 31)
    age(also_old, 31)
    age(recent, 29)
    assert prune_records(timedelta(days=30)) == 2
    assert stored_keys() == {recent}
    assert prune_records(timedelta(days=30)) == 0


def test_pruning_in_batches_smaller_than_the_backlog_deletes_it_all(client, customer, account):
    old = [new_key() for _ in range(5)]
    for key in old:
        refuse(client, customer, account, key)
        age(key, 40)
    recent = new_key()
    refuse(client, customer, account, recent)
    assert prune_records(timedelta(days=30), batch_size=2) == 5
    assert stored_keys() == {recent}


@pytest.mark.parametrize("post, amount", [(deposit, "10.00"), (withdraw, "100.00")],
                         ids=["deposit", "withdrawal-that-empties-the-account"])
def test_a_posted_request_retried_after_pruning_replays_the_same_posting(
        client, customer, account, post, amount):
    # Nothing of a posting is pruned: its journal entry keeps the key, so the retry finds
    # the posting (a withdrawal's retry is refused for want of funds first, then finds it
    # all the same).
    key = new_key()
    first = post(client, customer, account, {"amount": amount}, key=key)
    assert first.status_code == 201
    entries, money = entry_count(), balance(account)
    assert stored_keys() == set()  # nothing of it to prune
    again = post(client, customer, account, {"amount": amount}, key=key)
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert entry_count() == entries
    assert balance(account) == money


def test_a_refusal_retried_after_pruning_is_evaluated_again(client, customer, account):
    # The trade-off of a retention window: a pruned refusal is forgotten.
    key = new_key()
    assert_problem(withdraw(client, customer, account, {"amount": "500.00"}, key=key), 422)
    ledger.deposit(account, Decimal("1000.00"), "now it would cover", customer)
    age(key, 31)
    assert prune_records(timedelta(days=30)) == 1
    again = withdraw(client, customer, account, {"amount": "500.00"}, key=key)
    assert again.status_code == 201
    assert balance(account) == Decimal("600.00")


def test_a_key_reused_for_another_description_is_422(client, customer, account):
    # What the entry shows is what tells a retry from a new request, the description too.
    key = new_key()
    first = deposit(client, customer, account, {"amount": "10.00", "description": "Rent"},
                    key=key)
    assert first.status_code == 201
    entries = entry_count()
    again = deposit(client, customer, account, {"amount": "10.00", "description": "Food"},
                    key=key)
    assert assert_problem(again, 422)["code"] == "idempotency-key-reused"
    assert entry_count() == entries
    assert balance(account) == Decimal("110.00")


def test_a_retry_with_the_amount_written_another_way_replays_the_posting(
        client, customer, account):
    key = new_key()
    first = deposit(client, customer, account, {"amount": "10"}, key=key)
    again = deposit(client, customer, account, {"amount": "10.00"}, key=key)
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(account) == Decimal("110.00")


def test_a_transfer_key_reused_for_another_destination_is_422(
        client, customer, account, funded_account, make_user):
    first_payee, second_payee = funded_account(make_user()), funded_account(make_user())
    key = new_key()
    sent = transfer(client, customer, {"from_account": account.account_number,
                                       "to_account": first_payee.account_number,
                                       "amount": "5.00"}, key=key)
    assert sent.status_code == 201
    again = transfer(client, customer, {"from_account": account.account_number,
                                        "to_account": second_payee.account_number,
                                        "amount": "5.00"}, key=key)
    assert assert_problem(again, 422)["code"] == "idempotency-key-reused"
    assert balance(second_payee) == Decimal("0.00")

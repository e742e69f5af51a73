"""A statement issued while a posting to its account is in flight (PostgreSQL, real
concurrent transactions): its verification code must still verify once the posting commits.

A posting is timed once it holds its accounts' locks, and a statement waits for the
account's lock before it takes its own time (``ledger.settled_time``): so the statement lists
every posting timed before it, and recomputing it later lists the same ones. Before both
(migration 0029), a posting was timed before it waited for the locks, and a statement issued
during that wait verified as "mismatch" once the posting committed with an earlier time."""
from __future__ import annotations

from decimal import Decimal as D

from bankapp.extensions import db
from bankapp.models import Account
from bankapp.reports import service
from support.concurrency import (InBackground, a_transfer_waiting_for_its_account,
                                 postgres_only, wait_for_lock_waits)

pytestmark = postgres_only


def _issue_this_months_statement(account_id: int) -> str:
    """The month's statement of the account as its owner downloads it: its code, recorded."""
    account = db.session.get(Account, account_id)
    today = service.local_today()
    st = service.statement(account, today.replace(day=1), today)
    service.record_issue(st, account.owner)
    return st.code


def test_a_statement_issued_while_a_posting_waits_on_its_account_still_verifies(
        app, workers_on_each_path, customer, funded_account):
    source, destination = funded_account(customer, "100.00"), funded_account(customer)
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with a_transfer_waiting_for_its_account(workers_on_each_path, url, source.id,
                                            destination.account_number, D("30.00")) as posting:
        # Issued while the transfer waits: it reads the account then, or waits itself; its
        # record waits for the lock anyway (the row's foreign key).
        issuing = InBackground(workers_on_each_path, _issue_this_months_statement, source.id)
        wait_for_lock_waits(url, 2)
    entry_id, code = posting.outcome(), issuing.outcome()
    assert isinstance(entry_id, int) and isinstance(code, str), (entry_id, code)
    assert service.verify_code(code, customer).status == "valid"

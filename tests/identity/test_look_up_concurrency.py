"""Account-number look-ups under real concurrency (PostgreSQL): one number looked up by the
same customer in several requests at once (a client's retries) is one look-up, audited once
and paid for once."""
from __future__ import annotations

from limits import parse as parse_limit

from bankapp.audit import Action
from bankapp.extensions import db, limiter
from bankapp.identity import lookups
from bankapp.models import Account, User
from support.backoffice import audit_rows
from support.concurrency import postgres_only, run_together

pytestmark = postgres_only


def _look_up(user_id: int, account_id: int) -> bool:
    account = db.session.get(Account, account_id)
    return lookups.may_reveal(db.session.get(User, user_id), account.account_number, account,
                              via="api-transfer")


def test_one_number_looked_up_several_times_at_once_is_one_audited_look_up(app, workers,
                                                                           customer, make_user,
                                                                           funded_account):
    bob_account = funded_account(make_user(email="bob@example.com"))
    outcomes = run_together(workers, _look_up, [(customer.id, bob_account.id)] * 4)
    assert outcomes == [True] * 4, outcomes
    [row] = audit_rows(Action.PAYEE_LOOKUP)
    assert row.target_id == bob_account.account_number
    with workers.app_context():
        limit = parse_limit(workers.config["PAYEE_LOOKUP_LIMIT"])
        _, left = limiter.limiter.get_window_stats(limit, "payee-lookup", str(customer.id))
    assert left == limit.amount - 1

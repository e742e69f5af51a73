"""Account-number look-ups under real concurrency (PostgreSQL): one number looked up by the
same customer in several requests at once (a client's retries) is one look-up, audited once
and paid for once."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
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


def _look_up_as_the_api(user_id: int, account_id: int) -> bool:
    # As the API asks it: light rows read on their own, no transaction of the session open.
    user = db.session.get(User, user_id)
    account = db.session.get(Account, account_id)
    caller = SimpleNamespace(id=user.id)
    destination = SimpleNamespace(id=account.id, owner_id=account.owner_id,
                                  status=account.status)
    number = account.account_number
    db.session.commit()
    return lookups.may_reveal(caller, number, destination, via="api-transfer")


@pytest.mark.parametrize("look_up", [_look_up, _look_up_as_the_api],
                         ids=["in-the-sessions-transaction", "as-the-api-outside-it"])
def test_one_number_looked_up_several_times_at_once_is_one_audited_look_up(
        app, workers, customer, make_user, funded_account, look_up):
    bob_account = funded_account(make_user(email="bob@example.com"))
    outcomes = run_together(workers, look_up, [(customer.id, bob_account.id)] * 4)
    assert outcomes == [True] * 4, outcomes
    [row] = audit_rows(Action.PAYEE_LOOKUP)
    assert row.target_id == bob_account.account_number
    with workers.app_context():
        limit = parse_limit(workers.config["PAYEE_LOOKUP_LIMIT"])
        _, left = limiter.limiter.get_window_stats(limit, "payee-lookup", str(customer.id))
    assert left == limit.amount - 1

"""Account-number look-ups under real concurrency (PostgreSQL), through ``payee_lookup()``
and through the generic path: one number looked up by the same customer in several requests
at once (a client's retries) is one look-up, audited once and paid for once; look-ups of
several numbers at once stop at the budget."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bankapp.audit import Action
from bankapp.extensions import db
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


LOOK_UPS = pytest.mark.parametrize("look_up", [_look_up, _look_up_as_the_api],
                                   ids=["in-the-sessions-transaction", "as-the-api-outside-it"])


@LOOK_UPS
def test_one_number_looked_up_several_times_at_once_is_one_audited_look_up(
        app, workers_on_each_path, customer, make_user, funded_account, look_up):
    workers_on_each_path.config["PAYEE_LOOKUP_LIMIT"] = "2 per hour"
    bob_account = funded_account(make_user(email="bob@example.com"))
    outcomes = run_together(workers_on_each_path, look_up, [(customer.id, bob_account.id)] * 4)
    assert outcomes == [True] * 4, outcomes
    [row] = audit_rows(Action.PAYEE_LOOKUP)
    assert row.target_id == bob_account.account_number
    # Paid for once: one of the two left.
    carol_account = funded_account(make_user(email="carol@example.com"))
    dave_account = funded_account(make_user(email="dave@example.com"))
    with workers_on_each_path.app_context():
        assert look_up(customer.id, carol_account.id) is True
        assert look_up(customer.id, dave_account.id) is False


@LOOK_UPS
def test_look_ups_of_several_numbers_at_once_stop_at_the_budget(
        app, workers_on_each_path, customer, make_user, funded_account, look_up):
    workers_on_each_path.config["PAYEE_LOOKUP_LIMIT"] = "3 per hour"
    accounts = [funded_account(make_user(email=f"holder{n}@example.com")) for n in range(6)]
    outcomes = run_together(workers_on_each_path, look_up,
                            [(customer.id, account.id) for account in accounts])
    assert sorted(outcomes) == [False] * 3 + [True] * 3, outcomes
    looked_up = {row.target_id for row in audit_rows(Action.PAYEE_LOOKUP)}
    assert looked_up == {account.account_number
                         for account, revealed in zip(accounts, outcomes) if revealed}

"""``payee_lookup()`` (PostgreSQL, migration 0030) and the generic path answer every look-up
alike and write the same audit lines: the same sequence of look-ups through each, on one
database, by two customers with the same story."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.identity import lookups
from bankapp.models import Account, AuditEvent, User
from support.concurrency import postgres_only, running_worker_app

pytestmark = postgres_only

UNKNOWN = "ACC-000000001"


def _story(user: User, bob: Account, carol: Account) -> list[bool]:
    return [
        lookups.may_reveal(user, bob.account_number, bob, via="api-transfer"),   # spent
        lookups.may_reveal(user, bob.account_number, bob, via="transfer"),       # known now
        lookups.may_reveal(user, UNKNOWN, None, via="transfer"),                 # spent
        lookups.may_reveal(user, UNKNOWN, None, via="api-transfer"),             # spent again
        lookups.may_reveal(user, carol.account_number, carol, via="transfer"),   # refused
        lookups.spend_look_up(user, bob.account_number, found=True, via="payees"),  # refused
    ]


def _told(app, user_id: int, bob_id: int, carol_id: int) -> list[bool]:
    with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.7"}):
        app.config["PAYEE_LOOKUP_LIMIT"] = "3 per hour"
        try:
            return _story(db.session.get(User, user_id), db.session.get(Account, bob_id),
                          db.session.get(Account, carol_id))
        finally:
            db.session.remove()


def _lines(user_id: int) -> list[tuple]:
    return [(row.target_type, row.target_id, row.details, row.ip_address)
            for row in db.session.scalars(
                sa.select(AuditEvent).where(AuditEvent.actor_id == user_id,
                                            AuditEvent.action == Action.PAYEE_LOOKUP)
                .order_by(AuditEvent.id))]


@pytest.mark.parametrize("path", ["payee_lookup", "generic"])
def test_both_paths_answer_a_customers_look_ups_alike_and_write_the_same_lines(app, make_user, funded_account, path):
    user = make_user(email="alice@example.com")
    bob = funded_account(make_user(email="bob@example.com"))
    carol = funded_account(make_user(email="carol@example.com"))
    with running_worker_app(app.config["SQLALCHEMY_DATABASE_URI"],
                            LEDGER_FAST_PATH=path == "payee_lookup") as workers:
        told = _told(workers, user.id, bob.id, carol.id)
    assert told == [True, True, True, True, False, False]
    assert _lines(user.id) == [
        ("account", bob.account_number, {"found": True, "via": "api-transfer"}, "203.0.113.7"),
        ("account", UNKNOWN, {"found": False, "via": "transfer"}, "203.0.113.7"),
        ("account", UNKNOWN, {"found": False, "via": "api-transfer"}, "203.0.113.7")]

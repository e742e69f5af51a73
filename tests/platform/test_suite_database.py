"""The suite's own database reset (``support.database.empty_database``), which every test's
``app`` fixture relies on: it must leave no row behind, the audit trail's included (which
refuses DELETE), and number rows from 1 again, as a freshly migrated database does."""
from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from bankapp import audit, ledger
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.models import Account, AuditEvent, JournalEntry, Role, User
from support.database import empty_database


def _counts() -> dict[str, int]:
    return {model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (User, Account, JournalEntry, AuditEvent)}


def test_an_emptied_database_keeps_no_row_of_a_test_the_audit_trail_included(
        make_user, funded_account):
    customer, teller = make_user(), make_user(role=Role.TELLER)
    ledger.deposit(funded_account(customer), Decimal("25.00"), "Counter deposit", teller)
    audit.record(Action.SIGNUP, actor=customer, target_type=TargetType.USER,
                 target_id=customer.id)
    db.session.commit()
    assert all(_counts().values())

    empty_database()

    assert _counts() == {"users": 0, "accounts": 0, "journal_entries": 0, "audit_events": 0}


def test_an_emptied_database_numbers_its_rows_from_one_again(make_user):
    make_user()
    make_user()

    empty_database()

    assert make_user().id == 1

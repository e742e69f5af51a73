"""Shared fixtures and helpers for the teller, admin and audit tests (imported by them)."""
from __future__ import annotations

import hashlib
import os
from decimal import Decimal

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from bankapp import ledger
from bankapp.extensions import db
from bankapp.audit import trail
from bankapp.models import Account, Role
from support.users import log_in_as

D = Decimal


@pytest.fixture
def teller(make_user):
    return make_user(email="teller@example.com", role=Role.TELLER, first_name="Tom",
                     last_name="Teller")


@pytest.fixture
def admin(make_user):
    return make_user(email="admin@example.com", role=Role.ADMIN, first_name="Ada",
                     last_name="Admin")


@pytest.fixture
def other_admin(make_user):
    return make_user(email="admin2@example.com", role=Role.ADMIN, first_name="Ben",
                     last_name="Boss")


@pytest.fixture
def teller_client(client, teller):
    log_in_as(client, teller)
    return client


@pytest.fixture
def admin_client(client, admin):
    log_in_as(client, admin)
    return client


@pytest.fixture
def account(customer, funded_account):
    """Alice's savings account holding 500.00."""
    return funded_account(customer, "500.00")


@pytest.fixture
def stocked_till(teller, admin):
    """The teller's till, holding 1,000.00 allocated from the vault."""
    till = ledger.till_for(teller)
    ledger.allocate_cash(till, D("1000.00"), admin)
    return till


def balance(account: Account) -> Decimal:
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account.id))


def audit_rows(action: str | None = None) -> list:
    """The audit trail as the admin reads it (rows, and postings that are their own line),
    oldest first."""
    line_ids = list(db.session.scalars(trail.query(action=action)))
    return list(reversed(trail.load(line_ids)))


def assert_clean_book() -> None:
    assert ledger.reconcile().problems == []


def session_csrf(client, app) -> str:
    """A valid CSRF token for ``client``'s session, for POST-only URLs with no form page
    (the token Flask-WTF would render: the session's raw token, signed)."""
    with client.session_transaction() as session:
        raw = session.setdefault("csrf_token", hashlib.sha1(os.urandom(64)).hexdigest())
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token",
                                  signer_kwargs={"digest_method": hashlib.sha256}).dumps(raw)


def post_with_csrf(client, app, url: str, data: dict | None = None, **kwargs):
    return client.post(url, data={"csrf_token": session_csrf(client, app), **(data or {})},
                       **kwargs)

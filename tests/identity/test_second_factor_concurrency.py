"""Second-factor counting under real concurrency (PostgreSQL): codes sent at once are counted
once each, in the database, and the lock they lead to is written once."""
from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from flask import current_app

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.identity import factors
from bankapp.models import OutboxMessage, User
from support.backoffice import audit_rows
from support.concurrency import postgres_only, run_together
from support.users import enrol_totp, totp_now

pytestmark = postgres_only

LOCKED_SUBJECT = "Too many wrong sign-in codes on your bankapp account"


def _check(user_id: int, code: str) -> str:
    with request_context():
        try:
            return factors.verify_second_factor(db.session.get(User, user_id), code)
        except factors.SecondFactorRefused as refusal:
            return "locked" if refusal.locked else "refused"


def request_context():
    # The failure's audit row names the browser: a request is what a check always runs in.
    return current_app.test_request_context("/accounts/login/2fa/", method="POST")


def test_one_right_code_sent_twice_at_once_passes_once_and_counts_no_failure(workers,
                                                                             customer):
    code = totp_now(enrol_totp(customer))
    outcomes = run_together(workers, _check, [(customer.id, code)] * 2)
    assert sorted(outcomes) == ["refused", "totp"], outcomes
    assert audit_rows(Action.MFA_FAILURE) == []
    db.session.expire_all()
    assert db.session.get(User, customer.id).mfa_attempts == 0


def test_many_wrong_codes_at_once_check_only_the_limit_and_lock_once(app, workers, customer):
    enrol_totp(customer)
    limit = 5
    assert app.config["MFA_FAILURE_LIMIT"] == f"{limit} per 5 minutes"  # the seed's rule
    outcomes = run_together(workers, _check, [(customer.id, "000000")] * 16)
    assert Counter(outcomes) == {"refused": limit, "locked": 16 - limit}, outcomes
    assert len(audit_rows(Action.MFA_FAILURE)) == limit
    assert len(audit_rows(Action.MFA_LOCKED)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.subject == LOCKED_SUBJECT)) == 1
    assert factors.is_locked(customer)

"""Reset, sign-up and email change do the same work whether or not an account uses the
address, so their timing does not tell who has an account (bench/address_timing.py times it).
"""
from __future__ import annotations

import re

import argon2
import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import AuditEvent, OutboxMessage
from support.users import TEST_PASSWORD
from support.web import post_form

TABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE)\b.*?\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)",
                   re.S | re.I)


def statements_of(app, action) -> list[str]:
    """The statements ``action()`` ran, as "VERB table" (values and ids left out)."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        match = TABLE.match(statement)
        seen.append(f"{match.group(1).upper()} {match.group(2)}" if match else
                    statement.split()[0].upper())

    app.config["MAIL_AFTER_RESPONSE"] = False  # the request's own work only
    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        action()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    return seen


def rows(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def reset(client, address: str):
    return post_form(client, "/accounts/password_reset/", {"email": address})


def test_a_reset_for_an_unknown_address_does_the_work_of_a_known_one(app, client, customer):
    address = customer.email  # read here: the test's own query stays out of the count
    known = statements_of(app, lambda: reset(client, address))
    unknown = statements_of(app, lambda: reset(client, "nobody@example.com"))
    assert unknown == known
    assert rows(OutboxMessage) == 2 and rows(AuditEvent) == 2


def test_a_reset_for_an_unknown_address_tells_that_address_no_account_uses_it(app, client):
    reset(client, "nobody@example.com")
    [row] = db.session.scalars(sa.select(OutboxMessage)).all()
    assert row.recipient == "nobody@example.com"
    assert row.subject == "Reset your bankapp password"


def test_a_sign_up_with_a_taken_address_hashes_the_password_as_a_new_one_does(
        app, client, customer, monkeypatch):
    hashed = []
    original = argon2.PasswordHasher.hash
    monkeypatch.setattr(argon2.PasswordHasher, "hash",
                        lambda self, secret, **kw: hashed.append(1) or original(self, secret,
                                                                                **kw))
    form = {"password1": TEST_PASSWORD, "password2": TEST_PASSWORD,
            "phone_number": "+442071838750", "date_of_birth": "1990-01-01"}
    post_form(client, "/accounts/signup/", {**form, "email": "new.customer@example.com"})
    post_form(client, "/accounts/signup/", {**form, "email": customer.email})
    assert len(hashed) == 2
    assert rows(OutboxMessage) == 2  # a confirmation link, and a notice to the owner


def test_an_email_change_to_a_taken_address_does_the_work_of_a_free_one(
        app, customer_client, make_user):
    make_user(email="taken@example.com")

    def change(address):
        return lambda: post_form(customer_client, "/accounts/profile/email/",
                                 {"new_email": address, "current_password": TEST_PASSWORD})

    free = statements_of(app, change("free@example.com"))
    taken = statements_of(app, change("taken@example.com"))
    assert taken == free

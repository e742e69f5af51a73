"""Emails an anonymous visitor can cause are limited per recipient, whatever the client's IP.

The per-IP limits on the forms stop one client; many clients (a botnet, a proxy pool) could
still fill one mailbox. MAIL_PER_ADDRESS_LIMIT (3 per hour) counts per address and kind in the
limiter's store, and the visitor's answer is the same whether or not the email went out.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bankapp.extensions import mail
from support.database import POSTGRES
from support.users import TEST_PASSWORD
from support.web import form_fields

ROOT = Path(__file__).resolve().parents[2]

SIGNUP = {"password1": "lantern orbit velvet quarry", "password2": "lantern orbit velvet quarry",
          "phone_number": "+442071838750", "date_of_birth": "1990-01-01"}


def from_ip(client, n: int, path: str, data: dict):
    """POST ``data`` to the form at ``path`` as a browser at the n-th client address."""
    environ = {"REMOTE_ADDR": f"198.51.100.{n}"}
    page = client.get(path, environ_base=environ)
    fields = form_fields(page.get_data(as_text=True))
    return client.post(path, data={**fields, **data}, environ_base=environ)


def answer(response, client) -> tuple:
    """What the visitor sees: status, where they are sent, and the message shown there."""
    location = response.headers.get("Location", "")
    shown = client.get(location).get_data(as_text=True) if location else ""
    flashes = [line.strip() for line in shown.splitlines() if 'class="flash' in line]
    return response.status_code, location, tuple(flashes)


def ten_requests(client, path: str, data: dict) -> tuple[list, list]:
    with mail.record_messages() as outbox:
        answers = [answer(from_ip(client, n, path, data), client) for n in range(1, 11)]
    return outbox, answers


def test_ten_reset_requests_for_one_address_from_ten_ips_send_three_emails(client, customer):
    outbox, answers = ten_requests(client, "/accounts/password_reset/",
                                   {"email": customer.email})
    assert len(outbox) == 3
    assert all(m.recipients == [customer.email] for m in outbox)
    assert len(set(answers)) == 1, "the answer must not tell whether mail was sent"


def test_a_second_address_is_unaffected_by_the_first_ones_limit(client, customer, make_user):
    other = make_user(email="bob@example.com")
    ten_requests(client, "/accounts/password_reset/", {"email": customer.email})
    with mail.record_messages() as outbox:
        from_ip(client, 99, "/accounts/password_reset/", {"email": other.email})
    assert [m.recipients for m in outbox] == [[other.email]]


def test_ten_verification_resends_from_ten_ips_send_three_emails(client, make_user):
    pending = make_user(email="pending@example.com", verified=False)
    outbox, answers = ten_requests(client, "/accounts/verify/resend/", {"email": pending.email})
    assert len(outbox) == 3
    assert len(set(answers)) == 1


def test_ten_sign_ups_with_a_taken_address_send_its_owner_three_notices(client, customer):
    outbox, answers = ten_requests(client, "/accounts/signup/",
                                   {**SIGNUP, "email": customer.email})
    assert len(outbox) == 3
    assert {m.subject for m in outbox} == {"Someone tried to sign up with your address"}
    assert len(set(answers)) == 1


def test_a_held_back_sign_up_notice_answers_like_a_new_sign_up(client, customer):
    ten_requests(client, "/accounts/signup/", {**SIGNUP, "email": customer.email})
    held_back = answer(from_ip(client, 50, "/accounts/signup/",
                               {**SIGNUP, "email": customer.email}), client)
    fresh = answer(from_ip(client, 51, "/accounts/signup/",
                           {**SIGNUP, "email": "someone.new@example.com"}), client)
    assert held_back == fresh


def test_each_kind_of_email_has_its_own_count(client, make_user):
    # An unverified customer may ask for a reset and for a new confirmation link: using up
    # one kind must not block the other.
    pending = make_user(email="pending@example.com", verified=False)
    ten_requests(client, "/accounts/password_reset/", {"email": pending.email})
    with mail.record_messages() as outbox:
        from_ip(client, 77, "/accounts/verify/resend/", {"email": pending.email})
    assert [m.subject for m in outbox] == ["Confirm your email address"]


def test_the_address_is_counted_whatever_its_case_or_spacing(client, customer):
    spellings = ["alice@example.com", "ALICE@example.com", " Alice@Example.com ",
                 "alice@EXAMPLE.COM", "Alice@example.com"]
    with mail.record_messages() as outbox:
        for n, spelling in enumerate(spellings, start=1):
            from_ip(client, n, "/accounts/password_reset/", {"email": spelling})
    assert len(outbox) == 3


def test_a_held_back_reset_is_audited(app, client, customer):
    import sqlalchemy as sa

    from bankapp.audit import Action
    from bankapp.extensions import db
    from bankapp.models import AuditEvent

    ten_requests(client, "/accounts/password_reset/", {"email": customer.email})
    rows = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == Action.PASSWORD_RESET_REQUEST).order_by(AuditEvent.id)).all()
    assert len(rows) == 10
    assert [bool(row.details) for row in rows] == [False] * 3 + [True] * 7


def test_the_limit_is_configurable(app, client, customer):
    app.config["MAIL_PER_ADDRESS_LIMIT"] = "1 per hour"
    outbox, _ = ten_requests(client, "/accounts/password_reset/", {"email": customer.email})
    assert len(outbox) == 1


def test_the_limit_does_not_touch_a_logged_in_password_change_notice(client, customer):
    # Only emails an anonymous visitor can cause are limited; the owner's own password
    # changes always tell them.
    from support.users import log_in_as
    from support.web import post_form

    ten_requests(client, "/accounts/password_reset/", {"email": customer.email})
    log_in_as(client, customer)
    with mail.record_messages() as outbox:
        post_form(client, "/accounts/password/", {
            "current_password": TEST_PASSWORD,
            "new_password1": "saffron harbour tulip engine",
            "new_password2": "saffron harbour tulip engine"})
    assert [m.subject for m in outbox] == ["Your bankapp password was changed"]


def test_with_rate_limiting_switched_off_every_email_is_sent(app, client, customer):
    from bankapp.extensions import limiter

    limiter.enabled = False
    try:
        outbox, _ = ten_requests(client, "/accounts/password_reset/", {"email": customer.email})
    finally:
        limiter.enabled = True
    assert len(outbox) == 10


WORKER = """
import sys
from bankapp import create_app
from bankapp.extensions import mail
from config import TestingConfig

class Worker(TestingConfig):
    SQLALCHEMY_DATABASE_URI = sys.argv[1]
    RATELIMIT_STORAGE_URI = sys.argv[2]
    RATELIMIT_STORAGE_OPTIONS = {"key_prefix": sys.argv[3]}
    WTF_CSRF_ENABLED = False

app = create_app(Worker)
client = app.test_client()
with app.app_context(), mail.record_messages() as outbox:
    for n in range(3):
        # buffered: the answer is read whole and closed, so its mail goes out after it.
        client.post("/accounts/password_reset/", data={"email": sys.argv[4]},
                    environ_base={"REMOTE_ADDR": f"203.0.113.{n}"}, buffered=True)
print(len(outbox))
"""


@pytest.mark.skipif(not (POSTGRES and os.environ.get("TEST_REDIS_URL")),
                    reason="needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL")
def test_workers_share_the_count_through_the_limiter_store(app, client, customer):
    # Another process, like a second gunicorn worker or host, sends the three allowed
    # emails; this one must then send none.
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, app.config["SQLALCHEMY_DATABASE_URI"],
         app.config["RATELIMIT_STORAGE_URI"],
         app.config["RATELIMIT_STORAGE_OPTIONS"]["key_prefix"], customer.email],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.split()[-1] == "3"
    with mail.record_messages() as outbox:
        response = from_ip(client, 9, "/accounts/password_reset/", {"email": customer.email})
    assert response.status_code == 302
    assert outbox == []

"""The mail outbox: every email is a row committed with its action, then delivered over SMTP
with a timeout, retried with backoff, dead after MAIL_MAX_ATTEMPTS, retried by an admin."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bankapp import create_app
from bankapp.notifications import outbox
from bankapp.audit import Action
from bankapp.platform.crypto import decrypt_field
from bankapp.extensions import db, mail
from bankapp.models import JobRun, MailStatus, OutboxMessage, Role, now_utc
from config import TestingConfig
from support.backoffice import admin, admin_client, audit_rows, post_with_csrf  # noqa: F401
from support.database import POSTGRES
from support.net import free_port
from support.settings import FIELD_ENCRYPTION_KEY, deliver_mail_to
from support.users import TEST_PASSWORD, log_in_as
from support.web import post_form

REPO = Path(__file__).resolve().parents[2]
SIGNUP = {"email": "new.customer@example.com", "password1": TEST_PASSWORD,
          "password2": TEST_PASSWORD, "phone_number": "+442071838750",
          "date_of_birth": "1990-01-01"}
CRON_SECRET = "a-cron-secret-of-32-characters-x"


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def make_due() -> None:
    """Time passes: every pending message's next attempt is now."""
    db.session.execute(sa.update(OutboxMessage).values(next_attempt_at=now_utc()
                                                       - timedelta(seconds=1)))
    db.session.commit()


def queue(count: int = 1, to: str = "alice@example.com") -> list[int]:
    """Messages committed to the outbox without the after-request delivery (as by a worker
    that died, or a request whose delivery failed)."""
    for n in range(count):
        outbox.queue_email(to, f"Message {n}", f"Body {n}")
    db.session.commit()
    return db.session.info.pop("bankapp.outbox.committed")


# ---------------------------------------------------------------- written with the action


def test_smtp_down_during_sign_up_keeps_the_sign_up_and_one_email_pending(smtp_down, client):
    response = post_form(client, "/accounts/signup/", SIGNUP)
    assert response.status_code == 302
    [row] = rows()
    assert (row.recipient, row.subject) == ("new.customer@example.com",
                                            "Confirm your email address")
    assert (row.status, row.attempts) == (MailStatus.PENDING, 1)
    assert "Connection refused" in row.last_error


def test_smtp_back_then_deliver_mail_once_sends_exactly_one_email(app, smtp_down, client,
                                                                   runner, smtp_sink):
    post_form(client, "/accounts/signup/", SIGNUP)
    deliver_mail_to(app, smtp_sink.host, smtp_sink.port)
    make_due()
    result = runner.invoke(args=["deliver-mail", "--once"])
    assert result.exit_code == 0
    assert "sent 1, failed 0, dead 0" in result.output
    [message] = smtp_sink.messages
    assert message["To"] == "new.customer@example.com"
    assert "/accounts/verify/" in message.get_body().get_content()
    assert rows()[0].status == MailStatus.SENT
    again = runner.invoke(args=["deliver-mail", "--once"])
    assert "sent 0, failed 0, dead 0" in again.output and len(smtp_sink.messages) == 1


def test_a_rolled_back_action_leaves_no_email(app):
    outbox.queue_email("alice@example.com", "Never", "Never sent")
    db.session.rollback()
    assert rows() == []
    assert outbox.deliver_committed() is None


def test_the_body_with_its_link_is_stored_encrypted_and_dropped_once_sent(
        app, smtp_down, client, customer, smtp_sink):
    post_form(client, "/accounts/password_reset/", {"email": customer.email})
    [row] = rows()
    assert "/accounts/reset/" not in row.body_encrypted
    assert "/accounts/reset/" in decrypt_field(row.body_encrypted)
    deliver_mail_to(app, smtp_sink.host, smtp_sink.port)
    make_due()
    assert outbox.deliver().sent == 1
    [row] = rows()
    assert row.status == MailStatus.SENT and row.body_encrypted is None


def test_mail_of_a_request_is_delivered_before_it_answers(client, customer):
    with mail.record_messages() as messages:
        post_form(client, "/accounts/password_reset/", {"email": customer.email})
    assert [m.subject for m in messages] == ["Reset your bankapp password"]
    assert rows()[0].status == MailStatus.SENT


def test_delivery_after_a_request_commits_nothing_the_view_left_uncommitted(app, client,
                                                                            customer):
    def view():
        outbox.queue_email(customer.email, "Hello", "Body")
        db.session.commit()
        customer.first_name = "Uncommitted"  # a view that leaves this to be rolled back
        return "ok"

    app.add_url_rule("/_queue_then_dirty", "queue_then_dirty", view)
    assert client.get("/_queue_then_dirty").status_code == 200
    assert rows()[0].status == MailStatus.SENT
    assert db.session.get(type(customer), customer.id).first_name == "Alice"


def test_rotating_the_field_key_re_encrypts_unsent_mail(app, runner):
    from cryptography.fernet import Fernet

    old = app.config["FIELD_ENCRYPTION_KEY"] = FIELD_ENCRYPTION_KEY
    queue(1)
    new = Fernet.generate_key().decode()
    app.config["FIELD_ENCRYPTION_KEY"] = f"{new},{old}"
    assert runner.invoke(args=["rotate-field-key"]).exit_code == 0
    app.config["FIELD_ENCRYPTION_KEY"] = new
    assert decrypt_field(rows()[0].body_encrypted) == "Body 0"


# ---------------------------------------------------------------- timeouts


def test_the_worker_gives_up_on_a_hung_server_after_mail_timeout(app, runner,
                                                                 hung_smtp_server):
    port, _ = hung_smtp_server
    queue(3)
    deliver_mail_to(app, "127.0.0.1", port)
    app.config["MAIL_TIMEOUT"] = 1
    started = time.monotonic()
    result = runner.invoke(args=["deliver-mail", "--once"])
    # One message waits for the silent server; the others are left for the next pass.
    assert time.monotonic() - started < app.config["MAIL_TIMEOUT"] + 1
    assert "sent 0, failed 1, dead 0" in result.output
    assert [row.attempts for row in rows()] == [1, 0, 0]


# ---------------------------------------------------------------- retries, dead, admin


def test_failures_are_retried_after_1_2_4_minutes(app, smtp_down):
    queue(1)
    delays = []
    for _ in range(3):
        make_due()
        before = now_utc()
        assert outbox.deliver().failed == 1
        delays.append(rows()[0].next_attempt_at - before)
    assert [round(d.total_seconds() / 60) for d in delays] == [1, 2, 4]


def test_the_delay_stops_growing_at_six_hours():
    assert outbox.retry_delay(1) == timedelta(minutes=1)
    assert outbox.retry_delay(30) == timedelta(hours=6)


def test_a_message_is_dead_after_mail_max_attempts(app, smtp_down, runner):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    queue(1)
    outputs = []
    for _ in range(3):
        make_due()
        outputs.append(runner.invoke(args=["deliver-mail", "--once"]).output.splitlines()[0])
    assert outputs == ["Mail: sent 0, failed 1, dead 0."] * 2 + ["Mail: sent 0, failed 0, dead 1."]
    [row] = rows()
    assert (row.status, row.attempts) == (MailStatus.DEAD, 3)
    make_due()
    assert outbox.deliver().attempted == 0  # dead stays dead until an admin retries it


def test_a_recipient_refused_for_good_is_dead_at_once(app):
    from aiosmtpd.controller import Controller

    class RefusingServer:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 no such mailbox"

    port = free_port()
    controller = Controller(RefusingServer(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        deliver_mail_to(app, "127.0.0.1", port)
        queue(1, to="gone@example.com")
        report = outbox.deliver()
    finally:
        controller.stop()
    assert (report.dead, report.failed) == (1, 0)
    assert "no such mailbox" in rows()[0].last_error


def test_admins_see_dead_and_pending_mail_but_not_sent_mail(app, admin_client, smtp_down):
    app.config["MAIL_MAX_ATTEMPTS"] = 1
    queue(1, to="dead@example.com")
    outbox.deliver()
    queue(1, to="waiting@example.com")
    sent = OutboxMessage(recipient="sent@example.com", subject="Done", status=MailStatus.SENT,
                         attempts=1, next_attempt_at=now_utc(), sent_at=now_utc())
    db.session.add(sent)
    db.session.commit()
    page = admin_client.get("/admin/mail/").get_data(as_text=True)
    assert page.index("dead@example.com") < page.index("waiting@example.com")
    assert "sent@example.com" not in page
    assert "Connection refused" in page


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.TELLER])
def test_only_admins_open_the_mail_page(client, make_user, role):
    log_in_as(client, make_user(role=role))
    assert client.get("/admin/mail/").status_code == 403


def test_an_admin_retry_sends_a_dead_message_at_once_and_is_audited(
        app, admin, admin_client, smtp_down, smtp_sink):
    app.config["MAIL_MAX_ATTEMPTS"] = 1
    [message_id] = queue(1, to="dead@example.com")
    outbox.deliver()
    deliver_mail_to(app, smtp_sink.host, smtp_sink.port)
    response = post_with_csrf(admin_client, app, f"/admin/mail/{message_id}/retry/")
    assert response.status_code == 303
    [row] = rows()
    assert (row.status, row.attempts) == (MailStatus.SENT, 1)
    assert len(smtp_sink.messages) == 1
    [event] = audit_rows(Action.MAIL_RETRY)
    assert event.actor_id == admin.id and event.target_id == str(message_id)
    assert event.details == {"recipient": "dead@example.com", "subject": "Message 0",
                             "was": "dead", "attempts": 1}


def test_an_admin_retry_with_smtp_still_down_gives_fresh_attempts(app, admin_client,
                                                                   smtp_down):
    app.config["MAIL_MAX_ATTEMPTS"] = 1
    [message_id] = queue(1)
    outbox.deliver()
    post_with_csrf(admin_client, app, f"/admin/mail/{message_id}/retry/")
    [row] = rows()
    assert (row.status, row.attempts) == (MailStatus.DEAD, 1)  # tried at once, failed again
    app.config["MAIL_MAX_ATTEMPTS"] = 8
    post_with_csrf(admin_client, app, f"/admin/mail/{message_id}/retry/")
    assert (rows()[0].status, rows()[0].attempts) == (MailStatus.PENDING, 1)


def test_a_sent_message_cannot_be_retried(app, admin_client):
    [message_id] = queue(1)
    outbox.deliver()
    response = post_with_csrf(admin_client, app, f"/admin/mail/{message_id}/retry/",
                              follow_redirects=True)
    assert "has been sent already" in response.get_data(as_text=True)
    assert audit_rows(Action.MAIL_RETRY) == []


def test_a_retry_without_csrf_token_or_for_an_unknown_message_changes_nothing(app,
                                                                              admin_client):
    [message_id] = queue(1)
    assert admin_client.post(f"/admin/mail/{message_id}/retry/").status_code == 400
    assert post_with_csrf(admin_client, app, "/admin/mail/999/retry/").status_code == 404
    assert audit_rows(Action.MAIL_RETRY) == []


# ---------------------------------------------------------------- the Vercel cron route


CRON = "/internal/cron/deliver-mail"


def test_the_cron_route_is_404_without_cron_secret(client):
    assert client.get(CRON, headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-secret", CRON_SECRET,
                                    f"Basic {CRON_SECRET}", f"Bearer {CRON_SECRET}x"])
def test_the_cron_route_is_401_without_the_secret(app, client, header):
    app.config["CRON_SECRET"] = CRON_SECRET
    queue(1)
    headers = {"Authorization": header} if header else {}
    response = client.post(CRON, headers=headers)
    assert response.status_code == 401
    assert rows()[0].status == MailStatus.PENDING


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_cron_route_delivers_due_mail(app, client, method):
    # Vercel Cron sends GET; other schedulers may POST (no CSRF token: it takes no cookies).
    app.config["CRON_SECRET"] = CRON_SECRET
    queue(2)
    response = client.open(CRON, method=method,
                           headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert response.status_code == 200
    assert response.get_json() == {"sent": 2, "failed": 0, "dead": 0, "outcome": "succeeded"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert {row.status for row in rows()} == {MailStatus.SENT}


def test_production_refuses_a_short_cron_secret(production_env):
    from config import ProductionConfig

    production_env.setenv("CRON_SECRET", "short")
    with pytest.raises(SystemExit, match="CRON_SECRET"):
        create_app(ProductionConfig)


# ---------------------------------------------------------------- the worker


def test_the_worker_loops_until_ctrl_c(tmp_path, smtp_sink):
    database = f"sqlite:///{tmp_path / 'worker.db'}"
    config = type("WorkerFileConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": database, "FIELD_ENCRYPTION_KEY": FIELD_ENCRYPTION_KEY})
    app = create_app(config)
    with app.app_context():
        db.create_all()
        outbox.queue_email("alice@example.com", "From the worker", "Hello")
        db.session.commit()
        db.engine.dispose()
    env = {**os.environ, "BANKAPP_ENV": "development", "DATABASE_URL": database,
           "FIELD_ENCRYPTION_KEY": FIELD_ENCRYPTION_KEY, "MAIL_SERVER": smtp_sink.host,
           "MAIL_PORT": str(smtp_sink.port), "MAIL_USE_TLS": "0", "FLASK_APP": "wsgi"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "deliver-mail", "--interval",
                               "0.2"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        smtp_sink.wait_for("alice@example.com", "From the worker", timeout=30)
    finally:
        worker.send_signal(signal.SIGINT)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "sent 1, failed 0, dead 0" in output and output.rstrip().endswith("Stopped.")
    assert "Traceback" not in output
    with app.app_context():  # its passes are recorded as a run of the mail job
        [run] = db.session.scalars(sa.select(JobRun)).all()
        assert (run.job, run.trigger, run.outcome) == ("deliver-mail", "worker", "succeeded")
        assert run.counts == {"sent": 1, "failed": 0, "dead": 0}
        db.engine.dispose()


@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_two_workers_in_parallel_send_each_message_once(app, smtp_sink):
    deliver_mail_to(app, smtp_sink.host, smtp_sink.port)
    queue(60)
    start = threading.Barrier(2)
    reports = []

    def worker():
        with app.app_context():  # its own session and connection
            start.wait()
            reports.append(outbox.deliver(limit=1000))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    subjects = [str(message["Subject"]) for message in smtp_sink.messages]
    assert sorted(subjects) == sorted(f"Message {n}" for n in range(60))
    assert sum(report.sent for report in reports) == 60
    assert all(report.sent > 0 for report in reports), "one worker did everything: no race"
    assert {row.status for row in rows()} == {MailStatus.SENT}

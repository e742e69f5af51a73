"""Mail that nothing can stall or poison: one bad message never holds the others back, a
non-ASCII address goes out with SMTPUTF8 or dies with the reason, no page waits for SMTP,
one Message-ID per message, and every mail command says when something failed."""
from __future__ import annotations

import sqlalchemy as sa

from bankapp import create_app
from bankapp.extensions import db
from bankapp.models import MailStatus, OutboxMessage
from bankapp.notifications import outbox
from support.settings import PUBLIC_URL, deliver_mail_to
from support.mail_sink import MailSink, running_mail_sink
from support.users import TEST_PASSWORD
from support.web import post_form

CYRILLIC_ALICE = "\u0430lice@example.com"  # the first letter is Cyrillic
SIGNUP = {"email": "new.customer@example.com", "password1": TEST_PASSWORD,
          "password2": TEST_PASSWORD, "phone_number": "+442071838750",
          "date_of_birth": "1990-01-01"}


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def worker_only(app) -> None:
    """Production off Vercel: requests only queue mail; the worker or cron sends it."""
    app.config["MAIL_AFTER_RESPONSE"] = False


def test_a_cyrillic_address_does_not_stop_the_reset_queued_behind_it(app, client, runner,
                                                                      customer, smtp_sink):
    worker_only(app)
    outbox.queue_email(CYRILLIC_ALICE, "Confirm your email address", "Welcome")
    db.session.commit()
    post_form(client, "/accounts/password_reset/", {"email": customer.email})
    deliver_mail_to(app, smtp_sink.host, smtp_sink.port)  # a server without SMTPUTF8
    result = runner.invoke(args=["deliver-mail", "--once"])
    assert smtp_sink.wait_for(customer.email, "Reset your bankapp password")
    poisoned, reset = rows()
    assert (reset.status, poisoned.status) == (MailStatus.SENT, MailStatus.DEAD)
    assert "SMTPUTF8" in poisoned.last_error
    assert result.exit_code == 1, result.output


def test_a_non_ascii_address_goes_out_with_smtputf8_when_the_server_offers_it(app):
    with running_mail_sink(smtputf8=True) as sink:
        deliver_mail_to(app, sink.host, sink.port)
        outbox.queue_email(CYRILLIC_ALICE, "Hello", "Body")
        db.session.commit()
        report = outbox.deliver()
        assert report.sent == 1
        assert sink.wait_for(CYRILLIC_ALICE, "Hello")["To"] == CYRILLIC_ALICE


class RefusesFirstData(MailSink):
    """Answers the first message with "451 try later", then accepts; keeps each Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.message_ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        import email

        self.message_ids.append(email.message_from_bytes(envelope.content)["Message-ID"])
        if len(self.message_ids) == 1:
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_message_keeps_one_message_id_across_retries_at_the_public_host(app):
    app.config["PUBLIC_URL"] = PUBLIC_URL
    with running_mail_sink(handler=RefusesFirstData()) as server:
        deliver_mail_to(app, server.host, server.port)
        outbox.queue_email("alice@example.com", "Hello", "Body")
        db.session.commit()
        assert outbox.deliver().failed == 1
        db.session.execute(sa.update(OutboxMessage).values(
            next_attempt_at=OutboxMessage.created_at))
        db.session.commit()
        assert outbox.deliver().sent == 1
    first, second = server.message_ids
    assert first == second
    assert first.endswith("@bank.example>")


def test_deliver_mail_once_exits_1_when_a_message_failed(app, smtp_down, runner):
    outbox.queue_email("alice@example.com", "Hello", "Body")
    db.session.commit()
    result = runner.invoke(args=["deliver-mail", "--once"])
    assert result.exit_code == 1
    assert "failed 1" in result.output


def test_deliver_mail_once_fails_in_production_without_a_mail_server(production_env):
    from config import ProductionConfig

    production_env.delenv("MAIL_SERVER", raising=False)
    app = create_app(ProductionConfig)
    app.config["MAIL_SERVER"] = ""
    with app.app_context():
        db.create_all()
        outbox.queue_email("alice@example.com", "Hello", "Body")
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["deliver-mail", "--once"])
    assert result.exit_code == 1
    assert "MAIL_SERVER is not set" in result.output


def test_a_sign_up_does_not_touch_a_hung_smtp_server(app, client, hung_smtp_server):
    port, accepted = hung_smtp_server
    worker_only(app)
    deliver_mail_to(app, "127.0.0.1", port)
    response = post_form(client, "/accounts/signup/", SIGNUP)
    assert response.status_code == 302
    assert accepted == [], "the sign-up request connected to the mail server"
    [row] = rows()
    assert (row.status, row.attempts) == (MailStatus.PENDING, 0)


def test_after_response_mail_is_sent_only_once_the_answer_is_complete(app, client,
                                                                      hung_smtp_server):
    port, accepted = hung_smtp_server
    deliver_mail_to(app, "127.0.0.1", port)
    app.config.update(MAIL_AFTER_RESPONSE=True, MAIL_AFTER_RESPONSE_TIMEOUT=0.5)
    response = post_form(client, "/accounts/signup/", SIGNUP, buffered=False)
    assert response.status_code == 302 and response.get_data() is not None
    assert accepted == [] and rows()[0].attempts == 0  # the whole answer, no SMTP yet
    response.close()  # what a WSGI server does once the body is written
    [row] = rows()
    assert (row.status, row.attempts) == (MailStatus.PENDING, 1)
    assert "timed out" in row.last_error

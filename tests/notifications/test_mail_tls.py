"""Mail over TLS goes only to a server whose certificate is trusted (ASVS V12.3.2): the
system's trust store, or the CA file the operator names in ``MAIL_CA_FILE``."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from bankapp.extensions import db, mail
from bankapp.models import MailStatus, OutboxMessage
from bankapp.notifications import outbox
from support.mail_sink import running_mail_sink
from support.tls import self_signed_certificate


@pytest.fixture
def certificate(tmp_path):
    return self_signed_certificate(tmp_path)


def send_over_starttls(app, server, ca_file=None) -> OutboxMessage:
    """Queue one message and run a delivery pass to ``server`` with STARTTLS."""
    app.config.update(MAIL_SERVER=server.host, MAIL_PORT=server.port, MAIL_USE_TLS=True,
                      MAIL_USE_SSL=False, MAIL_SUPPRESS_SEND=False, MAIL_CA_FILE=ca_file)
    mail.init_app(app)
    outbox.queue_email("alice@example.com", "Your statement is ready", "Hello")
    db.session.commit()
    outbox.deliver()
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboxMessage)).one()


def test_mail_is_not_sent_to_a_server_whose_certificate_is_not_trusted(app, certificate):
    with running_mail_sink(certificate=certificate) as server:
        row = send_over_starttls(app, server)
    assert server.messages == []
    assert row.status == MailStatus.PENDING  # kept for a retry once the server is fixed
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_mail_goes_to_a_server_signed_by_the_ca_file_the_operator_names(app, certificate):
    with running_mail_sink(certificate=certificate) as server:
        row = send_over_starttls(app, server, ca_file=str(certificate[0]))
        assert server.wait_for("alice@example.com", "Your statement is ready")
    assert row.status == MailStatus.SENT

"""What a failed delivery writes to the log: which message, never to whom."""
from __future__ import annotations

import logging

from bankapp.extensions import db
from bankapp.notifications import outbox

ADDRESS = "alice.private@example.com"


def failed_delivery_log(app, caplog) -> str:
    outbox.queue_email(ADDRESS, "Reset your password", "Body")
    db.session.commit()
    db.session.info.pop("bankapp.outbox.committed", None)  # delivered below, not after a request
    with caplog.at_level(logging.INFO, logger="bankapp"):
        outbox.deliver()
    return "\n".join(record.getMessage() for record in caplog.records)


def test_a_failed_delivery_is_logged_without_the_recipients_address(app, smtp_down, caplog):
    logged = failed_delivery_log(app, caplog)
    assert "not sent" in logged
    assert ADDRESS not in logged


def test_a_dead_message_is_logged_without_the_recipients_address(app, smtp_down, caplog):
    app.config["MAIL_MAX_ATTEMPTS"] = 1
    logged = failed_delivery_log(app, caplog)
    assert "dead" in logged
    assert ADDRESS not in logged

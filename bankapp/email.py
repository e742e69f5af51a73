"""Outgoing email. Sent after the database commit; a failing SMTP server never loses the action."""
from __future__ import annotations

import logging
import smtplib
import socket

from flask import current_app
from flask_mail import Message

from bankapp.extensions import mail

log = logging.getLogger("bankapp.email")


def send_email(to: str, subject: str, body: str) -> bool:
    """Send a plain-text email; return False (and log why) when it could not be sent.

    With no ``MAIL_SERVER`` outside tests the message is written to the log instead, so a
    developer can follow the links it carries.
    """
    app = current_app
    if not app.config.get("MAIL_SERVER") and not app.testing:
        log.info("MAIL_SERVER is not set; email to %s not sent.\nSubject: %s\n\n%s", to, subject, body)
        return True
    message = Message(subject=subject, recipients=[to], body=body,
                      sender=app.config["MAIL_DEFAULT_SENDER"])
    try:
        mail.send(message)
    except (smtplib.SMTPException, OSError, socket.timeout):
        log.exception("could not send email %r to %s", subject, to)
        return False
    return True

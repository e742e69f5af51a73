"""Outgoing email. Sent after the database commit; a failing SMTP server never loses the action."""
from __future__ import annotations

import hashlib
import logging
import smtplib
import socket

from flask import current_app
from flask_mail import Message
from limits import parse as parse_limit

from bankapp.extensions import limiter, mail

log = logging.getLogger("bankapp.email")


def send_email(to: str, subject: str, body: str) -> bool:
    """Send a plain-text email; return False (and log why) when it could not be sent.

    With no ``MAIL_SERVER`` in development the message is written to the log instead, so a
    developer can follow the links it carries; in production it is not sent and only its
    subject is logged (its links must not sit in a log).
    """
    app = current_app
    if not app.config.get("MAIL_SERVER") and not app.testing:
        if app.config.get("ENV_NAME") == "production":
            # The body carries reset and confirmation links: whoever reads the logs must not
            # be able to take over an account with them.
            log.error("MAIL_SERVER is not set; email %r to a customer not sent", subject)
            return False
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


class MailKind:
    """Emails an anonymous visitor can cause, each limited per recipient on its own."""

    VERIFY = "verify"
    RESET = "reset"
    SIGNUP_NOTICE = "signup-notice"
    EMAIL_CHANGE = "email-change"


def within_recipient_limit(address: str, kind: str) -> bool:
    """Count one more ``kind`` email to ``address``; False once ``MAIL_PER_ADDRESS_LIMIT`` is spent.

    The per-IP limits on the forms cannot stop many clients from filling one mailbox; this
    counts per address, in the limiter's store (Redis in production), so every worker and
    host shares the count. Only a hash of the address is stored. A store that cannot be
    reached lets the email through: the per-IP limits still stand, and a lost reset link
    would hurt the customer more than one extra email.
    """
    if not limiter.enabled:
        return True
    item = parse_limit(current_app.config["MAIL_PER_ADDRESS_LIMIT"])
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]
    try:
        allowed = limiter.limiter.hit(item, "mail-recipient", kind, digest)
    except Exception:  # the limits storage raises its backend's own errors
        log.exception("mail limit store unavailable; sending the %s email anyway", kind)
        return True
    if not allowed:
        log.warning("%s email to address #%s held back: %s reached", kind, digest[:12],
                    current_app.config["MAIL_PER_ADDRESS_LIMIT"])
    return allowed

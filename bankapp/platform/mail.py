"""The SMTP transport: Flask-Mail's connection with a timeout on every reply, one connection
per delivery pass, and the failures sorted into "retry later" and "will never go".

Knows no outbox and no domain: ``bankapp.notifications.outbox`` decides what to send and
records what happened.
"""
from __future__ import annotations

import logging
import smtplib

from flask import current_app
from flask_mail import BadHeaderError, Connection, Message

log = logging.getLogger("bankapp.email")


class TimedConnection(Connection):
    """Flask-Mail's connection, with ``timeout`` on the socket (connect and every reply)."""

    def __init__(self, state, timeout: float):
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self):
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=self.timeout)
        host.set_debuglevel(int(self.mail.debug))
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class SmtpTransport:
    """One SMTP connection per delivery pass, opened on the first message."""

    def __init__(self) -> None:
        self.connection: TimedConnection | None = None

    def send(self, message: Message) -> None:
        """Send, or raise ``smtplib.SMTPException``/``OSError``; ``ConnectFailed`` when the
        server could not be reached at all."""
        app = current_app
        if not app.config.get("MAIL_SERVER") and not app.testing:
            # Development without a mail server: the email goes to the log, links and all,
            # so a developer can follow them. (Production never gets here: see deliver.)
            log.info("MAIL_SERVER is not set; email to %s not sent.\nSubject: %s\n\n%s",
                     message.recipients[0], message.subject, message.body)
            return
        if self.connection is None:
            state = app.extensions["mail"]
            connection = TimedConnection(state, app.config["MAIL_TIMEOUT"])
            try:
                connection.host = None if state.suppress else connection.configure_host()
            except (smtplib.SMTPException, OSError) as error:
                raise ConnectFailed(error) from error
            self.connection = connection
        try:
            self.connection.send(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.drop()  # a refusal (a 4xx/5xx reply) leaves the session usable; this does not
            raise

    def drop(self) -> None:
        """Forget a connection that failed (its state is unknown): the next send reconnects."""
        if self.connection is not None and self.connection.host is not None:
            self.connection.host.close()
        self.connection = None

    def close(self) -> None:
        if self.connection is not None and self.connection.host is not None:
            try:
                self.connection.host.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.host.close()
        self.connection = None


class ConnectFailed(Exception):
    """The SMTP server could not be reached (or refused the login): every message would fail."""

    def __init__(self, error: Exception):
        super().__init__(describe_failure(error))
        self.error = error


def describe_failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def is_permanent(error: Exception) -> bool:
    """A failure that no retry can fix: every recipient refused with a 5xx, a bad header."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in error.recipients.values())
    return isinstance(error, BadHeaderError)

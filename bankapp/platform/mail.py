"""The SMTP transport: Flask-Mail's connection with a timeout on every reply and the server's
certificate verified (TLS and STARTTLS), one connection per delivery pass, and the failures sorted into "retry later" and "will never go".

Messages go out through the standard library's ``smtplib.SMTP.send_message`` rather than
Flask-Mail's ``sendmail`` call: Flask-Mail 0.10 encodes addresses with ``formataddr``, which
raises ``UnicodeEncodeError`` on a non-ASCII local part (``\u0430lice@example.com``), while
``send_message`` sends such an address with SMTPUTF8 (RFC 6531) when the server offers it.

Knows no outbox and no domain: ``bankapp.notifications.outbox`` decides what to send and
records what happened.
"""
from __future__ import annotations

import email.policy
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from flask import current_app
from flask_mail import BadHeaderError, Connection, Message, email_dispatched

log = logging.getLogger("bankapp.email")


def tls_context() -> ssl.SSLContext:
    """The TLS settings for the mail server: its certificate and name verified, against
    ``MAIL_CA_FILE`` or the system's trust store."""
    # Flask-Mail hands smtplib no context, and smtplib's own default verifies nothing.
    return ssl.create_default_context(cafile=current_app.config.get("MAIL_CA_FILE"))


class TimedConnection(Connection):
    """Flask-Mail's connection, with ``timeout`` on the socket (connect and every reply)."""

    def __init__(self, state, timeout: float):
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self):
        context = tls_context()
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(self.mail.server, self.mail.port, timeout=self.timeout,
                                    context=context)
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=self.timeout)
        host.set_debuglevel(int(self.mail.debug))
        if self.mail.use_tls:
            host.starttls(context=context)
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

    def send(self, message: Message, envelope_from=None) -> None:
        """Send one message with ``send_message`` (SMTPUTF8 when an address needs it)."""
        if message.has_bad_headers():
            raise BadHeaderError
        if self.host is not None:
            outgoing = as_email_message(message)
            addresses = [*message.send_to, parseaddr(str(outgoing["From"]))[1]]
            if not all(address.isascii() for address in addresses):
                self.host.ehlo_or_helo_if_needed()
                if not self.host.has_extn("smtputf8"):
                    raise NeedsSmtpUtf8()
            self.host.send_message(outgoing)
        email_dispatched.send(current_app._get_current_object(), message=message)
        self.num_emails += 1


def as_email_message(message: Message) -> EmailMessage:
    """Flask-Mail's plain-text message as the standard library's ``EmailMessage``."""
    outgoing = EmailMessage(policy=email.policy.SMTP)
    outgoing["Subject"] = message.subject
    outgoing["From"] = message.sender if isinstance(message.sender, str) \
        else f"{message.sender[0]} <{message.sender[1]}>"
    outgoing["To"] = ", ".join(message.send_to)
    outgoing["Date"] = formatdate(message.date, localtime=False)
    outgoing["Message-ID"] = message.msgId
    outgoing.set_content(message.body or "")
    return outgoing


class NeedsSmtpUtf8(smtplib.SMTPNotSupportedError):
    """An address is not ASCII and the server does not offer SMTPUTF8: it can never go."""

    def __init__(self) -> None:
        super().__init__("the address is not ASCII and the mail server does not offer "
                         "SMTPUTF8 (RFC 6531)")


class SmtpTransport:
    """One SMTP connection per delivery pass, opened on the first message."""

    def __init__(self, timeout: float | None = None) -> None:
        self.connection: TimedConnection | None = None
        self.timeout = timeout

    def send(self, message: Message) -> None:
        """Send, or raise ``smtplib.SMTPException``/``OSError``; ``ConnectFailed`` when the
        server could not be reached at all."""
        app = current_app
        if not app.config.get("MAIL_SERVER") and not app.testing:
            # Development without a mail server: the email goes to the log, links and all,
            # so a developer can follow them. (Production never gets here: see deliver.)
            log.info("MAIL_SERVER is not set; email not sent.\nSubject: %s\n\n%s",
                     message.subject, message.body)
            return
        if self.connection is None:
            state = app.extensions["mail"]
            connection = TimedConnection(state, self.timeout or app.config["MAIL_TIMEOUT"])
            try:
                connection.host = None if state.suppress else connection.configure_host()
            except (smtplib.SMTPException, OSError) as error:
                raise ConnectFailed(error) from error
            self.connection = connection
        try:
            self.connection.send(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                smtplib.SMTPDataError, smtplib.SMTPNotSupportedError, BadHeaderError):
            raise  # a refusal (a 4xx/5xx reply) or a check before sending leaves it usable
        except Exception:
            self.drop()  # anything else leaves the session in a state nobody knows
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
    """A failure that no retry can fix: every recipient refused with a 5xx, a bad header, an
    address the server cannot take (not ASCII, no SMTPUTF8) or cannot be encoded at all."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in error.recipients.values())
    return isinstance(error, (BadHeaderError, NeedsSmtpUtf8, UnicodeError))

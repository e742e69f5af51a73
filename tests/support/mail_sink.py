"""An SMTP server for tests: aiosmtpd on a free loopback port, keeping what it receives.

Used by the real-browser suite and by the production-configuration tests, so both read
mail the way a customer's mailbox would: as delivered over SMTP.
"""
from __future__ import annotations

import email
import email.policy
import re
import socket
import ssl
import threading
from contextlib import contextmanager


class MailSink:
    """aiosmtpd handler that keeps every delivered message, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self._arrived = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, subject: str, timeout: float = 10.0):
        """The newest message to ``to`` whose subject contains ``subject``.

        The app sends right after its answer (or a worker pass sends it), so the message is
        normally already here; the wait covers the sink's own thread handing it over.
        """
        def find():
            for message in reversed(self.messages):
                if to.lower() in str(message["To"]).lower() and subject.lower() in str(
                        message["Subject"]).lower():
                    return message
            return None

        with self._arrived:
            self._arrived.wait_for(find, timeout=timeout)
            found = find()
        assert found is not None, (
            f"no email to {to} with subject containing {subject!r}; the sink has: "
            + "; ".join(f"{m['To']}: {m['Subject']}" for m in self.messages))
        return found

    @staticmethod
    def link_path(message, prefix: str) -> str:
        """The path of the first link in the body whose path starts with ``prefix``."""
        body = message.get_body(preferencelist=("plain", "html")).get_content()
        match = re.search(r"https?://[^/\s]+(" + re.escape(prefix) + r"[^\s\"'<>]*)", body)
        assert match, f"no link to {prefix}… in the email body:\n{body}"
        return match.group(1)


@contextmanager
def running_mail_sink(smtputf8: bool = False, handler=None, certificate=None):
    """A MailSink (or ``handler``) served by aiosmtpd on a free loopback port, stopped on exit;
    with ``smtputf8`` the server offers SMTPUTF8 (RFC 6531), as Postfix does by default; with
    ``certificate`` (a (certificate, key) pair of paths) it offers STARTTLS and requires it."""
    from aiosmtpd.controller import Controller

    sink = handler or MailSink()
    with socket.socket() as probe:
        probe.bind((sink.host, 0))
        port = probe.getsockname()[1]
    tls = {}
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(sink, hostname=sink.host, port=port, enable_SMTPUTF8=smtputf8,
                            **tls)
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()

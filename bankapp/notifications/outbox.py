"""Outgoing email through a transactional outbox.

Writing. ``queue_email`` adds an ``OutboxMessage`` row to the current transaction; the caller
commits it together with the action that causes the email (a sign-up, a reset request, a
password change …). No code sends mail directly: a rolled-back action leaves no email behind,
and a committed one never loses its email to a failing SMTP server. The body carries links
that take over an account, so it is stored encrypted with ``FIELD_ENCRYPTION_KEY`` (Fernet,
``bankapp.platform.crypto``) and dropped once sent.

Delivering. ``deliver`` claims due rows one at a time, each in its own transaction: on
PostgreSQL with ``FOR UPDATE SKIP LOCKED`` (several workers never send one row twice, and
never wait on each other); SQLite has no row locks, so run one worker there. It sends over
SMTP with ``MAIL_TIMEOUT`` on every socket operation (Flask-Mail 0.10 sets none) and
records the outcome in the same transaction. Whatever one message raises is recorded on its
own row and never stops the pass for the others:

======================  ==========================================================
sent                    status ``sent``, ``sent_at`` set, body dropped
refused for good (5xx   status ``dead`` at once, the reason in ``last_error``:
recipient, undecryptable, retrying cannot help
a non-ASCII address the
server cannot take)
any other failure       retry after 1, 2, 4 … minutes (capped at 6 hours);
(of any exception type) ``dead`` after ``MAIL_MAX_ATTEMPTS`` attempts
======================  ==========================================================

Each message keeps one Message-ID across its attempts, at ``PUBLIC_URL``'s host.

Who delivers. No page waits for SMTP. With ``MAIL_AFTER_RESPONSE`` (on by default on Vercel
and in development) the request's own mail is tried once after its answer has been written
(Werkzeug's ``call_on_close``), with the short ``MAIL_AFTER_RESPONSE_TIMEOUT``; what fails
waits for the next pass. Everywhere, ``flask deliver-mail`` (a worker, or ``--once`` from
cron) and ``/internal/cron/deliver-mail`` deliver what is due. Admins see pending and dead
mail and retry it (``/admin/mail/``). Delivery is at least once: a worker that dies between
the SMTP server's "250 OK" and its own commit sends that message again.
"""
from __future__ import annotations

import hashlib
import logging
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from flask_mail import Message
from flask_sqlalchemy.session import Session

from bankapp.extensions import db, limiter
from bankapp.models import MailStatus, OutboxMessage, now_utc
from bankapp.platform import database, metrics
from bankapp.platform.crypto import (
    FieldKeyError,
    decrypt_field,
    encrypt_field,
    reencrypt_field,
)
from bankapp.platform.mail import (
    ConnectFailed,
    SmtpTransport,
    describe_failure,
    is_permanent,
)
from bankapp.platform.ratelimit import parsed_limit

log = logging.getLogger("bankapp.email")

RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 6 * 3600
# Keys in ``Session.info``: the outbox rows of the open transaction, then of committed ones.
_QUEUED = "bankapp.outbox.queued"
_COMMITTED = "bankapp.outbox.committed"


# ---------------------------------------------------------------- writing


def queue_email(to: str, subject: str, body: str) -> OutboxMessage:
    """Add a plain-text email to the current transaction; the caller's commit queues it."""
    message = OutboxMessage(recipient=to, subject=subject, body_encrypted=encrypt_field(body),
                            status=MailStatus.PENDING, attempts=0, next_attempt_at=now_utc())
    db.session.add(message)
    db.session.info.setdefault(_QUEUED, []).append(message)
    return message


@sa.event.listens_for(Session, "after_commit")
def _remember_committed_mail(session) -> None:
    """The rows this transaction queued are now safe to send."""
    queued = session.info.pop(_QUEUED, [])
    ids = [identity[0] for identity in (sa.inspect(row).identity for row in queued)
           if identity is not None]
    if ids:
        session.info.setdefault(_COMMITTED, []).extend(ids)


@sa.event.listens_for(Session, "after_rollback")
def _forget_rolled_back_mail(session) -> None:
    session.info.pop(_QUEUED, None)


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
    item = parsed_limit(current_app.config["MAIL_PER_ADDRESS_LIMIT"])
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


# ---------------------------------------------------------------- delivering


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0  # will be retried
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.failed + self.dead

    @property
    def ok(self) -> bool:
        """Nothing failed (a command exits non-zero otherwise)."""
        return self.failed == 0 and self.dead == 0

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"sent {self.sent}, failed {self.failed}, dead {self.dead}"


def retry_delay(attempts: int) -> timedelta:
    """How long a message waits after its ``attempts``-th failure."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS))


def _claim_next(ids: list[int] | None) -> OutboxMessage | None:
    """Lock the next due message (skipping any another worker holds), or None."""
    stmt = (sa.select(OutboxMessage)
            .where(OutboxMessage.status == MailStatus.PENDING,
                   OutboxMessage.next_attempt_at <= now_utc())
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True))
    if ids is not None:
        stmt = stmt.where(OutboxMessage.id.in_(ids))
    return db.session.scalar(stmt)


class MailServerMissing(RuntimeError):
    """Production without ``MAIL_SERVER``: nothing can be delivered."""

    def __init__(self) -> None:
        super().__init__("MAIL_SERVER is not set; emails wait in the outbox unsent")


def message_id(row: OutboxMessage) -> str:
    """The message's Message-ID: the same on every attempt, at ``PUBLIC_URL``'s host."""
    host = urlsplit(current_app.config.get("PUBLIC_URL") or "").hostname or "localhost"
    created = int(row.created_at.timestamp() * 1_000_000)
    return f"<bankapp.outbox.{row.id}.{created}@{host}>"


def _as_message(row: OutboxMessage) -> Message:
    message = Message(subject=row.subject, recipients=[row.recipient],
                      body=decrypt_field(row.body_encrypted),
                      sender=current_app.config["MAIL_DEFAULT_SENDER"])
    message.msgId = message_id(row)
    return message


def _record(row: OutboxMessage, error: Exception | None, report: DeliveryReport,
            now: datetime) -> None:
    row.attempts += 1
    if error is None:
        row.status, row.sent_at, row.body_encrypted, row.last_error = (
            MailStatus.SENT, now, None, None)
        report.sent += 1
        return
    row.last_error = describe_failure(error)
    # The recipient's address stays out of the log: the admins' mail page shows it.
    if is_permanent(error) or isinstance(error, FieldKeyError) \
            or row.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
        row.status = MailStatus.DEAD
        report.dead += 1
        log.error("email %s is dead after %s attempt(s): %s", row.id, row.attempts,
                  row.last_error)
    else:
        row.next_attempt_at = now + retry_delay(row.attempts)
        report.failed += 1
        log.warning("email %s not sent (attempt %s), retry at %s: %s", row.id, row.attempts,
                    row.next_attempt_at.isoformat(timespec="seconds"), row.last_error)


def deliver(*, ids: list[int] | None = None, limit: int = 100, stop_at_failure: bool = False,
            seconds: float | None = None, should_stop=lambda: False,
            timeout: float | None = None) -> DeliveryReport:
    """One delivery pass over due messages (only ``ids``, when given), at most ``limit``.

    Stops early when the server cannot be reached (every other message would wait
    ``MAIL_TIMEOUT``, or ``timeout``, for nothing), at any failure with ``stop_at_failure``,
    after ``seconds`` or when ``should_stop()`` turns true; what is left waits for the next
    pass. Raises ``MailServerMissing`` in production without ``MAIL_SERVER``.
    """
    report = DeliveryReport()
    if not current_app.config.get("MAIL_SERVER") and current_app.config.get(
            "ENV_NAME") == "production":
        # The body carries reset and confirmation links: it must not go to the log, and the
        # mail stays queued until a server is configured.
        raise MailServerMissing()
    deadline = None if seconds is None else time.monotonic() + seconds
    transport = SmtpTransport(timeout)
    try:
        while report.attempted < limit and not should_stop():
            if deadline is not None and time.monotonic() > deadline:
                break
            row = _claim_next(ids)
            if row is None:
                break
            error, unreachable = None, False
            try:
                transport.send(_as_message(row))
            except ConnectFailed as failure:
                error, unreachable = failure.error, True
            except Exception as failure:  # noqa: BLE001 - whatever it is, it is this row's
                error = failure
            _record(row, error, report, now_utc())
            db.session.commit()
            if error is None:
                metrics.count_mail("sent")
            else:
                metrics.count_mail("dead" if row.status == MailStatus.DEAD else "failed")
            if error is not None and (stop_at_failure or unreachable):
                break
    finally:
        db.session.rollback()  # a claim left open by an unexpected error releases its lock
        transport.close()
    return report


def deliver_committed(timeout: float | None = None) -> DeliveryReport | None:
    """Try the messages committed since the last call, now; None when there were none."""
    ids = db.session.info.pop(_COMMITTED, None)
    if not ids:
        return None
    # Anything the caller changed after its last commit is not ours to commit with the
    # delivery's bookkeeping (a request's teardown would have rolled it back anyway).
    db.session.rollback()
    return deliver(ids=ids, limit=len(ids), stop_at_failure=True, timeout=timeout)


def outbox_backlog() -> tuple[int, float | None]:
    """Messages waiting to be sent, and the age in seconds of the oldest (for ``/metrics``)."""
    try:
        pending, oldest = db.session.execute(
            sa.select(sa.func.count(OutboxMessage.id), sa.func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status == MailStatus.PENDING)
        ).one()
    finally:
        db.session.rollback()  # give the connection back before the pool gauge is read
    if oldest is None:
        return pending, None
    return pending, max(0.0, (now_utc() - oldest).total_seconds())


def _deliver_after_response(app: Flask, ids: list[int]) -> None:
    """Try one request's messages once, its answer already written; failures wait."""
    # A server has ended the request's contexts by now; a test client may still hold one.
    with nullcontext() if has_app_context() else app.app_context():
        try:
            db.session.rollback()  # nothing the view left uncommitted goes with our commits
            deliver(ids=ids, limit=len(ids), stop_at_failure=True,
                    timeout=app.config["MAIL_AFTER_RESPONSE_TIMEOUT"])
        except Exception:  # noqa: BLE001 - the answer is gone; the rows wait for the worker
            log.exception("sending a request's email after its answer failed; left for the "
                          "worker")
            db.session.rollback()


def init_app(app: Flask) -> None:
    """With ``MAIL_AFTER_RESPONSE``, send each request's mail once its answer is written (else
    the worker or cron sends it); lets ``/metrics`` report the outbox's backlog."""

    metrics.register_outbox_reader(outbox_backlog)

    @app.after_request
    def send_this_requests_mail_after_the_answer(response):
        ids = db.session.info.pop(_COMMITTED, None) if database.session_made() else None
        if ids and app.config["MAIL_AFTER_RESPONSE"]:
            # Run by the WSGI server when it closes the response, after sending the body.
            response.call_on_close(lambda: _deliver_after_response(app, ids))
        return response


# ---------------------------------------------------------------- admin and key rotation


def undelivered():
    """Dead then pending messages, oldest first, as a select (for the admins' page)."""
    dead_first = sa.case((OutboxMessage.status == MailStatus.DEAD, 0), else_=1)
    return (sa.select(OutboxMessage)
            .where(OutboxMessage.status.in_((MailStatus.DEAD, MailStatus.PENDING)))
            .order_by(dead_first, OutboxMessage.created_at, OutboxMessage.id))


def requeue(message: OutboxMessage) -> None:
    """Make a pending or dead message due now with a fresh set of attempts (caller commits)."""
    message.status = MailStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = now_utc()
    db.session.info.setdefault(_QUEUED, []).append(message)


def reencrypt_bodies() -> int:
    """Re-encrypt every unsent body under the first FIELD_ENCRYPTION_KEY (caller commits)."""
    rows = db.session.scalars(sa.select(OutboxMessage)
                              .where(OutboxMessage.body_encrypted.is_not(None))).all()
    for row in rows:
        row.body_encrypted = reencrypt_field(row.body_encrypted)
    return len(rows)

"""The audit trail: who did what, to what, from where and when.

``record`` adds an ``AuditEvent`` to the current session *without committing*: the caller's
own commit writes it together with the action it records, so the trail never claims an
action that was rolled back, and an action never commits without its line. Rows are
append-only: no code updates or deletes them, and the database refuses it (triggers).
"""
from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal

from flask import has_request_context, request

from bankapp.platform import metrics
from bankapp.extensions import db
from bankapp.models import AuditEvent, User, now_utc


class _Names:
    """A closed list of the names the code writes: UPPER_CASE class attributes."""

    @classmethod
    def all(cls) -> list[str]:
        return sorted(value for name, value in vars(cls).items()
                      if name.isupper() and isinstance(value, str))


class Action(_Names):
    """Action names written to ``audit_events.action``."""

    SIGNUP = "auth.signup"
    LOGIN_SUCCESS = "auth.login.success"
    LOGIN_FAILURE = "auth.login.failure"
    VERIFY_EMAIL = "auth.verify_email"
    PASSWORD_RESET_REQUEST = "auth.password_reset.request"
    PASSWORD_RESET_COMPLETE = "auth.password_reset.complete"
    PASSWORD_CHANGE = "auth.password_change"
    PASSWORD_CHANGE_FAILURE = "auth.password_change.failure"
    LOGOUT = "auth.logout"
    API_TOKEN_ISSUED = "auth.api_token.success"
    API_TOKEN_FAILURE = "auth.api_token.failure"
    REAUTH_FAILURE = "auth.reauth.failure"
    SESSION_END = "auth.session.end"
    SESSION_END_OTHERS = "auth.session.end_others"
    MFA_ENROL = "mfa.enrol"
    MFA_REMOVE = "mfa.remove"
    MFA_RESET = "mfa.reset"
    MFA_RESET_REQUEST = "mfa.reset.request"  # waits for a second person (maker-checker)
    MFA_RESET_REJECT = "mfa.reset.reject"
    MFA_FAILURE = "mfa.failure"
    MFA_LOCKED = "mfa.locked"
    MFA_RECOVERY_CODE_USED = "mfa.recovery_code.used"
    MFA_RECOVERY_CODES_RENEWED = "mfa.recovery_codes.renewed"
    STEP_UP_SUCCESS = "step_up.success"
    STEP_UP_FAILURE = "step_up.failure"
    PASSKEY_ADD = "passkey.add"
    PASSKEY_REMOVE = "passkey.remove"
    PASSKEY_FAILURE = "passkey.failure"
    PROFILE_UPDATE = "profile.update"
    EMAIL_CHANGE_REQUEST = "email_change.request"
    EMAIL_CHANGE_CONFIRM = "email_change.confirm"
    EMAIL_CHANGE_CANCEL = "email_change.cancel"
    EMAIL_CHANGE_FAILURE = "email_change.failure"
    DEPOSIT = "ledger.deposit"
    WITHDRAWAL = "ledger.withdrawal"
    TRANSFER = "ledger.transfer"
    REVERSAL = "ledger.reversal"
    INTEREST = "ledger.interest"
    INTEREST_RATE_SET = "interest.rate_set"
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    LIMIT_CHANGE = "limits.change"
    TELLER_REQUEST = "teller.request"
    TELLER_APPROVE = "teller.approve"
    TELLER_REJECT = "teller.reject"
    VERIFY_CUSTOMER = "teller.verify_customer"
    FREEZE = "account.freeze"
    UNFREEZE = "account.unfreeze"
    ROLE_CHANGE = "admin.role_change"
    DEACTIVATE = "admin.deactivate"
    REACTIVATE = "admin.reactivate"
    END_USER_SESSIONS = "admin.end_sessions"
    END_ALL_SESSIONS = "admin.end_all_sessions"
    TILL_ALLOCATE = "till.allocate"
    TILL_SETTLE = "till.settle"
    TILL_CLOSE_SHIFT = "till.close_shift"
    MAIL_RETRY = "mail.retry"
    PAYEE_LOOKUP = "payee.lookup"
    PAYEE_ADD = "payee.add"
    PAYEE_RENAME = "payee.rename"
    PAYEE_REMOVE = "payee.remove"
    SCHEDULED_CREATE = "scheduled.create"
    SCHEDULED_PAUSE = "scheduled.pause"
    SCHEDULED_RESUME = "scheduled.resume"
    SCHEDULED_CANCEL = "scheduled.cancel"
    SCHEDULED_RUN = "scheduled.run"
    SCHEDULED_POSTED = "scheduled.occurrence.posted"
    SCHEDULED_FAILED = "scheduled.occurrence.failed"
    ALERT_SETTINGS = "alerts.settings"
    LOAN_PRODUCT_CREATE = "loan.product.create"
    LOAN_APPLY = "loan.apply"
    LOAN_APPROVE = "loan.approve"
    LOAN_REJECT = "loan.reject"
    LOAN_DISBURSE = "loan.disburse"
    LOAN_REPAY = "loan.repay"
    LOAN_COLLECT = "loan.collect"
    LOAN_LATE_FEE = "loan.late_fee"
    LOAN_PAID_OFF = "loan.paid_off"
    LOAN_WRITE_OFF = "loan.write_off"
    LOAN_RUN = "loan.run"
    # Security events (bankapp/audit/events.py): a bounded number of rows per caller.
    ACCESS_REFUSED = "security.access_refused"
    OBJECT_REFUSED = "security.object_refused"
    CSRF_FAILURE = "security.csrf_failure"
    RATE_LIMITED = "security.rate_limited"
    API_AUTH_REFUSED = "security.api_auth_refused"


class TargetType(_Names):
    """What an audit row is about (``audit_events.target_type``): every kind the code writes,
    so the audit page lists them without scanning the table."""

    USER = "user"
    ACCOUNT = "account"
    TILL = "till"
    JOURNAL_ENTRY = "journal_entry"
    PENDING_POSTING = "pending_posting"
    MAIL = "mail"
    PAYEE = "payee"
    SCHEDULED_ORDER = "scheduled_order"
    INTEREST_RATE = "interest_rate"
    LOAN_PRODUCT = "loan_product"
    LOAN = "loan"


def _jsonable(value):
    """Details as plain JSON: Decimals as exact strings, dates as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(item) for item in value]
    return value


def client_ip() -> str | None:
    """The client's address as an audit line records it (None outside a request)."""
    # remote_addr is the peer, or the client ProxyFix found when TRUST_PROXY_HOPS is set.
    if not has_request_context():
        return None
    return (request.remote_addr or None) and request.remote_addr[:45]


def columns(action: str, *, actor: User | None, target_type: str | None = None,
            target_id: object = None, details: dict | None = None) -> dict:
    """The column values of one audit line (``record`` adds them as a row; the ledger's
    PostgreSQL fast path passes them to ``ledger_post()``)."""
    return {
        "actor_id": getattr(actor, "id", None),  # None, or an anonymous visitor: no actor
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id)[:64],
        "details": _jsonable(details) if details else None,
        "ip_address": client_ip(),
    }


def record(action: str, *, actor: User | None, target_type: str | None = None,
           target_id: object = None, details: dict | None = None) -> AuditEvent:
    """Add one audit line to the current transaction (the caller commits it)."""
    event = AuditEvent(**columns(action, actor=actor, target_type=target_type,
                                 target_id=target_id, details=details))
    db.session.add(event)
    metrics.count_audited(action, details)  # sign-in failures and lockouts
    return event


def insert(action: str, *, actor: User | None, target_type: str | None = None,
           target_id: object = None, details: dict | None = None, connection=None,
           at: datetime | None = None) -> None:
    """``record``, as one INSERT at once on ``connection`` (default: the session's): for a
    line written on a hot path (a transfer's look-up), where the ORM's unit of work cost more
    CPU than the statement. Same transaction, so the caller's commit writes it (or its
    rollback drops it). ``at``: its time, when the caller has taken it already."""
    values = columns(action, actor=actor, target_type=target_type, target_id=target_id,
                     details=details)
    if connection is None:
        connection = db.session.connection()
    connection.execute(_insert_statement(), {**values, "created_at": at or now_utc()})
    metrics.count_audited(action, details)


@functools.cache
def _insert_statement():
    # Built once: building and cache-keying the INSERT cost more than running it. No RETURNING:
    # nobody reads the new row's id.
    return AuditEvent.__table__.insert().inline()


__all__ = ["Action", "TargetType", "record", "insert", "columns", "AuditEvent"]

"""Security events: the refusals that show someone probing (ASVS 5.0 V16.3.2, V16.3.3).

Kinds: a 403 (``security.access_refused``); a 404 answered to a signed-in caller on a real
route, which is how another customer's account, payee or order is refused
(``security.object_refused``, indistinguishable from a missing one on purpose); a CSRF
failure (``security.csrf_failure``); a rate-limit refusal (``security.rate_limited``); an
API request whose bearer token is refused (``security.api_auth_refused``).

Every event is a WARNING line in the log. An attacker decides how many events happen, so
audit rows are bounded: at most ``SECURITY_EVENT_AUDIT_LIMIT`` (10 an hour) rows per kind and
per caller (the user, or the client address when no one is signed in), counted in the
rate-limit store; past that, the log line says the row was skipped. One client can thus add
at most 50 rows an hour, whatever it sends; the log lines are as many as its requests, which
the request log writes anyway. Anonymous 404s (scanners' guesses) are not events.

The row is written in a transaction of its own: the refused request's own work is rolled
back first, as it would be at the end of the request anyway.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, g, has_request_context, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from limits import parse
from werkzeug.exceptions import HTTPException

from bankapp import audit
from bankapp.extensions import db, limiter
from bankapp.platform import errors

log = logging.getLogger("bankapp.security")

# Set on ``g`` by a view that audits its own refusal (the token endpoint): no second row.
ALREADY_AUDITED = "security_event_audited"


def _caller():
    """The signed-in user (page) or token holder (API), or None."""
    api_caller = g.get("api_user")
    if api_caller is not None:
        return api_caller
    if current_user and current_user.is_authenticated:
        return current_user._get_current_object()
    return None


def _row_allowed(kind: str, caller) -> bool:
    """Whether this caller still has audit rows left for ``kind`` in this window."""
    who = f"user:{caller.id}" if caller is not None else f"ip:{request.remote_addr}"
    try:
        return limiter.limiter.hit(parse(current_app.config["SECURITY_EVENT_AUDIT_LIMIT"]),
                                   "security-event", kind, who)
    except Exception:  # the store is down: the log line still tells, no row
        log.exception("security event budget unavailable")
        return False


def record(kind: str, reason: str) -> None:
    """Log one security event of this request, and audit it within the caller's budget."""
    if not has_request_context() or g.get(ALREADY_AUDITED):
        return
    caller = _caller()
    details = {"method": request.method, "path": request.path[:200], "reason": reason[:200]}
    written = _row_allowed(kind, caller)
    log.warning("%s by %s from %s: %s %s (%s)%s", kind,
                f"user {caller.id}" if caller is not None else "anonymous",
                request.remote_addr, request.method, request.path[:200], reason[:200],
                "" if written else "; over the audit budget, log only")
    if not written:
        return
    try:
        db.session.rollback()
        audit.record(kind, actor=caller, details=details)
        db.session.commit()
    except Exception:  # never turn a refusal into a 500
        db.session.rollback()
        log.exception("could not audit %s", kind)


def kind_of(status: int, error: Exception | None = None) -> str | None:
    """The event an answer of ``status`` is, or None when it is none."""
    if isinstance(error, CSRFError):
        return audit.Action.CSRF_FAILURE
    if status == 403:
        return audit.Action.ACCESS_REFUSED
    if status == 429:
        return audit.Action.RATE_LIMITED
    if status == 404 and request.url_rule is not None and _caller() is not None:
        return audit.Action.OBJECT_REFUSED
    if status == 401 and request.path.startswith("/api/"):
        return audit.Action.API_AUTH_REFUSED
    return None


def record_http_error(error: HTTPException) -> None:
    """The error pages' hook (``platform.errors.on_refusal``)."""
    kind = kind_of(error.code or 500, error)
    if kind:
        record(kind, error.description or error.name)


def record_problem(status: int, detail: str) -> None:
    """The API problems' hook: the same events for a refusal the API answers itself."""
    kind = kind_of(status)
    if kind:
        record(kind, detail)


def init_app(app: Flask) -> None:
    errors.on_refusal(app, record_http_error)

"""The scheduled jobs' endpoints."""
from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, jsonify, request

from bankapp import ledger
from bankapp.lending import collections
from bankapp.lending.errors import LendingError
from bankapp.notifications import outbox
from bankapp.extensions import csrf, limiter

bp = Blueprint("cron", __name__, url_prefix="/internal/cron")
# A CRON_SECRET bearer, no cookies: nothing for CSRF to protect.
csrf.exempt(bp)


# Vercel allows a function 30 s (vercel.json maxDuration): stop taking new messages well
# before, so the pass ends by itself and commits what it did.
CRON_SECONDS = 20
CRON_BATCH = 200


@bp.before_request
def require_cron_secret():
    """404 without CRON_SECRET; 401 unless the request carries it as its bearer token."""
    secret = current_app.config.get("CRON_SECRET")
    if not secret:
        abort(404)
    given = request.headers.get("Authorization", "")
    # Compared in constant time: the answer's timing tells nothing about the secret.
    if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
        response = jsonify({"error": "a valid Authorization: Bearer CRON_SECRET is required"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


# Vercel Cron calls its path with GET (user agent vercel-cron/1.0); other schedulers may POST.
@bp.route("/deliver-mail", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def deliver_mail():
    """One pass over due email; answers how many were sent, failed (to retry) and dead."""
    report = outbox.deliver(limit=CRON_BATCH, seconds=CRON_SECONDS)
    response = jsonify(report.as_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/run-scheduled", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def run_scheduled():
    """Post the scheduled payments due up to today (in BANK_TIMEZONE), for up to 20 s; a longer
    backlog is finished by the next call (each occurrence posts once)."""
    report = ledger.run_due(ledger.bank_today(), trigger="cron", seconds=CRON_SECONDS)
    response = jsonify(report.summary())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/run-loans", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def run_loans():
    """Collect the loan instalments due up to today (in BANK_TIMEZONE), charge late fees and
    send the notices (each once); 409 when a run with --as-of went past today already."""
    try:
        report = collections.run_loans(ledger.bank_today(), trigger="cron")
    except LendingError as error:
        response = jsonify({"error": str(error)})
        response.status_code = 409
        return response
    response = jsonify(report.summary())
    response.headers["Cache-Control"] = "no-store"
    return response

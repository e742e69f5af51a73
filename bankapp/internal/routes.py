"""Cron routes: ``Authorization: Bearer <CRON_SECRET>`` or 401; 404 while it is unset.

Vercel Cron calls its paths with GET and sends ``CRON_SECRET`` as that bearer token; other
schedulers may POST. Either way the work is idempotent, so a retried call does no harm.
"""
from __future__ import annotations

import hmac

from flask import abort, current_app, jsonify, request

from bankapp import ledger
from bankapp.internal import bp


def _require_cron_secret() -> None:
    secret = current_app.config.get("CRON_SECRET")
    if not secret:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
        abort(401)


# Well inside Vercel's maxDuration (30 s): a longer backlog is finished by the next call.
RUN_SECONDS = 20


@bp.route("/cron/run-scheduled", methods=["GET", "POST"])
def run_scheduled():
    """Post every scheduled payment due up to today (in BANK_TIMEZONE), for up to 20 s."""
    _require_cron_secret()
    report = ledger.run_due(ledger.bank_today(), trigger="cron", seconds=RUN_SECONDS)
    return jsonify(report.summary())

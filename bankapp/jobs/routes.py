"""The scheduled jobs' endpoints."""
from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, jsonify, request

from bankapp import schedule
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
@bp.route("/<job>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def run_job(job: str):
    """Run one periodic job (``bankapp.schedule.JOBS``) within 20 s, recorded like any other
    run; answers its counts and outcome, 500 when it failed (Vercel's cron log shows it)."""
    if schedule.job_named(job) is None:
        abort(404)
    run, outcome = schedule.run_job(job, "cron", seconds=CRON_SECONDS, limit=CRON_BATCH)
    response = jsonify({**outcome.counts, "outcome": run.outcome,
                        **({"error": outcome.failed} if outcome.failed else {})})
    response.status_code = 500 if outcome.failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


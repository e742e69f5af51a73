"""Jobs a scheduler calls over HTTP (Vercel Cron), under ``/internal/cron/``.

Authenticated by ``Authorization: Bearer $CRON_SECRET`` alone: no cookies, so exempt from
CSRF; the whole blueprint answers 404 while ``CRON_SECRET`` is unset.
"""
from flask import Blueprint

from bankapp.extensions import csrf

bp = Blueprint("cron", __name__, url_prefix="/internal/cron")
csrf.exempt(bp)

from bankapp.cron import routes  # noqa: E402,F401  (routes register themselves on bp)

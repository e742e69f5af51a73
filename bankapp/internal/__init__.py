"""Routes a scheduler calls (Vercel Cron), guarded by ``CRON_SECRET``; no cookies, no CSRF."""
from flask import Blueprint

from bankapp.extensions import csrf

bp = Blueprint("internal", __name__, url_prefix="/internal")
csrf.exempt(bp)

from bankapp.internal import routes  # noqa: E402,F401  (registers the views on bp)

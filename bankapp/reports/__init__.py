"""Financial reports: statements (HTML, CSV, PDF), monthly summaries, bank-wide figures."""
from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports")

from bankapp.reports import routes  # noqa: E402,F401  (routes register themselves on bp)

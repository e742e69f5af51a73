"""The JSON API for programs: bearer tokens, accounts, transactions and idempotent postings.

Everything lives under ``/api/v1/`` (the documentation at ``/api/docs``). The API takes no
cookies, only ``Authorization: Bearer <token>``, so it is exempt from CSRF protection.
"""
from flask import Blueprint

from bankapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api")
# Bearer tokens are never sent by a browser on its own: a cross-site form cannot use them.
csrf.exempt(bp)

from bankapp.api import routes  # noqa: E402,F401  (routes register themselves on bp)

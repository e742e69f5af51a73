"""Files under ``/.well-known/`` (RFC 8615): for now only ``security.txt`` (RFC 9116)."""
from flask import Blueprint

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

from bankapp.wellknown import routes  # noqa: E402,F401  (routes register themselves on bp)

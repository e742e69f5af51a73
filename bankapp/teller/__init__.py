from flask import Blueprint

bp = Blueprint("teller", __name__, url_prefix="/teller")

from bankapp.teller import routes  # noqa: E402,F401  (routes register themselves on bp)

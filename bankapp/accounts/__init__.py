from flask import Blueprint

bp = Blueprint("accounts", __name__)

from bankapp.accounts import routes  # noqa: E402,F401  (routes register themselves on bp)

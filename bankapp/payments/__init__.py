"""Everyday payments: saved payees, scheduled and standing-order transfers, alert settings."""
from flask import Blueprint

bp = Blueprint("payments", __name__)

from bankapp.payments import routes  # noqa: E402,F401  (registers the views on bp)

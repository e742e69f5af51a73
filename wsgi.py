"""WSGI entry point: ``gunicorn wsgi:app`` on any host; Vercel's function (``api/index.py``)
imports ``app`` from here."""
import os

from bankapp import create_app

try:
    app = create_app()
except SystemExit as refusal:
    # Missing production settings: a server process stops here with the reason. A Vercel
    # function must keep answering instead (see bankapp/platform/unconfigured.py).
    if not os.environ.get("VERCEL"):
        raise
    from bankapp.platform.unconfigured import unconfigured_app

    app = unconfigured_app(str(refusal.code))

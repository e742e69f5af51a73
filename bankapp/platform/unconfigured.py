"""What the Vercel function serves when ``create_app`` refuses to start.

``create_app`` stops a production app that lacks ``SECRET_KEY`` or ``DATABASE_URL`` with
``sys.exit`` and a message naming them. On a server (gunicorn, ``flask``) that is right: the
process ends and the operator reads why. In a Vercel function the exit happens while the runtime
imports ``wsgi.py``; the runtime does not catch ``SystemExit``, so the instance dies before it
answers, every request starts (and kills) a new one, and the visitor gets the platform's own
error page. ``wsgi.py`` serves this small app instead (only when ``VERCEL`` is set): each request
is answered 500 with a generic page (no stack trace, no setting names), and the reason is
written to the function log, once at start and once per request, so the log next to every failed
request says which variable to set.
"""
from __future__ import annotations

import json
import sys

PAGE = (b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        b"<title>Service unavailable</title></head><body><h1>Service unavailable</h1>"
        b"<p>This service is not configured yet. Please try again later.</p></body></html>")
PROBLEM = json.dumps({"type": "about:blank", "title": "Internal Server Error", "status": 500,
                      "detail": "This service is not configured yet."}).encode()


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def unconfigured_app(reason: str):
    """A WSGI app answering every request 500 and logging ``reason`` (create_app's refusal)."""
    log(reason)

    def app(environ, start_response):
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        log(f"{reason} [answered 500 to {method} {path}]")
        if path.startswith("/api/"):
            body, content_type = PROBLEM, "application/problem+json"
        else:
            body, content_type = PAGE, "text/html; charset=utf-8"
        start_response("500 Internal Server Error", [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'"),
            ("X-Content-Type-Options", "nosniff"),
        ])
        return [body]

    return app

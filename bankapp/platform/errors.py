"""Error answers: a page for people, RFC 9457 JSON for programs; never a stack trace."""
from __future__ import annotations

from flask import Flask, render_template, request
from flask.globals import request_ctx
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from bankapp.extensions import db
from bankapp.platform.problems import problem_response


def wants_json() -> bool:
    # A JSON request (the passkey script's fetch calls) gets its errors as JSON too.
    return request.path.startswith("/api/") or request.is_json


def register_errorhandlers(app: Flask) -> None:
    """Every HTTP error and every unexpected exception answered by ``render_error``."""

    def render_error(error: HTTPException):
        code = error.code or 500
        if error.response is not None and not wants_json():
            # A page made for this refusal (the login page when its rate limit is spent).
            return error.response
        if request_ctx.url_adapter is None:
            # The Host is not one of TRUSTED_HOSTS: no URL can be built for it, so no page
            # (and no link) is rendered; just the status.
            return (f"{code} {error.name}\n", code,
                    {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        if code >= 500:
            db.session.rollback()
        # Keep the exception's own headers (Allow on 405, Retry-After on 429 and 503).
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        if wants_json():
            body = {"type": "about:blank", "title": error.name, "status": code,
                    "detail": error.description}
            return problem_response(code, body, headers)
        return render_template("errors/error.html", error=error, code=code), code, headers

    for code in (400, 401, 403, 404, 405, 413, 429, 500, 503):
        app.register_error_handler(code, render_error)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        if isinstance(error, HTTPException):
            return render_error(error)
        if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            # The database is unreachable or restarting: nothing was written (the transaction
            # rolled back), so the honest answer is "try again shortly", not a server bug.
            app.logger.warning("database unavailable on %s %s: %s", request.method,
                               request.path, error.orig)
            unavailable = ServiceUnavailable("The service is briefly unavailable; nothing was "
                                             "changed. Please try again in a moment.",
                                             retry_after=5)
            return render_error(unavailable)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalServerError())

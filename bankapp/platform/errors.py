"""Error answers: a page for people, RFC 9457 JSON for programs; never a stack trace."""
from __future__ import annotations

from flask import Flask, render_template, request
from flask.globals import request_ctx
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from bankapp.extensions import db
from bankapp.platform import logs
from bankapp.platform.database import NulCharacterRefused
from bankapp.platform.problems import problem_response


# ``app.extensions[REFUSAL_HOOKS]``: what a domain module asked to be told of each refusal
# (400, 401, 403, 404, 429) before its page is drawn: the audit's security events.
REFUSAL_HOOKS = "bankapp.refusal_hooks"


def on_refusal(app: Flask, hook) -> None:
    """Call ``hook(error)`` for every 4xx refusal the error pages answer."""
    app.extensions.setdefault(REFUSAL_HOOKS, []).append(hook)


def wants_json() -> bool:
    # A JSON request (the passkey script's fetch calls) gets its errors as JSON too.
    return request.path.startswith("/api/") or request.is_json


def register_errorhandlers(app: Flask) -> None:
    """Every HTTP error and every unexpected exception answered by ``render_error``."""

    def render_error(error: HTTPException):
        code = error.code or 500
        if request_ctx.url_adapter is None:
            # The Host is not one of TRUSTED_HOSTS: no URL can be built for it, so no page
            # (and no link) is rendered; just the status.
            return (f"{code} {error.name}\n", code,
                    {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        if code >= 500 or isinstance(error, NulCharacterRefused):
            db.session.rollback()  # the page below may query: a clean transaction
        if code in (400, 401, 403, 404, 429):
            for hook in app.extensions.get(REFUSAL_HOOKS, ()):
                hook(error)
        if error.response is not None and not wants_json():
            # A page made for this refusal (the login page when its rate limit is spent).
            return error.response
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
                               logs.request_route(), error.orig)
            unavailable = ServiceUnavailable("The service is briefly unavailable; nothing was "
                                             "changed. Please try again in a moment.",
                                             retry_after=5)
            return render_error(unavailable)
        app.logger.exception("unhandled error on %s %s", request.method, logs.request_route())
        return render_error(InternalServerError())

"""``/healthz``, ``/readyz`` and ``/metrics``: what load balancers and Prometheus call.

- ``GET /healthz``: 200 ``{"status": "ok"}`` while the process answers; touches nothing else
  (a database outage must not make every instance "dead" and restarted at once).
- ``GET /readyz``: 200 when the database answers, its migrations are at the code's head and
  Redis (when it is the rate-limit store) answers PING, all within 2.5 s; otherwise 503. The body names each
  check's result (``ok``, ``fail``, ``unknown`` when an earlier failure kept it from running,
  ``skipped`` when not configured); why one failed goes to the log only, as the endpoint is
  public and drivers' messages name hosts and ports.
- ``GET /metrics``: Prometheus' text format (``bankapp.platform.metrics``) for
  ``Authorization: Bearer $METRICS_TOKEN`` (compared in constant time); 401 without it, 404 when the token is unset.

A WSGI middleware answers them before the application: before Flask's host check, the HTTPS
redirect, sessions, rate limits, login and two-factor enrolment. Load balancers and Prometheus
reach an instance by its IP address over plain HTTP, which ``TRUSTED_HOSTS`` would answer with
400 and ``FORCE_HTTPS`` with a redirect. That is safe for these three only: none builds a link
or reads the Host header (what the host check protects), none opens a session (so no cookie is
ever set), and ``/metrics`` has its own token.
"""
from __future__ import annotations

import hmac
import json
import logging
import threading
import time

import redis
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask
from werkzeug.wrappers import Response

from bankapp.extensions import db
from bankapp.platform import metrics, ratelimit

log = logging.getLogger("bankapp.health")

# The whole readiness probe answers within this (load balancers' probes time out at 3-5 s).
READINESS_TIMEOUT_SECONDS = 2.5
REDIS_TIMEOUT_SECONDS = 2
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class OperationsEndpoints:
    """WSGI middleware: answers GET/HEAD ``/healthz``, ``/readyz`` and ``/metrics``; passes
    everything else (and ``/metrics`` while ``METRICS_TOKEN`` is unset) to the app."""

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app = wsgi_app
        self.app = app
        self.routes = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_page}

    def __call__(self, environ, start_response):
        view = self.routes.get(environ.get("PATH_INFO", ""))
        if (view is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
                or (view is metrics_page and not self.app.config.get("METRICS_TOKEN"))):
            return self.wsgi_app(environ, start_response)
        with self.app.app_context():
            response = view(self.app, environ)
        return response(environ, start_response)


def _json(body: dict, status: int) -> Response:
    return Response(json.dumps(body), status, headers=_HEADERS, mimetype="application/json")


def healthz(app: Flask, environ) -> Response:
    return _json({"status": "ok"}, 200)


def readyz(app: Flask, environ) -> Response:
    checks = readiness(app)
    ready = all(result in ("ok", "skipped") for result in checks.values())
    return _json({"status": "ready" if ready else "unavailable", "checks": checks},
                 200 if ready else 503)


def metrics_page(app: Flask, environ) -> Response:
    expected = f"Bearer {app.config['METRICS_TOKEN']}".encode()
    # WSGI hands headers over as latin-1 strings: back to their bytes for the comparison.
    offered = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1")
    if not hmac.compare_digest(offered, expected):
        return Response("401 Unauthorized: send Authorization: Bearer <METRICS_TOKEN>\n", 401,
                        headers={**_HEADERS, "WWW-Authenticate": 'Bearer realm="metrics"'},
                        mimetype="text/plain")
    body, content_type = metrics.exposition()
    return Response(body, 200, headers=_HEADERS, content_type=content_type)


# ---------------------------------------------------------------- readiness


def readiness(app: Flask) -> dict[str, str]:
    """Each check's result: ``database``, ``migrations``, ``redis``.

    The checks run side by side, each in a thread of its own, and the probe waits
    ``READINESS_TIMEOUT_SECONDS`` at most: a database or Redis that accepts connections and
    never answers fails its check in time for the load balancer (whose probes time out after a
    few seconds) instead of holding the answer. A check still waiting then stays blocked in its
    daemon thread until its own connect or socket timeout ends it.
    """
    results: dict[str, tuple[str, ...]] = {}

    def run(name, check):
        with app.app_context():
            results[name] = check(app)

    threads = [threading.Thread(target=run, args=(name, check), daemon=True,
                                name=f"readyz-{name}")
               for name, check in (("database", _database_and_migrations),
                                   ("redis", lambda app: (_redis(app),)))]
    deadline = time.monotonic() + READINESS_TIMEOUT_SECONDS
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for name, unanswered in (("database", ("fail", "unknown")), ("redis", ("fail",))):
        if name not in results:
            log.warning("readyz: %s did not answer within %s s", name,
                        READINESS_TIMEOUT_SECONDS)
            results[name] = unanswered
    database, migrations = results["database"]
    return {"database": database, "migrations": migrations, "redis": results["redis"][0]}


def migration_heads(app: Flask) -> frozenset[str]:
    """The head revision(s) of the migration scripts, read once per process (they do not
    change under a running app)."""
    heads = app.extensions.get("bankapp.migration_heads")
    if heads is None:

        heads = frozenset(ScriptDirectory(app.extensions["migrate"].directory).get_heads())
        app.extensions["bankapp.migration_heads"] = heads
    return heads


def _database_and_migrations(app: Flask) -> tuple[str, str]:
    # One connection from the app's own pool, one SELECT: the probe sees what requests see.
    try:
        with db.engine.connect() as connection:
            try:
                current = set(connection.scalars(sa.text("SELECT version_num FROM alembic_version")))
            except sa.exc.DBAPIError as error:
                if error.connection_invalidated:
                    raise
                log.warning("readyz: cannot read alembic_version: %s", error.orig)
                return "ok", "fail"
    except sa.exc.SQLAlchemyError as error:
        log.warning("readyz: database unavailable: %s", getattr(error, "orig", None) or error)
        return "fail", "unknown"
    if current != migration_heads(app):
        log.warning("readyz: database at %s, code at %s: run flask db upgrade",
                    ", ".join(sorted(current)) or "no migration",
                    ", ".join(sorted(migration_heads(app))))
        return "ok", "fail"
    return "ok", "ok"


def _redis(app: Flask) -> str:
    """PING the rate-limit store when it is Redis (one client per URL, kept for later probes)."""
    url = ratelimit.redis_url(app.config.get("RATELIMIT_STORAGE_URI") or "")
    if not url:
        return "skipped"

    clients = app.extensions.setdefault("bankapp.readiness_redis", {})
    if url not in clients:
        clients[url] = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                            socket_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        clients[url].ping()
    except redis.RedisError as error:
        log.warning("readyz: Redis unavailable: %s", error)
        return "fail"
    return "ok"


def init_app(app: Flask) -> None:
    """Put the middleware outermost, and keep the pool gauge in step with the app's engine."""
    app.wsgi_app = OperationsEndpoints(app.wsgi_app, app)
    with app.app_context():
        metrics.watch_pool(db.engine)

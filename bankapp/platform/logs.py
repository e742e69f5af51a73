"""Logging: one line per record on stdout, as text (development) or JSON (production).

Every record starts a line of its own and no logged value can forge another one: the text
format indents a line break inside a message and escapes a carriage return; the JSON format
escapes every control and non-ASCII character (``json.dumps``), so a record is exactly one line.

Each request gets an id (``X-Request-ID`` from the proxy when it is well-formed, else a new
one), echoed in the response and carried by every record logged while the request runs; when
it ends, ``bankapp.request`` logs one line with its method, route, status, duration and user
id. The route is the URL rule (``/accounts/<account_number:number>/``), never the path: paths
carry account numbers and emailed tokens, and nothing of the query, body, headers or cookies is
logged.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

from bankapp.platform import metrics

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's id may look like (UUIDs, hex, AWS/GCP trace ids); anything else is replaced.
_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:;=+/-]{1,128}")
_ENVIRON_ID = "bankapp.request_id"
_ENVIRON_STARTED = "bankapp.request_started"
LOG_FORMATS = ("text", "json")
HANDLER_NAME = "bankapp-stdout"

request_log = logging.getLogger("bankapp.request")


def _utc_time(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class LogFormatter(logging.Formatter):
    """Records that start with a UTC ISO 8601 timestamp, and only there: a line break inside a
    message (a path or an email taken from a request, say) continues on an indented line and
    a carriage return is escaped, so no value can forge a record of its own."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record, datefmt=None):
        return _utc_time(record)

    def formatMessage(self, record):
        # The message only: a traceback, appended after this, keeps its own lines.
        text = super().formatMessage(record)
        return text.replace("\r", "\\r").replace("\n", "\n    ")


# An email address anywhere in a line: a driver's error ("Key (email)=(…) already exists"),
# an SMTP refusal naming its recipient. Production's lines never carry one.
_EMAIL_ADDRESS = re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[A-Za-z0-9-]+")


def without_addresses(text: str) -> str:
    """``text`` with every email address replaced by ``[email]``."""
    return _EMAIL_ADDRESS.sub("[email]", text)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id inside a
    request, a request line's fields, and a traceback as one escaped string; any email
    address in the message or the traceback is replaced by ``[email]``.

    The standard library's ``json`` is enough here: python-json-logger would save a dozen
    lines and add a dependency whose field renaming we do not need.
    """

    def format(self, record):
        entry = {"time": _utc_time(record), "level": record.levelname,
                 "logger": record.name, "message": without_addresses(record.getMessage())}
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        entry.update(getattr(record, "http", None) or {})
        if record.exc_info:
            entry["exception"] = without_addresses(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: U+2028 and friends, which some viewers break lines on, are escaped too.
        return json.dumps(entry, default=str, ensure_ascii=True)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while it runs."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() if has_request_context() else None
        return True


def configure_logging(app: Flask) -> None:
    """Log to stdout (serverless hosts and process managers collect it there) in the app's
    ``LOG_FORMAT``; the last app built in a process sets the format."""
    # On the root logger: the libraries' warnings (Flask-Limiter's, SQLAlchemy's) come out in
    # the same format, with the request id, instead of as bare text on stderr. Their INFO
    # lines stay off (the root keeps its WARNING level); bankapp's own follow LOG_LEVEL.
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.name == HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler.name = HANDLER_NAME
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonLogFormatter() if app.config["LOG_FORMAT"] == "json"
                         else LogFormatter())
    logging.getLogger("bankapp").setLevel(app.config["LOG_LEVEL"])
    # The development server's request lines (werkzeug adds a handler of its own only while the
    # root logger has none): kept at INFO, through this handler. No shipped configuration runs
    # that server.
    if logging.getLogger("werkzeug").level == logging.NOTSET:
        logging.getLogger("werkzeug").setLevel(logging.INFO)
    app.logger.setLevel(app.config["LOG_LEVEL"])


# ---------------------------------------------------------------- request ids and lines


def request_id_from(offered: str | None) -> str:
    """The proxy's id when it is well-formed (bounded, a safe charset), else a new one."""
    if offered and _WELL_FORMED_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current_request_id() -> str:
    """This request's id (made on first use, should anything log before the hooks ran)."""
    environ = request.environ
    if _ENVIRON_ID not in environ:
        environ[_ENVIRON_ID] = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
    return environ[_ENVIRON_ID]


def start_request() -> None:
    # In the WSGI environ rather than ``g``: nothing that runs before or after can clear it.
    request.environ.setdefault(_ENVIRON_STARTED, time.perf_counter())
    current_request_id()


def finish_request(response):
    """Echo the request id, count the request and log its line."""
    request_id = current_request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    started = request.environ.get(_ENVIRON_STARTED)
    seconds = time.perf_counter() - started if started is not None else 0.0
    endpoint = request.endpoint or "unmatched"
    metrics.observe_request(endpoint, request.method, response.status_code, seconds)
    fields = {"method": request.method,
              "route": request.url_rule.rule if request.url_rule is not None else None,
              "endpoint": endpoint, "status": response.status_code,
              "duration_ms": round(seconds * 1000, 1), "user_id": _user_id()}
    request_log.info("%s %s %s %.1f ms user %s", request.method, fields["route"] or "-",
                     response.status_code, fields["duration_ms"], fields["user_id"] or "-",
                     extra={"http": fields, "request_id": request_id})
    return response


def request_route() -> str:
    """What a line may say of this request's URL: its rule (``/accounts/reset/<token>/``),
    never the path, whose parts can be emailed tokens or account numbers."""
    return request.url_rule.rule if request.url_rule is not None else "-"


def _user_id() -> int | None:
    # What this request already loaded: the API token's checked caller (a light row) or the
    # session's user (Flask-Login keeps it in g). Never loads one just to log it.
    caller = g.get("api_user")
    if caller is not None:
        return caller.id
    user = g.get("_login_user")
    return user.id if getattr(user, "is_authenticated", False) else None


def init_app(app: Flask) -> None:
    # Called last in create_app: inserted first, the clock starts before every other hook; and
    # as after-request hooks run last-registered first, this one runs before the others, none
    # of which changes the status.
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)
    app.after_request(finish_request)


def log_format(config: dict) -> str:
    """``LOG_FORMAT`` checked: ``text`` or ``json``; production defaults to json."""
    value = (config.get("LOG_FORMAT") or
             ("json" if config.get("ENV_NAME") == "production" else "text")).strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be text or json, not {value!r}")
    return value



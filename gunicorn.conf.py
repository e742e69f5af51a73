"""gunicorn settings read from the working directory (``gunicorn wsgi:app`` finds this file;
the image names it with ``--config``).

The logs, and the hooks that Prometheus' multiprocess mode needs (see
bankapp/platform/metrics.py); workers, binding and timeouts stay on the command line. With
``PROMETHEUS_MULTIPROC_DIR`` unset, both hooks do nothing.
"""
import gc
import os
from pathlib import Path

from gunicorn.glogging import Logger

# No access log: its lines are text, carry no request id and print the path and query, where
# reset, confirmation and email-change tokens travel. The app's own request line
# (bankapp.platform.logs) is the one line per request: JSON, with the id, the route instead
# of the path, the status, the duration and the user id.
accesslog = None
# gunicorn's own lines (start, workers booted or timed out) as JSON on stdout too, so every
# line a host collects parses. The root logger stays at WARNING: libraries' INFO lines (one
# names the rate-limit key, an email address) are not wanted.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                          "stream": "ext://sys.stdout"}},
    "formatters": {"json": {"()": "bankapp.platform.logs.JsonLogFormatter"}},
}


class LoggerWithoutAccessLog(Logger):
    """gunicorn's logger, minus the access log it would format for nothing: with a
    ``logconfig_dict`` set, gunicorn builds every request's access-log fields (a dozen
    atoms, the request's headers among them) and hands them to ``gunicorn.access``, which
    drops them: about 0.1 ms of a worker's CPU per request (bench/README.md, "Item 5: where
    an API transfer's worker CPU goes under gunicorn")."""

    def access(self, resp, req, environ, request_time):
        return None


logger_class = LoggerWithoutAccessLog


def on_starting(server):
    """Create or empty the metrics directory: values left by an earlier run would be added to
    ours."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def post_worker_init(worker):
    """The app is loaded: its objects (modules, templates, mappers, CLDR data), which live as
    long as the worker, leave the garbage collector's generations. A full collection no
    longer walks some 200,000 of them, ~100 ms of CPU that landed on whichever request
    triggered it (bench/README.md, "Statement of a year, and the month's PDF")."""
    gc.freeze()


def child_exit(server, worker):
    """A worker ended: drop its live gauges (the pool's checked-out connections) from the sum."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

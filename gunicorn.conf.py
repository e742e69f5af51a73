"""gunicorn settings read from the working directory (``gunicorn wsgi:app`` finds this file).

Only the hooks that Prometheus' multiprocess mode needs (see bankapp/platform/metrics.py); workers,
binding and timeouts stay on the command line. With ``PROMETHEUS_MULTIPROC_DIR`` unset, both
hooks do nothing.
"""
import os
from pathlib import Path


def on_starting(server):
    """Create or empty the metrics directory: values left by an earlier run would be added to
    ours."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    """A worker ended: drop its live gauges (the pool's checked-out connections) from the sum."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

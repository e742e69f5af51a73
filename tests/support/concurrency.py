"""Real concurrency for the ledger's race tests: worker apps with pools of their own, and
threads released together by a barrier so their transactions overlap on the same rows."""
from __future__ import annotations

import threading

import pytest

from bankapp import create_app
from bankapp.extensions import db
from config import TestingConfig
from support.database import POSTGRES

postgres_only = pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL (PostgreSQL)")

# Enough connections for real overlap without crowding a shared server's max_connections.
WORKER_POOL = {"pool_size": 20, "max_overflow": 0, "pool_timeout": 120}


def make_worker_app(database_url: str, **settings):
    """A second application on the test database whose pool serves the worker threads."""
    config = type("WorkerConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": dict(WORKER_POOL),
        **settings,
    })
    return create_app(config)


def run_together(app, task, jobs: list[tuple]) -> list:
    """Run ``task(*job)`` for every job at once, one thread and app context each.

    Returns, in job order, what each call returned or the exception it raised.
    """
    barrier = threading.Barrier(len(jobs))
    outcomes: list = [None] * len(jobs)

    def worker(index: int, job: tuple) -> None:
        try:
            barrier.wait(timeout=60)
            with app.app_context():
                try:
                    outcomes[index] = task(*job)
                finally:
                    db.session.remove()
        except Exception as exc:  # reported to the test, which checks every outcome
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return outcomes


def flask_commands_at_once(app, *args: str, copies: int = 2) -> list:
    """Start ``flask <args>`` ``copies`` times at once on the app's test database (as two
    hosts running the same job would); ``(returncode, stdout, stderr)`` of each."""
    import subprocess
    import sys
    from pathlib import Path

    env = {"BANKAPP_ENV": "testing", "TEST_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "FLASK_APP": "wsgi", "PATH": "/usr/bin:/bin"}
    commands = [subprocess.Popen([sys.executable, "-m", "flask", *args],
                                 cwd=Path(__file__).resolve().parents[2], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(copies)]
    outputs = [command.communicate(timeout=120) for command in commands]
    return [(command.returncode, *output) for command, output in zip(commands, outputs)]

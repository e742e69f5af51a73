"""Fixtures of the ledger's race tests: worker apps on the test database."""
from __future__ import annotations

import pytest

from support.concurrency import running_worker_app


@pytest.fixture
def worker_app(app):
    with running_worker_app(app.config["SQLALCHEMY_DATABASE_URI"]) as workers:
        yield workers


@pytest.fixture
def generic_worker_app(app):
    """Workers on the generic path (PostgreSQL's ledger_post() off)."""
    with running_worker_app(app.config["SQLALCHEMY_DATABASE_URI"],
                            LEDGER_FAST_PATH=False) as workers:
        yield workers

"""Fixtures of the ledger's race tests: worker apps on the test database."""
from __future__ import annotations

import pytest

from bankapp.extensions import db
from support.concurrency import make_worker_app


@pytest.fixture
def worker_app(app):
    workers = make_worker_app(app.config["SQLALCHEMY_DATABASE_URI"])
    yield workers
    with workers.app_context():
        db.engine.dispose()


@pytest.fixture
def generic_worker_app(app):
    """Workers on the generic path (PostgreSQL's ledger_post() off)."""
    workers = make_worker_app(app.config["SQLALCHEMY_DATABASE_URI"], LEDGER_FAST_PATH=False)
    yield workers
    with workers.app_context():
        db.engine.dispose()

"""Fixtures shared by the identity tests."""
from __future__ import annotations

import pytest

from bankapp.extensions import db
from support.concurrency import make_worker_app


@pytest.fixture
def workers(app):
    """Worker threads' app on the test database, its limiter in memory (without Redis): the
    counts these tests check must hold in the database anyway."""
    worker_app = make_worker_app(app.config["SQLALCHEMY_DATABASE_URI"],
                                 RATELIMIT_STORAGE_URI="memory://")
    yield worker_app
    with worker_app.app_context():
        db.engine.dispose()

"""Fixtures shared by the identity tests."""
from __future__ import annotations

import pytest

from support.concurrency import running_worker_app


@pytest.fixture
def workers(app):
    """Worker threads' app on the test database, its limiter in memory (without Redis): the
    counts these tests check must hold in the database anyway."""
    with running_worker_app(app.config["SQLALCHEMY_DATABASE_URI"],
                            RATELIMIT_STORAGE_URI="memory://") as worker_app:
        yield worker_app

"""The lean engine's connections (``bankapp.ledger.fast``, PostgreSQL): a block of statements
shares one, which is returned at its end and replaced when it dies."""
from __future__ import annotations

import os

import psycopg2
import pytest
import sqlalchemy as sa

from bankapp.ledger import fast
from support.database import POSTGRES

pytestmark = pytest.mark.skipif(not POSTGRES, reason="the lean engine is PostgreSQL's")

PID = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
def checkouts(app):
    counted = []
    listener = lambda *args: counted.append(True)  # noqa: E731
    sa.event.listen(fast.lean_engine(), "checkout", listener)
    yield counted
    sa.event.remove(fast.lean_engine(), "checkout", listener)


def _pid() -> int:
    [(pid,)] = fast.rows(PID)
    return pid


def _terminate(pid: int) -> None:
    with psycopg2.connect(os.environ["TEST_DATABASE_URL"]) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


def test_statements_in_one_block_check_out_one_connection(checkouts):
    with fast.one_connection():
        first, second = _pid(), _pid()
    assert first == second
    assert len(checkouts) == 1


def test_statements_outside_a_block_check_out_one_each(checkouts):
    _pid(), _pid()
    assert len(checkouts) == 2


def test_the_blocks_connection_is_returned_at_its_end(app):
    checkins = []
    listener = lambda *args: checkins.append(True)  # noqa: E731
    sa.event.listen(fast.lean_engine(), "checkin", listener)
    try:
        with fast.one_connection():
            _pid(), _pid()
            assert checkins == []
        assert len(checkins) == 1
    finally:
        sa.event.remove(fast.lean_engine(), "checkin", listener)


def test_a_read_on_a_shared_connection_that_died_is_retried_on_a_fresh_one(checkouts):
    with fast.one_connection():
        dead = _pid()
        _terminate(dead)
        assert _pid() != dead  # rows() reads with retry
        assert len(checkouts) == 2


def test_a_write_on_a_shared_connection_that_died_fails_and_the_next_gets_a_fresh_one(
        checkouts):
    with fast.one_connection():
        dead = _pid()
        _terminate(dead)
        with pytest.raises(sa.exc.OperationalError):
            fast.run(lambda connection: connection.execute(PID).scalar(), retry=False)
        assert _pid() != dead

"""Counting the SQL statements a page sends: its query count must not follow its rows."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def counted_statements():
    """Collect every statement any engine sends inside the block (a list, filled as it runs).

    Listens on the Engine class, so the ORM's engine and the ledger's lean engine both count.
    """
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)

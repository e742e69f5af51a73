"""The audit trail's rows: append-only, enforced by the database."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc
from bankapp.models.identity import User


class AuditEvent(db.Model):
    """One line of the audit trail; written with the action it records, never changed.

    The database refuses UPDATE and DELETE on this table (triggers below and in the migration).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_action_created_at", "action", "created_at"),
        sa.Index("ix_audit_events_actor_id_created_at", "actor_id", "created_at"),
        sa.Index("ix_audit_events_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[Optional[str]] = mapped_column(sa.String(32))
    target_id: Mapped[Optional[str]] = mapped_column(sa.String(64))
    details: Mapped[Optional[dict]] = mapped_column(sa.JSON)
    ip_address: Mapped[Optional[str]] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)

    actor: Mapped[Optional[User]] = relationship()


AUDIT_APPEND_ONLY_DDL = {
    "sqlite": [
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ],
}


# create_all (tests on SQLite, fresh installs without migrations) gets the same triggers.
for _dialect, _statements in AUDIT_APPEND_ONLY_DDL.items():
    for _statement in _statements:
        sa.event.listen(AuditEvent.__table__, "after_create",
                        sa.DDL(_statement).execute_if(dialect=_dialect))

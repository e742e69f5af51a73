"""The token API's stored answers to refused postings (idempotency keys)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bankapp.extensions import db
from bankapp.models.base import UTCDateTime, now_utc


class ApiIdempotencyKey(db.Model):
    """The answer to one refused API posting request keyed by ``Idempotency-Key``, to replay
    on retries, inserted right after the refusal (see ``bankapp.api.idempotency``). A posted
    request has no record: its journal entry is one (releases before migration 0028 stored
    those answers too, which the retention window prunes). Records are always complete: there
    is no "in progress" row.
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key", name="uq_api_idempotency_keys_user_key"),
        sa.CheckConstraint("(response_status IS NULL) = (response_body IS NULL)",
                           name="response_complete"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(16))
    # sha256 of method, path and the canonical JSON body: the same key with another
    # request is refused.
    request_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int] = mapped_column(sa.Integer)
    response_body: Mapped[dict] = mapped_column(sa.JSON)
    entry_reference: Mapped[Optional[str]] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

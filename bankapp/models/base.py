"""What every model module shares: UTC timestamps and labelled codes."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa



def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and made aware again when loaded.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Labelled:
    """Codes stored in the database, with the names people read for them (in English: pages
    translate them with ``_(label)``, the API and CSV files keep them as they are)."""

    LABELS: dict[str, str] = {}

    @classmethod
    def label(cls, code: str) -> str:
        """The name shown for ``code``; an unknown code is shown as it is stored."""
        return cls.LABELS.get(code, code)


# Indexes only a migration can make (PostgreSQL pg_trgm GIN indexes on expressions, migration
# 0021): the models cannot declare them, so comparing models with the database leaves them out.
DATABASE_ONLY_INDEXES = frozenset({
    "ix_users_email_trgm", "ix_users_phone_number_trgm", "ix_users_full_name_trgm",
    "ix_accounts_account_number_trgm",
})


def compared_with_models(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's ``include_object``: everything but ``DATABASE_ONLY_INDEXES``."""
    return not (type_ == "index" and name in DATABASE_ONLY_INDEXES)

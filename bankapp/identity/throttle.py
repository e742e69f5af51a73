"""Per-account attempt counters in the database: passwords, and second-factor codes.

Each counter is a few columns of the user's row, changed only by one conditional UPDATE …
RETURNING, so every worker and every concurrent request sees one count, with or without
Redis, on SQLite and PostgreSQL (where the UPDATE's row lock orders concurrent requests).

An attempt *takes a slot* before its password or code is checked, and *gives it back* when
it succeeds (or when it is no guess at all, such as a code just used by a twin request):
the count is wrong attempts plus those still being checked. Of N guesses sent at once exactly
``limit`` are checked; the rest are refused unchecked. The attempt that held the last slot and
failed locks the counter (when it has a lock); ``lock`` is conditional too, so one request
writes the lock, its audit row and its email.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.models import User, now_utc
from bankapp.platform.ratelimit import parsed_limit


@dataclass(frozen=True)
class Counter:
    """The columns of ``users`` one counter lives in (``locked_until`` only if it locks)."""

    attempts: str
    window_start: str
    locked_until: str | None = None

    def column(self, name: str):
        return getattr(User, getattr(self, name))


PASSWORD = Counter("login_attempts", "login_window_start")
SECOND_FACTOR = Counter("mfa_attempts", "mfa_window_start", "mfa_locked_until")


@dataclass(frozen=True)
class Limit:
    """``amount`` attempts per ``window`` (parsed from Flask-Limiter's syntax)."""

    amount: int
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> "Limit":
        item = parsed_limit(text)
        return cls(item.amount, timedelta(seconds=item.get_expiry()))


def _update(user_id: int, where, values: dict, returning):
    statement = (sa.update(User).where(User.id == user_id, *where).values(values)
                 .returning(returning).execution_options(synchronize_session=False))
    value = db.session.execute(statement).scalar()
    db.session.commit()
    return value


def take_slot(counter: Counter, user_id: int, limit: Limit) -> int | None:
    """Count one attempt; its number in the window, or None (nothing counted) when the
    window's ``limit`` is spent or the counter is locked: then the attempt must not be
    checked. Commits."""
    now = now_utc()
    attempts, started = counter.column("attempts"), counter.column("window_start")
    fresh = sa.or_(started.is_(None), started <= now - limit.window)
    where = [sa.or_(fresh, attempts < limit.amount)]
    if counter.locked_until:
        locked = counter.column("locked_until")
        where.append(sa.or_(locked.is_(None), locked <= now))
    values = {attempts: sa.case((fresh, 1), else_=attempts + 1),
              started: sa.case((fresh, sa.literal(now, started.type)), else_=started)}
    return _update(user_id, where, values, attempts)


def give_back(counter: Counter, user_id: int) -> None:
    """Return a slot taken by an attempt that succeeded. Commits."""
    attempts = counter.column("attempts")
    _update(user_id, [], {attempts: sa.case((attempts > 0, attempts - 1), else_=0)}, attempts)


def lock(counter: Counter, user_id: int, minutes: int) -> bool:
    """Lock the counter for ``minutes`` and start a new window; True for the one request
    that did (the caller then audits and emails). Commits."""
    now = now_utc()
    locked = counter.column("locked_until")
    values = {locked: now + timedelta(minutes=minutes), counter.column("attempts"): 0,
              counter.column("window_start"): None}
    return _update(user_id, [sa.or_(locked.is_(None), locked <= now)], values,
                   User.id) is not None


def is_locked(counter: Counter, user: User) -> bool:
    """Whether the counter is locked now (read from the database, not the loaded row)."""
    until = db.session.scalar(sa.select(counter.column("locked_until"))
                              .where(User.id == user.id))
    return until is not None and until > now_utc()


def clear(counter: Counter, user_id: int) -> None:
    """Forget the attempts and lift any lock (an operator's reset). Commits."""
    values = {counter.column("attempts"): 0, counter.column("window_start"): None}
    if counter.locked_until:
        values[counter.column("locked_until")] = None
    _update(user_id, [], values, User.id)

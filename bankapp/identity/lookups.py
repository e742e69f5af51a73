"""Who may learn whether an account number exists, and whose it is.

Every page or answer that tells it (the payees page's masked holder, the transfer form's
confirmation or its "no such account", the API's 403 step-up against 422 unknown account)
spends one of the customer's ``PAYEE_LOOKUP_LIMIT`` (counted in the rate-limit store, across
workers and hosts) and is audited as ``payee.lookup`` with the path it came by, so staff can
see someone walking the number space and nobody walks it faster by changing paths.
"""
from __future__ import annotations

import functools
import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.extensions import db, limiter
from bankapp.identity.stepup import paid_before
from bankapp.ledger import fast
from bankapp.models import AccountStatus, AuditEvent, Payee, User, UTCDateTime, now_utc
from bankapp.platform import database
from bankapp.platform.i18n import N_
from bankapp.platform.ratelimit import parsed_limit

log = logging.getLogger("bankapp.payees")

LOOKUPS_SPENT = N_("You have looked up many account numbers recently: try again later.")
REVEALED_FOR = timedelta(hours=1)


def _known_to(user, account, number: str) -> bool:
    """Nothing new to learn: the customer's own account, a saved payee, one paid before, or
    one shown to them in the last hour. One query for the last three (a transfer to a new
    account asks all of them).

    Read in the session's transaction when the request has one open (a page: it loaded the
    user), else on its own (``fast.rows``: on PostgreSQL the lean engine, autocommit): an API
    transfer to an account its customer knows then opens none (no BEGIN, no ROLLBACK, no
    connection of the session's). Either sees the same rows (read committed)."""
    if account.owner_id == user.id:
        return True
    params = {"user_id": user.id, "account_id": account.id, "number": number[:64],
              "since": now_utc() - REVEALED_FOR}
    if _session_in_transaction():
        return bool(db.session.connection().scalar(_known_query(), params))
    [(known,)] = fast.rows(_known_query(), params)
    return bool(known)


def _session_in_transaction() -> bool:
    # Without making the request's ORM session when it has none yet (the API's case).
    return database.session_made() and db.session().in_transaction()


def _revealed_lately(connection, user, number: str) -> bool:
    # In the look-up's transaction, after its lock: a look-up of this number that held the
    # lock first has committed its row by now, and this new statement sees it.
    return bool(connection.scalar(_revealed_query(), {
        "user_id": user.id, "number": number[:64], "since": now_utc() - REVEALED_FOR}))


# Built once, with bind parameters: every transfer to another customer runs them, and building
# the expressions cost more CPU than running them (bench/api_profile.py --to-others).
@functools.cache
def _revealed_clause():
    # The confirmation step after the form: the customer saw this holder a moment ago.
    return sa.exists().where(
        AuditEvent.actor_id == sa.bindparam("user_id"),
        AuditEvent.action == Action.PAYEE_LOOKUP,
        AuditEvent.target_id == sa.bindparam("number"),
        AuditEvent.created_at > sa.bindparam("since", type_=UTCDateTime),
        AuditEvent.details["found"].as_boolean().is_(True))


@functools.cache
def _revealed_query():
    return sa.select(_revealed_clause())


@functools.cache
def _take_turns():
    return (sa.select(User.id).where(User.id == sa.bindparam("user_id"))
            .with_for_update(key_share=True))


@functools.cache
def _known_query():
    user_id, account_id = sa.bindparam("user_id"), sa.bindparam("account_id")
    saved = sa.exists().where(Payee.user_id == user_id, Payee.account_id == account_id)
    return sa.select(sa.or_(saved, paid_before(user_id, account_id), _revealed_clause()))


def may_reveal(user, number: str, account, via: str) -> bool:
    """Whether ``user`` may learn if ``number`` is an account (and whose) on the page or
    answer ``via`` names ("payees", "transfer", "api-transfer"): every such path spends the
    same ``PAYEE_LOOKUP_LIMIT`` and is audited (``payee.lookup``). ``account`` is what the
    number names (None when nothing; the API's light rows will do). Free, and not audited,
    when it tells nothing new: an account the customer owns, saved or paid before, or one
    shown to them in the last hour. False (nothing audited) once the budget is spent. Commits.
    """
    number = (number or "").strip().upper()
    if account is not None and _known_to(user, account, number):
        return True
    if _session_in_transaction():
        # A page: the look-up is written in its transaction, which it commits (as ever).
        revealed = _look_up(db.session.connection(), user, number, account, via)
        db.session.commit()
        return revealed
    # The API: the session has nothing open, so the look-up is a transaction of its own on a
    # connection of the session's engine, without the ORM session's bookkeeping around each
    # statement and the commit (bench/README.md, "Item 5: worker CPU under gunicorn, again").
    with db.engine.begin() as connection:
        return _look_up(connection, user, number, account, via)


def _look_up(connection, user, number: str, account, via: str) -> bool:
    """``may_reveal``'s answer for a number that may tell something new, written on
    ``connection`` in its open transaction, which the caller commits (the lock is held until
    then)."""
    # Look-ups by one customer take turns (a lock on their row until the commit), so the
    # same number sent in several requests at once (a client's retries) is one look-up: the
    # later ones find the first one's row. NO KEY UPDATE: postings by the same customer
    # check their foreign keys to this row with KEY SHARE locks, which it does not block.
    connection.execute(_take_turns(), {"user_id": user.id})
    if account is not None and _revealed_lately(connection, user, number):
        return True
    if not within_lookup_budget(user):
        return False
    found = account is not None and account.status != AccountStatus.CLOSED
    audit.insert(Action.PAYEE_LOOKUP, actor=user, target_type=TargetType.ACCOUNT,
                 target_id=number[:64], details={"found": found, "via": via},
                 connection=connection)
    return True


def within_lookup_budget(user) -> bool:
    """Spend one of ``user``'s ``PAYEE_LOOKUP_LIMIT`` look-ups; False when none is left."""
    if not limiter.enabled:
        return True
    item = parsed_limit(current_app.config["PAYEE_LOOKUP_LIMIT"])
    try:
        return limiter.limiter.hit(item, "payee-lookup", str(user.id))
    except Exception:  # the store's own errors: refuse rather than open the oracle
        log.exception("rate-limit store unavailable; payee look-up refused")
        return False

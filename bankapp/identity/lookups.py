"""Who may learn whether an account number exists, and whose it is.

Every page or answer that tells it (the payees page's masked holder, the transfer form's
confirmation or its "no such account", the API's 403 step-up against 422 unknown account)
spends one of the customer's ``PAYEE_LOOKUP_LIMIT`` and is audited as ``payee.lookup`` with
the path it came by, so staff can see someone walking the number space and nobody walks it
faster by changing paths. The budget is counted from those audit lines (the last window's,
e.g. the last hour's), under a lock on the customer's row: one record of each look-up, kept
in the database with the rest of the bank, so look-ups made at once stop at the budget and a
restart of the rate-limit store gives none back.
"""
from __future__ import annotations

import functools
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

LOOKUPS_SPENT = N_("You have looked up many account numbers recently: try again later.")
REVEALED_FOR = timedelta(hours=1)

# payee_lookup()'s answers (migration 0030); the generic path answers the same.
REVEALED, LOOKED_UP, REFUSED = "revealed", "looked_up", "refused"


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


@functools.cache
def _spent_query():
    # At most ``budget`` lines read: whether the budget is spent, not how far over.
    spent = (sa.select(sa.literal(1)).where(
        AuditEvent.actor_id == sa.bindparam("user_id"),
        AuditEvent.action == Action.PAYEE_LOOKUP,
        AuditEvent.created_at > sa.bindparam("since", type_=UTCDateTime))
        .limit(sa.bindparam("budget")).subquery())
    return sa.select(sa.func.count()).select_from(spent)


@functools.cache
def _payee_lookup_call():
    def param(name, type_=None):
        return sa.bindparam(name, type_=type_)

    return sa.select(sa.func.payee_lookup(
        param("user_id", sa.Integer), param("action", sa.Text), param("target_type", sa.Text),
        param("number", sa.Text), param("found", sa.Boolean), param("via", sa.Text),
        param("ip", sa.Text), param("now", UTCDateTime), param("revealed_since", UTCDateTime),
        param("budget", sa.Integer), param("budget_since", UTCDateTime)))


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
    found = account is not None and account.status != AccountStatus.CLOSED
    # A number that names an account may have been shown a moment ago by a request at once
    # (the same number sent twice): looked at again under the lock. One that names nothing
    # reveals nothing to look again at.
    return spend_look_up(user, number, found=found, via=via, recheck=account is not None)


def spend_look_up(user, number: str, *, found: bool, via: str, recheck: bool = False) -> bool:
    """Audit one look-up of ``number`` by ``user`` (``payee.lookup``, what it ``found``, the
    path ``via``) and spend one of their ``PAYEE_LOOKUP_LIMIT`` on it; False, with nothing
    written, once the budget is spent. ``recheck``: True without spending when the number was
    shown to them in the last hour. Commits.

    On PostgreSQL one call of ``payee_lookup()`` (migration 0030); the generic path sends its
    statements one by one. In the page's transaction when it has one open (its commit writes
    the line and ends the lock), else as a transaction of its own: the API's, on the lean
    engine (autocommit), the function is that transaction by itself.
    """
    look_up = functools.partial(_look_up, user=user, number=number[:64], found=found, via=via,
                                recheck=recheck)
    if _session_in_transaction():
        outcome = look_up(db.session.connection())
        db.session.commit()
    elif fast.enabled():
        # Not retried on a lost connection: the line may be written already.
        outcome = fast.run(look_up, retry=False)
    else:
        with db.engine.begin() as connection:
            outcome = look_up(connection)
    return outcome != REFUSED


def _look_up(connection, *, user, number: str, found: bool, via: str, recheck: bool) -> str:
    """REVEALED, LOOKED_UP or REFUSED, written on ``connection`` in its transaction (the
    caller commits; the lock on the customer's row is held until then)."""
    now = now_utc()
    revealed_since = now - REVEALED_FOR if recheck else None
    budget = _budget()
    budget_since = now - timedelta(seconds=budget.get_expiry()) if budget else None
    details = {"found": found, "via": via}
    if fast.enabled():
        return connection.scalar(_payee_lookup_call(), {
            "user_id": user.id, "action": Action.PAYEE_LOOKUP,
            "target_type": TargetType.ACCOUNT, "number": number, "found": found, "via": via,
            "ip": audit.client_ip(), "now": now,
            "revealed_since": revealed_since, "budget": budget and budget.amount,
            "budget_since": budget_since})
    # The generic path: payee_lookup()'s steps, a statement each.
    connection.execute(_take_turns(), {"user_id": user.id})
    if recheck and connection.scalar(_revealed_query(), {
            "user_id": user.id, "number": number, "since": revealed_since}):
        return REVEALED
    if budget and connection.scalar(_spent_query(), {
            "user_id": user.id, "since": budget_since, "budget": budget.amount}) >= budget.amount:
        return REFUSED
    audit.insert(Action.PAYEE_LOOKUP, actor=user, target_type=TargetType.ACCOUNT,
                 target_id=number, details=details, connection=connection, at=now)
    return LOOKED_UP


def _budget():
    # Rate limits off (RATELIMIT_ENABLED): no budget either.
    if not limiter.enabled:
        return None
    return parsed_limit(current_app.config["PAYEE_LOOKUP_LIMIT"])

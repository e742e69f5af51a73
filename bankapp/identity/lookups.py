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

# A number the customer knows (nothing read under a lock, nothing written), then
# payee_lookup()'s answers (migration 0030); the generic path answers the same.
KNOWN, REVEALED, LOOKED_UP, REFUSED = "known", "revealed", "looked_up", "refused"


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
def _known_clause():
    # Saved, paid before, or shown in the last hour: one query for all three.
    user_id, account_id = sa.bindparam("user_id"), sa.bindparam("account_id")
    saved = sa.exists().where(Payee.user_id == user_id, Payee.account_id == account_id)
    return sa.or_(saved, paid_before(user_id, account_id), _revealed_clause())


@functools.cache
def _known_query():
    return sa.select(_known_clause())


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
def _payee_lookup():
    def param(name, type_=None):
        return sa.bindparam(name, type_=type_)

    return sa.func.payee_lookup(
        param("user_id", sa.Integer), param("action", sa.Text), param("target_type", sa.Text),
        param("number", sa.Text), param("found", sa.Boolean), param("via", sa.Text),
        param("ip", sa.Text), param("now", UTCDateTime), param("revealed_since", UTCDateTime),
        param("budget", sa.Integer), param("budget_since", UTCDateTime), type_=sa.Text)


@functools.cache
def _look_up_call():
    return sa.select(_payee_lookup())


@functools.cache
def _known_or_look_up_call():
    # One statement: PostgreSQL evaluates the look-up (its lock, its line) only when the
    # number is not known, and the function's own statements see rows committed after this
    # one began (a new snapshot each, read committed).
    return sa.select(sa.case((_known_clause(), sa.literal(KNOWN)), else_=_payee_lookup()))


def may_reveal(user, number: str, account, via: str) -> bool:
    """Whether ``user`` may learn if ``number`` is an account (and whose) on the page or
    answer ``via`` names ("payees", "transfer", "api-transfer"): every such path spends the
    same ``PAYEE_LOOKUP_LIMIT`` and is audited (``payee.lookup``). ``account`` is what the
    number names (None when nothing; the API's light rows will do). Free, and not audited,
    when it tells nothing new: an account the customer owns, saved or paid before, or one
    shown to them in the last hour. False (nothing audited) once the budget is spent. Commits
    a look-up.
    """
    if account is not None and account.owner_id == user.id:
        return True
    return _answer(user, number, found=names_an_account(account), via=via,
                   account=account) != REFUSED


def names_an_account(account) -> bool:
    """Whether a look-up finds ``account`` (None: nothing has the number), as its audit line
    records it: a closed account counts as none. The payees page answers it as none too; a
    transfer refuses it as an account that cannot receive money."""
    return account is not None and account.status != AccountStatus.CLOSED


def spend_look_up(user, number: str, *, found: bool, via: str) -> bool:
    """Audit one look-up of ``number`` by ``user`` (``payee.lookup``, what it ``found``, the
    path ``via``) and spend one of their ``PAYEE_LOOKUP_LIMIT`` on it, known or not (the
    payees page); False, with nothing written, once the budget is spent. Commits."""
    return _answer(user, number, found=found, via=via, account=None) != REFUSED


def _answer(user, number: str, *, found: bool, via: str, account) -> str:
    """KNOWN, REVEALED, LOOKED_UP or REFUSED for ``number``; ``account`` (what it names)
    given, a number the customer knows is KNOWN and one shown to them by a request at once
    (the same number sent twice) is REVEALED, looked at again under the lock.

    On PostgreSQL one statement (``payee_lookup()``, migration 0030); the generic path sends
    its steps one by one. In the page's transaction when it has one open (its commit writes
    the line and ends the lock), else as a transaction of its own: the API's, on the lean
    engine (autocommit), is that one statement.
    """
    number = (number or "").strip().upper()[:64]  # as the audit line keeps it
    look_up = functools.partial(_look_up, user=user, number=number, found=found, via=via,
                                account=account)
    if _session_in_transaction():
        outcome = look_up(db.session.connection())
        if outcome != KNOWN:  # a known number took no lock and wrote nothing
            # The page goes on with the customer and accounts it read: not read again.
            with database.objects_kept_after_commit():
                db.session.commit()
        return outcome
    if fast.enabled():
        # Retried on a connection found dead (a database restart): most often it died before
        # the statement reached the server. One that died after has written the line: the
        # re-check finds it for a number that names an account; one that names nothing is
        # looked up twice, a unit of the budget more, never less.
        return fast.run(look_up, retry=True)
    with db.engine.begin() as connection:
        return look_up(connection)


def _look_up(connection, *, user, number: str, found: bool, via: str, account) -> str:
    """``_answer``'s outcome, written on ``connection`` in its transaction (the caller
    commits; the lock on the customer's row is held until then)."""
    now = now_utc()
    since = now - REVEALED_FOR
    budget = _budget()
    budget_since = now - timedelta(seconds=budget.get_expiry()) if budget else None
    if fast.enabled():
        return connection.scalar(
            _look_up_call() if account is None else _known_or_look_up_call(), {
                "user_id": user.id, "account_id": account and account.id, "since": since,
                "action": Action.PAYEE_LOOKUP, "target_type": TargetType.ACCOUNT,
                "number": number, "found": found, "via": via, "ip": audit.client_ip(),
                "now": now, "revealed_since": None if account is None else since,
                "budget": budget and budget.amount, "budget_since": budget_since})
    # The generic path: the same steps, a statement each.
    if account is not None and connection.scalar(_known_query(), {
            "user_id": user.id, "account_id": account.id, "number": number, "since": since}):
        return KNOWN
    connection.execute(_take_turns(), {"user_id": user.id})
    if account is not None and connection.scalar(_revealed_query(), {
            "user_id": user.id, "number": number, "since": since}):
        return REVEALED
    if budget and connection.scalar(_spent_query(), {
            "user_id": user.id, "since": budget_since, "budget": budget.amount}) >= budget.amount:
        return REFUSED
    audit.insert(Action.PAYEE_LOOKUP, actor=user, target_type=TargetType.ACCOUNT,
                 target_id=number, details={"found": found, "via": via},
                 connection=connection, at=now)
    return LOOKED_UP


def _budget():
    # Rate limits off (RATELIMIT_ENABLED): no budget either.
    if not limiter.enabled:
        return None
    return parsed_limit(current_app.config["PAYEE_LOOKUP_LIMIT"])

"""The audit trail as it is read: the ``audit_events`` rows and the postings that are their
own audit line.

A customer's deposit, withdrawal or transfer (``ENTRY_ACTIONS``) writes no ``audit_events``
row: its journal entry already records who (``actor_id``), when (``created_at``), through
which channel and from which address (``ip_address``), and names the action
(``audit_action``); its legs give the account, the amount and the other account. Writing it
all a second time cost every posting one more row and five more index entries (issue 28).
Entries written before migration 0022 have no ``audit_action`` and keep their row, so no
posting is shown twice.

``query`` lists both kinds newest first, as one column of *line ids*: an ``audit_events`` id
as itself, a posting as minus its entry id; ``load`` turns one page of ids into lines, in
two queries whatever the page size.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import Account, AuditEvent, JournalEntry, Transaction, User

# The actions a journal entry records by itself (migration 0022's ledger_post() has the same
# list); the leg each names as its target, and what the other leg is called in the details.
ENTRY_ACTIONS = {
    Action.DEPOSIT: ("DEPOSIT", "credit", "cash_account"),
    Action.WITHDRAWAL: ("WITHDRAWAL", "debit", "cash_account"),
    Action.TRANSFER: ("TRANSFER_OUT", "debit", "destination"),
}
ACCOUNT = "account"  # the target type of a posting's line
# Up to so many actors, a page of their lines is read actor by actor from the (actor, time)
# indexes: a few index entries each, however rare or busy the actor. More actors than that
# are much of the bank: their lines are met soon enough reading everyone's newest first.
ACTORS_ONE_BY_ONE = 2000


@dataclass(frozen=True)
class PostingLine:
    """A posting's audit line, read from its entry and legs (shaped as an ``AuditEvent``)."""

    entry_id: int
    created_at: datetime
    actor: User | None
    actor_id: int | None
    action: str
    target_type: str
    target_id: str
    details: dict
    ip_address: str | None

    @property
    def id(self) -> int:
        """Its line id in ``query``: minus the entry's id (a row's is its own id)."""
        return -self.entry_id


def _target_leg(transactions) -> sa.ColumnElement:
    """SQL: ``transactions`` is the leg a posting's line is about (see ``ENTRY_ACTIONS``: each
    kind of leg belongs to one kind of entry)."""
    return sa.or_(*[sa.and_(transactions.transaction_type == leg_type, transactions.side == side)
                    for leg_type, side, _ in ENTRY_ACTIONS.values()])


def _older_than(created_at, line_id, cursor: tuple[datetime, int]) -> sa.ColumnElement:
    """SQL: the line comes after ``cursor`` (its created_at and line id) newest first. The
    plain ``created_at <=`` lets the index start at the cursor instead of at the newest."""
    moment, cursor_id = cursor
    return sa.and_(created_at <= moment,
                   sa.or_(created_at < moment, line_id < cursor_id))


def cursor_of(line_id: int) -> tuple[datetime, int] | None:
    """(created_at, line id) of the line ``line_id`` (from ``query``), or None if there is
    no such line: where the next page of ``query(after=…)`` starts."""
    if line_id > 0:
        moment = db.session.scalar(sa.select(AuditEvent.created_at)
                                   .where(AuditEvent.id == line_id))
    elif line_id < 0:
        moment = db.session.scalar(sa.select(JournalEntry.created_at).where(
            JournalEntry.id == -line_id, JournalEntry.audit_action.is_not(None)))
    else:
        moment = None
    return None if moment is None else (moment, line_id)


def actors(user_ids: sa.Select) -> list[int] | sa.Select:
    """The actors ``user_ids`` (a select) as ``query`` reads their lines best: their ids
    when there are at most ``ACTORS_ONE_BY_ONE`` (one query), else the select itself."""
    few = db.session.scalars(user_ids.limit(ACTORS_ONE_BY_ONE + 1)).all()
    return few if len(few) <= ACTORS_ONE_BY_ONE else user_ids


def query(*, actor_ids=None, action: str | None = None, target_type: str | None = None,
          target_id: str | None = None, since: datetime | None = None,
          before: datetime | None = None,
          after: tuple[datetime, int] | None = None, limit: int | None = None) -> sa.Select:
    """Line ids (see the module docstring) matching the filters, newest first.

    ``actor_ids``: the actors whose lines are wanted (None: anyone), as ``actors`` gives
    them: a list of user ids, whose newest lines are then read actor by actor, or a select
    of user ids. ``after``: only the lines after this cursor (``cursor_of``), for the next
    page: read from the index where the previous page ended, however deep, with no count of
    the lines before it. ``limit``: at most so many, taken from each kind first, so that each
    reads its newest rows from its ``created_at`` index and stops (a sort of both kinds
    together made PostgreSQL read every entry: the line id of an entry, minus its id, is in
    no index)."""
    events = sa.select((AuditEvent.id).label("line_id"), AuditEvent.created_at)
    entries = sa.select((-JournalEntry.id).label("line_id"), JournalEntry.created_at).where(
        JournalEntry.audit_action.is_not(None))
    one_by_one = (isinstance(actor_ids, (list, tuple)) and limit is not None
                  and db.session.get_bind().dialect.name == "postgresql")
    if actor_ids is not None and not one_by_one:
        events = events.where(AuditEvent.actor_id.in_(actor_ids))
        entries = entries.where(JournalEntry.actor_id.in_(actor_ids))
    if action:
        events = events.where(AuditEvent.action == action)
        # Any other action is never an entry's: not looked for among millions of entries.
        entries = entries.where(JournalEntry.audit_action == action
                                if action in ENTRY_ACTIONS else sa.false())
    if target_type:
        events = events.where(AuditEvent.target_type == target_type)
        if target_type != ACCOUNT:
            entries = entries.where(sa.false())
    if target_id:
        events = events.where(AuditEvent.target_id == target_id)
        # From the account's legs (an index), not by scanning the entries.
        leg = aliased(Transaction)
        entries = entries.where(JournalEntry.id.in_(
            sa.select(leg.entry_id).join(Account, Account.id == leg.account_id)
            .where(Account.account_number == target_id, _target_leg(leg))))
    if since is not None:
        events = events.where(AuditEvent.created_at >= since)
        entries = entries.where(JournalEntry.created_at >= since)
    if before is not None:
        events = events.where(AuditEvent.created_at < before)
        entries = entries.where(JournalEntry.created_at < before)
    if after is not None:
        events = events.where(_older_than(AuditEvent.created_at, AuditEvent.id, after))
        entries = entries.where(_older_than(JournalEntry.created_at, -JournalEntry.id, after))
    if limit is not None:
        events = events.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
        entries = entries.order_by(JournalEntry.created_at.desc(), JournalEntry.id).limit(limit)
        if one_by_one:
            events = _each_actor(events, AuditEvent.actor_id, actor_ids, "events")
            entries = _each_actor(entries, JournalEntry.actor_id, actor_ids, "entries")
        else:
            events, entries = _newest(events, "events"), _newest(entries, "entries")
    both = sa.union_all(events, entries).subquery("lines")
    lines = sa.select(both.c.line_id).order_by(both.c.created_at.desc(), both.c.line_id.desc())
    return lines if limit is None else lines.limit(limit)


def _newest(select: sa.Select, name: str) -> sa.Select:
    """``select`` (ordered and limited) as a plain select of its rows, to join a UNION."""
    rows = select.subquery(name)
    return sa.select(rows.c.line_id, rows.c.created_at)


def _each_actor(select: sa.Select, actor_column, actor_ids: list[int], name: str) -> sa.Select:
    """``select`` (ordered and limited) taken for each of ``actor_ids`` on its own, from the
    (actor, time) index (PostgreSQL: a LATERAL join), as a plain select of its rows. The
    newest ``limit`` of all are among each actor's newest ``limit``; reading everyone's lines
    newest first for these actors' instead meant, for an actor with no recent line, reading
    every line of the period (issue 28)."""
    each = sa.func.unnest(sa.literal(list(actor_ids), ARRAY(sa.Integer))) \
        .table_valued("id").render_derived(name=f"{name}_actors")
    rows = select.where(actor_column == each.c.id).lateral(name)
    return sa.select(rows.c.line_id, rows.c.created_at).select_from(each).join(rows, sa.true())


def load(line_ids: list[int]) -> list[AuditEvent | PostingLine]:
    """The lines of ``line_ids`` (from ``query``), in that order."""
    event_ids = [i for i in line_ids if i > 0]
    entry_ids = [-i for i in line_ids if i < 0]
    found: dict[int, AuditEvent | PostingLine] = {}
    if event_ids:
        for event in db.session.scalars(
                sa.select(AuditEvent).where(AuditEvent.id.in_(event_ids))
                .options(sa.orm.selectinload(AuditEvent.actor))):
            found[event.id] = event
    if entry_ids:
        for line in posting_lines(JournalEntry.id.in_(entry_ids)):
            found[-line.entry_id] = line
    return [found[i] for i in line_ids if i in found]


def posting_lines(*conditions) -> list[PostingLine]:
    """The audit lines of the postings matching ``conditions`` (on ``JournalEntry``), by entry
    id: one query for the entries, their two legs and both accounts, one for the actors."""
    target, other = aliased(Transaction), aliased(Transaction)
    target_account, other_account = aliased(Account), aliased(Account)
    rows = db.session.execute(
        sa.select(JournalEntry.id, JournalEntry.created_at, JournalEntry.actor_id,
                  JournalEntry.audit_action, JournalEntry.reference, JournalEntry.channel,
                  JournalEntry.ip_address, target.amount, target_account.account_number,
                  other_account.account_number)
        .join(target, sa.and_(target.entry_id == JournalEntry.id, _target_leg(target)))
        .join(target_account, target_account.id == target.account_id)
        .join(other, sa.and_(other.entry_id == JournalEntry.id, other.id != target.id))
        .join(other_account, other_account.id == other.account_id)
        .where(JournalEntry.audit_action.is_not(None), *conditions)
        .order_by(JournalEntry.id)).all()
    actor_ids = {row.actor_id for row in rows if row.actor_id is not None}
    actors = ({user.id: user for user in db.session.scalars(
        sa.select(User).where(User.id.in_(actor_ids)))} if actor_ids else {})
    lines = []
    for (entry_id, created_at, actor_id, action, reference, channel, ip_address, amount,
         target_number, other_number) in rows:
        other_name = ENTRY_ACTIONS[action][2]
        lines.append(PostingLine(
            entry_id, created_at, actors.get(actor_id), actor_id, action, ACCOUNT,
            target_number,
            # As bankapp.audit.columns wrote them: the amount an exact string.
            {"reference": reference, "channel": channel, "amount": str(amount),
             other_name: other_number},
            ip_address))
    return lines

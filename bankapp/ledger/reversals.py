"""Reversals: a posted entry is corrected by its mirror image, never edited."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger.amounts import MAX_DESCRIPTION, clean_reason
from bankapp.ledger.core import AuditNote, Leg, Posting, post
from bankapp.ledger.errors import LedgerError, NotReversible
from bankapp.models import Channel, EntryType, JournalEntry, TransactionType, User


def find_entry(reference: str) -> JournalEntry | None:
    return db.session.scalar(entry_by_reference(reference))


def entry_by_reference(reference: str) -> sa.Select:
    """The select of the entry with this reference, as typed."""
    return sa.select(JournalEntry).where(
        JournalEntry.reference == (reference or "").strip().lower())


def reversal_of(entry: JournalEntry) -> JournalEntry | None:
    """The entry that reversed ``entry``, if any."""
    return db.session.scalar(sa.select(JournalEntry).where(JournalEntry.reverses_id == entry.id))


def reverse_entry(entry: JournalEntry, reason: str, actor: User) -> Posting:
    """Post the compensating entry of ``entry``: every leg again with its side flipped.

    The original is never edited. Refused (nothing written) when the entry is a reversal
    itself, is already reversed (also a UNIQUE index on ``reverses_id``), or when flipping a
    leg would overdraw its account or take more cash from a till than it holds.
    """
    reason = clean_reason(reason)
    if entry is None:
        raise NotReversible(gettext("No entry has that reference."))
    if entry.entry_type == EntryType.REVERSAL:
        raise NotReversible(gettext("A reversal cannot be reversed; post a new entry instead."))
    if reversal_of(entry) is not None:
        raise NotReversible(gettext("This entry has already been reversed."))
    legs = [Leg(leg.account, TransactionType.REVERSAL, -leg.signed_amount) for leg in entry.legs]
    description = f"Reversal of {entry.reference}: {reason}"[:MAX_DESCRIPTION]
    note = AuditNote(Action.REVERSAL, TargetType.JOURNAL_ENTRY, entry.reference,
                     {"reason": reason, "reverses": entry.reference})
    try:
        return post(EntryType.REVERSAL, legs, description, actor, Channel.TELLER, None,
                     audit=note, reverses=entry)
    except (IntegrityError, LedgerError):
        # A concurrent reversal won: we met its unique index, or a balance it already moved.
        if reversal_of(entry) is not None:
            raise NotReversible(gettext("This entry has already been reversed.")) from None
        raise

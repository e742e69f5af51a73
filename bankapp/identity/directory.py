"""Finding customers: the search the teller's desk and the staff API share.

A partial email, phone number, name (first, last or full) or account number, read through
migration 0021's trigram indexes, so a search's cost follows what it finds, not the bank.
"""
from __future__ import annotations

import functools

import phonenumbers
import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm
from sqlalchemy.orm import aliased

from bankapp.models import Account, Role, User
from bankapp.platform.search import escape_like


def customer_search(query: str):
    """Customers matching ``query`` by partial email, phone, name or account number (a select)."""
    text = " ".join((query or "").split()).lower()
    if not text:
        return _customer_search(searched=False, digits=False, international=False)
    # Phone numbers are stored E.164 (+4420…): match what was typed without its spacing.
    digits = "".join(c for c in text if c.isdigit() or c == "+")
    international = international_phone(text)
    return _customer_search(searched=True, digits=bool(digits),
                            international=bool(international)).params(
        pattern=f"%{escape_like(text)}%", digits=f"%{escape_like(digits)}%",
        international=international)


# Built once per shape, with bind parameters: building it (a UNION of two selects of whole
# users, aliased) cost the search page more CPU than running it.
@functools.cache
def _customer_search(*, searched: bool, digits: bool, international: bool) -> sa.Select:
    customers = sa.select(User).where(User.role == Role.CUSTOMER)
    if searched:
        pattern = sa.bindparam("pattern")
        # Each expression as migration 0021 indexes it (pg_trgm), so a search reads the
        # indexes, not every user and account. Emails are stored lower-case already.
        matches = [
            User.searchable_email().like(pattern, escape="\\"),
            User.searchable_name().like(pattern, escape="\\"),
        ]
        if digits:
            matches.append(sa.func.lower(User.phone_number).like(sa.bindparam("digits"),
                                                                   escape="\\"))
        if international:
            matches.append(User.phone_number == sa.bindparam("international"))
        by_user = sa.or_(*matches)
        # The customers the users' indexes find, then those only their accounts' index finds,
        # one after the other (an OR with the accounts' sub-select would make the database
        # test every user against both). Whole rows, so that the count and the page's sort by
        # name read only the users found, not every user again to join them by id (4,000
        # namesakes in a bank of 100,000: issue 28); none is found twice, so no rows to sort
        # for duplicates. ``IS NOT true``: a NULL phone matches nothing in the first.
        found = aliased(User, sa.union_all(
            customers.where(by_user),
            customers.where(by_user.is_not(True), User.id.in_(
                sa.select(Account.owner_id).where(
                    sa.func.lower(Account.account_number).like(pattern, escape="\\")))),
        ).subquery("found"))
    else:
        found = aliased(User, customers.subquery("found"))
    # Each customer's accounts are listed beside them: loaded with the page, in one query.
    return (sa.select(found).options(orm.selectinload(found.accounts))
            .order_by(found.last_name, found.first_name, found.id))


def international_phone(text: str) -> str | None:
    """``0722 000 111`` → ``+254722000111`` when ``BANK_PHONE_REGION`` is KE: a number typed
    the local way, in E.164 as stored; None when it is no possible number there."""
    region = current_app.config.get("BANK_PHONE_REGION") or None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

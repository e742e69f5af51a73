"""Alerts: the emails customers choose to get about their money, and their settings.

Four kinds: a large transfer out (above the customer's threshold), a low balance (a debit
takes an account below the customer's floor), a failed scheduled payment, and a hold placed
on an account. The first two are off until the customer sets a number; the last two are on
until they turn them off (a failed payment must not go unnoticed).

Every alert goes through ``queue_alert``: a row of the mail outbox
(``bankapp.notifications.outbox``) written in the current database transaction, so it is sent once that transaction commits and never
when it rolls back: no alert tells of a payment that did not happen, and a retried posting
does not send twice.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext

from bankapp import audit
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.models import (
    Account,
    AccountType,
    AlertSettings,
    Transaction,
    TransactionType,
    User,
)
from bankapp.notifications.outbox import queue_email
from bankapp.platform.formatting import format_money, format_timestamp
from bankapp.platform.i18n import recipient_locale, stored_message

_PENDING = "bankapp.notifications.alerts.pending"


class AlertKind:
    LARGE_TRANSFER = "large_transfer"
    LOW_BALANCE = "low_balance"
    SCHEDULED_FAILED = "scheduled_failed"
    HOLD_PLACED = "hold_placed"


# ---------------------------------------------------------------- the one way out


def queue_alert(to: str, subject: str, body: str) -> None:
    """Queue this email in the mail outbox, in the current transaction: it is sent once that
    transaction commits (never if it rolls back), retried by the mail worker if need be."""

    queue_email(to, subject, body)


# ---------------------------------------------------------------- settings


def settings_for(user: User) -> AlertSettings:
    """The user's settings, or the defaults (not saved) when they never chose any."""
    settings = db.session.get(AlertSettings, user.id)
    if settings is None:
        settings = AlertSettings(user_id=user.id, large_transfer_on=False,
                                 low_balance_on=False, scheduled_failed_on=True,
                                 hold_placed_on=True)
    return settings


class RecentSignInNeeded(Exception):
    """Switching an alert off needs a sign-in (or the password again) this recent."""


def save_settings(user: User, *, large_transfer_threshold: Decimal | None,
                  low_balance_floor: Decimal | None, scheduled_failed_on: bool,
                  hold_placed_on: bool, recent_sign_in: bool = True) -> AlertSettings:
    """Store the user's choices; a threshold or floor of None turns that alert off.

    Switching an alert off silences what would tell the owner of someone else's use of the
    account: it needs ``recent_sign_in`` (the web passes whether its session proved the
    password lately; RecentSignInNeeded, nothing written) and the owner is emailed.
    """
    before = settings_for(user)
    was_on = {name for name in _SWITCHES if getattr(before, f"{name}_on")}
    now_on = {name for name, on in (
        ("large_transfer", large_transfer_threshold is not None),
        ("low_balance", low_balance_floor is not None),
        ("scheduled_failed", scheduled_failed_on), ("hold_placed", hold_placed_on)) if on}
    switched_off = [name for name in _SWITCHES if name in was_on - now_on]
    if switched_off and not recent_sign_in:
        raise RecentSignInNeeded()
    settings = db.session.get(AlertSettings, user.id) or AlertSettings(user_id=user.id)
    settings.large_transfer_on = large_transfer_threshold is not None
    settings.large_transfer_threshold = large_transfer_threshold
    settings.low_balance_on = low_balance_floor is not None
    settings.low_balance_floor = low_balance_floor
    settings.scheduled_failed_on = scheduled_failed_on
    settings.hold_placed_on = hold_placed_on
    db.session.add(settings)
    audit.record(Action.ALERT_SETTINGS, actor=user, target_type=TargetType.USER,
                 target_id=user.id,
                 details={"large_transfer_threshold": large_transfer_threshold,
                          "low_balance_floor": low_balance_floor,
                          "scheduled_failed": scheduled_failed_on,
                          "hold_placed": hold_placed_on})
    if switched_off:
        _queue_switched_off_notice(user, switched_off)
    db.session.commit()
    return settings


_SWITCHES = ("large_transfer", "low_balance", "scheduled_failed", "hold_placed")


def _queue_switched_off_notice(user: User, switched_off: list[str]) -> None:
    with recipient_locale(user):
        names = {"large_transfer": gettext("large transfers"),
                 "low_balance": gettext("low balance"),
                 "scheduled_failed": gettext("failed scheduled payments"),
                 "hold_placed": gettext("holds placed on your money")}
        body = gettext(
            "These email alerts of your bankapp account were switched off: %(alerts)s.\n\n"
            "If this was you, there is nothing to do.\n\n"
            "If this was NOT you, someone is using your account: reset your password now and "
            "contact the bank.\n", alerts=", ".join(names[name] for name in switched_off))
        queue_alert(user.email, gettext("Your bankapp alerts were switched off"), body)


# ---------------------------------------------------------------- the alerts


def _ending(account: Account) -> str:
    return gettext("account ending %(digits)s", digits=account.account_number[-4:])


def watches_debit(account: Account, delta) -> bool:
    """Whether a leg of ``delta`` on ``account`` may raise its owner's debit alerts (large
    transfer, low balance): a debit of a customer account."""
    return delta < 0 and account.account_type in AccountType.CUSTOMER


def may_be_large_transfer(transaction_type: str) -> bool:
    """Whether a watched debit of this type may raise the large-transfer alert."""
    return transaction_type == TransactionType.TRANSFER_OUT


def posting_written(legs: list[Transaction]) -> None:
    """Queue the large-transfer and low-balance alerts a new entry's debits call for.

    Called by the ledger inside the posting's transaction (``core.write_entry``), so the
    alerts commit, or vanish, with the entry. One query, and only for entries that debit a
    customer account. (``ledger_post()`` evaluates the same two conditions and leaves such a
    posting to the generic path: migration 0015.)
    """
    debits = [leg for leg in legs if leg.side == "debit"
              and watches_debit(leg.account, -leg.amount)]
    if not debits:
        return
    owners = {leg.account.owner_id for leg in debits}
    rows = db.session.execute(
        sa.select(AlertSettings, User).join(User, User.id == AlertSettings.user_id)
        .where(AlertSettings.user_id.in_(owners),
               sa.or_(AlertSettings.large_transfer_on, AlertSettings.low_balance_on))
    ).all()
    wanted = {settings.user_id: (settings, user) for settings, user in rows}
    for leg in debits:
        settings, user = wanted.get(leg.account.owner_id, (None, None))
        if settings is None:
            continue
        with recipient_locale(user):
            _debit_alerts(settings, user.email, leg)


def _debit_alerts(settings: AlertSettings, email: str, leg: Transaction) -> None:
    """The alerts one debit calls for, in the current locale (the recipient's)."""
    if (settings.large_transfer_on and may_be_large_transfer(leg.transaction_type)
            and leg.amount > settings.large_transfer_threshold):
        queue_alert(email, gettext("A large transfer left your account"),
                    gettext("A transfer of %(amount)s was sent from your %(account)s: above "
                            "the %(threshold)s you asked to be told about.\n\nIf you did not "
                            "make it, contact the bank at once.",
                            amount=format_money(leg.amount), account=_ending(leg.account),
                            threshold=format_money(settings.large_transfer_threshold)))
    # Only when the balance crosses the floor: not again for every payment below it.
    floor = settings.low_balance_floor
    if (settings.low_balance_on and leg.balance_after < floor
            and leg.balance_after + leg.amount >= floor):
        queue_alert(email, gettext("Your balance is low"),
                    gettext("The balance of your %(account)s is now %(balance)s, below the "
                            "%(floor)s you asked to be told about.",
                            account=_ending(leg.account),
                            balance=format_money(leg.balance_after),
                            floor=format_money(floor)))


def scheduled_payment_failed(order, due: date, reason: str, *, paused: bool) -> None:
    """Tell the order's owner that one of its payments was not made, and why."""
    owner = order.user
    if not settings_for(owner).scheduled_failed_on:
        return
    with recipient_locale(owner):
        what = (gettext("The order is paused until you resume it.") if paused
                else gettext("The next payment stays scheduled."))
        queue_alert(owner.email, gettext("A scheduled payment was not made"),
                    gettext("Your scheduled payment of %(amount)s from your %(account)s, due "
                            "on %(day)s, was not made: %(reason)s",
                            amount=format_money(order.amount), account=_ending(order.source),
                            day=due.isoformat(), reason=stored_message(reason)) + f"\n\n{what}")


def hold_placed(account: Account, amount: Decimal, reason: str,
                expires_at: datetime | None = None) -> None:
    """Tell the owner of ``account`` that a hold was placed on it (call inside the hold's
    own transaction: the email goes when it commits)."""
    owner = account.owner
    if owner is None or not settings_for(owner).hold_placed_on:
        return
    with recipient_locale(owner):
        if expires_at is not None:
            placed = gettext("The bank placed a hold of %(amount)s on your %(account)s until "
                             "%(until)s.", amount=format_money(amount), account=_ending(account),
                             until=format_timestamp(expires_at))
        else:
            placed = gettext("The bank placed a hold of %(amount)s on your %(account)s.",
                             amount=format_money(amount), account=_ending(account))
        queue_alert(owner.email, gettext("A hold was placed on your account"),
                    placed + " " + gettext("Reason: %(reason)s", reason=reason) + "\n\n"
                    + gettext("This amount cannot be spent while the hold lasts."))

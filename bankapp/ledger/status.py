"""Freezing and unfreezing customer accounts (a frozen account moves no money)."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext

from bankapp import audit as audit_trail
from bankapp.audit import Action
from bankapp.audit import TargetType
from bankapp.extensions import db
from bankapp.ledger.amounts import clean_reason
from bankapp.ledger.core import atomically, require_customer_account
from bankapp.ledger.errors import AccountNotActive
from bankapp.models import Account, AccountStatus, User
from bankapp.platform.i18n import lazy_status_label


def freeze_account(account: Account, reason: str, actor: User) -> Account:
    """Freeze an active customer account: it then accepts no debit or credit at all."""
    return _set_status(account, AccountStatus.ACTIVE, AccountStatus.FROZEN, reason, actor,
                       Action.FREEZE)


def unfreeze_account(account: Account, reason: str, actor: User) -> Account:
    """Make a frozen customer account active again (the reason goes to the audit trail)."""
    return _set_status(account, AccountStatus.FROZEN, AccountStatus.ACTIVE, reason, actor,
                       Action.UNFREEZE)


def _set_status(account: Account, current: str, new: str, reason: str, actor: User,
                action: str) -> Account:
    reason = clean_reason(reason)
    require_customer_account(account)

    def work() -> None:
        # Conditional: two staff freezing at once write one change and one refusal.
        changed = db.session.execute(
            sa.update(Account)
            .where(Account.id == account.id, Account.status == current)
            .values(status=new, status_reason=reason if new == AccountStatus.FROZEN else None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            status = db.session.scalar(sa.select(Account.status).where(Account.id == account.id))
            raise AccountNotActive(lazy_gettext("This account is %(status)s, not %(expected)s.",
                                                status=lazy_status_label(status),
                                                expected=lazy_status_label(current)))
        audit_trail.record(action, actor=actor, target_type=TargetType.ACCOUNT,
                           target_id=account.account_number,
                           details={"reason": reason, "from": current, "to": new})

    atomically(work, action)
    db.session.refresh(account)
    return account

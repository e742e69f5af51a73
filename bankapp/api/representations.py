"""How accounts, ledger legs, postings and customers look in JSON (money as strings, each
object with the bank's ``currency``, an ISO 4217 code, beside its amounts)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from flask import current_app

from bankapp.models import Account, AccountType, JournalEntry, Transaction, TransactionType, User

CENT = Decimal("0.01")


def money(value) -> str:
    return str(Decimal(value).quantize(CENT))


def currency() -> str:
    return current_app.config["BANK_CURRENCY"]


def timestamp(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def account_json(account: Account) -> dict:
    return {
        "account_number": account.account_number,
        "account_type": account.account_type,
        "name": account.name,
        "status": account.status,
        "balance": money(account.balance),
        "currency": currency(),
        "created_at": timestamp(account.created_at),
    }


def transaction_json(leg: Transaction, counterparty: str | None = None) -> dict:
    """One ledger leg; ``counterparty`` is the other party as the account's owner knows it
    (``ledger.counterparties``), null for cash, interest and the like."""
    return {
        "reference": leg.entry.reference,
        "transaction_type": leg.transaction_type,
        "side": leg.side,
        "amount": money(leg.amount),
        "signed_amount": money(leg.signed_amount),
        "balance_after": money(leg.balance_after),
        "currency": currency(),
        "description": leg.description,
        "counterparty": counterparty,
        "timestamp": timestamp(leg.timestamp),
    }


def posting_json(entry: JournalEntry) -> dict:
    """The answer to a posting, built from the entry alone so every replay is identical.

    Only the caller's side is shown: a transfer never reveals the destination's balance.
    """
    legs = list(entry.legs)
    if entry.entry_type == "TRANSFER":
        out = next(leg for leg in legs if leg.transaction_type == TransactionType.TRANSFER_OUT)
        into = next(leg for leg in legs if leg.transaction_type == TransactionType.TRANSFER_IN)
        shown = {"from_account": out.account.account_number,
                 "to_account": into.account.account_number}
    else:
        out = next(leg for leg in legs if leg.account.account_type in AccountType.CUSTOMER)
        shown = {"account": out.account.account_number}
    return posting_body(entry.reference, entry.entry_type, entry.channel, entry.description,
                        entry.created_at, shown, out.amount, out.balance_after)


def posting_body(reference: str, entry_type: str, channel: str, description: str,
                 created_at: datetime, accounts: dict[str, str], amount,
                 balance_after=None) -> dict:
    """The answer to a posting from its parts; ``accounts``: ``account``, or ``from_account``
    and ``to_account``. Without ``balance_after`` for ``ledger_post()`` to fill in."""
    body = {
        "reference": reference,
        "entry_type": entry_type,
        "channel": channel,
        "description": description,
        "created_at": timestamp(created_at),
        "currency": currency(),
        **accounts,
        "amount": money(amount),
    }
    if balance_after is not None:
        body["balance_after"] = money(balance_after)
    return body


def customer_json(user: User) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone_number": user.phone_number,
        "is_active": user.is_active,
        "is_verified": user.is_verified,
        "accounts": [account_json(account) for account in user.accounts],
    }


def loan_json(loan, owed=None, rows=None) -> dict:
    """A loan as its borrower sees it; with ``rows``, its schedule; with ``owed``, what is
    due and the payoff on that day."""
    body = {
        "id": loan.id,
        "loan_number": loan.number,
        "product": loan.product.name,
        "status": loan.status,
        "principal": money(loan.principal),
        "term": loan.term,
        "frequency": loan.frequency,
        "annual_rate": str(Decimal(loan.annual_rate).normalize()),
        "amortisation": loan.amortisation,
        "account": loan.account.account_number,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "closed_on": loan.closed_on.isoformat() if loan.closed_on else None,
        "currency": currency(),
        "created_at": timestamp(loan.created_at),
    }
    if owed is not None:
        body.update(as_of=owed.day.isoformat(), due=money(owed.due),
                    overdue=money(owed.overdue), payoff=money(owed.payoff))
    if rows is not None:
        body["schedule"] = [{
            "number": row.number, "due_on": row.due_on.isoformat(),
            "principal": money(row.principal_due), "interest": money(row.interest_due),
            "fees": money(row.fee_due), "paid": money(row.total_paid),
            "outstanding": money(row.outstanding)} for row in rows]
    return body

"""A job's batch (``core.post_each`` inside ``core.in_batch``): each entry posted as ``post()``
would post it, in the order given, and each answer that entry's own.

On PostgreSQL the batch is one ``ledger_post()`` statement; on SQLite each entry a savepoint.
The same tests run on both: the statement must behave as the entries posted one by one.
"""
from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.ledger import InsufficientFunds, core
from bankapp.models import Account, Channel, EntryType, JournalEntry, Transaction, TransactionType
from support.database import POSTGRES
from support.queries import counted_statements

D = Decimal


def _transfer(source: Account, destination: Account, amount: str, key: str) -> core.EntryToPost:
    amount = D(amount)
    return core.EntryToPost(
        EntryType.TRANSFER,
        (core.Leg(source, TransactionType.TRANSFER_OUT, -amount),
         core.Leg(destination, TransactionType.TRANSFER_IN, amount)),
        "Batch", None, Channel.SYSTEM, key,
        audit=core.AuditNote(Action.TRANSFER, TargetType.ACCOUNT, source.account_number,
                             {"amount": amount}))


def _post_batch(entries: list[core.EntryToPost], accounts: list[Account]) -> list:
    """``entries`` posted as a job posts its batch: what each one gave."""
    lock = sorted(account.id for account in accounts)
    with counted_statements() as sent:
        results = core.in_batch(lambda: core.post_each(entries), "test", lock=lock)
    if POSTGRES:  # one statement, not a fall-back to one entry at a time
        assert sum("ledger_post(" in statement for statement in sent) == 1, sent
    return results


def _legs(entry_id: int) -> list[tuple[int, str, D]]:
    return [tuple(row) for row in db.session.execute(
        sa.select(Transaction.account_id, Transaction.side, Transaction.amount)
        .where(Transaction.entry_id == entry_id).order_by(Transaction.account_id))]


def _balance(account: Account) -> D:
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account.id))


def test_an_entry_of_a_batch_may_spend_what_an_earlier_one_credited(customer, funded_account):
    payer, middle, payee = (funded_account(customer, "50.00"), funded_account(customer),
                            funded_account(customer))
    results = _post_batch([_transfer(payer, middle, "50.00", "first"),
                           _transfer(middle, payee, "50.00", "second"),
                           _transfer(middle, payee, "0.01", "third")],
                          [payer, middle, payee])

    assert [type(result).__name__ for result in results] == [
        "Posting", "Posting", "InsufficientFunds"], results
    assert [_balance(account) for account in (payer, middle, payee)] == [
        D("0.00"), D("0.00"), D("50.00")]


def test_a_batchs_entries_are_written_in_the_order_given(customer, funded_account):
    payer, payee = funded_account(customer, "100.00"), funded_account(customer)
    results = _post_batch([_transfer(payer, payee, f"{cents}.00", f"key-{cents}")
                           for cents in (5, 1, 4, 2, 3)], [payer, payee])

    written = db.session.scalars(
        sa.select(JournalEntry.idempotency_key)
        .where(JournalEntry.id.in_([result.entry_id for result in results]))
        .order_by(JournalEntry.id)).all()
    assert written == ["key-5", "key-1", "key-4", "key-2", "key-3"]


def test_each_answer_of_a_batch_is_its_own_entrys(customer, funded_account):
    payer, payee = funded_account(customer, "100.00"), funded_account(customer)
    amounts = ["5.00", "1.00", "4.00", "2.00", "3.00"]
    results = _post_batch([_transfer(payer, payee, amount, f"key-{amount}")
                           for amount in amounts], [payer, payee])

    assert [_legs(result.entry_id) for result in results] == [
        [(payer.id, "debit", D(amount)), (payee.id, "credit", D(amount))]
        for amount in amounts]
    assert [db.session.get(JournalEntry, result.entry_id).idempotency_key
            for result in results] == [f"key-{amount}" for amount in amounts]


def test_a_refusal_in_a_batch_is_the_refused_entrys_and_leaves_the_others_posted(
        customer, funded_account):
    payer, payee = funded_account(customer, "10.00"), funded_account(customer)
    results = _post_batch([_transfer(payer, payee, "4.00", "a"),
                           _transfer(payer, payee, "7.00", "b"),
                           _transfer(payer, payee, "6.00", "c")], [payer, payee])

    assert isinstance(results[1], InsufficientFunds)
    assert [_legs(results[index].entry_id)[0][2] for index in (0, 2)] == [D("4.00"),
                                                                          D("6.00")]
    assert _balance(payer) == D("0.00")

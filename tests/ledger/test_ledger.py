"""The ledger's rules: each operation, each refusal, and the invariants of the book."""
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger import (
    AccountNotActive,
    InsufficientFunds,
    InvalidAmount,
    LimitExceeded,
    SameAccount,
    UnknownAccount,
)
from bankapp.models import Account, AccountStatus, JournalEntry, Transaction

D = Decimal


def balance(account: Account) -> Decimal:
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account.id))


def legs_of(account: Account) -> list[Transaction]:
    return list(db.session.scalars(
        sa.select(Transaction).where(Transaction.account_id == account.id).order_by(Transaction.id)
    ))


def assert_clean_book():
    result = ledger.reconcile()
    assert result.problems == []


# ---------------------------------------------------------------- opening accounts

def test_open_account_gives_a_numbered_empty_account(customer):
    account = ledger.open_account(customer, "SAVINGS")
    assert account.account_number.startswith("ACC-")
    assert len(account.account_number) == 13 and account.account_number[4:].isdigit()
    assert balance(account) == D("0.00")
    assert account.owner_id == customer.id and account.status == AccountStatus.ACTIVE


def test_a_customer_may_hold_several_accounts(customer):
    numbers = {ledger.open_account(customer, t).account_number
               for t in ("SAVINGS", "CHECKING", "SAVINGS")}
    assert len(numbers) == 3


def test_open_account_refuses_internal_types(customer):
    with pytest.raises(ledger.LedgerError):
        ledger.open_account(customer, "VAULT")


def test_open_account_retries_a_number_collision(customer, monkeypatch):
    first = ledger.open_account(customer, "SAVINGS")
    draws = iter([int(first.account_number[4:]), 123456789])
    monkeypatch.setattr(ledger.accounts.secrets, "randbelow", lambda n: next(draws))
    second = ledger.open_account(customer, "CHECKING")
    assert second.account_number == "ACC-123456789"


# ---------------------------------------------------------------- deposits and withdrawals

def test_deposit_credits_the_account_and_debits_the_vault(customer, funded_account):
    account = funded_account(customer)
    entry = ledger.deposit(account, D("100.00"), "Paycheque", customer).entry
    assert balance(account) == D("100.00")
    assert balance(ledger.internal_account()) == D("-100.00")
    assert {(leg.side, leg.amount) for leg in entry.legs} == {("credit", D("100.00")),
                                                             ("debit", D("100.00"))}
    [leg] = legs_of(account)
    assert leg.transaction_type == "DEPOSIT" and leg.balance_after == D("100.00")
    assert leg.description == "Paycheque" and entry.actor_id == customer.id
    assert leg.timestamp.tzinfo is not None
    assert_clean_book()


def test_withdrawal_debits_the_account(customer, funded_account):
    account = funded_account(customer, "100.00")
    ledger.withdraw(account, D("30.25"), "Cash", customer)
    assert balance(account) == D("69.75")
    assert legs_of(account)[-1].transaction_type == "WITHDRAWAL"
    assert legs_of(account)[-1].balance_after == D("69.75")
    assert_clean_book()


def test_withdrawal_cannot_overdraw(customer, funded_account):
    account = funded_account(customer, "50.00")
    with pytest.raises(InsufficientFunds):
        ledger.withdraw(account, D("50.01"), "Too much", customer)
    assert balance(account) == D("50.00")
    assert len(legs_of(account)) == 1
    assert_clean_book()


def test_withdrawal_of_the_whole_balance_is_allowed(customer, funded_account):
    account = funded_account(customer, "50.00")
    ledger.withdraw(account, D("50.00"), "Everything", customer)
    assert balance(account) == D("0.00")


def test_decimal_cents_stay_exact(customer, funded_account):
    account = funded_account(customer, "0.30")
    ledger.withdraw(account, D("0.10"), "", customer)
    ledger.withdraw(account, D("0.20"), "", customer)
    assert balance(account) == D("0.00")
    account2 = funded_account(customer, "0.10")
    ledger.deposit(account2, D("0.20"), "", customer)
    ledger.withdraw(account2, D("0.30"), "", customer)  # 0.1 + 0.2 in floats is not 0.3
    assert balance(account2) == D("0.00")
    assert_clean_book()


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
def test_inactive_account_refuses_deposits_and_withdrawals(customer, funded_account, status):
    account = funded_account(customer, "10.00")
    account.status = status
    db.session.commit()
    with pytest.raises(AccountNotActive) as refused:
        ledger.deposit(account, D("1.00"), "", customer)
    assert status in str(refused.value)
    with pytest.raises(AccountNotActive):
        ledger.withdraw(account, D("1.00"), "", customer)
    assert balance(account) == D("10.00")


@pytest.mark.parametrize("amount", [D("0"), D("-1.00"), D("0.001"), D("NaN"), D("Infinity"),
                                    12.5, "12.50"])
def test_operations_refuse_invalid_amounts(customer, funded_account, amount):
    account = funded_account(customer, "10.00")
    for operation in (ledger.deposit, ledger.withdraw):
        with pytest.raises(InvalidAmount):
            operation(account, amount, "", customer)
    with pytest.raises(InvalidAmount):
        ledger.transfer(account, account.account_number, amount, "", customer)
    assert balance(account) == D("10.00")


def test_deposit_over_the_limit_is_refused(customer, funded_account):
    account = funded_account(customer)
    with pytest.raises(LimitExceeded):
        ledger.deposit(account, D("1000000.01"), "", customer)
    assert balance(account) == D("0.00")


def test_deposit_that_would_overflow_the_balance_column_is_refused(app, customer, funded_account):
    app.config["MAX_TRANSACTION_AMOUNT"] = D("99999999.99")
    account = funded_account(customer)
    for _ in range(100):
        ledger.deposit(account, D("99999999.99"), "", customer)
    ledger.deposit(account, D("0.99"), "", customer)  # exactly 9,999,999,999.99
    assert balance(account) == ledger.MAX_BALANCE
    with pytest.raises(LimitExceeded) as refused:
        ledger.deposit(account, D("0.01"), "", customer)
    assert "largest balance" in str(refused.value)
    assert balance(account) == ledger.MAX_BALANCE
    assert_clean_book()


def test_description_longer_than_255_characters_is_refused(customer, funded_account):
    account = funded_account(customer)
    with pytest.raises(ledger.InvalidDescription):
        ledger.deposit(account, D("1.00"), "x" * 256, customer)


def test_money_cannot_be_posted_to_an_internal_account_as_a_customer_account(customer):
    vault = ledger.internal_account()
    with pytest.raises(UnknownAccount):
        ledger.deposit(vault, D("1.00"), "", customer)


# ---------------------------------------------------------------- transfers

def test_transfer_moves_money_with_two_legs_sharing_a_reference(customer, make_user,
                                                                funded_account):
    bob = make_user(email="bob@example.com")
    source = funded_account(customer, "100.00")
    destination = funded_account(bob)
    entry = ledger.transfer(source, destination.account_number, D("40.00"), "Rent", customer).entry
    assert balance(source) == D("60.00") and balance(destination) == D("40.00")
    out_leg, in_leg = legs_of(source)[-1], legs_of(destination)[-1]
    assert (out_leg.transaction_type, in_leg.transaction_type) == ("TRANSFER_OUT", "TRANSFER_IN")
    assert out_leg.entry_id == in_leg.entry_id == entry.id
    assert out_leg.reference == in_leg.reference == entry.reference
    assert out_leg.balance_after == D("60.00") and in_leg.balance_after == D("40.00")
    assert_clean_book()


def test_transfer_between_own_accounts(customer, funded_account):
    savings = funded_account(customer, "10.00")
    checking = funded_account(customer, account_type="CHECKING")
    ledger.transfer(savings, checking.account_number, D("10.00"), "", customer)
    assert (balance(savings), balance(checking)) == (D("0.00"), D("10.00"))


def test_transfer_accepts_a_lower_case_or_padded_destination_number(customer, funded_account):
    source = funded_account(customer, "10.00")
    destination = funded_account(customer)
    ledger.transfer(source, f"  {destination.account_number.lower()} ", D("1.00"), "", customer)
    assert balance(destination) == D("1.00")


def test_transfer_cannot_overdraw(customer, funded_account):
    source = funded_account(customer, "10.00")
    destination = funded_account(customer)
    with pytest.raises(InsufficientFunds):
        ledger.transfer(source, destination.account_number, D("10.01"), "", customer)
    assert (balance(source), balance(destination)) == (D("10.00"), D("0.00"))
    assert db.session.scalar(sa.select(sa.func.count(JournalEntry.id))) == 1


def test_transfer_to_the_same_account_is_refused(customer, funded_account):
    account = funded_account(customer, "10.00")
    with pytest.raises(SameAccount):
        ledger.transfer(account, account.account_number, D("1.00"), "", customer)


@pytest.mark.parametrize("number", ["ACC-000000000", "nonsense", "", "GL-VAULT"])
def test_transfer_to_an_unknown_or_internal_account_is_refused(customer, funded_account, number):
    ledger.internal_account()
    account = funded_account(customer, "10.00")
    with pytest.raises(UnknownAccount):
        ledger.transfer(account, number, D("1.00"), "", customer)
    assert balance(account) == D("10.00")


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
def test_transfer_to_an_inactive_account_is_refused(customer, funded_account, status):
    source = funded_account(customer, "10.00")
    destination = funded_account(customer)
    destination.status = status
    db.session.commit()
    with pytest.raises(AccountNotActive) as refused:
        ledger.transfer(source, destination.account_number, D("1.00"), "", customer)
    assert "destination" in str(refused.value)
    assert balance(source) == D("10.00")


def test_transfer_from_a_frozen_account_is_refused(customer, funded_account):
    source = funded_account(customer, "10.00")
    destination = funded_account(customer)
    source.status = AccountStatus.FROZEN
    db.session.commit()
    with pytest.raises(AccountNotActive):
        ledger.transfer(source, destination.account_number, D("1.00"), "", customer)
    assert balance(destination) == D("0.00")


def test_transfer_never_changes_the_customers_total(customer, make_user, funded_account):
    bob = make_user()
    a, b = funded_account(customer, "70.00"), funded_account(bob, "30.00")
    before = ledger.reconcile().customer_total
    ledger.transfer(a, b.account_number, D("25.00"), "", customer)
    ledger.transfer(b, a.account_number, D("55.00"), "", bob)
    assert ledger.reconcile().customer_total == before == D("100.00")


# ---------------------------------------------------------------- idempotency

def test_replayed_idempotency_key_posts_nothing_new(customer, funded_account):
    account = funded_account(customer, "100.00")
    first = ledger.withdraw(account, D("10.00"), "", customer, idempotency_key="k-1")
    again = ledger.withdraw(account, D("10.00"), "", customer, idempotency_key="k-1")
    assert again.entry.id == first.entry.id and again.replayed and not first.replayed
    assert balance(account) == D("90.00")


def test_a_replay_after_the_money_is_spent_returns_the_first_posting(customer, funded_account):
    account = funded_account(customer, "100.00")
    first = ledger.withdraw(account, D("100.00"), "", customer, idempotency_key="k-all")
    again = ledger.withdraw(account, D("100.00"), "", customer, idempotency_key="k-all")
    assert again.replayed and again.entry.id == first.entry.id
    assert balance(account) == D("0.00")


def test_a_replay_after_the_account_is_frozen_returns_the_first_posting(
        customer, funded_account, make_user):
    account = funded_account(customer, "100.00")
    first = ledger.withdraw(account, D("10.00"), "", customer, idempotency_key="k-frozen")
    ledger.freeze_account(account, "Suspected fraud", make_user(role="teller"))
    again = ledger.withdraw(account, D("10.00"), "", customer, idempotency_key="k-frozen")
    assert again.replayed and again.entry.id == first.entry.id
    assert balance(account) == D("90.00")


def test_idempotency_is_enforced_by_a_unique_constraint(customer, funded_account):
    account = funded_account(customer, "100.00")
    ledger.withdraw(account, D("10.00"), "", customer, idempotency_key="k-2")
    db.session.add(JournalEntry(reference="x" * 32, entry_type="WITHDRAWAL",
                                       actor_id=customer.id, idempotency_key="k-2"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_refused_posting_does_not_use_up_its_key(customer, funded_account):
    account = funded_account(customer, "5.00")
    with pytest.raises(InsufficientFunds):
        ledger.withdraw(account, D("10.00"), "", customer, idempotency_key="k-3")
    entry = ledger.withdraw(account, D("5.00"), "", customer, idempotency_key="k-3")
    assert not entry.replayed and balance(account) == D("0.00")


def test_same_key_from_another_actor_is_a_different_posting(customer, make_user, funded_account):
    bob = make_user()
    account = funded_account(customer, "100.00")
    ledger.deposit(account, D("1.00"), "", customer, idempotency_key="same")
    ledger.deposit(account, D("1.00"), "", bob, idempotency_key="same")
    assert balance(account) == D("102.00")


# ---------------------------------------------------------------- history and reconciliation

def test_ledger_rows_have_no_update_or_delete_path():
    for module in Path(ledger.__file__).parent.glob("*.py"):
        source = module.read_text()
        assert "sa.delete(" not in source and "update(Transaction" not in source, module.name


def test_reconcile_is_clean_on_an_empty_book(app):
    result = ledger.reconcile()
    assert result.clean and "clean" in result.summary()


def test_reconcile_reports_a_balance_changed_outside_the_ledger(customer, funded_account):
    account = funded_account(customer, "10.00")
    db.session.execute(sa.update(Account).where(Account.id == account.id)
                       .values(balance=D("1000.00")))
    db.session.commit()
    problems = ledger.reconcile().problems
    assert any(account.account_number in p and "legs sum to 10.00" in p for p in problems)
    assert any("book out of balance" in p for p in problems)


def test_reconcile_reports_an_unbalanced_entry(customer, funded_account):
    account = funded_account(customer, "10.00")
    entry = db.session.scalar(sa.select(JournalEntry))
    db.session.add(Transaction(entry_id=entry.id, account_id=account.id, transaction_type="DEPOSIT",
                               side="credit", amount=D("5.00"), balance_after=D("15.00")))
    db.session.commit()
    problems = ledger.reconcile().problems
    assert any(entry.reference in p and "summing to 5.00" in p for p in problems)


def test_reconcile_reports_a_broken_running_balance(customer, funded_account):
    account = funded_account(customer, "10.00")
    ledger.deposit(account, D("5.00"), "", customer)
    db.session.execute(sa.update(Transaction).where(Transaction.id == legs_of(account)[0].id)
                       .values(balance_after=D("11.00")))
    db.session.commit()
    assert any("balance_after 11.00, expected 10.00" in p for p in ledger.reconcile().problems)


def test_history_is_newest_first(customer, funded_account):
    account = funded_account(customer, "10.00")
    ledger.withdraw(account, D("1.00"), "second", customer)
    rows = db.session.scalars(ledger.customer_history(account)).all()
    assert [r.description for r in rows] == ["second", "Opening deposit"]


def test_history_can_be_imported_back_dated_in_time_order(customer, funded_account):
    from datetime import datetime, timezone

    account = funded_account(customer)
    when = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)
    ledger.deposit(account, D("5.00"), "imported", customer, posted_at=when)
    assert legs_of(account)[-1].timestamp == when


@pytest.mark.parametrize("when", ["naive", "future"])
def test_back_dating_refuses_naive_or_future_times(customer, funded_account, when):
    from datetime import datetime, timedelta, timezone

    account = funded_account(customer)
    posted_at = (datetime(2024, 3, 1) if when == "naive"
                 else datetime.now(timezone.utc) + timedelta(days=1))
    with pytest.raises(ledger.LedgerError):
        ledger.deposit(account, D("5.00"), "", customer, posted_at=posted_at)
    assert balance(account) == D("0.00")

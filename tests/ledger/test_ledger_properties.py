"""Property: no sequence of ledger operations, valid or not, breaks the book.

A Hypothesis state machine opens accounts, freezes and unfreezes them, and posts deposits,
withdrawals and transfers with amounts that are often invalid (zero, negative, three
decimals, NaN, floats, over the limit) to accounts that may be unknown, the same or frozen.
A model kept in Python with ``Decimal`` predicts each outcome: the new balances, or exactly
which refusal. After every step the database must agree with the model (balances, the sum of
all balances zero, customer balances never negative, no entry written by a refusal), and at
the end of every sequence ``reconcile`` must find the book clean.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import current_app
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from bankapp import ledger
from bankapp.extensions import db
from bankapp.models import Account, AccountStatus, JournalEntry, User
from support.database import POSTGRES, empty_database

D = Decimal
LIMIT = D("1000000.00")

valid_amounts = st.decimals(min_value=D("0.01"), max_value=D("1500.00"), places=2)
invalid_amounts = st.sampled_from([D("0"), D("0.00"), D("-5.00"), D("0.001"), D("12.345"),
                                   D("NaN"), D("Infinity"), D("1000000.01"), 12.5, "10.00"])
amounts = st.one_of(valid_amounts, valid_amounts, invalid_amounts)


def expected_amount_error(amount) -> type[ledger.LedgerError] | None:
    """The refusal ``validate_amount`` owes ``amount``, worked out independently."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        return ledger.InvalidAmount
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(D("0.01")):
        return ledger.InvalidAmount
    if amount > LIMIT:
        return ledger.LimitExceeded
    return None


class LedgerMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")

    def __init__(self):
        super().__init__()
        # Every example starts from an empty book.
        empty_database()
        self.owners = [User(email=f"owner{i}@example.com", password_hash="x") for i in range(2)]
        db.session.add_all(self.owners)
        db.session.commit()
        self.owner_ids = [owner.id for owner in self.owners]
        self.balances: dict[str, Decimal] = {}  # customer accounts by number
        self.status: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        self.holders: dict[str, int] = {}  # owner index by account number
        self.vault = D("0.00")
        self.entries = 0

    # ------------------------------------------------------------ helpers

    def load(self, number: str) -> Account:
        return db.session.scalar(sa.select(Account).where(Account.account_number == number))

    def actor(self, index: int) -> User:
        return db.session.get(User, self.owner_ids[index])

    def post(self, operation, expected_error, apply_to_model) -> None:
        """Run ``operation``; it must raise exactly ``expected_error``, or succeed and then
        ``apply_to_model`` records its effect."""
        if expected_error is None:
            operation()
            apply_to_model()
            self.entries += 1
        else:
            with pytest.raises(expected_error):
                operation()
            db.session.rollback()

    def leg_error(self, legs: list[tuple[str | None, Decimal]]):
        """The refusal the ledger owes legs of (account number or None for the vault, delta):
        customer legs are applied in account id order and the first one refused names the
        error."""
        for number, delta in sorted(legs, key=lambda leg: self.ids.get(leg[0], 0)):
            if number is None:
                continue  # the vault may go either way within NUMERIC(12, 2): never refuses
            if self.status[number] != AccountStatus.ACTIVE:
                return ledger.AccountNotActive
            if self.balances[number] + delta < 0:
                return ledger.InsufficientFunds
            if self.balances[number] + delta > ledger.MAX_BALANCE:
                return ledger.LimitExceeded
        return None

    # ------------------------------------------------------------ rules

    @initialize(target=accounts, owner=st.integers(0, 1))
    def first_account(self, owner):
        return self.open(owner, "SAVINGS")

    @rule(target=accounts, owner=st.integers(0, 1),
          account_type=st.sampled_from(["SAVINGS", "CHECKING"]))
    def open_account(self, owner, account_type):
        held = sum(1 for holder in self.holders.values() if holder == owner)
        if held >= current_app.config["MAX_OPEN_ACCOUNTS"]:  # none is ever closed here
            with pytest.raises(ledger.LedgerError):
                ledger.open_account(self.actor(owner), account_type)
            return multiple()
        return self.open(owner, account_type)

    def open(self, owner: int, account_type: str) -> str:
        account = ledger.open_account(self.actor(owner), account_type)
        number = account.account_number
        self.holders[number] = owner
        self.balances[number] = D("0.00")
        self.status[number] = AccountStatus.ACTIVE
        self.ids[number] = account.id
        return number

    @rule(owner=st.integers(0, 1), account_type=st.sampled_from(["VAULT", "TILL", "", "savings"]))
    def open_an_account_of_a_wrong_type(self, owner, account_type):
        before = db.session.scalar(sa.select(sa.func.count(Account.id)))
        with pytest.raises(ledger.LedgerError):
            ledger.open_account(self.actor(owner), account_type)
        assert db.session.scalar(sa.select(sa.func.count(Account.id))) == before

    @rule(number=accounts, status=st.sampled_from(AccountStatus.ALL))
    def set_status(self, number, status):
        # Freezing is an administrative act, not a movement of money.
        account = self.load(number)
        account.status = status
        db.session.commit()
        self.status[number] = status

    @rule(number=accounts, amount=amounts, actor=st.integers(0, 1))
    def deposit(self, number, amount, actor):
        error = expected_amount_error(amount) or self.leg_error([(number, amount), (None, -amount)])

        def record():
            self.balances[number] += amount
            self.vault -= amount

        self.post(lambda: ledger.deposit(self.load(number), amount, "deposit", self.actor(actor)),
                  error, record)

    @rule(number=accounts, amount=amounts, actor=st.integers(0, 1))
    def withdraw(self, number, amount, actor):
        error = expected_amount_error(amount) or self.leg_error([(number, -amount), (None, amount)])

        def record():
            self.balances[number] -= amount
            self.vault += amount

        self.post(lambda: ledger.withdraw(self.load(number), amount, "withdrawal",
                                          self.actor(actor)),
                  error, record)

    @rule(source=accounts, destination=accounts, amount=amounts, actor=st.integers(0, 1))
    def transfer(self, source, destination, amount, actor):
        error = expected_amount_error(amount)
        if error is None and source == destination:
            error = ledger.SameAccount
        if error is None:
            error = self.leg_error([(source, -amount), (destination, amount)])

        def record():
            self.balances[source] -= amount
            self.balances[destination] += amount

        self.post(lambda: ledger.transfer(self.load(source), destination, amount, "transfer",
                                          self.actor(actor)),
                  error, record)

    @rule(source=accounts, destination=st.sampled_from(["ACC-000000000", "GL-VAULT", "", "x"]),
          amount=valid_amounts)
    def transfer_to_an_unknown_account(self, source, destination, amount):
        self.post(lambda: ledger.transfer(self.load(source), destination, amount, "", self.actor(0)),
                  ledger.UnknownAccount, None)

    # ------------------------------------------------------------ invariants

    @invariant()
    def the_book_matches_the_model(self):
        db.session.rollback()  # look at what is committed, nothing cached
        rows = db.session.execute(sa.select(Account.account_number, Account.owner_id,
                                            Account.balance)).all()
        customer = {number: balance for number, owner, balance in rows if owner is not None}
        internal = [balance for _, owner, balance in rows if owner is None]
        assert customer == self.balances
        assert all(balance >= 0 for balance in customer.values())
        assert sum(internal, D("0.00")) == self.vault
        assert sum(customer.values(), D("0.00")) + sum(internal, D("0.00")) == 0
        assert db.session.scalar(sa.select(sa.func.count(JournalEntry.id))) == self.entries

    def teardown(self):
        # The ledger's own audit, once per sequence: what it checks (entries summing to zero,
        # balances equal to their legs, unbroken running balances) stays broken once broken.
        assert ledger.reconcile().problems == []


def test_no_sequence_of_operations_breaks_the_book(app):
    # Fewer sequences on PostgreSQL, where each statement is a network round trip: the model
    # logic is the same on both databases and the SQLite run explores more of it.
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=15 if POSTGRES else 30, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    ))

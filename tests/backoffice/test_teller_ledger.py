"""Ledger rules of the back office: tills, shift closes, reversals, maker-checker, freezes."""
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger import (
    AccountNotActive,
    DecisionRefused,
    InsufficientFunds,
    InvalidAmount,
    NotReversible,
    ReasonRequired,
)
from bankapp.models import (
    Account,
    AccountStatus,
    AccountType,
    Channel,
    EntryType,
    JournalEntry,
    PendingPosting,
    PendingStatus,
    Transaction,
)
from support.backoffice import (  # noqa: F401  (fixtures)
    account,
    admin,
    assert_clean_book,
    balance,
    other_admin,
    stocked_till,
    teller,
)
from support.database import POSTGRES

D = Decimal


def entry_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))


# ---------------------------------------------------------------- tills


def test_each_teller_has_one_till_created_on_first_use(teller, make_user):
    till = ledger.till_for(teller)
    assert till.account_type == AccountType.TILL and till.owner_id is None
    assert till.account_number == f"GL-TILL-{teller.id}"
    assert ledger.till_for(teller).id == till.id
    assert ledger.till_for(make_user(role="teller")).id != till.id


def test_allocation_moves_cash_from_the_vault_into_the_till(teller, admin):
    till = ledger.till_for(teller)
    posting = ledger.allocate_cash(till, D("250.00"), admin)
    assert posting.entry.entry_type == EntryType.CASH_ALLOCATION
    assert ledger.cash_held(till) == D("250.00")
    assert balance(till) == D("-250.00")  # credit-positive: minus the cash in the drawer
    assert balance(ledger.internal_account()) == D("250.00")
    assert_clean_book()


def test_counter_deposit_takes_the_cash_into_the_tellers_till(teller, account, stocked_till):
    posting = ledger.teller_posting("deposit", account, D("40.00"), "Cash in", teller)
    assert balance(account) == D("540.00")
    assert ledger.cash_held(stocked_till) == D("1040.00")
    assert posting.entry.channel == Channel.TELLER and posting.entry.actor_id == teller.id
    assert {leg.account_id for leg in posting.entry.legs} == {account.id, stocked_till.id}


def test_counter_withdrawal_pays_the_cash_out_of_the_tellers_till(teller, account,
                                                                  stocked_till):
    ledger.teller_posting("withdrawal", account, D("300.00"), "Cash out", teller)
    assert balance(account) == D("200.00")
    assert ledger.cash_held(stocked_till) == D("700.00")
    assert_clean_book()


def test_a_till_never_pays_out_more_cash_than_it_holds(teller, admin, account):
    till = ledger.till_for(teller)
    ledger.allocate_cash(till, D("100.00"), admin)
    with pytest.raises(InsufficientFunds, match="till does not hold enough cash"):
        ledger.teller_posting("withdrawal", account, D("100.01"), "", teller)
    assert ledger.cash_held(till) == D("100.00")
    assert balance(account) == D("500.00")
    assert_clean_book()


def test_the_database_refuses_a_till_below_zero_cash(teller):
    till = ledger.till_for(teller)
    with pytest.raises(IntegrityError):
        db.session.execute(sa.update(Account).where(Account.id == till.id)
                           .values(balance=D("0.01")))
        db.session.flush()
    db.session.rollback()


def test_settling_more_than_the_till_holds_is_refused(admin, stocked_till):
    with pytest.raises(InsufficientFunds):
        ledger.settle_cash(stocked_till, D("1000.01"), admin)
    assert ledger.cash_held(stocked_till) == D("1000.00")


def stop_serving(teller, change: str) -> None:
    if change == "deactivated":
        teller.is_active = False
    else:
        teller.role = "customer"
    db.session.commit()


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
def test_no_till_is_opened_for_someone_no_longer_serving(teller, change):
    stop_serving(teller, change)
    with pytest.raises(ledger.TellerNotServing):
        ledger.till_for(teller)
    assert ledger.find_till(teller) is None


def test_a_teller_no_longer_serving_keeps_their_till(teller, stocked_till):
    stop_serving(teller, "deactivated")
    assert ledger.till_for(teller).id == stocked_till.id


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
def test_allocating_cash_to_a_teller_no_longer_serving_is_refused(teller, admin, stocked_till,
                                                                  change):
    stop_serving(teller, change)
    before = entry_count()
    with pytest.raises(ledger.TellerNotServing, match="their till takes no new cash"):
        ledger.allocate_cash(stocked_till, D("100.00"), admin)
    assert entry_count() == before
    assert ledger.cash_held(stocked_till) == D("1000.00")


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
def test_cash_is_still_settled_from_the_till_of_a_teller_no_longer_serving(
        teller, admin, stocked_till, change):
    """Refusing new cash must not strand what the till already holds."""
    stop_serving(teller, change)
    ledger.settle_cash(stocked_till, D("1000.00"), admin)
    assert ledger.cash_held(stocked_till) == D("0.00")
    assert_clean_book()


def test_allocate_deposits_withdrawals_settle_leaves_the_till_at_zero(teller, admin, account):
    till = ledger.till_for(teller)
    ledger.allocate_cash(till, D("500.00"), admin)
    ledger.teller_posting("deposit", account, D("120.50"), "", teller)
    ledger.teller_posting("deposit", account, D("79.50"), "", teller)
    ledger.teller_posting("withdrawal", account, D("650.00"), "", teller)
    assert ledger.cash_held(till) == D("50.00")
    ledger.settle_cash(till, D("50.00"), admin)
    assert balance(till) == D("0.00")
    assert balance(account) == D("50.00")
    assert_clean_book()


# ---------------------------------------------------------------- closing a shift


def test_close_shift_with_a_shortage_books_it_and_settles_the_counted_cash(teller, account,
                                                                            stocked_till):
    ledger.teller_posting("deposit", account, D("200.00"), "", teller)
    closed = ledger.close_shift(stocked_till, D("1195.00"), teller)
    assert (closed.expected, closed.counted, closed.difference) == (
        D("1200.00"), D("1195.00"), D("-5.00"))
    assert closed.over_short.entry_type == EntryType.CASH_OVER_SHORT
    assert balance(ledger.over_short_account()) == D("-5.00")  # a loss: debited
    assert closed.settlement.entry_type == EntryType.CASH_SETTLEMENT
    assert {leg.amount for leg in closed.settlement.legs} == {D("1195.00")}
    assert balance(stocked_till) == D("0.00")
    assert_clean_book()


def test_close_shift_with_cash_over_credits_the_over_short_account(teller, stocked_till):
    closed = ledger.close_shift(stocked_till, D("1010.00"), teller)
    assert closed.difference == D("10.00")
    assert balance(ledger.over_short_account()) == D("10.00")
    assert balance(stocked_till) == D("0.00")
    assert_clean_book()


def test_close_shift_that_balances_posts_no_over_short_entry(teller, stocked_till):
    closed = ledger.close_shift(stocked_till, D("1000.00"), teller)
    assert closed.over_short is None and closed.difference == 0
    assert balance(stocked_till) == D("0.00")
    assert not db.session.scalar(sa.select(JournalEntry).where(
        JournalEntry.entry_type == EntryType.CASH_OVER_SHORT))


def test_replayed_close_shift_posts_nothing_new(teller, stocked_till):
    first = ledger.close_shift(stocked_till, D("990.00"), teller, idempotency_key="k1")
    entries = entry_count()
    again = ledger.close_shift(stocked_till, D("990.00"), teller, idempotency_key="k1")
    assert again.replayed and entry_count() == entries
    assert (again.expected, again.counted) == (first.expected, first.counted)
    assert balance(stocked_till) == D("0.00")


@pytest.mark.parametrize("text, expected", [
    ("0", D("0.00")), ("0.00", D("0.00")), ("1,234.5", D("1234.50")),
    ("2000000.00", D("2000000.00")),  # above the per-posting limit: a drawer may hold more
])
def test_counted_cash_accepts_zero_and_large_counts(app, text, expected):
    assert ledger.parse_counted_cash(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "Enter an amount"), ("-1", "greater than zero"), ("1.005", "two decimal places"),
    ("sNaN", "Enter an amount such as"), ("1.234,5", "is ambiguous here"),
])
def test_counted_cash_refuses_what_is_not_an_amount(app, text, message):
    with pytest.raises(InvalidAmount, match=message):
        ledger.parse_counted_cash(text)


# ---------------------------------------------------------------- reversals


def test_reversing_a_transfer_restores_both_balances(customer, make_user, funded_account, admin):
    source = funded_account(customer, "300.00")
    destination = funded_account(make_user(), "20.00")
    original = ledger.transfer(source, destination.account_number, D("120.00"), "Rent",
                               customer).entry
    reversal = ledger.reverse_entry(original, "Sent in error", admin).entry
    assert balance(source) == D("300.00") and balance(destination) == D("20.00")
    assert reversal.entry_type == EntryType.REVERSAL and reversal.reverses_id == original.id
    flipped = {(leg.account_id, leg.side, leg.amount) for leg in reversal.legs}
    assert flipped == {(source.id, "credit", D("120.00")),
                       (destination.id, "debit", D("120.00"))}
    assert_clean_book()


def test_reversal_never_edits_the_original_entry(customer, account, admin):
    original = ledger.deposit(account, D("10.00"), "Oops", customer).entry
    before = [(leg.id, leg.side, leg.amount, leg.balance_after) for leg in original.legs]
    ledger.reverse_entry(original, "Duplicate", admin)
    db.session.expire_all()
    after = [(leg.id, leg.side, leg.amount, leg.balance_after)
             for leg in db.session.get(JournalEntry, original.id).legs]
    assert after == before


def test_a_reversal_that_would_overdraw_is_refused_and_changes_nothing(customer, make_user,
                                                                        funded_account, admin):
    account = funded_account(customer, "100.00")
    deposit = db.session.scalar(sa.select(JournalEntry).where(
        JournalEntry.entry_type == EntryType.DEPOSIT))
    other = funded_account(make_user())
    ledger.transfer(account, other.account_number, D("80.00"), "", customer)
    entries = entry_count()
    with pytest.raises(InsufficientFunds):
        ledger.reverse_entry(deposit, "Bounced cheque", admin)
    assert balance(account) == D("20.00") and entry_count() == entries
    assert ledger.reversal_of(deposit) is None
    assert_clean_book()


def test_an_entry_can_be_reversed_only_once(customer, account, admin):
    original = ledger.deposit(account, D("10.00"), "", customer).entry
    ledger.reverse_entry(original, "Error", admin)
    with pytest.raises(NotReversible, match="already been reversed"):
        ledger.reverse_entry(original, "Again", admin)
    assert balance(account) == D("500.00")


def test_a_reversal_cannot_itself_be_reversed(customer, account, admin):
    original = ledger.deposit(account, D("10.00"), "", customer).entry
    reversal = ledger.reverse_entry(original, "Error", admin).entry
    with pytest.raises(NotReversible, match="cannot be reversed"):
        ledger.reverse_entry(reversal, "Undo", admin)


def test_the_database_allows_one_reversal_per_entry(customer, account, admin):
    original = ledger.deposit(account, D("10.00"), "", customer).entry
    ledger.reverse_entry(original, "Error", admin)
    with pytest.raises(IntegrityError):
        db.session.add(JournalEntry(reference="x" * 32, entry_type=EntryType.REVERSAL,
                                    reverses_id=original.id))
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize("reason", ["", "   ", "x" * 256])
def test_a_reversal_needs_a_reason(customer, account, admin, reason):
    original = ledger.deposit(account, D("10.00"), "", customer).entry
    with pytest.raises(ReasonRequired):
        ledger.reverse_entry(original, reason, admin)
    assert ledger.reversal_of(original) is None


# ---------------------------------------------------------------- maker-checker


@pytest.mark.parametrize("kind", ["deposit", "withdrawal"])
def test_exactly_the_threshold_posts_at_once(teller, customer, funded_account, admin, kind):
    account = funded_account(customer, "20000.00")
    ledger.allocate_cash(ledger.till_for(teller), D("20000.00"), admin)
    result = ledger.teller_posting(kind, account, D("10000.00"), "", teller)
    assert isinstance(result, ledger.Posting)
    assert balance(account) == (D("30000.00") if kind == "deposit" else D("10000.00"))


@pytest.mark.parametrize("kind", ["deposit", "withdrawal"])
def test_one_cent_above_the_threshold_waits_for_approval_and_moves_nothing(
        teller, customer, funded_account, admin, kind):
    account = funded_account(customer, "20000.00")
    till = ledger.till_for(teller)
    ledger.allocate_cash(till, D("20000.00"), admin)
    entries = entry_count()
    result = ledger.teller_posting(kind, account, D("10000.01"), "Big one", teller)
    assert isinstance(result, ledger.Requested)
    assert result.pending.status == PendingStatus.PENDING
    assert result.pending.amount == D("10000.01") and result.pending.kind == kind
    assert entry_count() == entries
    assert balance(account) == D("20000.00") and ledger.cash_held(till) == D("20000.00")


def test_the_threshold_is_configurable(app, teller, account, stocked_till):
    app.config["MAKER_CHECKER_THRESHOLD"] = D("50.00")
    assert isinstance(ledger.teller_posting("deposit", account, D("50.01"), "", teller),
                      ledger.Requested)


def held_deposit(teller, account, amount="12000.00", key=None) -> PendingPosting:
    return ledger.request_posting("deposit", account, D(amount), "Held", teller,
                                  idempotency_key=key).pending


def test_approval_posts_into_the_requesting_tellers_till(teller, admin, account):
    pending = held_deposit(teller, account)
    posting = ledger.approve_posting(pending, admin)
    assert balance(account) == D("12500.00")
    assert ledger.cash_held(ledger.till_for(teller)) == D("12000.00")
    assert pending.status == PendingStatus.APPROVED and pending.entry_id == posting.entry.id
    assert pending.decided_by_id == admin.id and pending.decided_at is not None
    assert posting.entry.actor_id == teller.id and posting.entry.channel == Channel.TELLER
    assert_clean_book()


def test_nobody_can_approve_their_own_request(teller, admin, account):
    pending = held_deposit(teller, account)
    with pytest.raises(DecisionRefused, match="your own request"):
        ledger.approve_posting(pending, teller)
    own = held_deposit(admin, account)
    with pytest.raises(DecisionRefused):
        ledger.approve_posting(own, admin)
    assert balance(account) == D("500.00")
    assert pending.status == own.status == PendingStatus.PENDING


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
def test_a_request_from_someone_no_longer_serving_cannot_be_approved(teller, admin, account,
                                                                    change):
    pending = held_deposit(teller, account)
    if change == "deactivated":
        teller.is_active = False
    else:
        teller.role = "customer"
    db.session.commit()
    with pytest.raises(DecisionRefused, match="no longer active staff"):
        ledger.approve_posting(pending, admin)
    assert balance(account) == D("500.00") and pending.status == PendingStatus.PENDING
    ledger.reject_posting(pending, admin, "requester left")
    assert pending.status == PendingStatus.REJECTED


def test_the_database_refuses_a_checker_who_is_the_maker(teller, account):
    pending = held_deposit(teller, account)
    with pytest.raises(IntegrityError):
        db.session.execute(sa.update(PendingPosting).where(PendingPosting.id == pending.id)
                           .values(status=PendingStatus.REJECTED, decided_by_id=teller.id))
    db.session.rollback()


def test_a_request_is_decided_only_once(teller, admin, other_admin, account):
    pending = held_deposit(teller, account)
    ledger.approve_posting(pending, admin)
    with pytest.raises(DecisionRefused, match="already approved"):
        ledger.approve_posting(pending, other_admin)
    with pytest.raises(DecisionRefused):
        ledger.reject_posting(pending, other_admin, "Too late")
    assert balance(account) == D("12500.00")


def test_rejection_moves_no_money_and_keeps_the_reason(teller, admin, account):
    pending = held_deposit(teller, account)
    ledger.reject_posting(pending, admin, "Customer left")
    assert pending.status == PendingStatus.REJECTED and pending.decision_note == "Customer left"
    assert pending.entry_id is None and balance(account) == D("500.00")


def test_rejection_needs_a_reason(teller, admin, account):
    pending = held_deposit(teller, account)
    with pytest.raises(ReasonRequired):
        ledger.reject_posting(pending, admin, " ")
    assert pending.status == PendingStatus.PENDING


def test_approving_a_withdrawal_the_till_cannot_pay_is_refused(teller, admin, customer,
                                                               funded_account):
    account = funded_account(customer, "15000.00")
    pending = ledger.request_posting("withdrawal", account, D("12000.00"), "", teller).pending
    with pytest.raises(InsufficientFunds):
        ledger.approve_posting(pending, admin)
    db.session.refresh(pending)
    assert pending.status == PendingStatus.PENDING and balance(account) == D("15000.00")


def test_a_replayed_request_finds_the_first_one(teller, account):
    first = held_deposit(teller, account, key="abc")
    again = ledger.request_posting("deposit", account, D("12000.00"), "Held", teller,
                                   idempotency_key="abc")
    assert again.replayed and again.pending.id == first.id
    assert db.session.scalar(sa.select(sa.func.count(PendingPosting.id))) == 1


# ---------------------------------------------------------------- freezing


def test_freezing_sets_the_status_and_the_reason(account, teller):
    ledger.freeze_account(account, "Suspected fraud", teller)
    assert account.status == AccountStatus.FROZEN and account.status_reason == "Suspected fraud"


@pytest.mark.parametrize("operation", ["deposit", "withdraw", "transfer out", "transfer in"])
def test_a_frozen_account_refuses_customer_postings(customer, make_user, funded_account,
                                                    teller, operation):
    account = funded_account(customer, "100.00")
    other = funded_account(make_user(), "100.00")
    ledger.freeze_account(account, "Court order", teller)
    with pytest.raises(AccountNotActive):
        if operation == "deposit":
            ledger.deposit(account, D("1.00"), "", customer)
        elif operation == "withdraw":
            ledger.withdraw(account, D("1.00"), "", customer)
        elif operation == "transfer out":
            ledger.transfer(account, other.account_number, D("1.00"), "", customer)
        else:
            ledger.transfer(other, account.account_number, D("1.00"), "", other.owner)
    assert balance(account) == D("100.00") and balance(other) == D("100.00")


@pytest.mark.parametrize("kind, amount", [("deposit", "5.00"), ("withdrawal", "5.00"),
                                          ("deposit", "10000.01")])
def test_a_frozen_account_refuses_teller_postings_and_requests(account, teller, stocked_till,
                                                               kind, amount):
    ledger.freeze_account(account, "Court order", teller)
    with pytest.raises(AccountNotActive):
        ledger.teller_posting(kind, account, D(amount), "", teller)
    assert balance(account) == D("500.00")
    assert db.session.scalar(sa.select(sa.func.count(PendingPosting.id))) == 0


def test_unfreezing_reactivates_the_account(account, teller, customer):
    ledger.freeze_account(account, "Check", teller)
    ledger.unfreeze_account(account, "Cleared", teller)
    assert account.status == AccountStatus.ACTIVE and account.status_reason is None
    ledger.deposit(account, D("1.00"), "", customer)
    assert balance(account) == D("501.00")


def test_freezing_needs_a_reason(account, teller):
    with pytest.raises(ReasonRequired):
        ledger.freeze_account(account, "", teller)
    assert account.status == AccountStatus.ACTIVE


def test_freezing_a_frozen_account_or_unfreezing_an_active_one_is_refused(account, teller):
    with pytest.raises(AccountNotActive):
        ledger.unfreeze_account(account, "Why", teller)
    ledger.freeze_account(account, "Check", teller)
    with pytest.raises(AccountNotActive):
        ledger.freeze_account(account, "Again", teller)
    assert account.status_reason == "Check"


def test_internal_accounts_cannot_be_frozen(teller):
    with pytest.raises(ledger.UnknownAccount):
        ledger.freeze_account(ledger.till_for(teller), "No", teller)


def test_customer_legs_of_the_till_are_never_customer_history(teller, account, stocked_till):
    ledger.teller_posting("deposit", account, D("5.00"), "", teller)
    history = db.session.scalars(ledger.customer_history(account)).all()
    assert all(leg.account_id == account.id for leg in history)
    assert all(isinstance(leg, Transaction) for leg in history)


# ---------------------------------------------------------------- concurrency (PostgreSQL)


def _race(app, work, *args_per_thread) -> list[str]:
    """Run ``work(*args)`` in one thread per argument tuple, all released at once; return
    what each did ("ok" or the refusal's class name)."""
    import threading

    barrier = threading.Barrier(len(args_per_thread))
    outcomes: list[str] = []

    def run(args):
        with app.app_context():
            try:
                prepared = [db.session.merge(arg) if hasattr(arg, "_sa_instance_state") else arg
                            for arg in args]
                barrier.wait(timeout=10)
                work(*prepared)
                outcomes.append("ok")
            except ledger.LedgerError as error:
                outcomes.append(type(error).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(args,)) for args in args_per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


needs_postgres = pytest.mark.skipif(
    not POSTGRES, reason="row locks and concurrent writers: PostgreSQL")


@pytest.mark.postgres
@needs_postgres
def test_two_checkers_approving_at_once_post_once(app, teller, admin, other_admin, account):
    pending = held_deposit(teller, account)
    outcomes = _race(app, ledger.approve_posting, (pending, admin), (pending, other_admin))
    assert outcomes == ["DecisionRefused", "ok"]
    assert balance(account) == D("12500.00")
    assert_clean_book()


@pytest.mark.postgres
@needs_postgres
def test_two_admins_reversing_at_once_reverse_once(app, customer, account, admin, other_admin):
    original = ledger.deposit(account, D("40.00"), "", customer).entry
    outcomes = _race(app, ledger.reverse_entry, (original, "Error", admin),
                     (original, "Error", other_admin))
    assert outcomes == ["NotReversible", "ok"]
    assert balance(account) == D("500.00")
    assert_clean_book()


@pytest.mark.postgres
@needs_postgres
def test_two_admins_reversing_a_deposit_already_spent_by_the_first_reversal(
        app, customer, funded_account, admin, other_admin):
    # The loser finds the money gone before it meets the one-reversal index: it must still
    # be told the entry is already reversed, not that funds are insufficient.
    account = funded_account(customer, "0.00")
    original = ledger.deposit(account, D("40.00"), "", customer).entry
    outcomes = _race(app, ledger.reverse_entry, (original, "Error", admin),
                     (original, "Error", other_admin))
    assert outcomes == ["NotReversible", "ok"]
    assert balance(account) == D("0.00")
    assert_clean_book()

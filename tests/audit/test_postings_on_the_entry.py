"""A customer's deposit, withdrawal or transfer is its own audit line: the journal entry
records the action and the client's address, the trail reads the rest from its legs
(bankapp.audit.trail, issue 28), and no audit_events row repeats it."""
import importlib.util
import re
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from bankapp import audit, ledger
from bankapp.audit import Action, trail
from bankapp.backoffice.admin import services as admin_services
from bankapp.extensions import db
from bankapp.models import AuditEvent, Channel, JournalEntry, User
from support.backoffice import (  # noqa: F401  (fixtures)
    account,
    admin,
    admin_client,
    audit_rows,
)

D = Decimal


def shown_actions(response) -> list[str]:
    return shown_actions_text(response.get_data(as_text=True))


def shown_actions_text(page: str) -> list[str]:
    return re.findall(r"<code>([a-z_.]+)</code>", page)


def audit_events_named(action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action))


def test_a_transfer_writes_no_audit_row_of_its_own(customer, account, make_user,
                                                   funded_account):
    other = funded_account(make_user(), "1.00")
    posting = ledger.transfer(account, other.account_number, D("7.25"), "rent", customer)
    assert audit_events_named(Action.TRANSFER) == 0
    assert posting.entry.audit_action == Action.TRANSFER


def test_a_transfer_reads_on_the_trail_as_its_row_did(app, customer, account, make_user,
                                                      funded_account):
    other = funded_account(make_user(), "1.00")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.7"}):
        posting = ledger.transfer(account, other.account_number, D("7.25"), "rent", customer,
                                  channel=Channel.API)
    [line] = audit_rows(Action.TRANSFER)
    assert (line.actor_id, line.target_type, line.target_id, line.ip_address) == (
        customer.id, "account", account.account_number, "203.0.113.7")
    assert line.details == {"reference": posting.reference, "channel": "api",
                            "amount": "7.25", "destination": other.account_number}


def test_a_deposit_and_a_withdrawal_name_the_cash_account(customer, account):
    ledger.withdraw(account, D("3.00"), "", customer)
    deposit, withdrawal = audit_rows(Action.DEPOSIT)[-1], audit_rows(Action.WITHDRAWAL)[-1]
    vault = ledger.internal_account().account_number
    assert (deposit.target_id, deposit.details["amount"], deposit.details["cash_account"]) == (
        account.account_number, "500.00", vault)
    assert (withdrawal.target_id, withdrawal.details["amount"],
            withdrawal.details["cash_account"]) == (account.account_number, "3.00", vault)


def test_the_audit_page_shows_a_transfer_with_its_reference_amount_and_address(
        app, admin_client, customer, account, make_user, funded_account):
    other = funded_account(make_user(), "1.00")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.23"}):
        posting = ledger.transfer(account, other.account_number, D("7.25"), "", customer)
    page = admin_client.get("/admin/audit/?action=ledger.transfer").get_data(as_text=True)
    assert shown_actions_text(page) == [Action.TRANSFER]
    for shown in (posting.reference, "7.25", other.account_number, account.account_number,
                  "198.51.100.23", customer.email):
        assert shown in page


def test_an_account_filter_finds_the_postings_it_is_the_target_of(
        admin_client, customer, account, make_user, funded_account):
    other = funded_account(make_user(), "1.00")
    ledger.transfer(account, other.account_number, D("2.00"), "", customer)
    sender = admin_client.get(
        f"/admin/audit/?target_type=account&target_id={account.account_number}")
    receiver = admin_client.get(
        f"/admin/audit/?target_type=account&target_id={other.account_number}")
    # Alice's account: its opening deposit and the transfer it sent; the other account: its
    # own opening deposit only (a transfer's line is about the sending account, as its row was).
    assert sorted(shown_actions(sender)) == [Action.DEPOSIT, Action.TRANSFER]
    assert shown_actions(receiver) == [Action.DEPOSIT]
    assert shown_actions(admin_client.get(
        f"/admin/audit/?target_type=user&target_id={account.account_number}")) == []


def test_an_entry_posted_with_its_own_row_is_listed_once(admin_client, customer, account):
    """What the previous release writes (and every posting before migration 0022): an entry
    without ``audit_action`` and a row for it."""
    reference = uuid4().hex
    db.session.add(JournalEntry(reference=reference, entry_type="DEPOSIT", actor_id=customer.id,
                                channel=Channel.WEB))
    db.session.add(AuditEvent(actor_id=customer.id, action=Action.DEPOSIT, target_type="account",
                              target_id=account.account_number,
                              details={"reference": reference, "amount": "1.00"}))
    db.session.commit()
    page = admin_client.get("/admin/audit/?action=ledger.deposit").get_data(as_text=True)
    assert page.count(reference) == 1
    assert shown_actions_text(page) == [Action.DEPOSIT, Action.DEPOSIT]  # and the opening one


def test_the_audit_page_reads_the_same_number_of_queries_for_more_postings(
        admin_client, customer, account, make_user, funded_account):
    other = funded_account(make_user(), "1.00")

    def statements_for_page() -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert admin_client.get("/admin/audit/").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    ledger.transfer(account, other.account_number, D("1.00"), "", customer)
    few = statements_for_page()
    for _ in range(12):
        ledger.transfer(account, other.account_number, D("1.00"), "", customer)
        ledger.deposit(account, D("1.00"), "", customer)
    assert statements_for_page() == few


def test_ledger_post_knows_the_same_actions_as_the_trail():
    """Migration 0022's ledger_post() keeps the same actions on the entry as the generic path."""
    path = Path(__file__).resolve().parents[2] / "migrations/versions/0022_lighter_posting.py"
    spec = importlib.util.spec_from_file_location("_migration_0022", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert set(re.findall(r"'([a-z_.]+)'", migration.ENTRY_ACTIONS)) == set(trail.ENTRY_ACTIONS)


# ---------------------------------------------------------------- filtered by actor


@pytest.fixture
def two_actors_lines(customer, account, make_user, funded_account):
    """Two customers whose emails hold "pat.", each with postings and rows interleaved (a row
    written in the very instant of a posting among them), and Alice's lines beside them."""
    pats = [make_user(email=f"pat.{n}@example.com") for n in (1, 2)]
    accounts = [funded_account(pat, "100.00") for pat in pats]
    for n in range(4):
        for pat, own in zip(pats, accounts):
            posting = ledger.transfer(own, account.account_number, D("1.00"), "", pat)
            audit.record(Action.LOGOUT, actor=pat, target_type="user", target_id=pat.id)
            if n == 2:
                db.session.add(AuditEvent(action=Action.LOGIN_SUCCESS, actor_id=pat.id,
                                          target_type="user", target_id=str(pat.id),
                                          created_at=posting.entry.created_at))
        ledger.transfer(account, accounts[0].account_number, D("1.00"), "", account.owner)
        audit.record(Action.LOGOUT, actor=account.owner, target_type="user",
                     target_id=account.owner_id)
    db.session.commit()
    return pats


def lines_of(actor_ids) -> list[int]:
    """Every audit line id of these actors, newest first, ties by line id: as the page's
    order is defined, computed here from the two tables directly."""
    rows = db.session.execute(sa.select(AuditEvent.created_at, AuditEvent.id)
                              .where(AuditEvent.actor_id.in_(actor_ids))).all()
    entries = db.session.execute(sa.select(JournalEntry.created_at, -JournalEntry.id)
                                 .where(JournalEntry.actor_id.in_(actor_ids),
                                        JournalEntry.audit_action.is_not(None))).all()
    return [line_id for _, line_id in sorted(rows + entries, reverse=True)]


def test_paging_the_audit_by_actor_lists_every_line_of_those_actors_once_newest_first(
        two_actors_lines):
    seen, older = [], None
    while True:
        page = admin_services.audit_page({"actor": "pat."}, older, per_page=3)
        seen += [line.id for line in page.lines]
        if page.older is None:
            break
        older = page.older
    assert seen == lines_of([pat.id for pat in two_actors_lines])
    assert len(seen) == 2 * (1 + 4 + 4 + 1)  # opening deposit, transfers, logouts, the log-in


def test_the_audit_by_actor_reads_the_same_lines_actor_by_actor_as_among_everyones(
        two_actors_lines):
    """``trail.actors`` gives few actors as their ids (each actor's lines read from its own
    index on PostgreSQL) and many as a select of them (everyone's lines read newest first,
    keeping theirs): both give the same pages."""
    matching = sa.select(User.id).where(User.email.like("pat.%"))
    assert sorted(trail.actors(matching)) == sorted(pat.id for pat in two_actors_lines)
    pages = {}
    for name, actor_ids in (("one by one", trail.actors(matching)), ("among everyone's", matching)):
        pages[name], cursor = [], None
        while True:
            shown = db.session.scalars(trail.query(actor_ids=actor_ids, after=cursor,
                                                   limit=4)).all()
            pages[name].append(shown)
            if len(shown) < 4:
                break
            cursor = trail.cursor_of(shown[-1])
    assert pages["one by one"] == pages["among everyone's"]
    assert sum(pages["one by one"], []) == lines_of([pat.id for pat in two_actors_lines])

"""The audit trail: one row per action, in the action's own transaction, never changed."""
import html
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from bankapp import audit, ledger
from bankapp.backoffice.admin import services as admin_services
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.models import AuditEvent
from bankapp.backoffice.teller import services as teller_services
from support.queries import counted_statements
from support.backoffice import (  # noqa: F401  (fixtures)
    account,
    admin,
    admin_client,
    audit_rows,
    stocked_till,
    teller,
)

D = Decimal


@pytest.fixture
def world(customer, account, make_user, funded_account, teller, admin, stocked_till):
    """Everyone and everything an audited action may need."""
    return {
        "customer": customer, "account": account, "teller": teller, "admin": admin,
        "till": stocked_till, "other": funded_account(make_user(), "50.00"),
        "newcomer": make_user(email="new@example.com", verified=False),
    }


def _reversed(w):
    entry = ledger.deposit(w["account"], D("10.00"), "", w["customer"]).entry
    ledger.reverse_entry(entry, "Error", w["admin"])


def _held(w):
    return ledger.request_posting("deposit", w["account"], D("20000.00"), "", w["teller"]).pending


def _unfrozen(w):
    ledger.freeze_account(w["account"], "Check", w["teller"])
    ledger.unfreeze_account(w["account"], "Cleared", w["teller"])


def _reactivated(w):
    admin_services.deactivate(w["customer"], w["admin"])
    admin_services.reactivate(w["customer"], w["admin"])


ACTIONS = [
    (Action.DEPOSIT, "customer", "account",
     lambda w: ledger.deposit(w["account"], D("10.00"), "", w["customer"])),
    (Action.WITHDRAWAL, "customer", "account",
     lambda w: ledger.withdraw(w["account"], D("10.00"), "", w["customer"])),
    (Action.TRANSFER, "customer", "account",
     lambda w: ledger.transfer(w["account"], w["other"].account_number, D("10.00"), "",
                               w["customer"])),
    (Action.DEPOSIT, "teller", "account",
     lambda w: ledger.teller_posting("deposit", w["account"], D("10.00"), "", w["teller"])),
    (Action.WITHDRAWAL, "teller", "account",
     lambda w: ledger.teller_posting("withdrawal", w["account"], D("10.00"), "", w["teller"])),
    (Action.REVERSAL, "admin", "journal_entry", _reversed),
    (Action.TELLER_REQUEST, "teller", "pending_posting", _held),
    (Action.TELLER_APPROVE, "admin", "pending_posting",
     lambda w: ledger.approve_posting(_held(w), w["admin"])),
    (Action.TELLER_REJECT, "admin", "pending_posting",
     lambda w: ledger.reject_posting(_held(w), w["admin"], "No")),
    (Action.VERIFY_CUSTOMER, "teller", "user",
     lambda w: teller_services.verify_customer(w["newcomer"], w["teller"])),
    (Action.FREEZE, "teller", "account",
     lambda w: ledger.freeze_account(w["account"], "Fraud", w["teller"])),
    (Action.UNFREEZE, "teller", "account", _unfrozen),
    (Action.ROLE_CHANGE, "admin", "user",
     lambda w: admin_services.change_role(w["customer"], "teller", w["admin"])),
    (Action.DEACTIVATE, "admin", "user",
     lambda w: admin_services.deactivate(w["customer"], w["admin"])),
    (Action.REACTIVATE, "admin", "user", _reactivated),
    (Action.TILL_ALLOCATE, "admin", "till",
     lambda w: ledger.allocate_cash(w["till"], D("5.00"), w["admin"])),
    (Action.TILL_SETTLE, "admin", "till",
     lambda w: ledger.settle_cash(w["till"], D("5.00"), w["admin"])),
    (Action.TILL_CLOSE_SHIFT, "teller", "till",
     lambda w: ledger.close_shift(w["till"], D("999.00"), w["teller"])),
]


@pytest.mark.parametrize("action, actor, target_type, perform", ACTIONS,
                         ids=[f"{a}-{who}" for a, who, _, _ in ACTIONS])
def test_every_action_writes_exactly_one_audit_row(world, action, actor, target_type, perform):
    before = len(audit_rows(action))
    perform(world)
    rows = audit_rows(action)
    assert len(rows) == before + 1
    assert rows[-1].actor_id == world[actor].id and rows[-1].target_type == target_type
    assert rows[-1].target_id


@pytest.mark.parametrize("action, actor, target_type, perform", ACTIONS,
                         ids=[f"{a}-{who}" for a, who, _, _ in ACTIONS])
def test_every_target_type_written_is_listed_for_the_audit_filter(world, action, actor,
                                                                  target_type, perform):
    """TargetType is a fixed list: what the code writes must not drift from it."""
    perform(world)
    written = set(db.session.scalars(sa.select(AuditEvent.target_type).distinct())) - {None}
    assert written <= set(TargetType.all())


def _self_approval(w):
    ledger.approve_posting(_held(w), w["teller"])


REFUSALS = [
    (Action.WITHDRAWAL, lambda w: ledger.withdraw(w["account"], D("500.01"), "", w["customer"])),
    (Action.WITHDRAWAL, lambda w: ledger.teller_posting("withdrawal", w["account"], D("500.00"),
                                                        "", w["other"].owner)),
    (Action.DEPOSIT, lambda w: (ledger.freeze_account(w["account"], "x", w["teller"]),
                                ledger.deposit(w["account"], D("1.00"), "", w["customer"]))),
    (Action.TELLER_APPROVE, _self_approval),
    (Action.REVERSAL, lambda w: ledger.reverse_entry(
        ledger.withdraw(w["account"], D("1.00"), "", w["customer"]).entry, "", w["admin"])),
    (Action.FREEZE, lambda w: ledger.freeze_account(w["account"], "  ", w["teller"])),
    (Action.TILL_SETTLE, lambda w: ledger.settle_cash(w["till"], D("1000.01"), w["admin"])),
    (Action.ROLE_CHANGE, lambda w: admin_services.change_role(w["admin"], "teller", w["admin"])),
    (Action.DEACTIVATE, lambda w: admin_services.deactivate(w["admin"], w["admin"])),
    (Action.VERIFY_CUSTOMER, lambda w: teller_services.verify_customer(w["customer"],
                                                                       w["teller"])),
]


@pytest.mark.parametrize("action, attempt", REFUSALS, ids=[a for a, _ in REFUSALS])
def test_a_refused_action_writes_no_success_row(world, action, attempt):
    before = len(audit_rows(action))
    try:
        attempt(world)
    except (ledger.LedgerError, admin_services.AdminError):
        db.session.rollback()
    assert len(audit_rows(action)) == before


def test_a_replayed_posting_writes_no_second_row(customer, account):
    ledger.deposit(account, D("5.00"), "", customer, idempotency_key="same")
    ledger.deposit(account, D("5.00"), "", customer, idempotency_key="same")
    assert len(audit_rows(Action.DEPOSIT)) == 2  # the opening deposit and this one


def test_a_posting_row_names_its_entry_and_amount_exactly(customer, account):
    posting = ledger.deposit(account, D("12.34"), "", customer)
    row = audit_rows(Action.DEPOSIT)[-1]
    assert row.details["reference"] == posting.reference
    assert row.details["amount"] == "12.34"  # an exact string, never a float
    assert row.target_id == account.account_number


def test_record_leaves_the_commit_to_the_action(customer):
    audit.record(Action.LOGIN_FAILURE, actor=None, details={"email": "x@example.com"})
    db.session.rollback()
    assert audit_rows(Action.LOGIN_FAILURE) == []
    audit.record(Action.LOGIN_FAILURE, actor=None, details={"email": "x@example.com"})
    db.session.commit()
    [row] = audit_rows(Action.LOGIN_FAILURE)
    assert row.actor_id is None and row.created_at.tzinfo is not None


def test_record_keeps_the_requests_ip_address(app, customer):
    with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        audit.record(Action.LOGOUT, actor=customer)
        db.session.commit()
    assert audit_rows(Action.LOGOUT)[0].ip_address == "203.0.113.9"


def test_the_action_names_cover_the_issue():
    expected = {
        "auth.signup", "auth.login.success", "auth.login.failure", "auth.verify_email",
        "auth.password_reset.request", "auth.password_reset.complete", "auth.password_change",
        "auth.password_change.failure", "auth.logout", "auth.reauth.failure", "auth.session.end",
        "auth.session.end_others",
        "mfa.enrol", "mfa.remove", "mfa.reset", "mfa.reset.request", "mfa.reset.reject",
        "mfa.failure", "mfa.locked",
        "mfa.recovery_code.used", "mfa.recovery_codes.renewed",
        "step_up.success", "step_up.failure",
        "passkey.add", "passkey.remove", "passkey.failure",
        "profile.update", "email_change.request", "email_change.confirm",
        "email_change.cancel", "email_change.failure",
        "ledger.deposit", "ledger.withdrawal", "ledger.transfer", "ledger.reversal",
        "teller.request", "teller.approve", "teller.reject", "teller.verify_customer",
        "account.freeze", "account.unfreeze", "admin.role_change", "admin.deactivate",
        "admin.reactivate", "till.allocate", "till.settle", "till.close_shift", "mail.retry",
        "payee.lookup", "payee.add", "payee.rename", "payee.remove",
        "scheduled.create", "scheduled.pause", "scheduled.resume", "scheduled.cancel",
        "scheduled.run", "scheduled.occurrence.posted", "scheduled.occurrence.failed",
        "alerts.settings",
        "ledger.interest", "interest.rate_set", "hold.place", "hold.release", "limits.change",
        "auth.api_token.success", "auth.api_token.failure",
        "admin.end_sessions", "admin.end_all_sessions",
        "security.access_refused", "security.object_refused", "security.csrf_failure",
        "security.rate_limited", "security.api_auth_refused",
        "loan.product.create", "loan.apply", "loan.approve", "loan.reject", "loan.disburse",
        "loan.repay", "loan.collect", "loan.late_fee", "loan.paid_off", "loan.write_off",
        "loan.run"}
    assert set(Action.all()) == expected


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET action = 'tampered'",
    "DELETE FROM audit_events",
])
def test_the_database_refuses_to_change_or_delete_audit_rows(customer, statement):
    audit.record(Action.LOGOUT, actor=customer)
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text(statement))
    db.session.rollback()
    assert [row.action for row in audit_rows()] == [Action.LOGOUT]


def test_no_code_path_updates_or_deletes_an_audit_row():
    package = Path(audit.__file__).parent
    forbidden = re.compile(r"(update|delete)\(\s*AuditEvent|session\.delete\(|"
                           r"(UPDATE|DELETE FROM)\s+audit_events", re.IGNORECASE)
    offenders = [str(path) for path in package.rglob("*.py")
                 if forbidden.search(path.read_text())]
    assert offenders == []


# ---------------------------------------------------------------- the admin's audit view


@pytest.fixture
def trail(customer, teller, admin, account):
    """Three events by three actors, one of them two days old."""
    audit.record(Action.FREEZE, actor=teller, target_type="account",
                 target_id=account.account_number, details={"reason": "Fraud"})
    audit.record(Action.ROLE_CHANGE, actor=admin, target_type="user", target_id=customer.id)
    old = audit.record(Action.LOGOUT, actor=customer, target_type="user", target_id=customer.id)
    old.created_at = datetime.now(timezone.utc) - timedelta(days=2)
    db.session.commit()


def shown_actions(response) -> list[str]:
    return re.findall(r"<code>([a-z_.]+)</code>", response.get_data(as_text=True))


@pytest.mark.parametrize("query, expected", [
    ("", {Action.FREEZE, Action.ROLE_CHANGE, Action.LOGOUT, Action.DEPOSIT}),
    ("?actor=TELLER@", {Action.FREEZE}),
    ("?action=admin.role_change", {Action.ROLE_CHANGE}),
    ("?target_type=user", {Action.ROLE_CHANGE, Action.LOGOUT}),
    ("?target_type=user&target_id={customer_id}", {Action.ROLE_CHANGE, Action.LOGOUT}),
    ("?target_type=account", {Action.FREEZE, Action.DEPOSIT}),
    ("?date_from={today}", {Action.FREEZE, Action.ROLE_CHANGE, Action.DEPOSIT}),
    ("?date_to={two_days_ago}", {Action.LOGOUT}),
])
def test_the_audit_trail_filters(admin_client, trail, customer, query, expected):
    today = datetime.now(timezone.utc).date()
    url = "/admin/audit/" + query.format(today=today.isoformat(), customer_id=customer.id,
                                         two_days_ago=(today - timedelta(days=2)).isoformat())
    response = admin_client.get(url)
    assert response.status_code == 200
    assert set(shown_actions(response)) == expected


def test_the_audit_trail_shows_an_invalid_filter_inline(admin_client, trail):
    response = admin_client.get("/admin/audit/?date_from=2026-02-31&action=nope")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Not a valid date value" in page and "Not a valid choice" in page


def test_the_audit_filter_lists_every_target_type_before_any_is_written(admin_client):
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert ("Known: account, interest_rate, journal_entry, loan, loan_product, mail, payee, "
            "pending_posting, "
            "scheduled_order, till, user") in page


def test_the_audit_page_does_not_scan_the_trail_for_target_types(admin_client, trail):
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert admin_client.get("/admin/audit/").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert statements and not [s for s in statements if "DISTINCT" in s.upper()]


def older_link(page: str) -> str:
    """The href of a page's "Older →" link."""
    return html.unescape(re.search(r'<a href="([^"]*)">Older →</a>', page).group(1))


def test_the_audit_trail_is_paged_newest_first_by_older_links(admin_client, admin):
    for number in range(30):
        audit.record(Action.LOGOUT, actor=admin, target_type="user", target_id=number)
    db.session.commit()
    first = admin_client.get("/admin/audit/?action=auth.logout").get_data(as_text=True)
    assert "user 29</td>" in first and "user 5</td>" in first and "user 4</td>" not in first
    assert "action=auth.logout" in older_link(first)  # the link keeps the filter
    second = admin_client.get(older_link(first)).get_data(as_text=True)
    assert [f"user {n}</td>" in second for n in (5, 4, 0)] == [False, True, True]
    assert "Older →" not in second and "← Newest" in second


def test_the_audit_trail_pages_through_lines_written_in_the_same_instant(
        admin_client, admin, monkeypatch):
    # Ties on created_at are broken by the line id: no line is skipped or shown twice.
    moment = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    for number in range(60):
        db.session.add(AuditEvent(action=Action.LOGOUT, actor_id=admin.id, target_type="user",
                                  target_id=str(number), created_at=moment))
    db.session.commit()
    url, seen = "/admin/audit/?action=auth.logout", []
    while url:
        page = admin_client.get(url).get_data(as_text=True)
        seen += [int(n) for n in re.findall(r"user (\d+)</td>", page)]
        url = older_link(page) if "Older →" in page else None
    assert seen == list(range(59, -1, -1))


def test_an_unknown_older_line_shows_the_newest_page(admin_client, admin):
    audit.record(Action.LOGOUT, actor=admin, target_type="user", target_id=7)
    db.session.commit()
    page = admin_client.get("/admin/audit/?older=999999").get_data(as_text=True)
    assert "user 7</td>" in page
    assert admin_client.get("/admin/audit/?older=abc").status_code == 200


def test_the_audit_page_counts_no_lines(admin_client, admin):
    audit.record(Action.LOGOUT, actor=admin, target_type="user", target_id=7)
    db.session.commit()
    with counted_statements() as seen:
        assert admin_client.get("/admin/audit/").status_code == 200
    trail = [s.lower() for s in seen if "audit_events" in s]
    assert trail and not [s for s in trail if "count(" in s]

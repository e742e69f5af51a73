"""Every page of every role, on a 360 px phone and a 1280 px desktop, in light and dark.

For each page and each of the four looks: the page does not scroll sideways, every amount,
balance and primary button is in view, and axe-core finds no serious or critical violation
(contrast included, so the dark scheme is checked too). A screenshot of each look goes to
artifacts/e2e/layout/ (phone-light, phone-dark, desktop-light, desktop-dark).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from e2e_support import (ARTIFACTS, BLOCKING_IMPACTS, DESKTOP, PHONE, BrowserWatch,
                         axe_violations,
                         describe_violations, enrol_authenticator, layout_problems, log_in,
                         open_context, submit_form)

pytestmark = pytest.mark.e2e

LOOKS = [("phone", PHONE, "light"), ("phone", PHONE, "dark"),
         ("desktop", DESKTOP, "light"), ("desktop", DESKTOP, "dark")]

CUSTOMER = "layla.layout@example.com"
TELLER = "tariq.layout@example.com"
ADMIN = "ada.layout@example.com"
PAYEE = "sam.payee@example.com"
LONG_DESCRIPTION = "Rent for the flat on Moi Avenue, second floor, October and November"


@dataclass
class Walk:
    """Numbers the page paths need: made once, the way the other walks make their data."""
    ids: dict[str, object] = field(default_factory=dict)
    pages: dict[str, object] = field(default_factory=dict)  # role → logged-in page


@pytest.fixture(scope="module")
def walk(browser, live_server):
    bank = live_server.bank
    bank.create_user(CUSTOMER, first_name="Layla", last_name="Wanjiru-Kamau")
    bank.create_user(TELLER, role="teller", first_name="Tariq", last_name="Teller")
    bank.create_user(ADMIN, role="admin", first_name="Ada", last_name="Admin")
    bank.create_user(PAYEE, first_name="Samuel", last_name="Otieno-Payee")
    checking = bank.open_account(CUSTOMER, "checking", "987654.32")
    savings = bank.open_account(CUSTOMER, "savings", "1250.00")
    payee_account = bank.open_account(PAYEE, "checking", "10.00")
    ids = {"checking": checking, "savings": savings, **_movements(bank, checking, savings),
           **_payments_and_holds(bank, checking, payee_account)}
    today = datetime.now(timezone.utc).date().isoformat()
    ids["period"] = f"start={today[:8]}01&end={today}"
    state = Walk(ids=ids)
    watches = []
    for role, email in (("customer", CUSTOMER), ("teller", TELLER), ("admin", ADMIN)):
        watch, page = open_context(browser, live_server)
        watches.append(watch)
        log_in(page, email)
        if role != "customer":
            enrol_authenticator(page)  # staff must have a second factor
        state.pages[role] = page
    watch, state.pages["visitor"] = open_context(browser, live_server)
    watches.append(watch)
    yield state
    for watch in watches:
        watch.close()


def _movements(bank, checking: str, savings: str) -> dict:
    """A transfer and a withdrawal with a long description, so the history has every kind."""
    from decimal import Decimal

    from bankapp import ledger
    from bankapp.extensions import db
    from bankapp.models import Account, User

    with bank.app().app_context():
        owner = db.session.scalar(db.select(User).where(User.email == CUSTOMER))
        source = db.session.scalar(db.select(Account).where(Account.account_number == checking))
        posting = ledger.transfer(source, savings, Decimal("123456.78"), LONG_DESCRIPTION, owner)
        ledger.withdraw(source, Decimal("0.01"), "", owner)
        db.session.commit()
        staff = {email: db.session.scalar(db.select(User.id).where(User.email == email))
                 for email in (CUSTOMER, TELLER)}
        return {"reference": posting.entry.reference, "customer_id": staff[CUSTOMER],
                "teller_id": staff[TELLER]}


def _payments_and_holds(bank, checking: str, payee_account: str) -> dict:
    """A saved payee, a weekly order to it with one payment made, a hold, an interest rate
    and a queued email: rows for the payees, scheduled, holds, interest and mail pages."""
    from datetime import timedelta
    from decimal import Decimal

    from bankapp import ledger
    from bankapp.notifications.outbox import queue_email
    from bankapp.extensions import db
    from bankapp.models import Account, Frequency, Payee, User, now_utc

    with bank.app().app_context():
        def user(email):
            return db.session.scalar(db.select(User).where(User.email == email))

        def account(number):
            return db.session.scalar(db.select(Account).where(Account.account_number == number))

        owner, source, other = user(CUSTOMER), account(checking), account(payee_account)
        payee = Payee(user_id=owner.id, account_id=other.id, nickname="Rent for the flat")
        db.session.add(payee)
        first = ledger.bank_today() + timedelta(days=1)
        order = ledger.create_order(owner, source, other, Decimal("1250.00"),
                                    frequency=Frequency.WEEKLY, start_on=first,
                                    today=ledger.bank_today(),
                                    description=LONG_DESCRIPTION)
        db.session.commit()
        ledger.run_due(first)
        ledger.place_hold(source, Decimal("2500.00"), "Cheque clearing",
                          now_utc() + timedelta(days=3), user(TELLER))
        ledger.set_rate("SAVINGS", Decimal("2.75"), ledger.bank_today(), user(ADMIN))
        queue_email("someone.with.a.long.address@example.com", "Your statement is ready", "Hi")
        db.session.commit()
        return {"payee_id": payee.id, "order_id": order.id}


def _transfer_confirmation(page, ids) -> None:
    page.goto(f"/accounts/transfer/?from={ids['checking']}")
    page.fill("#to_account", ids["savings"])
    page.fill("#amount", "100,000.00")
    page.fill("#description", LONG_DESCRIPTION)
    submit_form(page)
    page.wait_for_selector("h1:text('Confirm the transfer')")


def _refused_withdrawal(page, ids) -> None:
    page.goto(f"/accounts/{ids['savings']}/withdraw/")
    page.fill("#amount", "99999999.99")
    submit_form(page)
    page.wait_for_selector("[aria-invalid=true], .form-errors")


def _failed_login(page, ids) -> None:
    page.goto("/accounts/login/")
    page.fill("#email", "nobody@example.com")
    page.fill("#password", "wrong password")
    submit_form(page)
    page.wait_for_selector(".form-errors, [role=alert]")


# (role, name, path or action). Paths are formatted with the walk's ids.
PAGES = [
    ("visitor", "login", "/accounts/login/"),
    ("visitor", "login-error", _failed_login),
    ("visitor", "signup", "/accounts/signup/"),
    ("visitor", "password-reset", "/accounts/password_reset/"),
    ("visitor", "password-reset-sent", "/accounts/password_reset/done/"),
    ("visitor", "password-reset-invalid", "/accounts/reset/not-a-token/"),
    ("visitor", "password-reset-complete", "/accounts/reset/done/"),
    ("visitor", "verify-invalid", "/accounts/verify/not-a-token/"),
    ("visitor", "verify-resend", "/accounts/verify/resend/"),
    ("customer", "statement-verify", "/reports/verify/"),
    ("visitor", "api-docs", "/api/docs"),
    ("customer", "dashboard", "/dashboard/"),
    ("customer", "account-open", "/accounts/open/"),
    ("customer", "account", "/accounts/{checking}/"),
    ("customer", "deposit", "/accounts/{checking}/deposit/"),
    ("customer", "withdraw", "/accounts/{checking}/withdraw/"),
    ("customer", "withdraw-refused", _refused_withdrawal),
    ("customer", "transfer", "/accounts/transfer/"),
    ("customer", "transfer-confirm", _transfer_confirmation),
    ("customer", "reports", "/reports/"),
    ("customer", "statement", "/reports/statement/{checking}/?{period}"),
    ("customer", "summary", "/reports/summary/"),
    ("customer", "profile", "/accounts/profile/"),
    ("customer", "email-change", "/accounts/profile/email/"),
    ("customer", "password-change", "/accounts/password/"),
    ("customer", "security", "/accounts/security/"),
    ("customer", "reauthenticate", "/accounts/reauthenticate/"),
    ("customer", "not-found", "/accounts/NOPE-404/"),
    ("customer", "payees", "/accounts/payees/"),
    ("customer", "payee-rename", "/accounts/payees/{payee_id}/rename/"),
    ("customer", "payee-remove", "/accounts/payees/{payee_id}/remove/"),
    ("customer", "scheduled", "/accounts/scheduled/"),
    ("customer", "scheduled-new", "/accounts/scheduled/new/"),
    ("customer", "scheduled-order", "/accounts/scheduled/{order_id}/"),
    ("customer", "notifications", "/accounts/notifications/"),
    ("customer", "limits", "/accounts/limits/"),
    ("teller", "desk", "/teller/"),
    ("teller", "customers", "/teller/customers/?q=layout"),
    ("teller", "customer", "/teller/customers/{customer_id}/"),
    ("teller", "counter-deposit", "/teller/accounts/{checking}/deposit/"),
    ("teller", "counter-withdrawal", "/teller/accounts/{checking}/withdraw/"),
    ("teller", "entry", "/teller/entries/{reference}/"),
    ("teller", "freeze", "/teller/accounts/{checking}/freeze/"),
    ("teller", "approvals", "/teller/approvals/"),
    ("teller", "close-shift", "/teller/till/close/"),
    ("teller", "holds", "/teller/accounts/{checking}/holds/"),
    ("teller", "bank-report", "/reports/bank/"),
    ("teller", "statement", "/reports/statement/{checking}/?{period}"),
    ("admin", "users", "/admin/users/"),
    ("admin", "user", "/admin/users/{customer_id}/"),
    ("admin", "audit", "/admin/audit/"),
    ("admin", "tills", "/teller/tills/"),
    ("admin", "till-allocate", "/teller/tills/{teller_id}/allocate/"),
    ("admin", "till-settle", "/teller/tills/{teller_id}/settle/"),
    ("admin", "reports", "/reports/"),
    ("admin", "interest", "/admin/interest/"),
    ("admin", "mail", "/admin/mail/"),
]


@pytest.mark.parametrize("role, name, target", PAGES,
                         ids=[f"{role}-{name}" for role, name, _ in PAGES])
def test_the_page_fits_a_phone_and_passes_axe_in_both_schemes(walk, role, name, target):
    page = walk.pages[role]
    failures = []
    for size, viewport, scheme in LOOKS:
        page.set_viewport_size(viewport)
        page.emulate_media(color_scheme=scheme)
        if callable(target):
            target(page, walk.ids)
        else:
            answer = page.goto(target.format(**walk.ids))
            if answer.status >= 400:  # an error page is a page too: only its status is expected
                BrowserWatch.of(page).expect_error_status(page.url)
        assert not re.search(r"/accounts/login/\?next=", page.url), f"{role} was logged out"
        look = f"{size} {scheme}"
        failures += [f"{look}: {problem}" for problem in layout_problems(page)]
        blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
        if blocking:
            failures.append(f"{look}: axe-core\n{describe_violations(blocking)}")
        folder = ARTIFACTS / "layout" / f"{size}-{scheme}"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=folder / f"{role}-{name}.png", full_page=True)
    assert not failures, f"{page.url}:\n" + "\n".join(failures)

"""A savings account earns a month's interest: the operator's `flask post-interest` pays it
once, and the customer's statement shows it as its own kind of entry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import log_in

pytestmark = pytest.mark.e2e

EMAIL = "saver.sam@example.com"


def test_last_months_interest_is_posted_once_and_shown_on_the_statement(new_page, live_server,
                                                                        snap):
    from bankapp import ledger
    from bankapp.extensions import db
    from bankapp.models import Account, AccountType, User

    bank = live_server.bank
    bank.create_user(EMAIL, first_name="Sam", last_name="Saver")
    today = datetime.now(timezone.utc).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    days = (today.replace(day=1) - last_month).days
    opened = datetime(last_month.year, last_month.month, 1, 0, 0, 1, tzinfo=timezone.utc)
    # History the CLI cannot write: an account opened and funded on the 1st of last month,
    # and 3.65 % a year set for savings that day (1.00 a day on 10,000.00, actual/365).
    with bank.app().app_context():
        owner = db.session.scalar(db.select(User).where(User.email == EMAIL))
        account = ledger.open_account(owner, AccountType.SAVINGS)
        db.session.execute(db.update(Account).where(Account.id == account.id)
                           .values(created_at=opened))
        db.session.commit()
        ledger.deposit(account, Decimal("10000.00"), "Opening deposit", owner, posted_at=opened)
        ledger.set_rate(AccountType.SAVINGS, Decimal("3.65"), last_month, None,
                        today=last_month)
        number = account.account_number

    month = f"{last_month:%Y-%m}"
    first = live_server.flask("post-interest", "--month", month)
    assert f"1 account(s) credited {days:,.2f}" in first.stdout, first.stdout
    again = live_server.flask("post-interest", "--month", month)
    assert "1 already posted" in again.stdout, again.stdout
    assert bank.balance(number) == Decimal("10000.00") + days

    page = new_page()
    log_in(page, EMAIL)
    page.goto(f"/reports/statement/{number}/?start={today:%Y-%m}-01&end={today.isoformat()}")
    expect(page.locator("#total-interest")).to_have_text(f"${days:,.2f}")
    expect(page.locator("main")).to_contain_text("Interest")
    expect(page.locator("#closing-balance")).to_have_text(f"${10000 + days:,.2f}")
    snap(page, "70-statement-interest")

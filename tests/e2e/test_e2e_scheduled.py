"""A customer saves a payee (after checking the masked holder), schedules a monthly transfer
to it, the operator's `flask run-scheduled --as-of` three months on posts three payments,
and the order page and the statement show them."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import log_in

pytestmark = pytest.mark.e2e

EMAIL = "standing.sara@example.com"
PAYEE_EMAIL = "landlord.lee@example.com"


def monthly_dates(first: date, day: int, count: int) -> list[date]:
    """The order's due dates as the bank computes them (the 29th–31st: the month's last)."""
    from bankapp.ledger import Schedule

    schedule = Schedule("monthly", first, day_of_month=day)
    return schedule.upcoming(schedule.first(), 0, count)


def test_a_monthly_payment_to_a_new_payee_runs_three_times(new_page, live_server, snap):
    bank = live_server.bank
    bank.create_user(EMAIL, first_name="Sara", last_name="Standing")
    bank.create_user(PAYEE_EMAIL, first_name="Lee", last_name="Landlord")
    source = bank.open_account(EMAIL, "checking", "1000.00")
    landlord = bank.open_account(PAYEE_EMAIL, "savings")
    page = new_page()
    log_in(page, EMAIL)

    page.goto("/accounts/payees/")
    page.fill("#account_number", landlord)
    page.fill("#nickname", "Rent to Lee")
    page.get_by_role("button", name="Look it up").click()
    expect(page.locator("#payee-holder")).to_have_text("L** L*******")
    snap(page, "60-payee-confirm")
    page.get_by_role("button", name="Save payee").click()
    expect(page.locator(".flash-success")).to_contain_text("“Rent to Lee” is saved")

    first = datetime.now(timezone.utc).date() + timedelta(days=1)
    page.goto("/accounts/scheduled/new/")
    page.check(f"input[name=from_account][value='{source}']")
    page.check(f"input[name=to_account][value='{landlord}']")
    page.fill("#amount", "40.00")
    page.fill("#description", "Monthly rent")
    page.select_option("#frequency", "monthly")
    page.fill("#start_on", first.isoformat())
    snap(page, "61-schedule-form")
    page.get_by_role("button", name="Schedule").click()
    expect(page).to_have_url(re.compile(r"/accounts/scheduled/\d+/$"))
    expect(page.locator("#next-due")).to_contain_text(first.isoformat())
    order_page = page.url

    due = monthly_dates(first, first.day, 3)
    # The run posts every customer's due payments (other walks share this server's
    # database); this order's three are checked on its page below.
    result = live_server.flask("run-scheduled", "--as-of", due[-1].isoformat())
    assert "Scheduled payments due by" in result.stdout, result.stdout

    page.goto(order_page)
    expect(page.locator("tr.occurrence-posted")).to_have_count(3)
    for day in due:
        expect(page.locator("main")).to_contain_text(day.isoformat())
    snap(page, "62-order-occurrences")
    assert bank.balance(landlord) == Decimal("120.00")
    assert bank.balance(source) == Decimal("880.00")

    today = datetime.now(timezone.utc).date().isoformat()
    page.goto(f"/reports/statement/{source}/?start={today[:8]}01&end={today}")
    body = page.locator("main")
    for day in due:
        expect(body).to_contain_text(f"Monthly rent (due {day.isoformat()})")
    expect(body).to_contain_text("880.00")
    snap(page, "63-statement-scheduled")

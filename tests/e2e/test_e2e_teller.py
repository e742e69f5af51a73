"""A teller at the counter, in a real browser: log in, find the customer, post a cash deposit."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import enrol_authenticator, log_in, submit_form

pytestmark = pytest.mark.e2e

TELLER = "tom.teller@example.com"
CUSTOMER = "carol.client@example.com"


def test_a_teller_posts_a_counter_deposit_into_a_customer_account(new_page, live_server, snap):
    bank = live_server.bank
    bank.create_user(TELLER, role="teller", first_name="Tom", last_name="Teller")
    bank.create_user(CUSTOMER, first_name="Carol", last_name="Client")
    number = bank.open_account(CUSTOMER, "savings")
    page = new_page()
    log_in(page, TELLER)
    # Staff must have a second factor: the first login goes to the set-up page.
    enrol_authenticator(page)
    snap(page, "19-teller-recovery-codes")
    page.goto("/teller/")
    expect(page.locator("header")).to_contain_text("Teller")
    snap(page, "20-teller-desk")

    page.get_by_label("Find a customer").fill(number)
    page.get_by_label("Find a customer").press("Enter")
    page.get_by_role("link", name="Carol Client").click()
    page.locator("tr", has_text=number).get_by_role("link", name="Deposit").click()
    expect(page).to_have_url(re.compile(rf"/teller/accounts/{number}/deposit/$"))
    page.fill("#amount", "400.00")
    page.fill("#description", "Cash at the counter")
    snap(page, "21-teller-deposit-form")
    submit_form(page)
    expect(page).not_to_have_url(re.compile(r"/deposit/$"))
    expect(page.locator(".flash-success")).to_be_visible()
    expect(page.locator("main")).to_contain_text("400.00")
    snap(page, "22-teller-deposit-posted")
    assert bank.balance(number) == Decimal("400.00")

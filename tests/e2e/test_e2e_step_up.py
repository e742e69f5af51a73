"""Step-up in the real browser: after setting up an authenticator app, a customer's first
payment to a new payee asks for a code on its confirmation page, and posts with it."""
from __future__ import annotations

import re
import time
from decimal import Decimal

import pyotp
import pytest
from playwright.sync_api import expect

from e2e_support import enrol_authenticator, log_in

pytestmark = pytest.mark.e2e

EMAIL = "stepping.sam@example.com"
PAYEE_EMAIL = "new.payee.nia@example.com"


def test_a_first_payment_to_a_new_payee_is_approved_with_a_code(new_page, live_server, snap):
    bank = live_server.bank
    bank.create_user(EMAIL, first_name="Sam", last_name="Stepping")
    bank.create_user(PAYEE_EMAIL, first_name="Nia", last_name="Newman")
    source = bank.open_account(EMAIL, "checking", "500.00")
    payee = bank.open_account(PAYEE_EMAIL, "savings")
    page = new_page()
    log_in(page, EMAIL)
    page.goto("/accounts/2fa/totp/setup/")
    secret = enrol_authenticator(page)

    page.goto(f"/accounts/transfer/?from={source}")
    page.fill("#to_account", payee)
    page.fill("#amount", "75.00")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("h1")).to_have_text("Confirm the transfer")
    expect(page.locator("#step-up-reason")).to_contain_text(
        "this is your first payment to this account")
    expect(page.locator("#code")).to_be_visible()
    snap(page, "50-step-up-confirm")

    # The enrolment used the current 30-second step's code: the app's next one is fresh
    # (one step of clock drift is accepted).
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Send $75.00").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{source}/$"))
    expect(page.locator(".flash-success")).to_contain_text("$75.00 sent to ")
    assert bank.balance(payee) == Decimal("75.00")
    snap(page, "51-step-up-posted")

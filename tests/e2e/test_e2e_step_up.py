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


def test_back_after_a_wrong_code_never_shows_a_stale_confirmation(new_page, live_server, snap):
    """A wrong code is answered by a redirect to the confirmation page (Post/Redirect/Get):
    every page in the tab's history is a GET, and once the transfer is sent, Back finds no
    confirmation page to send it again. The code box opens the numeric keypad, and switches
    to the full keyboard for a recovery code without leaving the page."""
    bank = live_server.bank
    bank.create_user("stale.stella@example.com", first_name="Stella", last_name="Stale")
    bank.create_user("payee.pat@example.com", first_name="Pat", last_name="Payee")
    source = bank.open_account("stale.stella@example.com", "checking", "500.00")
    payee = bank.open_account("payee.pat@example.com", "savings")
    page = new_page()
    log_in(page, "stale.stella@example.com")
    page.goto("/accounts/2fa/totp/setup/")
    secret = enrol_authenticator(page)

    page.goto(f"/accounts/transfer/?from={source}")
    page.fill("#to_account", payee)
    page.fill("#amount", "40.00")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/accounts/transfer/confirm/$"))
    code = page.locator("#code")
    expect(code).to_have_attribute("inputmode", "numeric")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    page.get_by_role("link", name="Use a recovery code instead").click()
    expect(code).to_have_attribute("inputmode", "text")
    expect(page).to_have_url(re.compile(r"/accounts/transfer/confirm/$"))  # in place
    snap(page, "52-step-up-recovery-keyboard")
    page.get_by_role("link", name="Use the 6-digit code from your app instead").click()
    expect(code).to_have_attribute("inputmode", "numeric")

    page.fill("#code", "000000")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.get_by_role("button", name="Send $40.00").click()
    assert refused.value.status == 303
    expect(page).to_have_url(re.compile(r"/accounts/transfer/confirm/$"))
    expect(page.locator("#code-error")).to_contain_text("That code is not right")
    snap(page, "53-step-up-wrong-code")
    page.reload()  # a GET: no "Confirm Form Resubmission", the refusal said once
    expect(page.locator("h1")).to_have_text("Confirm the transfer")
    expect(page.locator("#code-error")).to_have_count(0)

    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Send $40.00").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{source}/$"))
    page.go_back()
    # The confirmation page is gone: the transfer form, nothing to send again.
    expect(page).to_have_url(re.compile(r"/accounts/transfer/$"))
    expect(page.locator("h1")).to_have_text("Transfer money")
    snap(page, "54-step-up-back-after-sending")
    assert bank.balance(payee) == Decimal("40.00")

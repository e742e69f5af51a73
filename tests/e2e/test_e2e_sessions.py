"""In the real browser: a customer ends a session of another browser from the security page,
and signs in with an authenticator app, then with a recovery code."""
from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from e2e_support import PASSWORD, enrol_authenticator, log_in, open_own_page, submit_form

pytestmark = pytest.mark.e2e

SESSIONS_EMAIL = "two.browsers@example.com"
TOTP_EMAIL = "careful.otto@example.com"


def log_out(page) -> None:
    page.locator("header").get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))


def password_step(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/accounts/login/2fa/$"))


def test_a_customer_ends_the_session_of_another_browser(new_page, live_server, mail_sink, snap):
    live_server.bank.create_user(SESSIONS_EMAIL, first_name="Tess", last_name="Twice")
    laptop, phone = new_page(), new_page()
    log_in(laptop, SESSIONS_EMAIL)
    mail_sink.wait_for(SESSIONS_EMAIL, "New sign-in to your bankapp account")
    log_in(phone, SESSIONS_EMAIL)
    phone.goto("/dashboard/")
    expect(phone).to_have_url(re.compile(r"/dashboard/$"))

    open_own_page(laptop, "Security")
    sessions = laptop.locator("#active-sessions tr.user-session")
    expect(sessions).to_have_count(2)
    expect(laptop.locator(".this-browser")).to_have_count(1)
    expect(laptop.locator("#sign-ins tr.sign-in-success")).to_have_count(2)
    snap(laptop, "50-security-sessions")

    other = sessions.filter(has_not=laptop.locator(".this-browser"))
    other.get_by_role("button", name=re.compile("End")).click()
    expect(laptop.locator("main")).to_contain_text("That session has ended")
    expect(laptop.locator("#active-sessions tr.user-session")).to_have_count(1)

    phone.goto("/dashboard/")
    expect(phone).to_have_url(re.compile(r"/accounts/login/"))
    laptop.goto("/dashboard/")
    expect(laptop).to_have_url(re.compile(r"/dashboard/$"))


def test_a_customer_signs_in_with_an_authenticator_code_then_a_recovery_code(
        new_page, live_server, snap):
    live_server.bank.create_user(TOTP_EMAIL, first_name="Otto", last_name="Careful")
    page = new_page()
    log_in(page, TOTP_EMAIL)
    open_own_page(page, "Security")
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.locator("#totp-secret")).to_be_visible()
    snap(page, "51-totp-setup")
    secret = enrol_authenticator(page)
    codes = [code.strip() for code in page.locator(".recovery-code").all_inner_texts()]
    assert len(codes) == 10
    snap(page, "52-recovery-codes")
    log_out(page)

    # The code of the next 30-second step: the enrolment's own code is never accepted twice.
    password_step(page, TOTP_EMAIL)
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    snap(page, "53-login-2fa")
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    log_out(page)

    password_step(page, TOTP_EMAIL)
    page.fill("#code", codes[0])
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.locator("main")).to_contain_text("You used a recovery code; 9 are left")

"""A customer who forgot the password gets a link by email and chooses a new one."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_support import submit_form

pytestmark = pytest.mark.e2e

EMAIL = "forgetful.fay@example.com"
NEW_PASSWORD = "Violet-harbour-compass-77"


def test_a_customer_resets_a_forgotten_password_from_the_emailed_link_and_logs_in(
        new_page, live_server, mail_sink, snap):
    live_server.bank.create_user(EMAIL, first_name="Fay", last_name="Forgetful")
    page = new_page()
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/accounts/password_reset/$"))
    page.fill("#email", EMAIL)
    snap(page, "30-password-reset-request")
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/accounts/password_reset/done/$"))

    message = mail_sink.wait_for(EMAIL, "reset")
    page.goto(mail_sink.link_path(message, "/accounts/reset/"))
    page.fill("#new_password1", NEW_PASSWORD)
    page.fill("#new_password2", NEW_PASSWORD)
    snap(page, "31-password-reset-new-password")
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/accounts/reset/done/$"))
    snap(page, "32-password-reset-done")

    page.goto("/accounts/login/")
    page.fill("#email", EMAIL)
    page.fill("#password", NEW_PASSWORD)
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.locator("header .nav-account summary")).to_have_attribute("title", EMAIL)

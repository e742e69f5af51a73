"""A logged-in customer changes the password from the navigation and is told by email."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_support import PASSWORD, log_in, open_own_page, submit_form

pytestmark = pytest.mark.e2e

EMAIL = "careful.cam@example.com"
NEW_PASSWORD = "Copper-lantern-meadow-58"


def test_a_customer_changes_the_password_and_logs_in_with_the_new_one(
        new_page, live_server, mail_sink, snap):
    live_server.bank.create_user(EMAIL, first_name="Cam", last_name="Careful")
    page = new_page()
    log_in(page, EMAIL)
    open_own_page(page, "Change password")
    expect(page).to_have_url(re.compile(r"/accounts/password/$"))
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password1", NEW_PASSWORD)
    page.fill("#new_password2", NEW_PASSWORD)
    snap(page, "40-password-change")
    submit_form(page)
    expect(page.locator("main")).to_contain_text("Your password has been changed")
    mail_sink.wait_for(EMAIL, "password was changed")

    page.locator("header").get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/accounts/login/")
    page.fill("#email", EMAIL)
    page.fill("#password", NEW_PASSWORD)
    submit_form(page)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

"""In Chromium, at 360 px and 1280 px, in English and French: Back after a transfer lands on
a page (never "Confirm Form Resubmission"), and the staff's day fields are the browser's own
date pickers, a hold's last day shown as that day.

Screenshots go to artifacts/e2e/dates/<language>-<size>/ (kept by CI).
"""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from babel.dates import format_date
from playwright.sync_api import expect

from e2e_support import (ARTIFACTS, DESKTOP, PHONE, enrol_authenticator, layout_problems, log_in,
                         open_context)

pytestmark = pytest.mark.e2e

LOOKS = [("phone", PHONE), ("desktop", DESKTOP)]
LOCALES = {"en": "en-GB", "fr": "fr-FR"}


def _snap(page, language: str, size: str, name: str) -> None:
    folder = ARTIFACTS / "dates" / f"{language}-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", full_page=True)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_back_after_a_transfer_shows_a_page_and_sends_nothing_again(browser, live_server,
                                                                     language):
    bank = live_server.bank
    email, friend = f"back.{language}@example.com", f"back.friend.{language}@example.com"
    bank.create_user(email, first_name="Bea", last_name="Back")
    bank.create_user(friend, first_name="Fred", last_name="Friend")
    source = bank.open_account(email, "checking", "500.00")
    destination = bank.open_account(friend, "savings")
    watch, page = open_context(browser, live_server, locale=LOCALES[language])
    try:
        log_in(page, email)
        for size, viewport in LOOKS:
            page.set_viewport_size(viewport)
            page.goto("/accounts/transfer/")
            page.fill("#to_account", destination)
            page.fill("#amount", "10")
            page.locator("main form button[type=submit]").first.click()
            # The confirmation page is a GET of its own address.
            expect(page).to_have_url(re.compile(r"/accounts/transfer/confirm/$"))
            _snap(page, language, size, "transfer-confirm")
            page.reload()  # a reload asks nothing and sends nothing
            expect(page).to_have_url(re.compile(r"/accounts/transfer/confirm/$"))
            page.locator("main form button[type=submit]").first.click()
            expect(page).to_have_url(re.compile(rf"/accounts/{source}/$"))
            expect(page.locator(".flash-success")).to_be_visible()
            _snap(page, language, size, "transfer-sent")
            page.go_back()  # to the confirmation page's address: the transfer form again
            expect(page).to_have_url(re.compile(r"/accounts/transfer/$"))
            expect(page.locator("input[name=amount]")).to_have_value("")
            assert not layout_problems(page)
        assert bank.balance(source) == 480 and bank.balance(destination) == 20
    finally:
        watch.close()


@pytest.fixture(scope="module")
def staff(live_server):
    """A customer's account to put a hold on."""
    bank = live_server.bank
    bank.create_user("dates.customer@example.com", first_name="Dana", last_name="Dates")
    return bank.open_account("dates.customer@example.com", "savings", "300.00")


def _log_in_staff(live_server, page, email: str, role: str) -> None:
    live_server.bank.create_user(email, role=role)
    log_in(page, email)
    enrol_authenticator(page)  # staff must have a second factor


def _is_a_date_picker(page, selector: str) -> None:
    expect(page.locator(selector)).to_have_attribute("type", "date")
    expect(page.locator("main")).not_to_contain_text("YYYY-MM-DD")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_hold_takes_its_last_day_from_a_date_picker_and_shows_that_day(
        browser, live_server, staff, language):
    last_day = date.today() + timedelta(days=10)  # the bank's zone is UTC here
    shown = format_date(last_day, "medium", locale=language)  # "Dec 16, 2026", "16 déc. 2026"
    watch, page = open_context(browser, live_server, locale=LOCALES[language])
    try:
        _log_in_staff(live_server, page, f"dates.teller.{language}@example.com", "teller")
        for size, viewport in LOOKS:
            page.set_viewport_size(viewport)
            page.goto(f"/teller/accounts/{staff}/holds/")
            _is_a_date_picker(page, "#until")
            page.fill("#amount", "5")
            page.fill("#reason", f"Check {language} {size}")
            page.fill("#until", last_day.isoformat())
            page.locator("main form button[type=submit]").first.click()
            row = page.locator("tr", has_text=f"Check {language} {size}")
            expect(row.locator("time")).to_have_text(shown)
            assert not layout_problems(page)
            _snap(page, language, size, "teller-holds")
    finally:
        watch.close()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_rate_start_and_report_dates_are_date_pickers(browser, live_server, staff, language):
    watch, page = open_context(browser, live_server, locale=LOCALES[language])
    try:
        _log_in_staff(live_server, page, f"dates.admin.{language}@example.com", "admin")
        for size, viewport in LOOKS:
            page.set_viewport_size(viewport)
            page.goto("/admin/interest/")
            _is_a_date_picker(page, "#effective_from")
            _snap(page, language, size, "admin-interest")
            assert layout_problems(page) == []
    finally:
        watch.close()
    watch, page = open_context(browser, live_server, locale=LOCALES[language])
    try:
        log_in(page, "dates.customer@example.com")
        for size, viewport in LOOKS:
            page.set_viewport_size(viewport)
            page.goto("/reports/")
            _is_a_date_picker(page, "#start")
            assert not layout_problems(page)
            _snap(page, language, size, "reports")
            page.goto("/accounts/scheduled/new/")
            expect(page.locator("#start_on")).to_be_visible()
            expect(page.locator("#day_of_month")).to_have_count(0)
            assert not layout_problems(page)
            _snap(page, language, size, "scheduled-new")
            page.goto(f"/accounts/{staff}/")
            _snap(page, language, size, "account-with-hold")
    finally:
        watch.close()

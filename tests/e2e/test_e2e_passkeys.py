"""Passkeys in the real browser: Chromium's virtual authenticator (CDP WebAuthn domain) adds a
passkey from the security page, signs in with it from the login page (both factors), serves as
the second step after the password, and confirms its own removal.

WebAuthn refuses an IP address as relying party, so this browser opens the live server as
``http://localhost:<port>`` (the server itself listens on 127.0.0.1, which localhost reaches).
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_support import PASSWORD, log_in, open_context

pytestmark = pytest.mark.e2e

EMAIL = "passkey.pat@example.com"


@pytest.fixture
def localhost_page(browser, live_server):
    watch, page = open_context(browser, live_server,
                               base_url=live_server.url.replace("127.0.0.1", "localhost"))
    yield page
    watch.close()


def add_virtual_authenticator(page) -> tuple[object, str]:
    """A platform authenticator with resident keys and user verification (a phone's or laptop's)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    answer = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp, answer["authenticatorId"]


def log_out(page) -> None:
    page.locator("header").get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))


def test_a_customer_adds_a_passkey_and_signs_in_with_it(localhost_page, live_server, snap):
    live_server.bank.create_user(EMAIL, first_name="Pat", last_name="Passkey")
    page = localhost_page
    cdp, authenticator = add_virtual_authenticator(page)
    log_in(page, EMAIL)

    page.goto("/accounts/security/")
    page.fill("#passkey-name", "Chromium virtual key")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("main")).to_contain_text("is added: you can sign in with it")
    expect(page.locator(".passkey-name")).to_have_text(["Chromium virtual key"])
    [credential] = cdp.send("WebAuthn.getCredentials",
                            {"authenticatorId": authenticator})["credentials"]
    assert credential["isResidentCredential"]
    snap(page, "60-security-passkey-listed")

    # The login page: no email, no password; the passkey proves both factors.
    log_out(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    page.goto("/accounts/security/")
    expect(page.locator(".passkey-last-used")).not_to_have_text("Not yet")
    assert cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}
                    )["credentials"][0]["signCount"] >= 1

    # With a passkey, the password alone no longer logs in: the passkey is the second step.
    log_out(page)
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.locator("main form").first.locator("button[type=submit], input[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/2fa/$"))
    snap(page, "61-second-step-with-passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

    # The only second factor goes with a fresh assertion of the passkey (signed in just now:
    # no password asked again).
    page.goto("/accounts/security/")
    page.get_by_role("button", name="Remove the passkey").click()
    expect(page.locator("main")).to_contain_text("is removed")
    expect(page.locator(".passkey-name")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("You have no passkey yet.")


def test_a_cancelled_passkey_request_is_explained_on_the_page(localhost_page, live_server):
    page = localhost_page
    add_virtual_authenticator(page)
    # The authenticator holds no passkey for this site: the browser reports NotAllowedError.
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("cancelled or timed out")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))

"""The transfer walk once in French: a browser that asks for French gets French pages, types
an amount with a decimal comma, and reads the amounts the French way with the currency."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_support import log_in, open_context

pytestmark = pytest.mark.e2e

EMAIL = "francoise.virement@example.com"


def test_a_french_customer_transfers_between_her_accounts_in_french(browser, live_server, snap):
    bank = live_server.bank
    bank.create_user(EMAIL, first_name="Françoise", last_name="Virement")
    source = bank.open_account(EMAIL, "checking", "1500.00")
    target = bank.open_account(EMAIL, "savings")
    watch, page = open_context(browser, live_server, locale="fr-FR")
    try:
        log_in(page, EMAIL)
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator("h1")).to_have_text("Bienvenue, Françoise")
        expect(page.locator("main")).to_contain_text("1\u202f500,00\xa0$US")

        page.locator("header").get_by_role("link", name="Virement").click()
        expect(page.locator("h1")).to_have_text("Faire un virement")
        page.check(f"input[name=from_account][value='{source}']")
        page.fill("#to_account", target)
        page.fill("#amount", "1,234.50")  # the English way round: refused, with the reason
        page.get_by_role("button", name="Continuer").click()
        expect(page.locator("#amount-error")).to_contain_text("ambigu")
        page.fill("#amount", "1 234,50")
        page.fill("#description", "Épargne de décembre")
        page.get_by_role("button", name="Continuer").click()
        expect(page.locator("h1")).to_have_text("Confirmer le virement")
        snap(page, "fr-01-transfer-confirm")
        page.get_by_role("button", name=re.compile(r"^Envoyer 1\s?234,50\s\$US$")).click()

        expect(page.locator(".flash-success")).to_have_text(
            f"1\u202f234,50\xa0$US envoyés à Épargne {target}.")
        expect(page.locator("main")).to_contain_text("Épargne de décembre")
        expect(page.locator("p.balance")).to_have_text("265,50\xa0$US")
        snap(page, "fr-02-account-after-transfer")
    finally:
        watch.close()

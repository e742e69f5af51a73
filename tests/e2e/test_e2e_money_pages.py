"""The customer's money pages in Chromium, as a customer would choose them: at 360 px and
1280 px, in English and French, light and dark.

On each page and look: nothing scrolls sideways and every amount and button is in view, axe-core
finds no serious or critical violation, no drop-down cuts the text of any of its options, no
account number breaks across lines. Then what each page is for: the dashboard leads with the
total available and one "Send money" in view without scrolling; every transfer line names the
other party; the history search narrows the lines; the transfer form offers the customer's own
accounts and payees and refuses, before confirming, more than is available, saying how much.
Screenshots go to artifacts/e2e/money/<language>-<size>-<scheme>/ (kept by CI).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import expect

from e2e_support import (ARTIFACTS, BLOCKING_IMPACTS, DESKTOP, PHONE, axe_violations,
                         describe_violations, layout_problems, log_in, open_context)

pytestmark = pytest.mark.e2e

LANGUAGES = [("en", "en-GB"), ("fr", "fr-FR")]
LOOKS = [("phone", PHONE, "light"), ("phone", PHONE, "dark"),
         ("desktop", DESKTOP, "light"), ("desktop", DESKTOP, "dark")]

CUSTOMER = "mona.money@example.com"
FRIEND = "bob.friend@example.com"
STRANGER = "carol.stranger@example.com"
# As long as a nickname may be (40 characters): it must never be cut off.
LONG_NICKNAME = "Rent for the flat on Moi Avenue, 2nd fl."

# Every <select> on the page whose options do not all fit its box (the closed drop-down shows
# one option on one line: a longer text is cut). Measured with the select's own font, against
# its inner width less the arrow Chromium draws.
_CLIPPED_OPTIONS = """
() => {
  const canvas = document.createElement('canvas').getContext('2d');
  const problems = [];
  for (const select of document.querySelectorAll('main select')) {
    if (!select.checkVisibility()) continue;
    const style = getComputedStyle(select);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const inner = select.clientWidth - parseFloat(style.paddingLeft)
      - parseFloat(style.paddingRight) - 20;
    for (const option of select.options) {
      const width = canvas.measureText(option.text).width;
      if (width > inner + 1) {
        problems.push(`#${select.id} cuts "${option.text}" (${Math.round(width)}px in ` +
          `${Math.round(inner)}px)`);
      }
    }
  }
  return problems;
}
"""

# Every account number drawn on more than one line (an inline element broken at its hyphen).
_BROKEN_NUMBERS = """
() => [...document.querySelectorAll('main .account-number')]
  .filter((el) => el.checkVisibility() && el.getClientRects().length > 1)
  .map((el) => el.textContent.trim())
"""


@dataclass
class Money:
    """The customer's accounts and the pages logged in for each language."""
    checking: str = ""
    savings: str = ""
    friend: str = ""
    stranger: str = ""
    pages: dict[str, object] = field(default_factory=dict)


@pytest.fixture(scope="module")
def money(browser, live_server):
    """Mona: a checking account with $3,350.00 after paying her landlord Bob (a payee with a
    40-character nickname) and receiving money from Carol Otieno (not a payee); savings."""
    bank = live_server.bank
    bank.create_user(CUSTOMER, first_name="Mona", last_name="Mwangi")
    bank.create_user(FRIEND, first_name="Bob", last_name="Brown")
    bank.create_user(STRANGER, first_name="Carol", last_name="Otieno")
    state = Money(checking=bank.open_account(CUSTOMER, "checking", "3400.00"),
                  savings=bank.open_account(CUSTOMER, "savings", "120.00"),
                  friend=bank.open_account(FRIEND, "checking", "500.00"),
                  stranger=bank.open_account(STRANGER, "savings", "80.00"))
    _history(bank, state)
    watches = []
    for language, browser_locale in LANGUAGES:
        watch, page = open_context(browser, live_server, locale=browser_locale)
        watches.append(watch)
        log_in(page, CUSTOMER)
        state.pages[language] = page
    yield state
    for watch in watches:
        watch.close()


def _history(bank, state: Money) -> None:
    from decimal import Decimal

    from bankapp import ledger
    from bankapp.extensions import db
    from bankapp.models import Account, Payee, User

    with bank.app().app_context():
        def account(number):
            return db.session.scalar(db.select(Account).where(Account.account_number == number))

        mona = db.session.scalar(db.select(User).where(User.email == CUSTOMER))
        carol = db.session.scalar(db.select(User).where(User.email == STRANGER))
        db.session.add(Payee(user_id=mona.id, account_id=account(state.friend).id,
                             nickname=LONG_NICKNAME))
        db.session.commit()
        ledger.transfer(account(state.checking), account(state.friend), Decimal("100.00"),
                        "December", mona)
        ledger.transfer(account(state.stranger), account(state.checking), Decimal("50.00"),
                        "Concert tickets", carol)
        db.session.commit()


def _look_problems(page) -> list[str]:
    problems = layout_problems(page) + page.evaluate(_CLIPPED_OPTIONS)
    problems += [f"account number {n} is broken across lines"
                 for n in page.evaluate(_BROKEN_NUMBERS)]
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    if blocking:
        problems.append("axe-core\n" + describe_violations(blocking))
    return problems


def _in_every_look(page, language: str, name: str, show) -> None:
    """Show the page (``show(page)``) in each look, collect its problems, keep a screenshot."""
    failures = []
    for size, viewport, scheme in LOOKS:
        page.set_viewport_size(viewport)
        page.emulate_media(color_scheme=scheme)
        show(page)
        failures += [f"{language} {size} {scheme}: {p}" for p in _look_problems(page)]
        folder = ARTIFACTS / "money" / f"{language}-{size}-{scheme}"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=folder / f"{name}.png", full_page=True)
    assert not failures, "\n".join(failures)


WORDS = {
    "en": {"send": "Send money", "from_stranger": "From C**** O*****",
           "to_payee": f"To {LONG_NICKNAME}",
           "available": "Insufficient funds: $3,350.00 is available in this account.",
           "confirm": "Confirm the transfer", "search": "Search and filter"},
    "fr": {"send": "Envoyer de l’argent", "from_stranger": "De C**** O*****",
           "to_payee": f"À {LONG_NICKNAME}",
           "available": "Fonds insuffisants : 3\u202f350,00\xa0$US disponibles sur ce compte.",
           "confirm": "Confirmer le virement", "search": "Rechercher et filtrer"},
}


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_dashboard_leads_with_what_is_available_and_send_money(money, language):
    page, words = money.pages[language], WORDS[language]

    def show(page):
        page.goto("/dashboard/")
        total = page.locator("#total-available")
        expect(total).to_be_visible()
        assert float(total.evaluate("(el) => parseFloat(getComputedStyle(el).fontSize)")) >= 30
        send = page.locator("main .primary-action")
        expect(send).to_have_count(1)
        expect(send).to_have_text(words["send"])
        # In view as the page opens, on a phone too: no scrolling to find it.
        box = send.bounding_box()
        assert box["y"] + box["height"] <= page.viewport_size["height"]
        expect(page.locator("main")).to_contain_text(words["from_stranger"])
        expect(page.locator("main")).to_contain_text(words["to_payee"])

    _in_every_look(page, language, "dashboard", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_account_history_names_people_and_can_be_searched(money, language):
    page, words = money.pages[language], WORDS[language]

    def show(page):
        page.goto(f"/accounts/{money.checking}/")
        expect(page.locator(".h-party")).to_have_count(2)
        page.get_by_text(words["search"]).click()
        page.fill("#q", "concert")
        page.locator(".filter-form button[type=submit]").click()
        expect(page.locator("#history-count")).to_be_visible()
        expect(page.locator("td.h-description")).to_have_count(1)
        expect(page.locator("td.h-description")).to_contain_text(words["from_stranger"])

    _in_every_look(page, language, "account-searched", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_transfer_form_offers_own_accounts_and_payees_and_says_what_is_available(
        money, language):
    page, words = money.pages[language], WORDS[language]

    def show(page):
        page.goto("/accounts/transfer/")
        expect(page.locator("input[name=payee]")).to_have_count(4)  # 2 own, 1 payee, other
        expect(page.locator("fieldset#payee")).to_contain_text(LONG_NICKNAME)
        page.check(f"input[name=from_account][value='{money.checking}']")
        page.locator("label.choice-card", has_text=LONG_NICKNAME).click()
        page.fill("#amount", "9000")
        page.locator("main form button[type=submit]").click()
        expect(page.locator("#amount-error")).to_have_text(words["available"])
        # The choices are kept: the payee is still the one chosen.
        expect(page.locator("label.choice-card", has_text=LONG_NICKNAME)
               .locator("input")).to_be_checked()

    _in_every_look(page, language, "transfer-refused", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_transfer_form_never_offers_the_source_as_the_destination(money, language):
    page = money.pages[language]

    def shown_own_destinations(page) -> list[str]:
        cards = page.locator("fieldset#payee label.choice-card[data-account]")
        return [card.get_attribute("data-account") for card in cards.all() if card.is_visible()]

    def show(page):
        page.goto(f"/accounts/transfer/?from={money.checking}")
        assert shown_own_destinations(page) == [money.savings]
        page.locator("fieldset#payee label.choice-card", has_text=money.savings).click()
        # Choosing the other source: the destination just chosen is the source now, so it
        # is hidden and no longer chosen; the first source is offered instead.
        page.locator("fieldset#from_account label.choice-card", has_text=money.savings).click()
        assert shown_own_destinations(page) == [money.checking]
        expect(page.locator("input[name=payee]:checked")).to_have_count(0)

    _in_every_look(page, language, "transfer-not-to-itself", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_scheduled_payment_form_cuts_no_account_or_payee(money, language):
    page = money.pages[language]

    def show(page):
        page.goto("/accounts/scheduled/new/")
        # Cards, not drop-downs: every account and the payee's whole nickname are in view.
        expect(page.locator("main select#from_account, main select#to_account")).to_have_count(0)
        expect(page.locator("fieldset#from_account label.choice-card")).to_have_count(2)
        expect(page.locator("fieldset#to_account")).to_contain_text(LONG_NICKNAME)
        # Paying from checking: checking is not offered to pay to.
        expect(page.locator("fieldset#to_account label.choice-card",
                            has_text=money.checking)).to_be_hidden()
        expect(page.locator("fieldset#to_account label.choice-card",
                            has_text=money.savings)).to_be_visible()

    _in_every_look(page, language, "scheduled-new", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_confirm_page_names_the_payee(money, language):
    page, words = money.pages[language], WORDS[language]

    def show(page):
        page.goto("/accounts/transfer/")
        page.check(f"input[name=from_account][value='{money.checking}']")
        page.locator("label.choice-card", has_text=LONG_NICKNAME).click()
        page.fill("#amount", "10")
        page.locator("main form button[type=submit]").click()
        expect(page.locator("h1")).to_have_text(words["confirm"])
        expect(page.locator("#confirm-payee")).to_have_text(f"{LONG_NICKNAME} (B** B****)")

    _in_every_look(page, language, "transfer-confirm", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_alerts_page_lays_out_each_checkbox_with_its_whole_label(money, language):
    page = money.pages[language]

    def show(page):
        page.goto("/accounts/notifications/")
        for check in page.locator("main .field-check").all():
            box, label = (check.locator("input").bounding_box(),
                          check.locator("label").bounding_box())
            # The box sits on the label's first line, the label takes the rest of the row.
            assert abs(box["y"] - label["y"]) < 8 and label["x"] > box["x"]

    _in_every_look(page, language, "alerts", show)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_statement_names_the_other_party(money, language):
    page, words = money.pages[language], WORDS[language]

    def show(page):
        page.goto(f"/reports/statement/{money.checking}/?preset=this-month")
        expect(page.locator(".statement-table")).to_contain_text(words["from_stranger"])
        expect(page.locator(".statement-table")).to_contain_text(words["to_payee"])

    _in_every_look(page, language, "statement", show)

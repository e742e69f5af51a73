"""Using the bank without a mouse, on a phone, in the dark and on paper.

A keyboard-only walk from the login form to a posted transfer with the focus visible at every
stop; the skip link; the phone's folded menu; the statement's print layout; the charts in both
colour schemes at 360 px.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import DESKTOP, PASSWORD, PHONE, log_in

pytestmark = pytest.mark.e2e

# What the focused element looks like: the ring a sighted keyboard user follows.
_FOCUS = """
() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.innerText || '').trim(),
          visible: el.matches(':focus-visible'), outline: style.outlineStyle,
          width: parseFloat(style.outlineWidth)};
}
"""


def focused(page) -> dict:
    return page.evaluate(_FOCUS)


def assert_focus_is_visible(page) -> None:
    focus = focused(page)
    assert focus["tag"] != "body", "nothing has the focus"
    assert focus["visible"] and focus["outline"] != "none" and focus["width"] >= 2, \
        f"the focus on {focus} shows no ring"


def tab_to(page, selector: str, most: int = 40) -> None:
    """Press Tab until ``selector`` has the focus, checking the ring at every stop."""
    for _ in range(most):
        page.keyboard.press("Tab")
        assert_focus_is_visible(page)
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{most} presses of Tab never reached {selector}")


def _customer(live_server, email: str, opening: str = "500.00") -> tuple[str, str]:
    bank = live_server.bank
    bank.create_user(email, first_name="Kim", last_name="Keys")
    return bank.open_account(email, "checking", opening), bank.open_account(email, "savings")


def test_a_keyboard_alone_logs_in_and_sends_a_transfer_with_the_focus_always_visible(
        new_page, live_server, snap):
    checking, savings = _customer(live_server, "kim.keys@example.com")
    page = new_page()
    page.goto("/accounts/login/")
    tab_to(page, "#email")
    page.keyboard.type("kim.keys@example.com")
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

    tab_to(page, "header a[href$='/accounts/transfer/']")
    snap(page, "60-keyboard-focus-on-menu-link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/accounts/transfer/$"))
    tab_to(page, "input[name=from_account]:checked")
    for _ in range(4):  # arrow keys move the choice within the group of radio buttons
        if page.evaluate("document.activeElement.value") == checking:
            break
        page.keyboard.press("ArrowDown")
    tab_to(page, "#to_account")
    page.keyboard.type(savings)
    tab_to(page, "#description")  # the amount stays empty: the error must be announced
    page.keyboard.type("Kept by keyboard")
    page.keyboard.press("Enter")
    amount = page.locator("#amount")
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(page.locator("[role=alert]").first).to_be_visible()

    tab_to(page, "#amount")
    page.keyboard.type("25.00")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Confirm the transfer")
    tab_to(page, "main button[type=submit]")
    snap(page, "61-keyboard-focus-on-send")
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_have_text(f"$25.00 sent to Savings {savings}.")
    assert live_server.bank.balance(checking) == Decimal("475.00")


def test_the_skip_link_is_the_first_stop_and_takes_the_focus_to_the_content(new_page):
    page = new_page()
    page.goto("/accounts/login/")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    assert_focus_is_visible(page)
    box = skip.bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0 and box["width"] > 20, f"the skip link is off screen: {box}"
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")


def test_on_a_phone_the_navigation_folds_into_a_menu_that_opens_by_keyboard(
        new_page, live_server):
    _customer(live_server, "mona.menu@example.com")
    page = new_page()
    log_in(page, "mona.menu@example.com")
    transfer = page.locator("header").get_by_role("link", name="Transfer")
    expect(transfer).to_be_visible()  # a desktop shows the links themselves

    page.set_viewport_size(PHONE)
    expect(transfer).to_be_hidden()
    menu = page.locator("header .nav-menu > summary")
    expect(menu).to_be_visible()
    menu.focus()
    page.keyboard.press("Enter")
    expect(transfer).to_be_visible()
    box = page.locator("header .nav-links").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"the menu is cut off: {box}"
    transfer.click()
    expect(page).to_have_url(re.compile(r"/accounts/transfer/$"))
    expect(page.locator("header .nav-links")).to_be_hidden()  # a new page starts folded


def test_a_statement_prints_on_one_clean_page_even_from_the_dark_scheme(
        new_page, live_server, tmp_path):
    checking, _ = _customer(live_server, "paula.print@example.com", "1250.00")
    page = new_page()
    log_in(page, "paula.print@example.com")
    today = datetime.now(timezone.utc).date().isoformat()
    page.goto(f"/reports/statement/{checking}/?start={today[:8]}01&end={today}")
    page.emulate_media(media="print", color_scheme="dark")
    for hidden in (".site-header", ".nav", "main form", ".site-footer", ".skip-link"):
        for element in page.locator(hidden).all():
            expect(element).to_be_hidden()
    expect(page.locator("main")).to_contain_text("Closing balance")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)", f"the statement prints on {background}"
    pdf = page.pdf(format="A4", print_background=True)
    (tmp_path / "statement.pdf").write_bytes(pdf)
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 1, f"a one-month statement printed on {pages} pages"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_summary_charts_fit_a_phone_and_follow_the_colour_scheme(
        new_page, live_server, scheme, snap):
    _customer(live_server, f"charlie.chart.{scheme}@example.com", "800.00")
    page = new_page()
    log_in(page, f"charlie.chart.{scheme}@example.com")
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme=scheme)
    page.goto("/reports/summary/")
    charts = page.locator("main svg.chart:visible")  # one drawing of each chart shows
    expect(charts).to_have_count(2)
    for chart in charts.all():
        assert chart.get_attribute("viewBox") and chart.get_attribute("width") is None
        box = chart.bounding_box()
        assert 250 < box["width"] <= PHONE["width"] and box["height"] > 100, box
        text, card = chart.evaluate(
            "(svg) => [getComputedStyle(svg.querySelector('text')).fill,"
            " getComputedStyle(svg.closest('figure')).backgroundColor]")
        assert (_luminance(text) > 0.5) == (scheme == "dark"), f"{scheme}: text {text}"
        assert (_luminance(card) < 0.5) == (scheme == "dark"), f"{scheme}: card {card}"
    snap(page, f"62-summary-phone-{scheme}")
    page.set_viewport_size(DESKTOP)


def _luminance(css_colour: str) -> float:
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255

"""The guard every browser test relies on: problems inside the page are seen by the test."""
from __future__ import annotations

import pytest

from e2e_support import PHONE, BrowserWatch, layout_problems

pytestmark = pytest.mark.e2e

INLINE_SCRIPT = """() => new Promise((resolve) => {
  document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective),
                            {once: true});
  const script = document.createElement('script');
  script.textContent = 'window.injected = true';
  document.body.appendChild(script);
})"""


def test_an_inline_script_is_blocked_by_the_csp_and_reported(new_page):
    page = new_page()
    page.goto("/accounts/login/")
    directive = page.evaluate(INLINE_SCRIPT)
    page.evaluate("1")  # one more round trip: the report travels beside the answer
    problems = BrowserWatch.of(page).new_problems()
    assert directive.startswith("script-src")
    assert page.evaluate("window.injected") is None
    assert any(p.startswith("CSP violation") and "script-src" in p for p in problems), problems


def test_a_console_error_is_reported(new_page):
    page = new_page()
    page.goto("/accounts/login/")
    page.evaluate("console.error('something broke')")
    page.evaluate("1")
    problems = BrowserWatch.of(page).new_problems()
    assert any("console error" in p and "something broke" in p for p in problems), problems


def test_the_layout_check_measures_a_page_once_its_stylesheets_have_come(new_page):
    # After a click, the new page's text can be there before its CSS: measured then, an
    # unstyled page is wider than a phone (this failed a CI run). Here every request takes
    # 1.5 s more, so the stylesheet comes well after the page's text.
    page = new_page()
    page.set_viewport_size(PHONE)
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    page.goto("/api/docs", wait_until="commit")
    page.wait_for_selector("main")
    assert page.evaluate("document.documentElement.scrollWidth") > PHONE["width"]  # unstyled
    assert layout_problems(page) == []

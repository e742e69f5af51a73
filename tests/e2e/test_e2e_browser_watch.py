"""The guard every browser test relies on: problems inside the page are seen by the test."""
from __future__ import annotations

import pytest

from e2e_support import BrowserWatch

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

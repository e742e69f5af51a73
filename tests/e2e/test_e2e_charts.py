"""The monthly summary's charts can be read on a phone and on a desktop: every label, tick and
legend drawn in the SVG is at least 12 CSS px once the chart is scaled to the page, in English
and in French, in the light and the dark scheme."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from e2e_support import DESKTOP, PHONE, log_in, open_context

pytestmark = pytest.mark.e2e

SMALLEST_TEXT_PX = 12

# Every <text> a reader can see, with the size it is drawn at on screen: its computed font size
# (in the SVG's own units) times the scale of the SVG (rendered width / viewBox width).
_RENDERED_TEXT = """
() => [...document.querySelectorAll('main svg.chart text')]
  .filter((text) => text.checkVisibility())
  .map((text) => {
    const svg = text.ownerSVGElement;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return {text: text.textContent, chart: svg.id,
            px: parseFloat(getComputedStyle(text).fontSize) * scale};
  })
"""


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_chart_label_is_at_least_12_px_at_360_and_1280(browser, live_server, language,
                                                              snap):
    email = f"tara.text.{language}@example.com"
    live_server.bank.create_user(email, first_name="Tara", last_name="Text")
    live_server.bank.open_account(email, "checking", "2450.00")
    watch, page = open_context(browser, live_server,
                               locale="fr-FR" if language == "fr" else "en-GB")
    too_small: list[str] = []
    try:
        log_in(page, email)
        for size, name in ((PHONE, "360"), (DESKTOP, "1280")):
            page.set_viewport_size(size)
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                page.goto("/reports/summary/")
                expect(page.locator("main svg.chart:visible")).to_have_count(2)
                texts = page.evaluate(_RENDERED_TEXT)
                # Both charts: a legend, the ticks, month names and two axis titles.
                assert len(texts) >= 2 * 10, texts
                too_small += [f"{name} px, {scheme}: {t['chart']} {t['text']!r} "
                              f"{t['px']:.1f} px" for t in texts if t["px"] < SMALLEST_TEXT_PX]
                snap(page, f"70-summary-charts-{language}-{name}-{scheme}")
    finally:
        watch.close()
    assert not too_small, f"text under {SMALLEST_TEXT_PX} px:\n" + "\n".join(too_small)

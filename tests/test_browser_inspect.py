"""Browser test of Inspect a filter (Playwright + Debian Chromium): open filter 3 from the Train page, see
what it responds to, knock it out, see the validation accuracy drop, Restore it.

Uses the fixtures in conftest.py (``page`` = a fresh session on a module-scoped server).
"""

from __future__ import annotations

import re

import pytest
from conftest import wait_idle

pytestmark = pytest.mark.browser

# The "Validation accuracy" metric of the Inspect page as a number in [0, 1] (null before it is drawn).
ACC_JS = """() => {
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const l = m.querySelector('[data-testid="stMetricLabel"]');
    if (l && l.innerText.trim() === 'Validation accuracy') {
      const v = m.querySelector('[data-testid="stMetricValue"]');
      return v ? parseFloat(v.innerText) / 100 : null;
    }
  }
  return null;
}"""

# Page coordinates of filter k's tile (from 1) in the strip of every filter, from Plotly's own axis mapping.
STRIP_TILE_JS = """(k) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (!gd.layout.title.text.includes('what each filter responds to')) continue;
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
    const m = gd._fullData[1];
    return [r.left + xa._offset + xa.c2p(m.x[k - 1]), r.top + ya._offset + ya.c2p(m.y[k - 1])];
  }
  return null;
}"""

TITLES_JS = "() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => gd.layout.title.text)"


def _no_exception(page, where: str) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"{where}: {exc.count()} exception(s) shown: {exc.first.inner_text()}"


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox ``label`` (its list may close again if a rerun redraws it: retry)."""
    for _ in range(3):
        wait_idle(page)
        page.get_by_role("combobox", name=label, exact=True).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError: the list was not open
            page.keyboard.press("Escape")
    wait_idle(page)


def test_inspect_filter_from_train_knock_out_and_restore(page):
    # a trained network, so that a filter means something
    page.get_by_text("Model file (.npz)").click()
    page.get_by_role("button", name=re.compile("Start from pretrained")).click()
    page.get_by_text("Loaded the pretrained").first.wait_for(timeout=30_000)
    wait_idle(page)
    _choose(page, "Inspect a filter: what does it detect?", "filter 3")
    page.get_by_role("button", name=re.compile(r"Inspect$")).first.click()
    page.get_by_role("heading", name="Inspect a filter").first.wait_for(timeout=30_000)
    wait_idle(page)
    page.wait_for_function(f"({TITLES_JS})().some(t => t.startsWith('The 12 patches it responds to most'))",
                           timeout=30_000)
    titles = page.evaluate(TITLES_JS)
    assert "Mean activation per digit" in titles, titles
    assert page.get_by_text("Filter 3 of conv 1").first.is_visible()
    _no_exception(page, "Inspect, what it responds to")
    # click filter 5 in the strip of all filters: the page now shows filter 5
    page.wait_for_function(f"({STRIP_TILE_JS})(5) !== null", timeout=30_000)
    page.mouse.click(*page.evaluate(STRIP_TILE_JS, 5))
    page.get_by_text("Filter 5 of conv 1").first.wait_for(timeout=30_000)
    wait_idle(page)
    _choose(page, "Filter", "filter 3")
    page.get_by_text("Filter 3 of conv 1").first.wait_for(timeout=30_000)

    page.get_by_role("tab", name="Change it and see").click()
    page.wait_for_function(f"({ACC_JS})() !== null", timeout=30_000)
    learned = page.evaluate(ACC_JS)
    page.get_by_text("Knock out", exact=True).click()
    page.wait_for_function(f"({ACC_JS})() !== {learned}", timeout=30_000)
    wait_idle(page)
    knocked = page.evaluate(ACC_JS)
    assert knocked < learned, (learned, knocked)
    page.get_by_role("button", name=re.compile(r"Restore$")).click()
    page.wait_for_function(f"({ACC_JS})() === {learned}", timeout=30_000)
    _no_exception(page, "Inspect, change it and see")

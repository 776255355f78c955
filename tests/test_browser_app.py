"""Browser tests of the app (Playwright + Debian Chromium): Step, Play/Pause, every page, figures change.

Uses the lead's fixtures in conftest.py (``page`` = a fresh session on a module-scoped server).
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import wait_idle

pytestmark = pytest.mark.browser

PAGES = ["Train", "Inside", "Gradients", "Draw", "Evaluate", "Compare", "Lesson", "Inspect a filter"]

# The first conv layer's figure on the Train page: (step in its title, sum |w| of its heatmap), or null.
FILTERS_JS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd.layout && gd.layout.title && gd.layout.title.text;
    if (t && t.startsWith('Learned filters at step')) {
      let s = 0;
      for (const row of gd._fullData[0].z) for (const v of row) if (v === v && v !== null) s += Math.abs(v);
      return [parseInt(t.split('step ')[1]), s];
    }
  }
  return null;
}"""

CURVE_POINTS_JS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd.layout && gd.layout.title && gd.layout.title.text;
    if (t === 'Training curves') return Math.max(...gd._fullData.map(d => d.x ? d.x.length : 0));
  }
  return -1;
}"""


# Page coordinates of the confusion-matrix cell (true, predicted), from Plotly's own axis mapping.
CELL_JS = """([t, p]) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.layout.title.text !== 'Confusion matrix') continue;
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
    return [r.left + xa._offset + xa.c2p(p), r.top + ya._offset + ya.c2p(t)];
  }
  return null;
}"""


def _wait_step(page, cond: str, timeout: float = 30_000) -> None:
    """Wait until the filter figure's step satisfies ``cond`` (JS, on ``s``), e.g. "s === 1"."""
    page.wait_for_function(f"() => {{ const r = ({FILTERS_JS})(); if (r === null) return false; "
                           f"const s = r[0]; return {cond}; }}", timeout=timeout)


def _filters(page):
    page.wait_for_function(f"({FILTERS_JS})() !== null", timeout=30_000)
    return page.evaluate(FILTERS_JS)


def _button(page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^\W*{re.escape(name)}$"))


def _no_exception(page, where: str) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"{where}: {exc.count()} exception(s) shown: {exc.first.inner_text()}"


def test_step_updates_filters_and_curves(page):
    step0, w0 = _filters(page)
    assert step0 == 0
    _button(page, "Step").first.click()
    _wait_step(page, "s === 1")
    step1, w1 = page.evaluate(FILTERS_JS)
    assert w1 != w0, "the filter heatmap shows the updated weights"
    _button(page, "Step ×10").first.click()
    _wait_step(page, "s === 11")
    page.wait_for_function(f"({CURVE_POINTS_JS})() >= 11", timeout=30_000)
    _no_exception(page, "Train after Step")


def test_play_trains_live_and_pause_stops(page):
    start, _ = _filters(page)
    _button(page, "Play").first.click()
    _wait_step(page, f"s > {start}")
    first = page.evaluate(FILTERS_JS)[0]
    _wait_step(page, f"s > {first}")  # it keeps redrawing by itself
    _button(page, "Pause").first.click()
    _button(page, "Play").first.wait_for(timeout=30_000)
    wait_idle(page)
    stopped = page.evaluate(FILTERS_JS)[0]
    time.sleep(1.5)
    assert page.evaluate(FILTERS_JS)[0] == stopped, "training stops on Pause"
    _no_exception(page, "Train after Play/Pause")


def test_every_page_opens_without_error(page):
    _button(page, "Step ×10").first.click()
    _wait_step(page, "s === 10")
    nav = page.locator('[data-testid="stSidebarNav"] a')
    titles = [nav.nth(i).inner_text().strip().splitlines()[-1] for i in range(nav.count())]
    assert [t for t in PAGES if t in titles] == titles, titles
    assert {"Train", "Evaluate"} <= set(titles)
    for i, title in enumerate(titles):
        nav.nth(i).click()
        wait_idle(page)
        page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
        wait_idle(page)
        _no_exception(page, title)
        if title in ("Train", "Evaluate"):
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    # the session's model survived the page switches: back on Train it is still at step 10
    nav.nth(titles.index("Train")).click()
    _wait_step(page, "s === 10")


def test_evaluate_shows_confusion_matrix_and_galleries(page):
    page.locator('[data-testid="stSidebarNav"] a', has_text="Evaluate").click()
    wait_idle(page)
    # the page's figures are drawn one after another: wait until all three are there (or time out)
    page.wait_for_function("""() => {
        const t = [...document.querySelectorAll('.js-plotly-plot')].map(gd => gd.layout.title.text);
        return t.includes('Confusion matrix') && t.some(s => s.startsWith('Accuracy per true class'))
            && t.some(s => s.startsWith('The ') && s.includes('errors'));
    }""", timeout=30_000)
    titles = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                           ".map(gd => gd.layout.title.text)")
    assert any(t.startswith("The ") and "errors" in t for t in titles), titles
    assert any(t.startswith("Accuracy per true class") for t in titles), titles
    # clicking a cell of the confusion matrix shows that cell's images
    xy = page.evaluate(CELL_JS, ["3", "5"])
    page.mouse.click(*xy)
    page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .some(gd => gd.layout.title.text.startsWith('True 3 predicted as 5'))""", timeout=30_000)
    _no_exception(page, "Evaluate")

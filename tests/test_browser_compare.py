"""Browser test of the Compare page (Playwright + Debian Chromium): lesson, Step ×10, Play/Pause, colours."""

from __future__ import annotations

import re
import time

import pytest
from conftest import wait_idle

pytestmark = pytest.mark.browser

# The Compare page's figures: step in the filters' title, and per run (legend group) its colours and points.
STATE_JS = """() => {
  let step = null, runs = null;
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd.layout && gd.layout.title && gd.layout.title.text;
    if (!t) continue;
    if (t.startsWith('Filters of conv 1 at step')) step = parseInt(t.split('step ')[1]);
    if (t.startsWith('Loss and accuracy')) {
      runs = {};
      for (const d of gd._fullData) {
        if (!d.line || !d.legendgroup) continue;
        const r = runs[d.legendgroup] || (runs[d.legendgroup] = {colours: [], points: 0});
        if (!r.colours.includes(d.line.color)) r.colours.push(d.line.color);
        r.points = Math.max(r.points, d.x ? d.x.length : 0);
      }
    }
  }
  return {step, runs};
}"""


def _button(page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^\W*{re.escape(name)}$"))


def _state(page) -> dict:
    return page.evaluate(STATE_JS)


def _wait(page, cond: str, timeout: float = 60_000) -> None:
    page.wait_for_function(f"() => {{ const st = ({STATE_JS})(); if (st.step === null) return false; "
                           f"const s = st.step; return {cond}; }}", timeout=timeout)


def test_compare_page_steps_plays_and_shows_one_colour_per_run(page):
    page.locator('[data-testid="stSidebarNav"] a', has_text="Compare").click()
    wait_idle(page)
    page.get_by_role("heading", name="Compare runs").wait_for(timeout=30_000)
    _wait(page, "s === 0")
    _button(page, "Step ×10").click()
    _wait(page, "s === 10")
    st = _state(page)
    assert set(st["runs"]) == {"ReLU", "sigmoid"}
    colours = [r["colours"] for r in st["runs"].values()]
    assert all(len(c) == 1 for c in colours) and colours[0] != colours[1]
    assert all(r["points"] >= 10 for r in st["runs"].values())
    assert page.get_by_text("Same images for every run").count() == 1
    _button(page, "Play").click()
    _wait(page, "s > 10")
    first = _state(page)["step"]
    _wait(page, f"s > {first}")  # it keeps training and redrawing by itself
    _button(page, "Pause").click()
    _button(page, "Play").wait_for(timeout=30_000)
    wait_idle(page)
    stopped = _state(page)["step"]
    time.sleep(1.5)
    assert _state(page)["step"] == stopped, "training stops on Pause"
    assert page.locator('[data-testid="stException"]').count() == 0

"""Two browser contexts on one server are two students: one trains, the other's model does not move.

Uses the lead's fixtures (``browser``, ``app_url``) and ``wait_idle`` from conftest.py.
"""

from __future__ import annotations

import pytest
from conftest import STEP_JS, wait_idle

pytestmark = pytest.mark.browser




def _open(browser, url):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector(".st-key-btn_step button", timeout=60_000)
    wait_idle(page)
    return ctx, page


def _step(page) -> int:
    page.wait_for_function(f"({STEP_JS})() !== null", timeout=30_000)
    return page.evaluate(STEP_JS)


def _click_step(page, expect: int) -> None:
    page.locator(".st-key-btn_step button").first.click()
    page.wait_for_function(f"({STEP_JS})() === {expect}", timeout=30_000)


def test_steps_in_one_context_leave_the_other_at_zero(browser, app_url):
    ctx_a, a = _open(browser, app_url)
    ctx_b, b = _open(browser, app_url)
    try:
        assert _step(a) == 0 and _step(b) == 0
        for k in range(1, 5):
            _click_step(a, k)
        a.locator(".st-key-btn_play button").first.click()  # and let A train live for a moment
        a.wait_for_function(f"({STEP_JS})() > 5", timeout=30_000)
        a.locator(".st-key-btn_pause button").first.click()  # Pause has its own key (app helper's change)
        wait_idle(a)
        assert _step(b) == 0
        b.locator(".st-key-speed button", has_text="Slow").first.click()  # a full rerun of B's own session
        b.wait_for_timeout(300)
        wait_idle(b)
        assert _step(b) == 0
        _click_step(b, 1)  # B's first step is its own step 1, whatever A did
        assert _step(a) > 5
        for pg in (a, b):
            assert pg.locator('[data-testid="stException"]').count() == 0
    finally:
        ctx_a.close()
        ctx_b.close()

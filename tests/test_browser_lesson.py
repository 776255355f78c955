"""Browser tests of the Lesson page and of links that open a configuration (Playwright + Debian Chromium)."""

from __future__ import annotations

import re

import pytest
from conftest import wait_idle

from cnnviz.viz.lesson import N_STEPS, TITLES

pytestmark = pytest.mark.browser


@pytest.fixture
def ctx(browser):
    c = browser.new_context(viewport={"width": 1920, "height": 1080})
    yield c
    c.close()


def _no_exception(page, where: str) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"{where}: {exc.first.inner_text()}"


SIDEBAR_INPUTS_JS = """() => Object.fromEntries(Array.from(
  document.querySelectorAll('[data-testid="stSidebar"] input'))
    .map(e => [e.getAttribute('aria-label'), e.value]))"""


def _sidebar(page) -> dict:
    """The sidebar's input fields: label -> the value shown (a select box shows its option's text)."""
    page.wait_for_function(f"() => 'Preset' in ({SIDEBAR_INPUTS_JS})() && 'Seed' in ({SIDEBAR_INPUTS_JS})()",
                           timeout=30_000)
    return page.evaluate(SIDEBAR_INPUTS_JS)


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_walk_the_whole_lesson_with_next(ctx, app_url):
    page = ctx.new_page()
    page.goto(app_url + "lesson")
    wait_idle(page)
    for n in range(1, N_STEPS + 1):
        page.wait_for_function(
            "t => document.querySelector('[data-testid=\"stMain\"]').innerText.includes(t)",
            arg=f"Step {n} of {N_STEPS}", timeout=60_000)
        wait_idle(page)
        _no_exception(page, f"step {n}")
        text = _main(page)
        assert TITLES[n - 1] in text
        assert "Question for the class" in text
        assert page.locator("details[open]").count() == 0, f"step {n}: its answer is shown before it is asked"
        page.get_by_text("Show the answer").click()
        page.wait_for_selector("details[open]", timeout=10_000)  # the answer is revealed
        nxt = page.get_by_role("button", name=re.compile(r"Next$"))
        if n < N_STEPS:
            nxt.click()
        else:
            assert nxt.is_disabled()


def test_link_opens_a_configuration_and_page(ctx, app_url):
    page = ctx.new_page()
    page.goto(app_url + "?preset=tutorial&lr=0.01&seed=3&page=inside")
    wait_idle(page)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stMain\"]').innerText"
                           ".includes('Inside the network')", timeout=60_000)
    wait_idle(page)
    _no_exception(page, "opened link")
    main = _main(page)
    assert ("Opened a shared link: Tutorial: 0–4 vs 5–9, mean squared error, SGD lr 0.01, full batch, "
            "200 images, seed 3") in main
    assert "cannot be used" not in main
    assert "/inside" in page.url
    side = page.locator('[data-testid="stSidebar"]')
    fields = _sidebar(page)
    assert fields.get("Preset") == "Tutorial (the article's net)", fields
    assert fields["Seed"] == "3"
    assert fields["Task"] == "0–4 vs 5–9"
    side.get_by_text("Current config (JSON)").click()
    page.wait_for_timeout(300)
    config_json = side.locator("code").filter(has_text='"preset"').first.inner_text()
    for item in ('"lr": 0.01', '"seed": 3', '"preset": "tutorial"'):
        assert item in config_json
    # Copy link writes the same settings back
    side.get_by_text("Share a setting (link)").click()
    side.get_by_role("button", name=re.compile("Copy link")).click()
    wait_idle(page)
    code = side.locator("code").filter(has_text="preset=").first.inner_text()
    assert "preset=tutorial" in code and "lr=0.01" in code and "seed=3" in code and "page=inside" in code
    assert "preset=tutorial" in page.url


def test_tampered_link_gets_a_message_and_the_defaults(ctx, app_url):
    page = ctx.new_page()
    page.goto(app_url + "?lr=1e9&filters=-3&foo=1")
    wait_idle(page)
    _no_exception(page, "tampered link")
    main = _main(page)
    assert "cannot be used" in main
    assert "lr = 1000000000.0 is out of range" in main
    assert "filters = -3 is out of range" in main
    assert "unknown parameter 'foo'" in main
    assert ("Classroom: 10 digits (0–9), softmax cross-entropy, SGD lr 0.08, batch 32, 4,000 images, seed 0"
            in main)
    fields = _sidebar(page)
    assert fields["Preset"] == "Classroom (8 filters)" and fields["Seed"] == "0", fields

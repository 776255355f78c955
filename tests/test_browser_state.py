"""Browser tests of issue 11 ("trustworthy in front of a class"), items 1-9, in Debian's Chromium.

Each test is a student's click sequence that lost work or showed the wrong thing before: presentation mode
then Apply, optimiser then Apply, a reload, Reset after pretrained weights, the replay slider, a failed
upload, teaching the model on screen, following a digit to Inside, and Evaluate while nothing trains. Plus:
a URL copied into another browser does not get the session, and a second tab takes the session over.
Uses the fixtures of conftest.py (``browser``, ``app_url``).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from conftest import STEP_JS, wait_idle

pytestmark = pytest.mark.browser


def _open(browser, url, path: str = ""):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(url + path)
    wait_idle(page)
    page.wait_for_selector('[data-testid="stSidebar"]', timeout=60_000)
    return ctx, page


def _step(page) -> int:
    page.wait_for_function(f"({STEP_JS})() !== null", timeout=30_000)
    return page.evaluate(STEP_JS)


def _click(page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()
    page.wait_for_timeout(200)
    wait_idle(page)


def _step10(page, expect: int) -> None:
    page.locator(".st-key-btn_step10 button").first.click()
    page.wait_for_function(f"({STEP_JS})() === {expect}", timeout=60_000)
    wait_idle(page)


def _no_exception(page) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()


def _text(page) -> str:
    return page.locator('[data-testid="stApp"]').inner_text()


def _toggle_presentation(page) -> None:
    page.locator(".st-key-presentation label").first.click()
    page.wait_for_timeout(200)
    wait_idle(page)


def _expand(page, title: str) -> None:
    exp = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]', has_text=title).first
    if exp.locator("details").first.get_attribute("open") is None:
        exp.locator("summary").first.click()
        page.wait_for_timeout(200)


def _number(page, key: str) -> str:
    return page.locator(f".st-key-{key} input").first.input_value()


def _goto_page(page, name: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
    page.wait_for_timeout(300)
    wait_idle(page)


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _upload(page, name: str, raw: bytes) -> None:
    up = page.locator('.st-key-draw_upload input[type=file]').first
    up.set_input_files(files=[{"name": name, "mimeType": "image/png", "buffer": raw}])


def _digit(d: int) -> np.ndarray:
    from cnnviz.train.data import fixed_split, load_subset

    images, labels = load_subset()
    _, val_idx = fixed_split(labels)
    return images[val_idx[labels[val_idx] == d][0]].astype(np.float32) / 255


def test_1_presentation_mode_then_apply_keeps_model_and_settings(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _step10(page, 10)
        _toggle_presentation(page)
        apply = page.locator(".st-key-sb_apply button").first
        assert apply.is_disabled()  # nothing to apply: the settings are the model's
        apply.click(force=True)
        wait_idle(page)
        _no_exception(page)
        _toggle_presentation(page)
        _no_exception(page)
        assert _step(page) == 10  # the trained model is still there
        _expand(page, "Architecture")
        assert _number(page, "sb_filters") == "8" and _number(page, "sb_kernel") == "5"
        assert "Apply will change" not in _text(page)
    finally:
        ctx.close()


def test_2_optimiser_then_apply_works_the_first_time(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _expand(page, "Training")
        wait_idle(page)
        option = page.get_by_role("option", name="Adam").first
        for _ in range(3):  # under load the first click may land before the select is ready to open
            page.locator(".st-key-sb_optimizer").first.click()
            try:
                option.wait_for(timeout=10_000)
                break
            except Exception:  # the list did not open: close whatever opened and try again
                page.keyboard.press("Escape")
        option.click()
        wait_idle(page)
        # the rerun may start after wait_idle saw the page idle: wait for its result before reading the page
        page.get_by_text("Optimiser: SGD → Adam").first.wait_for(timeout=30_000)
        assert "Optimiser: SGD → Adam" in _text(page)
        _click(page, "sb_apply")
        _no_exception(page)
        assert "Rebuilt" in _text(page) and "Adam" in _text(page)
    finally:
        ctx.close()


def test_3_reload_keeps_the_work_but_a_copied_url_does_not(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _step10(page, 10)
        _expand(page, "Architecture")
        page.locator(".st-key-sb_filters input").first.fill("4")
        page.locator(".st-key-sb_filters input").first.press("Enter")
        page.wait_for_timeout(300)
        wait_idle(page)
        assert "Filters: 8 → 4" in _text(page)
        assert "cnnviz_session" not in page.url and not re.search(r"[0-9a-f]{32}", page.url)
        page.reload()
        wait_idle(page)
        assert _step(page) == 10, "a reload keeps the model and its history"
        assert "Filters: 8 → 4" in _text(page), "a reload keeps the settings being edited"
        assert "Welcome back" in _text(page)
        # the same URL in another browser (its own cookies) is a new session
        ctx2, other = _open(browser, page.url)
        try:
            assert _step(other) == 0
            assert "Welcome back" not in _text(other)
        finally:
            ctx2.close()
    finally:
        ctx.close()


def test_3b_a_second_tab_takes_the_session_over(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _step10(page, 10)
        tab2 = ctx.new_page()
        tab2.goto(app_url)
        wait_idle(tab2)
        assert _step(tab2) == 10  # same browser, same cookie: the session continues in the new tab
        page.locator(".st-key-btn_step10 button").first.click()
        page.wait_for_timeout(300)
        wait_idle(page)
        page.wait_for_selector("text=open in another tab", timeout=30_000)
    finally:
        ctx.close()


def test_4_reset_after_pretrained_returns_to_the_pretrained_weights(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _expand(page, "Model file")
        _click(page, "load_pretrained")
        _step10(page, 10)
        _click(page, "btn_reset")
        assert _step(page) == 0
        text = _text(page)
        assert "pretrained Classroom weights" in text and "fresh weights from the seed" not in text
        _no_exception(page)
    finally:
        ctx.close()


def _replay_value(page) -> int:
    v = page.locator('.st-key-replay_step [data-testid="stSliderThumbValue"]').first.inner_text()
    return int(v.replace(",", ""))


def test_5_replay_follows_the_latest_step(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _step10(page, 10)
        page.wait_for_selector(".st-key-replay_step", timeout=30_000)
        assert _replay_value(page) == 10
        _step10(page, 20)
        page.wait_for_function("() => { const e = document.querySelector('.st-key-replay_step "
                               "[data-testid=\"stSliderThumbValue\"]'); return e && e.innerText === '20'; }",
                               timeout=30_000)
        page.locator(".st-key-btn_epoch button").first.click()
        page.wait_for_function(f"({STEP_JS})() > 20", timeout=120_000)
        wait_idle(page)
        assert _replay_value(page) == _step(page)
    finally:
        ctx.close()


def test_6_failed_upload_clears_the_answer_and_shows_its_error_beside_the_uploader(browser, app_url):
    ctx, page = _open(browser, app_url, "draw")
    try:
        _upload(page, "three.png", _png(1 - _digit(3)))
        page.wait_for_selector(".draw-guess", timeout=30_000)
        wait_idle(page)
        up = page.locator('.st-key-draw_upload input[type=file]').first
        up.set_input_files(files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not pixels"}])
        page.wait_for_selector("text=could not be used", timeout=30_000)
        wait_idle(page)
        assert page.locator(".draw-guess").count() == 0, "the old answer is gone"
        err = page.locator('[data-testid="stAlert"]', has_text="could not be used").first
        uploader = page.locator('.st-key-draw_upload').first
        eb, ub = err.bounding_box(), uploader.bounding_box()
        assert eb and ub and 0 <= eb["y"] - (ub["y"] + ub["height"]) < 120, (eb, ub)  # right below it
    finally:
        ctx.close()


def test_7_teach_it_trains_the_model_on_screen(browser, app_url):
    ctx, page = _open(browser, app_url, "draw")
    try:
        _upload(page, "five.png", _png(1 - _digit(5)))
        page.wait_for_selector(".draw-guess", timeout=30_000)
        wait_idle(page)
        _click(page, "draw_add")
        _click(page, "draw_train")
        _no_exception(page)
        text = _text(page)
        assert "Fine-tuned this session's copy of the pretrained draw model 10 steps" in text
        assert "taught your digits (10 steps)" in text  # the model shown is the taught copy
        _goto_page(page, "Train")
        assert _step(page) == 0  # the session's own model did not move
    finally:
        ctx.close()


def test_8_follow_this_digit_says_which_model_is_shown(browser, app_url):
    ctx, page = _open(browser, app_url, "draw")
    try:
        _upload(page, "seven.png", _png(1 - _digit(7)))
        page.wait_for_selector(".draw-guess", timeout=30_000)
        wait_idle(page)
        _click(page, "draw_to_inside")
        page.wait_for_selector("text=Inside shows this session's model", timeout=30_000)
        assert "not the pretrained draw model" in _text(page)
        _no_exception(page)
    finally:
        ctx.close()


def test_9_evaluate_never_claims_live_training(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        _click(page, "btn_play")
        page.wait_for_function(f"({STEP_JS})() > 0", timeout=30_000)
        _goto_page(page, "Evaluate")
        page.wait_for_selector("text=Accuracy", timeout=60_000)
        assert "Live training is on" not in _text(page)
        n = page.evaluate("() => document.body.innerText.length")
        assert n > 0
        _goto_page(page, "Train")
        s1 = _step(page)
        page.wait_for_timeout(1500)
        assert _step(page) == s1, "live training was paused when the Train page was left"
    finally:
        ctx.close()


def test_11_speed_keeps_its_selection_across_pages(browser, app_url):
    ctx, page = _open(browser, app_url)
    try:
        page.locator(".st-key-speed button", has_text="Slow").first.click()
        wait_idle(page)
        _goto_page(page, "Inside")
        _goto_page(page, "Train")
        sel = page.locator(".st-key-speed button[kind*='Active'], .st-key-speed button[aria-pressed='true'], "
                           ".st-key-speed button[aria-checked='true']")
        assert sel.count() >= 1 and "Slow" in sel.first.inner_text()
    finally:
        ctx.close()


def test_inside_tab_and_step_through_survive_another_page(browser, app_url):
    """The Inside page's open tab and the step-through's example were reset to "Forward pass" / the tutorial
    example after a visit to another page (Streamlit drops the state of widgets it does not draw)."""
    ctx, page = _open(browser, app_url, "inside")
    try:
        page.get_by_role("tab", name="Convolution step-through").first.click()
        wait_idle(page)
        page.get_by_text("This image with a learned filter").first.click()
        wait_idle(page)
        _goto_page(page, "Evaluate")
        _goto_page(page, "Inside")
        page.wait_for_selector(".st-key-inside_step_pos", timeout=60_000)  # the step-through is open again
        tab = page.get_by_role("tab", name="Convolution step-through").first
        assert tab.get_attribute("aria-selected") == "true"
        assert page.locator(".st-key-inside_step_example input[type=radio]").nth(1).is_checked()
        assert re.search(r"of 576: window at row \d+", _text(page)) is not None  # the learned-filter example
        _no_exception(page)
    finally:
        ctx.close()

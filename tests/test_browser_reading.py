"""The Draw page reads what people draw (Playwright + Debian Chromium): small digits in a corner, things that
are not digits, a stroke started at the very top of the canvas, one set of Clear/Undo, a canvas that grows
on a wide window. Fixtures ``page``, ``browser`` and ``app_url`` come from conftest.py."""

from __future__ import annotations

import math

import drawn_digits as dd  # the held-out digit shapes (unit-box stroke paths)
import numpy as np
import pytest

pytestmark = pytest.mark.browser

NOT_DIGIT = ".draw-verdict.not-digit"


def open_draw(page, app_url: str) -> dict:
    from conftest import wait_idle

    page.goto(app_url + "draw")
    wait_idle(page)
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for(timeout=30_000)
    return canvas.bounding_box()


def mouse_stroke(page, box: dict, points) -> None:
    """One stroke through canvas pixel coordinates ``points`` (n, 2)."""
    pts = np.asarray(points, dtype=float)
    page.mouse.move(box["x"] + pts[0][0], box["y"] + pts[0][1])
    page.mouse.down()
    for x, y in pts[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
    page.mouse.up()


def draw_shape(page, box: dict, strokes, x0: float, y0: float, height: float, aspect: float) -> None:
    """Unit-box strokes drawn at (x0, y0) (canvas pixels), ``height`` tall, ``aspect`` wide."""
    for st in strokes:
        st = np.asarray(st, dtype=float)
        pts = np.stack([x0 + st[:, 0] * height * aspect, y0 + st[:, 1] * height], 1)
        mouse_stroke(page, box, pts)


def wait_answer(page, timeout: float = 40_000) -> str:
    """The page's answer once a run has finished: the digit, or the verdict sentence."""
    from conftest import wait_idle

    page.wait_for_function(
        "() => document.querySelector('.draw-guess .digit, .draw-verdict') !== null", timeout=timeout)
    page.wait_for_timeout(300)
    wait_idle(page)
    el = page.locator(".draw-guess .digit, .draw-verdict").first
    return el.inner_text().strip()


def clear(page) -> None:
    from conftest import wait_idle

    page.locator(".st-key-draw_clear button:visible").click()
    page.wait_for_selector(".draw-empty", timeout=20_000)
    page.wait_for_timeout(300)
    wait_idle(page)


@pytest.mark.parametrize("digit,style,corner", [(6, 0, "bottom right"), (9, 1, "top left"),
                                                (3, 0, "bottom left")])
def test_small_digit_in_a_corner(page, app_url, digit, style, corner):
    box = open_draw(page, app_url)
    side = box["width"]
    aspect, strokes = dd.STYLES[digit][style]
    h = side * 0.36
    w = h * aspect
    x0 = side - w - 14 if "right" in corner else 14
    y0 = side - h - 14 if "bottom" in corner else 34
    draw_shape(page, box, strokes, x0, y0, h, aspect)
    assert wait_answer(page) == str(digit)


def test_a_dot_and_a_scribble_are_not_digits(page, app_url):
    box = open_draw(page, app_url)
    side = box["width"]
    mouse_stroke(page, box, [(side * 0.5, side * 0.5), (side * 0.5 + 2, side * 0.5 + 1)])
    page.wait_for_selector(NOT_DIGIT, timeout=40_000)
    assert page.locator(".draw-guess .digit").count() == 0
    clear(page)
    box = page.locator("canvas.upper-canvas").bounding_box()
    scribble = np.random.default_rng(0).uniform(0.15, 0.85, (12, 2)) * side  # a tangle of 11 straight legs
    mouse_stroke(page, box, scribble)
    page.wait_for_selector(NOT_DIGIT, timeout=40_000)
    assert "does not look like a digit" in page.locator(NOT_DIGIT).inner_text()


def test_a_stroke_started_in_the_top_30_px_is_counted(page, app_url):
    """The component's toolbar used to lie invisibly over the canvas's top right and swallow such a stroke."""
    box = open_draw(page, app_url)
    side = box["width"]
    # a 7 whose bar starts 6 px below the canvas's top edge, right under where the toolbar was
    seven = [(side * 0.35, 6), (side * 0.92, 6), (side * 0.55, side * 0.9)]
    mouse_stroke(page, box, seven)
    assert wait_answer(page) == "7"
    clear(page)
    box = page.locator("canvas.upper-canvas").bounding_box()
    one = [(side * 0.85, 3), (side * 0.84, side * 0.5), (side * 0.83, side * 0.95)]  # top right corner
    mouse_stroke(page, box, one)
    assert wait_answer(page) == "1"


def test_one_clear_and_one_undo(page, app_url):
    box = open_draw(page, app_url)
    side = box["width"]
    mouse_stroke(page, box, [(side * 0.5, 20), (side * 0.5, side * 0.5), (side * 0.49, side * 0.9)])
    wait_answer(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # hover shows no toolbar
    page.wait_for_timeout(400)
    main = page.locator('[data-testid="stMain"]')

    def visible(name: str) -> int:
        return sum(b.is_visible() for b in main.get_by_role("button", name=name).all())

    assert visible("Undo") == 1  # ours; the component's toolbar (Undo, Redo, Reset) is hidden
    assert visible("Clear") == 1
    assert visible("Reset canvas & history") == 0


def test_unsure_shows_candidates(page, app_url):
    """Something between a 4 and a 9 (a closed top on a long stem) gets an answer either way: a digit, or
    "Not sure" with two or three candidates shown."""
    box = open_draw(page, app_url)
    side = box["width"]
    loop = [(side * (0.5 + 0.2 * math.cos(a)), side * (0.3 + 0.18 * math.sin(a)))
            for a in np.linspace(0, -2 * math.pi, 30)]
    mouse_stroke(page, box, loop)
    mouse_stroke(page, box, [(side * 0.7, side * 0.3), (side * 0.7, side * 0.9)])
    answer = wait_answer(page)
    if answer.startswith("Not sure"):
        assert 2 <= page.locator(".draw-candidates .cand").count() <= 3
    else:
        assert answer in {str(d) for d in range(10)} or "not look like a digit" in answer


def test_the_canvas_grows_on_a_wide_window(browser, app_url):
    from conftest import wait_idle

    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = ctx.new_page()
    try:
        page.goto(app_url + "draw")
        wait_idle(page)
        page.locator("canvas.upper-canvas").wait_for(timeout=30_000)
        page.reload()  # the window width reaches the server with the next session
        wait_idle(page)
        canvas = page.locator("canvas.upper-canvas")
        canvas.wait_for(timeout=30_000)
        page.wait_for_timeout(300)
        assert canvas.bounding_box()["width"] >= 420
    finally:
        ctx.close()

"""Made for the projector, checked in Chromium: every page with the biggest network the sidebar allows, in
presentation mode at 1920×1080. Reads the text Plotly rendered (SVG ``<text>``): no figure text smaller than
18 px, and no two titles or labels of a figure overlapping (their bounding boxes)."""

from __future__ import annotations

import pytest

from tests.conftest import wait_idle

pytestmark = pytest.mark.browser

# The sidebar's limits (32 filters, 3 conv layers); with the classroom's max-pooling a 3×3 kernel is the
# largest that fits three layers within the server's cost limits (cnnviz.serve.serving.check_server_cost).
BIGGEST = {"sb_filters": 32, "sb_n_conv": 3, "sb_kernel": 3}
MIN_PX = 18

# Every visible SVG text of every Plotly figure: [figure title, text, font px, left, top, right, bottom, kind]
TEXTS_JS = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const r0 = gd.getBoundingClientRect();
    if (r0.width === 0 || r0.height === 0) continue;  // a hidden tab
    const title = (gd.layout && gd.layout.title && gd.layout.title.text) || '';
    for (const t of gd.querySelectorAll('svg text')) {
      if (t.closest('.hoverlayer') || !t.textContent.trim()) continue;
      const b = t.getBoundingClientRect();
      if (b.width === 0 || b.height === 0) continue;
      const cls = t.getAttribute('class') || '';
      const kind = t.closest('.annotation') ? 'annotation' : t.closest('.g-gtitle') ? 'title'
        : /^[xy]\\d*title$/.test(cls) ? 'axis title' : t.closest('.cbtitle') ? 'colour-bar title'
        : t.closest('.legend') ? 'legend' : 'tick';
      // the smallest of the text and its parts (an exponent or a <sup> is a smaller <tspan>)
      let px = parseFloat(getComputedStyle(t).fontSize);
      for (const s of t.querySelectorAll('tspan')) {
        if (s.textContent.trim()) px = Math.min(px, parseFloat(getComputedStyle(s).fontSize));
      }
      out.push([title, t.textContent, px, b.left, b.top, b.right, b.bottom, kind]);
    }
  }
  return out;
}"""


def _overlaps(a, b, tol: float = 1.0) -> bool:
    return min(a[5], b[5]) - max(a[3], b[3]) > tol and min(a[6], b[6]) - max(a[4], b[4]) > tol


def check_figure_text(page, where: str) -> list[str]:
    """Problems on the page now: figure texts below ``MIN_PX`` and overlapping titles / labels."""
    texts = page.evaluate(TEXTS_JS)
    problems = [f"{where}: '{t[1]}' ({t[7]}) in '{t[0][:50]}' is {t[2]:.1f} px"
                for t in texts if t[2] < MIN_PX]
    labels = [t for t in texts if t[7] in ("annotation", "title", "axis title", "colour-bar title")]
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if a[0] == b[0] and _overlaps(a, b):
                problems.append(f"{where}: '{a[1]}' overlaps '{b[1]}' in '{a[0][:50]}'")
    return problems


def _nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    wait_idle(page)
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    wait_idle(page)


def set_biggest_network(page) -> None:
    """Sidebar: 32 filters and 3 conv layers (Architecture), Apply."""
    page.locator('[data-testid="stSidebar"] summary', has_text="Architecture").first.click()
    for key, value in BIGGEST.items():
        box = page.locator(f".st-key-{key} input")
        box.fill(str(value))
        box.press("Enter")
        page.wait_for_timeout(400)  # the rerun starts after the key press
        wait_idle(page)
    page.locator(".st-key-sb_apply button").first.click()
    page.get_by_text("Rebuilt:").first.wait_for(timeout=60_000)
    wait_idle(page)
    err = page.locator('[data-testid="stAlertContentError"]')
    assert err.count() == 0, err.first.inner_text()


def presentation_on(page) -> None:
    page.locator(".st-key-presentation label").first.click()
    wait_idle(page)


def visit_every_page(page, visit) -> None:
    """Take one step on Train, then call ``visit(name)`` on every page and on Inside's tabs. Returns the
    number of tiles in the Train page's filter grid."""
    page.locator(".st-key-btn_step button").first.click()
    wait_idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some("
                           "g => (g.layout.title.text || '').startsWith('Learned filters at step 1'))",
                           timeout=120_000)
    labels = page.evaluate("() => { for (const g of document.querySelectorAll('.js-plotly-plot')) "
                           "if ((g.layout.title.text || '').startsWith('Learned filters')) "
                           "return g.layout.annotations.length; return 0; }")
    visit("Train")
    for title in ("Inside", "Gradients", "Draw", "Evaluate"):
        _nav(page, title)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        if title == "Inside":
            for tab in ("Forward pass", "Convolution step-through", "Equations with live numbers"):
                page.get_by_role("tab", name=tab).click()
                wait_idle(page)
                visit(f"Inside / {tab}")
        else:
            visit(title)
    return labels


@pytest.fixture
def projector_page(browser, app_url):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    pg = ctx.new_page()
    pg.goto(app_url)
    wait_idle(pg)
    yield pg
    ctx.close()


def test_every_page_is_readable_on_a_projector_with_the_biggest_network(projector_page):
    page = projector_page
    set_biggest_network(page)
    presentation_on(page)
    problems: list[str] = []
    seen: list[str] = []

    def visit(name: str) -> None:
        page.wait_for_timeout(300)  # Plotly lays out after the script is idle
        exc = page.locator('[data-testid="stException"]')
        assert exc.count() == 0, f"{name}: {exc.first.inner_text()}"
        seen.append(name)
        problems.extend(check_figure_text(page, name))

    n_tiles = visit_every_page(page, visit)
    assert n_tiles == 32, "the Train page shows the biggest network's 32 filters"
    assert len(seen) == 7
    assert not problems, "\n".join(problems[:40])


STEP_JS = """() => { for (const g of document.querySelectorAll('.js-plotly-plot')) {
  const t = (g.layout.title && g.layout.title.text) || '';
  if (t.startsWith('Learned filters at step')) return parseInt(t.split('step ')[1]); } return null; }"""


def test_train_keyboard_shortcuts_and_never_while_typing(page):
    page.wait_for_function(f"({STEP_JS})() === 0", timeout=60_000)
    page.locator("h1").first.click()  # focus on the page, not in a field
    page.keyboard.press("s")
    page.wait_for_function(f"({STEP_JS})() === 1", timeout=60_000)
    page.keyboard.press("S")
    page.wait_for_function(f"({STEP_JS})() === 2", timeout=60_000)
    # typing an "s" or "r" in a field does nothing but type
    page.locator('[data-testid="stSidebar"] summary', has_text="Training").first.click()
    seed = page.locator(".st-key-sb_seed input")
    seed.click()
    seed.press("s")
    seed.press("r")
    page.wait_for_timeout(1500)
    wait_idle(page)
    assert page.evaluate(STEP_JS) == 2
    # Space plays, Space again pauses; R resets to step 0
    page.locator("h1").first.click()
    page.keyboard.press(" ")
    page.locator(".st-key-btn_pause button").first.wait_for(timeout=30_000)
    page.keyboard.press(" ")
    page.locator(".st-key-btn_play button").first.wait_for(timeout=30_000)
    wait_idle(page)
    page.keyboard.press("r")
    page.wait_for_function(f"({STEP_JS})() === 0", timeout=60_000)
    help_text = page.locator(".st-key-btn_play button").first.get_attribute("aria-label") or ""
    assert page.locator(".st-key-btn_play").count() == 1 and "Space" in (help_text + _tooltip(page))


def _tooltip(page) -> str:
    """The Play button's help tooltip text (hover it)."""
    page.locator(".st-key-btn_play button").first.hover()
    tip = page.locator('[data-testid="stTooltipContent"]')
    try:
        tip.first.wait_for(timeout=5_000)
    except Exception:
        return ""
    return tip.first.inner_text()

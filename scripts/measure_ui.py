#!/usr/bin/env python3
"""Measure how the cnnviz app feels in a real browser: the numbers quoted in the README.

Starts ``streamlit run app.py`` on a free loopback port (``tests/conftest.py``'s ``start_streamlit``), drives
Debian's Chromium with Playwright and measures, over several repetitions (median, p90, min, max):

(a) first page interactive: server process started -> the Train page's filter figure drawn and the script
    idle (the server is restarted for every repetition; the browser is started beforehand, not counted);
(b) Step click -> the Train page's filter figure shows the new step and changed weights (classroom preset,
    the default);
(c) live redraws per second while playing (changes of the filter figure counted in windows of a few s);
(d) Draw page: mouse-up after a stroke on the canvas -> the shown prediction changed (from "nothing drawn"
    after Clear to a digit).

(e) with ``--matrix``: for each network (the tutorial, classroom and deeper presets and the biggest custom
    network the sidebar and the server's cost limits allow: 32 filters × 3 conv layers), in a fresh session:
    Step click on Train, page switches to Inside, Gradients, Draw, Evaluate and back to Train (first draw of
    each), and the interactions Random, opening conv block 2, the tabs and a step-through slider move on
    Inside, One more step on Gradients. Each is timed from the click / key press to the script idle again
    with every visible Plotly figure drawn (two animation frames later), on the page's clock.

Times for (b) and (d) are taken on the page's own clock: from the click / mouseup event (a capture listener)
to the first animation frame that shows the change. Loopback only; every wait has a timeout and the whole
run is bounded by ``--max-seconds``. Prints the machine's load average at start and end, since on a shared
machine the numbers depend on it.

Usage:  python scripts/measure_ui.py [--reps 10] [--start-reps 3] [--live-windows 3] [--live-seconds 5]
        python scripts/measure_ui.py --matrix [--reps 3]      (only (e): networks × pages)
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, start_streamlit, stop_streamlit  # noqa: E402

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

# The Train page's first-conv-layer figure: [step in its title, sum |w| of its heatmap], or null.
FILTERS_JS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd.layout && gd.layout.title && gd.layout.title.text;
    if (t && t.startsWith('Learned filters at step') && gd._fullData && gd._fullData[0]) {
      let s = 0;
      for (const row of gd._fullData[0].z) for (const v of row) if (v === v && v !== null) s += Math.abs(v);
      return [parseInt(t.split('step ')[1]), s];
    }
  }
  return null;
}"""

# Arm a watcher: remember the page clock at the next `event` (capture phase, so also for events inside the
# canvas's shadow root), then poll every animation frame until `done()` holds and remember that time too.
ARM_JS = """([event, doneSrc, before]) => {
  const done = eval(doneSrc);
  window.__m = {t0: null, t1: null, val: null};
  window.addEventListener(event, () => { if (window.__m.t0 === null) window.__m.t0 = performance.now(); },
                          {capture: true, once: true});
  const poll = () => {
    const v = done(before);
    if (window.__m.t0 !== null && v !== null && v !== false) { window.__m.t1 = performance.now();
                                                                 window.__m.val = v; return; }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}"""
STEP_DONE_JS = f"""(before) => {{ const r = ({FILTERS_JS})();
  return r !== null && r[0] > before[0] && r[1] !== before[1] ? r[0] : null; }}"""
GUESS_DONE_JS = """() => { const el = document.querySelector('.draw-guess .digit');
  return el !== null && el.innerText ? el.innerText : null; }"""

# Count changes of the filter figure (its step) on every animation frame while playing.
COUNT_JS = f"""() => {{ window.__draws = []; window.__counting = true; let last = null;
  const poll = () => {{ if (!window.__counting) return; const r = ({FILTERS_JS})(); const s = r && r[0];
    if (s !== null && s !== last) {{ window.__draws.push([performance.now(), s]); last = s; }}
    requestAnimationFrame(poll); }};
  requestAnimationFrame(poll); }}"""

ONE = [(146, 35), (144, 90), (141, 150), (138, 210), (136, 245)]
_ANGLES = [i * (2 * math.pi + 0.3) / 39 for i in range(40)]
ZERO = [(140 + 62 * math.sin(t), 140 - 100 * math.cos(t)) for t in _ANGLES]


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout("--max-seconds reached")


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (with 3 samples p90 is the maximum)."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q / 100 * len(v)) - 1))]


def row(name: str, values: list[float], unit: str, fmt: str = "{:.0f}") -> str:
    if not values:
        return f"{name:<52} {'-':>8} {'-':>8} {'-':>8} {'-':>8}  {unit}  (no samples)"
    cells = [fmt.format(x) for x in (statistics.median(values), pct(values, 90), min(values), max(values))]
    return f"{name:<52} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8} {cells[3]:>8}  {unit}  (n={len(values)})"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_idle(pg, timeout: float = 60_000) -> None:
    pg.wait_for_selector(IDLE, timeout=timeout)


def settle(pg) -> None:
    """Let a rerun start (if one is coming) and finish."""
    time.sleep(0.3)
    wait_idle(pg)


def exceptions_shown(pg, where: str, errors: list[str]) -> None:
    exc = pg.locator('[data-testid="stException"]')
    if exc.count():
        errors.append(f"{where}: exception shown: {exc.first.inner_text()[:300]}")


def measured(pg, timeout_s: float) -> tuple[float, object]:
    """Wait for the armed watcher; (ms from event to change, value seen)."""
    pg.wait_for_function("() => window.__m && window.__m.t1 !== null", timeout=timeout_s * 1000, polling=20)
    m = pg.evaluate("() => window.__m")
    return m["t1"] - m["t0"], m["val"]


def first_interactive(browser, reps: int) -> tuple[list[float], list[float], tuple]:
    """(a): restart the server each time; seconds to /_stcore/health and to an interactive Train page."""
    health, interactive, last = [], [], None
    for i in range(reps):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = ctx.new_page()
        pg.goto("about:blank")
        t0 = time.perf_counter()
        proc, url = start_streamlit()
        health.append(time.perf_counter() - t0)
        try:
            pg.goto(url, timeout=60_000)
            pg.wait_for_function(f"({FILTERS_JS})() !== null", timeout=60_000)
            wait_idle(pg)
            interactive.append(time.perf_counter() - t0)
        except BaseException:
            ctx.close()
            stop_streamlit(proc)
            raise
        if i < reps - 1:
            ctx.close()
            stop_streamlit(proc)
        else:
            last = (proc, url, ctx, pg)  # the last server and its fresh session are used for (b) and (c)
    return health, interactive, last


def step_latency(pg, reps: int, warmup: int, errors: list[str]) -> list[float]:
    """(b): click Step, time until the filter figure shows the next step with changed weights."""
    btn = pg.locator(".st-key-btn_step button").first
    out = []
    for i in range(warmup + reps):
        before = pg.evaluate(FILTERS_JS)
        pg.evaluate(ARM_JS, ["click", STEP_DONE_JS, before])
        btn.click(timeout=30_000)
        ms, _ = measured(pg, 30)
        if i >= warmup:
            out.append(ms)
        settle(pg)
    exceptions_shown(pg, "Train after Step", errors)
    return out


def live_rate(pg, windows: int, seconds: float, errors: list[str]) -> tuple[list[float], list[float]]:
    """(c): press Play; per window, redraws of the filter figure per second and training steps per second."""
    pg.locator(".st-key-btn_play button").first.click(timeout=30_000)
    pg.locator(".st-key-btn_pause button").first.wait_for(timeout=30_000)
    time.sleep(1.5)  # past the first tick
    rates, steps = [], []
    for _ in range(windows):
        pg.evaluate(COUNT_JS)
        time.sleep(seconds)
        draws = pg.evaluate("() => { window.__counting = false; return window.__draws; }")
        if len(draws) >= 2:
            span = (draws[-1][0] - draws[0][0]) / 1000
            rates.append((len(draws) - 1) / span if span > 0 else 0.0)  # changes/s, first to last change
            steps.append((draws[-1][1] - draws[0][1]) / span if span > 0 else 0.0)
        else:
            rates.append(len(draws) / seconds)
    pg.locator(".st-key-btn_pause button").first.click(timeout=30_000)
    pg.locator(".st-key-btn_play button").first.wait_for(timeout=30_000)
    settle(pg)
    exceptions_shown(pg, "Train after Play/Pause", errors)
    return rates, steps


def stroke(pg, points: list[tuple[float, float]]) -> None:
    box = pg.locator("canvas.upper-canvas").bounding_box()
    pg.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    pg.mouse.down()
    for x, y in points[1:]:
        pg.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    pg.mouse.up()


def draw_latency(browser, url: str, reps: int, warmup: int, errors: list[str]
                 ) -> tuple[list[float], list[str]]:
    """(d): a fresh session on the Draw page; Clear, draw a 1 or a 0, time mouse-up -> the answer shown."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        pg = ctx.new_page()
        pg.on("pageerror", lambda e: errors.append(f"Draw page JavaScript error: {e}"))
        pg.goto(url + "draw", timeout=60_000)
        wait_idle(pg)
        pg.locator("canvas.upper-canvas").wait_for(timeout=30_000)
        out, seen = [], []
        for i in range(warmup + reps):
            if pg.locator(".draw-guess .digit").count():
                pg.locator(".st-key-draw_clear button:visible").click(timeout=30_000)
                pg.wait_for_selector(".draw-empty", timeout=30_000)
                settle(pg)
            pg.locator("canvas.upper-canvas").wait_for(timeout=30_000)
            pg.evaluate(ARM_JS, ["mouseup", GUESS_DONE_JS, None])
            stroke(pg, ONE if i % 2 == 0 else ZERO)
            ms, val = measured(pg, 30)
            if i >= warmup:
                out.append(ms)
                seen.append(f"{'1' if i % 2 == 0 else '0'}->{val}")
            settle(pg)
        exceptions_shown(pg, "Draw", errors)
        return out, seen
    finally:
        ctx.close()


# (e) Arm a watcher for "the click's rerun finished and its figures are drawn": t0 at the next click or key
# press (capture phase), t1 two animation frames after the app went from running back to idle, provided every
# visible Plotly figure has been laid out. The idle state is watched with a MutationObserver, so a rerun
# that starts and ends between two polls is still seen.
RERUN_ARM_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const m = window.__r = {t0: null, t1: null, ran: false};
  const start = () => { if (m.t0 === null) m.t0 = performance.now(); };
  window.addEventListener('click', start, {capture: true, once: true});
  window.addEventListener('keydown', start, {capture: true, once: true});
  if (window.__rObs) window.__rObs.disconnect();
  const drawn = () => [...document.querySelectorAll('.js-plotly-plot')].every(
      g => g.getBoundingClientRect().width === 0 || (g._fullLayout && !g._transitioning));
  const finish = () => requestAnimationFrame(() => requestAnimationFrame(() => {
      if (app.getAttribute('data-test-script-state') !== 'notRunning') return;
      if (!drawn()) { finish(); return; }
      m.t1 = performance.now(); }));
  window.__rObs = new MutationObserver(() => {
    const st = app.getAttribute('data-test-script-state');
    if (m.t0 !== null && st === 'running') m.ran = true;
    if (m.ran && m.t1 === null && st === 'notRunning') finish();
  });
  window.__rObs.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""

NETWORKS = {  # name -> sidebar preset and architecture fields
    "tutorial": ("tutorial", {}),
    "classroom": ("classroom", {}),
    "deeper": ("deeper", {}),
    "custom 32 filters × 3 conv": ("classroom", {"sb_filters": 32, "sb_n_conv": 3, "sb_kernel": 3}),
}
PRESET_TEXT = {"tutorial": "Tutorial", "classroom": "Classroom", "deeper": "Deeper"}


def timed(pg, action, what: str = "", timeout_s: float = 20.0) -> float:
    """ms from the click / key press that ``action()`` makes to its rerun finished and figures drawn."""
    for attempt in (1, 2):
        settle(pg)  # a run still going would hide the start of the click's own run
        pg.evaluate(RERUN_ARM_JS)
        action()
        try:
            pg.wait_for_function("() => window.__r && window.__r.t1 !== null", timeout=timeout_s * 1000,
                                 polling=20)
            break
        except Exception as e:
            r = pg.evaluate("() => window.__r")
            if attempt == 2 or r["ran"]:  # a click that started no run at all is tried once more
                raise RuntimeError(f"{what}: no redrawn page within {timeout_s:g} s (watcher {r})") from e
            print(f"    {what}: the click started no run; clicking again", flush=True)
    r = pg.evaluate("() => window.__r")
    return r["t1"] - r["t0"]


def choose_network(pg, name: str) -> None:
    """Sidebar: the network's preset, then its architecture fields, then Apply."""
    preset, fields = NETWORKS[name]
    pg.locator(".st-key-sb_preset input").first.click()
    pg.get_by_role("option").filter(has_text=PRESET_TEXT[preset]).first.click()
    settle(pg)
    if fields:
        pg.locator('[data-testid="stSidebar"] summary', has_text="Architecture").first.click()
        for key, value in fields.items():
            box = pg.locator(f".st-key-{key} input")
            box.fill(str(value))
            box.press("Enter")
            settle(pg)
    apply = pg.locator(".st-key-sb_apply button").first
    if apply.is_disabled():  # the session already runs this network (the default preset): nothing to apply
        return
    apply.click()
    pg.get_by_text("Rebuilt:").first.wait_for(timeout=60_000)
    settle(pg)


def nav(pg, title: str):
    return lambda: pg.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


def matrix(browser, url: str, reps: int, errors: list[str], networks: list[str] | None = None
           ) -> list[tuple[str, str, list[float]]]:
    """(e): per network, a fresh session; every page's first draw and the interactions, ``reps`` times."""
    out = []
    for name in networks or list(NETWORKS):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        times = {}
        try:
            pg = ctx.new_page()
            pg.on("pageerror", lambda e, n=name: errors.append(f"{n}: JavaScript error: {e}"))
            pg.goto(url, timeout=60_000)
            wait_idle(pg)
            choose_network(pg, name)

            def add(what: str, action, _t=times, _pg=pg) -> None:
                _t.setdefault(what, []).append(timed(_pg, action, what))

            step = pg.locator(".st-key-btn_step button").first
            timed(pg, step.click, "first Step")  # warm-up: the first step after Apply
            for _ in range(reps):
                add("Train: Step click", step.click)
                add("page switch -> Inside", nav(pg, "Inside"))
                rnd = pg.locator(".st-key-inside_random button").first
                add("Inside: Random", rnd.click)
                block = pg.locator(".st-key-inside_block_2 summary")
                if block.count():  # conv blocks 2, 3… are built when opened
                    add("Inside: open conv block 2", block.first.click)
                step_tab = pg.get_by_role("tab", name="Convolution step-through")
                add("Inside: tab -> step-through", step_tab.click)  # each tab is built when it opens
                pg.get_by_text("This image with a learned filter").first.click()
                settle(pg)
                slider = pg.get_by_role("slider").first
                slider.focus()
                add("Inside: step-through slider move", lambda s=slider: s.press("ArrowRight"))
                add("Inside: tab -> equations", pg.get_by_role("tab", name="Equations").click)
                pg.get_by_role("tab", name="Forward pass").click()
                add("page switch -> Gradients", nav(pg, "Gradients"))
                more = pg.locator(".st-key-grad_step button").first
                add("Gradients: One more step", more.click)
                add("page switch -> Draw", nav(pg, "Draw"))
                add("page switch -> Evaluate", nav(pg, "Evaluate"))
                add("page switch -> Train", nav(pg, "Train"))
                exceptions_shown(pg, name, errors)
        except Exception as e:  # one network's failure is reported, the others are still measured
            errors.append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
        finally:
            out += [(name, what, v) for what, v in times.items()]
            print("\n".join(row(f"{name}: {what}", v, "ms") for what, v in times.items()), flush=True)
            ctx.close()
    return out


def markdown_table(results: list[tuple[str, str, list[float]]]) -> str:
    """README table: one row per measurement, one column per network (median ms, max in brackets)."""
    nets = list(dict.fromkeys(n for n, _, _ in results))
    whats = list(dict.fromkeys(w for _, w, _ in results))
    cell = {(n, w): v for n, w, v in results}
    lines = ["| | " + " | ".join(nets) + " |", "|---|" + "---:|" * len(nets)]
    for w in whats:
        vals = [cell.get((n, w)) for n in nets]
        lines.append(f"| {w} | " + " | ".join(
            f"{statistics.median(v):.0f} ({max(v):.0f})" if v else "–" for v in vals) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10, help="measured Step clicks and strokes (1..50)")
    ap.add_argument("--start-reps", type=int, default=3, help="server restarts for (a) (1..10)")
    ap.add_argument("--live-windows", type=int, default=3, help="windows counted while playing (1..10)")
    ap.add_argument("--live-seconds", type=float, default=5.0, help="seconds per live window (1..30)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured clicks/strokes first (caches warm)")
    ap.add_argument("--max-seconds", type=int, default=900, help="abort the whole run after this long")
    ap.add_argument("--matrix", action="store_true", help="only (e): networks × pages and interactions")
    ap.add_argument("--networks", default="", help="with --matrix: a comma-separated subset of "
                    + ", ".join(f"'{n}'" for n in NETWORKS))
    a = ap.parse_args()
    if not (1 <= a.reps <= 50 and 1 <= a.start_reps <= 10 and 1 <= a.live_windows <= 10
            and 1 <= a.live_seconds <= 30 and 0 <= a.warmup <= 10 and 30 <= a.max_seconds <= 3600):
        ap.error("an option is out of range (see --help)")
    if not Path(CHROMIUM).exists():
        ap.error(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(a.max_seconds)
    print(f"cnnviz UI measurements  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC  "
          f"cpus={os.cpu_count()}  load average at start: {load()}", flush=True)
    errors: list[str] = []
    proc = ctx = None
    lines = []
    if a.matrix:
        try:
            proc, url = start_streamlit()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                chosen = [n for n in NETWORKS if n in a.networks.split(",")] if a.networks else None
                results = matrix(browser, url, a.reps, errors, chosen)
                browser.close()
        finally:
            signal.alarm(0)
            stop_streamlit(proc)
        print("\nms from the click to the redrawn page, median (max) of " + f"{a.reps} (1280×900, Chromium):")
        print(markdown_table(results))
        print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors))
        print(f"load average at end: {load()}  ({datetime.now(UTC):%H:%M:%S} UTC)")
        return 1 if errors else 0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            health, interactive, (proc, url, ctx, pg) = first_interactive(browser, a.start_reps)
            pg.on("pageerror", lambda e: errors.append(f"Train page JavaScript error: {e}"))
            lines.append(row("(a) server start -> /_stcore/health answers", health, "s", "{:.2f}"))
            lines.append(row("(a) server start -> first page interactive", interactive, "s", "{:.2f}"))
            print("\n".join(lines[-2:]), flush=True)
            lines.append(row("(b) Step click -> filter figure changed", step_latency(pg, a.reps, a.warmup,
                                                                                     errors), "ms"))
            print(lines[-1], flush=True)
            rates, steps = live_rate(pg, a.live_windows, a.live_seconds, errors)
            lines.append(row(f"(c) live redraws per second (Normal, {a.live_seconds:g} s windows)", rates,
                             "/s", "{:.1f}"))
            lines.append(row("(c) training steps per second while playing", steps, "/s", "{:.0f}"))
            print("\n".join(lines[-2:]), flush=True)
            ctx.close()
            ctx = None
            draw, seen = draw_latency(browser, url, a.reps, a.warmup, errors)
            lines.append(row("(d) Draw: mouse-up -> prediction shown", draw, "ms"))
            print(lines[-1], flush=True)
            print(f"    strokes drawn -> answer shown: {' '.join(seen)}")
            browser.close()
    finally:
        signal.alarm(0)
        stop_streamlit(proc)
    print(f"\n{'measurement':<52} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
    print("\n".join(lines))
    print(f"\n(b) and (d) exclude {a.warmup} warm-up click(s)/stroke(s); p90 is nearest-rank.")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors))
    print(f"load average at end: {load()}  ({datetime.now(UTC):%H:%M:%S} UTC)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

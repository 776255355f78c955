#!/usr/bin/env python3
"""Load test: N browser sessions on one cnnviz server pressing Play: latency, throughput, memory, errors.

Starts ``streamlit run app.py`` on a free loopback port (or targets ``--url``, loopback only), opens
``--sessions`` Playwright browser contexts in Debian's Chromium (one Streamlit session each), lets the first
``--playing`` of them press Play, and for ``--duration`` seconds measures:

- click latency: a playing session clicks Pause and waits until the page shows Play (a full script run on
  the server), then clicks Play again and waits for Pause; an idle session clicks Step and waits until the
  step counter grows. Percentiles over all clicks.
- redraw interval of live training (time between two different step counters, noted by the page itself
  every 0.1 s) and training steps/s per playing session;
- server RSS (start, peak, end, and after every tab closed and ``--ttl`` seconds passed) and CPU used;
- errors: exceptions shown on a page, error alerts, page (JavaScript) errors, lost connections, timeouts.

The browsers run on the server's machine and take a large share of its cores (1.4 of 2 with 10 tabs), which
a classroom's server does not pay: ``--nice-browsers 19`` lets the server have a CPU first (the browsers'
own scheduling group is reniced). ``wsload.py`` measures the server with no browser at all; the helpers both
share are in ``loadcommon.py``.

Bounded: at most 60 sessions, 600 s, loopback only. Not part of the test suite (it takes minutes); ``--smoke``
runs 2 sessions for 15 s. Example:  python scripts/loadtest.py --sessions 10 --playing 10 --duration 60
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadcommon import (  # noqa: E402
    RssSampler,
    ServerMeter,
    SessionStats,
    arg_parser,
    check_args,
    descendants,
    descendants_cpu_seconds,
    drive,
    healthy,
    open_sessions,
    renice,
    run_against_server,
    summarize,
)

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, STEP_JS  # noqa: E402

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

HIDE_CHARTS_JS = """document.addEventListener('DOMContentLoaded', () => {
  const s = document.createElement('style');
  s.textContent = '[data-testid="stPlotlyChart"] {display: none !important;}';
  document.head.appendChild(s);
});"""
PLAY_BUTTON = ".st-key-btn_play button, .st-key-btn_pause button"  # Play and Pause have their own keys
# The page itself notes every change of the Step metric (its clock, 10 times a second); the driver collects
# the notes now and then. Cheaper than a round trip to every page 10 times a second, and just as precise.
STEP_RECORDER_JS = "(() => {\n  const read = " + STEP_JS + """;
  window.__steps = [];
  setInterval(() => {
    const v = read(), a = window.__steps;
    if (v !== null && (a.length === 0 || a[a.length - 1][1] !== v)) a.push([Date.now() / 1000, v]);
  }, 100);
})();"""


# ----------------------------------------------------------------------------------------------------------
# One session
# ----------------------------------------------------------------------------------------------------------
class Session(SessionStats):
    """One browser context (one Streamlit session) and what it measured."""

    async def open(self, browser, url: str, hide_charts: bool = False) -> None:
        t0 = time.perf_counter()
        self.ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        if hide_charts:  # the server still computes and sends every figure; the browser skips drawing them
            await self.ctx.add_init_script(HIDE_CHARTS_JS)
        await self.ctx.add_init_script(STEP_RECORDER_JS)
        self.page = await self.ctx.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        await self.page.goto(url, timeout=120_000)
        await self.page.wait_for_selector(".st-key-btn_step button", timeout=120_000)
        await self.page.wait_for_selector(IDLE, timeout=120_000)
        self.opened_s = time.perf_counter() - t0

    async def step_counter(self) -> int | None:
        try:
            return await self.page.evaluate(STEP_JS)
        except Exception as e:  # noqa: BLE001 - a closed page or navigation: counted as an error
            self.errors.append(f"read step: {type(e).__name__}")
            return None

    async def step_changes(self) -> list[tuple[float, int]]:
        """The (time, step counter) changes the page noted since the last call."""
        try:
            return [(t, v) for t, v in await self.page.evaluate("() => window.__steps.splice(0)")]
        except Exception as e:  # noqa: BLE001 - a closed page or navigation: counted as an error
            self.errors.append(f"read steps: {type(e).__name__}")
            return []

    async def wait_until(self, pred_js: str, arg, timeout: float) -> bool:
        try:
            await self.page.wait_for_function(pred_js, arg=arg, timeout=timeout * 1000, polling=25)
            return True
        except Exception:  # noqa: BLE001 - a timeout is the measurement's failure
            return False

    async def click_play(self, want_after: str, timeout: float = 30, retry_after: float | None = None
                         ) -> float | None:
        """Click Play/Pause; seconds until the button shows ``want_after`` (None on timeout).

        With ``retry_after``, the button is clicked again when nothing happened after that many seconds (as a
        person would; counted in ``retries``). Off by default: a second click on a slow server toggles back.
        """
        retry_after = timeout if retry_after is None else retry_after
        t0 = time.perf_counter()
        js = ("(w) => { const b = document.querySelector('" + PLAY_BUTTON + "');"
              " return b && b.innerText.includes(w); }")
        while time.perf_counter() - t0 < timeout:
            if time.perf_counter() > t0 + 0.1:
                self.retries += 1
            await self.page.locator(PLAY_BUTTON).first.click(timeout=timeout * 1000)
            left = timeout - (time.perf_counter() - t0)
            if await self.wait_until(js, want_after, min(retry_after, max(0.1, left))):
                return time.perf_counter() - t0
        self.errors.append(f"timeout: button did not turn to {want_after} in {timeout:.0f} s")
        return None

    async def click_step(self, timeout: float = 30) -> float | None:
        before = await self.step_counter()
        if before is None:
            return None
        t0 = time.perf_counter()
        await self.page.locator(".st-key-btn_step button").first.click(timeout=timeout * 1000)
        ok = await self.wait_until(f"(b) => {{ const v = ({STEP_JS})(); return v !== null && v > b; }}",
                                   before, timeout)
        if not ok:
            self.errors.append(f"timeout: Step did not update within {timeout:.0f} s")
            return None
        return time.perf_counter() - t0

    async def check_page(self) -> None:
        p = self.page
        n_exc = await p.locator('[data-testid="stException"]').count()
        if n_exc:
            self.errors.append(f"{n_exc} exception(s) shown: " + (await p.locator(
                '[data-testid="stException"]').first.inner_text())[:200])
        for el in await p.locator('[data-testid="stAlertContentError"]').all():
            self.errors.append("error alert: " + (await el.inner_text())[:200])
        txt = await p.evaluate("() => document.body.innerText")
        if "Connection error" in txt or "Is Streamlit still running" in txt:
            self.errors.append("connection lost")
        if "Waiting for a free CPU slot" in txt:
            self.waiting_seen += 1

    async def run_playing(self, duration: float, probe_every: float) -> None:
        lat = await self.click_play("Pause")
        if lat is not None:
            self.latencies.append(lat)
        t_end = time.perf_counter() + duration
        next_probe = time.perf_counter() + probe_every * (0.5 + (self.i % 5) / 5)
        await self.step_changes()  # from here on, the changes count
        while time.perf_counter() < t_end:
            await asyncio.sleep(min(1.0, max(0.05, min(next_probe, t_end) - time.perf_counter())))
            for t, v in await self.step_changes():
                self.record_step(t, v)
            if time.perf_counter() >= next_probe:
                await self.check_page()
                for want in ("Play", "Pause"):  # pause, then play again: two full script runs
                    lat = await self.click_play(want)
                    if lat is not None:
                        self.latencies.append(lat)
                await self.step_changes()  # changes during the probe are no redraws of live training
                self.restart_redraws()
                next_probe = time.perf_counter() + probe_every
        await self.check_page()
        lat = await self.click_play("Play")  # stop training
        if lat is not None:
            self.latencies.append(lat)

    async def run_idle(self, duration: float, probe_every: float) -> None:
        t_end = time.perf_counter() + duration
        await asyncio.sleep(probe_every * (self.i % 7) / 7)
        while time.perf_counter() < t_end:
            lat = await self.click_step()
            if lat is not None:
                self.latencies.append(lat)
            await self.check_page()
            await asyncio.sleep(probe_every)


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------
async def run(a, url: str, pid: int | None) -> dict:
    from playwright.async_api import async_playwright

    result: dict = {"client": "playwright", "sessions": a.sessions, "playing": a.playing,
                    "duration_s": a.duration, "cycles": a.cycles, "hide_charts": a.hide_charts,
                    "nice_browsers": a.nice_browsers,
                    "rss_after_close_mb": []}
    live: list[Session] = []
    open_errors: list[str] = []
    meter, ccpu_used = ServerMeter(pid), 0.0
    async with RssSampler(pid) as rss:
        for cycle in range(a.cycles):  # each cycle: fresh sessions open, train, close (then the TTL passes)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                sessions = [Session(i, i < a.playing) for i in range(a.sessions)]
                t_open = time.perf_counter()
                opener = functools.partial(Session.open, browser=browser, url=url, hide_charts=a.hide_charts)
                cur, errs = await open_sessions(sessions, opener, f"cycle {cycle} open")
                live, open_errors = live + cur, open_errors + errs
                result.setdefault("open_all_s", round(time.perf_counter() - t_open, 1))
                if a.nice_browsers:  # every browser process exists now (one renderer per context)
                    browsers = descendants(os.getpid(), pid)
                    result["browser_processes_reniced"] = renice(browsers, a.nice_browsers, spare=[pid])
                result.setdefault("rss_after_open_mb", rss.read())
                meter.start()
                ccpu0 = descendants_cpu_seconds(os.getpid(), pid)
                await drive(cur, a.duration, a.probe_every)
                meter.stop()
                ccpu_used += descendants_cpu_seconds(os.getpid(), pid) - ccpu0
                result["rss_end_mb"] = rss.read()
                result["healthy_at_end"] = healthy(url)
                for s in cur:
                    await s.ctx.close()
                await browser.close()
            if pid is not None and a.ttl is not None:
                await asyncio.sleep(a.ttl + 15)  # Streamlit frees a closed tab's session after the TTL
                result["rss_after_close_mb"].append(rss.read())
    result.update(meter.report())
    result["browsers_cpu_cores_used"] = round(ccpu_used / meter.wall, 2) if meter.wall else None
    result.update({"rss_start_mb": rss.start_mb, "rss_peak_mb": rss.peak_mb})
    result.update(summarize(live, open_errors))
    return result


def main() -> int:
    ap = arg_parser(__doc__, ttl_default=None)
    ap.add_argument("--hide-charts", action="store_true",
                    help="browsers do not draw Plotly charts (on one small machine their CPU competes with "
                         "the server's; in a classroom every student has their own)")
    ap.add_argument("--nice-browsers", type=int, default=0, metavar="N",
                    help="run the browsers at niceness N (1..19) once their pages are open, so that on one "
                         "small machine the server gets a CPU first, as on its own machine in a classroom "
                         "(default 0: browsers and server compete as equals)")
    ap.add_argument("--cycles", type=int, default=1,
                    help="repeat open / train / close this many times (with --ttl: a leak check on RSS)")
    a = ap.parse_args()
    check_args(ap, a)
    if not 1 <= a.cycles <= 5:
        ap.error("--cycles must be 1..5")
    if not 0 <= a.nice_browsers <= 19:
        ap.error("--nice-browsers must be 0..19")
    if not Path(CHROMIUM).exists():
        ap.error(f"needs Debian's chromium at {CHROMIUM}")
    return run_against_server(a, lambda url, pid: run(a, url, pid))


if __name__ == "__main__":
    sys.exit(main())

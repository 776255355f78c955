#!/usr/bin/env python3
"""Load test: N browser sessions on one cnnviz server pressing Play: latency, throughput, memory, errors.

Starts ``streamlit run app.py`` on a free loopback port (or targets ``--url``, loopback only), opens
``--sessions`` Playwright browser contexts in Debian's Chromium (one Streamlit session each), lets the first
``--playing`` of them press Play, and for ``--duration`` seconds measures:

- click latency: a playing session clicks Pause and waits until the page shows Play (a full script run on
  the server), then clicks Play again and waits for Pause; an idle session clicks Step and waits until the
  step counter grows. Percentiles over all clicks.
- redraw interval of live training (time between two different step counters seen) and training steps/s
  per playing session;
- server RSS (start, peak, end, and after every tab closed and ``--ttl`` seconds passed) and CPU used;
- errors: exceptions shown on a page, error alerts, page (JavaScript) errors, lost connections, timeouts.

Bounded: at most 60 sessions, 600 s, loopback only. Not part of the test suite (it takes minutes); ``--smoke``
runs 2 sessions for 15 s. Example:  python scripts/loadtest.py --sessions 10 --playing 10 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, STEP_JS, start_streamlit  # noqa: E402

MAX_SESSIONS, MAX_DURATION = 60, 600
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

HIDE_CHARTS_JS = """document.addEventListener('DOMContentLoaded', () => {
  const s = document.createElement('style');
  s.textContent = '[data-testid="stPlotlyChart"] {display: none !important;}';
  document.head.appendChild(s);
});"""
PLAY_BUTTON = ".st-key-btn_play button, .st-key-btn_pause button"  # Play and Pause have their own keys


# ----------------------------------------------------------------------------------------------------------
# Server
# ----------------------------------------------------------------------------------------------------------
def start_server(ttl: int) -> tuple[subprocess.Popen, str]:
    """A server on a free loopback port whose sessions are freed ``ttl`` s after their tab closed."""
    return start_streamlit(extra_args=("--server.disconnectedSessionTTL", str(ttl)))


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def schedstat(pid: int | None) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) summed over a process's threads."""
    if pid is None:
        return None
    run = wait = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    a, b, _ = f.read().split()
                run, wait = run + int(a) / 1e9, wait + int(b) / 1e9
            except (OSError, ValueError):
                continue
    except OSError:
        return None
    return run, wait


def descendants_cpu_seconds(root: int, exclude: int | None) -> float:
    """CPU seconds used so far by the processes descended from ``root`` (the browsers), except ``exclude``."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    total = 0.0
    for pid in parent:
        p, chain = pid, 0
        while p not in (0, 1, root) and chain < 50:
            p, chain = parent.get(p, 0), chain + 1
        if p == root and pid not in (root, exclude):
            total += cpu_seconds(pid) or 0.0
    return total


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url + "_stcore/health", timeout=5).read() == b"ok"
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------------------
# One session
# ----------------------------------------------------------------------------------------------------------
class Session:
    def __init__(self, i: int, playing: bool):
        self.i, self.playing = i, playing
        self.latencies: list[float] = []
        self.redraws: list[float] = []
        self.steps: list[tuple[float, int]] = []  # (time, step counter) while playing
        self.errors: list[str] = []
        self.opened_s: float | None = None
        self.waiting_seen = 0
        self.retries = 0

    async def open(self, browser, url: str, hide_charts: bool = False) -> None:
        t0 = time.perf_counter()
        self.ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        if hide_charts:  # the server still computes and sends every figure; the browser skips drawing them
            await self.ctx.add_init_script(HIDE_CHARTS_JS)
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
        last_val, last_change = None, None
        while time.perf_counter() < t_end:
            v = await self.step_counter()
            now = time.perf_counter()
            if v is not None:
                self.steps.append((now, v))
                if last_val is not None and v != last_val:
                    if last_change is not None:
                        self.redraws.append(now - last_change)
                    last_change = now
                elif last_val is None:
                    last_change = now
                last_val = v
            if now >= next_probe:
                await self.check_page()
                for want in ("Play", "Pause"):  # pause, then play again: two full script runs
                    lat = await self.click_play(want)
                    if lat is not None:
                        self.latencies.append(lat)
                last_val = last_change = None
                next_probe = time.perf_counter() + probe_every
            await asyncio.sleep(0.1)
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

    def steps_per_s(self) -> float | None:
        """Training rate over the playing period (the counter's growth; pauses for probes included)."""
        if len(self.steps) < 2:
            return None
        (t0, s0), (t1, s1) = self.steps[0], self.steps[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------
def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * (len(v) - 1))))]


async def run(a, url: str, pid: int | None) -> dict:
    from playwright.async_api import async_playwright

    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def sample_rss():
        while not stop.is_set():
            r = rss_mb(pid)
            if r is not None:
                samples.append((time.perf_counter(), r))
            await asyncio.sleep(1.0)

    result: dict = {"sessions": a.sessions, "playing": a.playing, "duration_s": a.duration,
                    "cycles": a.cycles, "hide_charts": a.hide_charts}
    rss0 = rss_mb(pid)
    sampler = asyncio.create_task(sample_rss())
    live: list[Session] = []
    open_errors: list[str] = []
    cpu_used = ccpu_used = wall = run_s = wait_s = 0.0
    result["rss_after_close_mb"] = []
    for cycle in range(a.cycles):  # each cycle: fresh sessions open, train, close (then the TTL passes)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            sessions = [Session(i, i < a.playing) for i in range(a.sessions)]
            t_open = time.perf_counter()
            opens = [s.open(browser, url, a.hide_charts) for s in sessions]
            opened = await asyncio.gather(*opens, return_exceptions=True)
            open_errors += [f"cycle {cycle} open: {type(e).__name__}: {str(e)[:150]}"
                            for e in opened if isinstance(e, Exception)]
            cur = [s for s, e in zip(sessions, opened, strict=True) if not isinstance(e, Exception)]
            live += cur
            result.setdefault("open_all_s", round(time.perf_counter() - t_open, 1))
            result.setdefault("rss_after_open_mb", rss_mb(pid))
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            ccpu0 = descendants_cpu_seconds(os.getpid(), pid)
            sched0 = schedstat(pid)
            runs = [(s.run_playing if s.playing else s.run_idle)(a.duration, a.probe_every) for s in cur]
            outcomes = await asyncio.gather(*runs, return_exceptions=True)
            for s, o in zip(cur, outcomes, strict=True):
                if isinstance(o, Exception):
                    s.errors.append(f"driver: {type(o).__name__}: {str(o)[:200]}")
            cpu1, t1 = cpu_seconds(pid), time.perf_counter()
            sched1 = schedstat(pid)
            if cpu0 is not None and cpu1 is not None:
                cpu_used += cpu1 - cpu0
            ccpu_used += descendants_cpu_seconds(os.getpid(), pid) - ccpu0
            wall += t1 - t0
            if sched0 and sched1:  # how starved the server was by everything else on the machine
                run_s, wait_s = run_s + sched1[0] - sched0[0], wait_s + sched1[1] - sched0[1]
            result["rss_end_mb"] = rss_mb(pid)
            result["healthy_at_end"] = healthy(url)
            for s in cur:
                await s.ctx.close()
            await browser.close()
        if pid is not None and a.ttl is not None:
            await asyncio.sleep(a.ttl + 15)  # Streamlit frees a closed tab's session after the TTL
            result["rss_after_close_mb"].append(rss_mb(pid))
    stop.set()
    await sampler
    if run_s:
        result["server_wait_for_cpu_per_cpu_s"] = round(wait_s / run_s, 2)
    result["browsers_cpu_cores_used"] = round(ccpu_used / wall, 2) if wall else None
    result["server_cpu_cores_used"] = round(cpu_used / wall, 2) if wall and pid else None

    lat = [x for s in live for x in s.latencies]
    redraw = [x for s in live if s.playing for x in s.redraws]
    rates = [r for s in live if s.playing if (r := s.steps_per_s()) is not None]
    errors = open_errors + [f"session {s.i}: {e}" for s in live for e in s.errors]
    result.update({
        "sessions_served": len(live),
        "clicks": len(lat),
        "click_latency_s": {q: _r(pct(lat, q)) for q in (50, 90, 99)},
        "click_latency_max_s": round(max(lat), 3) if lat else None,
        "redraw_interval_s": {q: _r(pct(redraw, q)) for q in (50, 90)},
        "steps_per_s_per_playing_session": {
            "median": round(statistics.median(rates), 1) if rates else None,
            "min": round(min(rates), 1) if rates else None, "max": round(max(rates), 1) if rates else None},
        "rss_start_mb": rss0,
        "rss_peak_mb": max((r for _, r in samples), default=None),
        "open_page_s_median": round(statistics.median([s.opened_s for s in live]), 2) if live else None,
        "waiting_message_seen": sum(s.waiting_seen for s in live),
        "clicks_repeated": sum(s.retries for s in live),
        "errors": len(errors),
        "error_samples": errors[:10],
    })
    return result


def loopback(url: str) -> bool:
    return urllib.parse.urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help=f"browser sessions (<= {MAX_SESSIONS})")
    ap.add_argument("--playing", type=int, default=None, help="how many of them press Play (default: all)")
    ap.add_argument("--duration", type=float, default=60, help=f"seconds of load (<= {MAX_DURATION})")
    ap.add_argument("--probe-every", type=float, default=8.0, help="seconds between probes of one session")
    ap.add_argument("--url", help="target a running server (loopback only) instead of starting one")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for RSS and CPU")
    ap.add_argument("--ttl", type=int, default=None,
                    help="started server: server.disconnectedSessionTTL; then RSS is measured after the TTL")
    ap.add_argument("--hide-charts", action="store_true",
                    help="browsers do not draw Plotly charts (on one small machine their CPU competes with "
                         "the server's; in a classroom every student has their own)")
    ap.add_argument("--cycles", type=int, default=1,
                    help="repeat open / train / close this many times (with --ttl: a leak check on RSS)")
    ap.add_argument("--smoke", action="store_true", help="2 sessions, both playing, 15 s")
    ap.add_argument("--json", help="also write the result to this file")
    a = ap.parse_args()
    if a.smoke:
        a.sessions, a.playing, a.duration, a.probe_every = 2, 2, 15, 5
    a.playing = a.sessions if a.playing is None else a.playing
    if not 1 <= a.sessions <= MAX_SESSIONS or not 0 <= a.playing <= a.sessions:
        ap.error(f"--sessions must be 1..{MAX_SESSIONS} and --playing 0..sessions")
    if not 1 <= a.cycles <= 5:
        ap.error("--cycles must be 1..5")
    if not 1 <= a.duration <= MAX_DURATION:
        ap.error(f"--duration must be 1..{MAX_DURATION} s")
    if not Path(CHROMIUM).exists():
        ap.error(f"needs Debian's chromium at {CHROMIUM}")
    proc = None
    if a.url:
        if not loopback(a.url):
            ap.error("--url must be a loopback address (this script never loads a remote server)")
        url, pid = a.url.rstrip("/") + "/", a.pid
    else:
        proc, url = start_server(a.ttl if a.ttl is not None else 120)
        pid = proc.pid
    try:
        res = asyncio.run(run(a, url, pid))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    res["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                      "loadavg_at_end": [round(x, 1) for x in load] if load else None}
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0 if res["errors"] == 0 and res["healthy_at_end"] else 1


if __name__ == "__main__":
    sys.exit(main())

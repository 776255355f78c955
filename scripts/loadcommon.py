"""Shared by the two load clients (``loadtest.py``: real browsers; ``wsload.py``: websocket-level sessions).

The server they start, what they sample from /proc (RSS, CPU, time spent waiting for a CPU), the bounds and
command-line options they share, one session's measurements, and the summary both print. Loopback only.
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
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import start_streamlit, stop_streamlit  # noqa: E402

MAX_SESSIONS, MAX_DURATION = 60, 600


# ----------------------------------------------------------------------------------------------------------
# Server and /proc
# ----------------------------------------------------------------------------------------------------------
class ServerLog:
    """Drains a server's stderr in a thread, keeping a count and the last lines.

    Needed, not just nice: Streamlit logs at INFO level (e.g. each stale fragment tick after a Pause), and a
    server writing into a full, unread pipe blocks, which would look like a server failing under load.
    """

    def __init__(self, stream, keep: int = 20):
        self.lines = 0
        self.tail: deque[str] = deque(maxlen=keep)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        for raw in stream:
            self.lines += 1
            self.tail.append(raw.decode(errors="replace").rstrip()[:300])

    def report(self) -> dict:
        return {"server_log_lines": self.lines, "server_log_tail": list(self.tail)[-3:]}


def start_server(ttl: int, env: dict | None = None) -> tuple[subprocess.Popen, str, ServerLog]:
    """A server on a free loopback port whose sessions are freed ``ttl`` s after their tab closed; its stderr
    is drained (and summarised) by a ServerLog."""
    proc, url = start_streamlit(env=env, extra_args=("--server.disconnectedSessionTTL", str(ttl)),
                                 stderr_pipe=True)
    return proc, url, ServerLog(proc.stderr)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
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


def schedstat(pid: int | None) -> dict[int, tuple[float, float]]:
    """Per thread of a process: (seconds on a CPU, seconds runnable but waiting for a CPU) so far."""
    out: dict[int, tuple[float, float]] = {}
    if pid is None:
        return out
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                a, b, _ = f.read().split()
            out[int(tid)] = (int(a) / 1e9, int(b) / 1e9)
        except (OSError, ValueError):
            continue
    return out


def descendants(root: int, exclude: int | None = None) -> list[int]:
    """Processes descended from ``root`` (e.g. the browsers a load client started), except ``exclude``."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out = []
    for pid in parent:
        p, chain = pid, 0
        while p not in (0, 1, root) and chain < 50:
            p, chain = parent.get(p, 0), chain + 1
        if p == root and pid not in (root, exclude):
            out.append(pid)
    return out


def descendants_cpu_seconds(root: int, exclude: int | None) -> float:
    """CPU seconds used so far by the processes descended from ``root`` (the browsers), except ``exclude``."""
    return sum(cpu_seconds(pid) or 0.0 for pid in descendants(root, exclude))


def _autogroup(pid: int | str) -> str | None:
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def renice(pids: list[int], niceness: int, spare: list[int]) -> int:
    """Lower the CPU priority of these processes (the load client's browsers); returns how many.

    With the kernel's autogroups (``/proc/sys/kernel/sched_autogroup_enabled``), Chromium runs in a session
    of its own and a process's nice value only counts within its group, so the group's nice is set too;
    never that of a group holding one of ``spare`` (the server, this client), which would slow them instead.
    """
    spared = {_autogroup(p) for p in [*spare, "self"]}
    done = 0
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
            done += 1
        except OSError:
            continue
        group = _autogroup(pid)
        if group is not None and group not in spared:
            try:
                with open(f"/proc/{pid}/autogroup", "w") as f:
                    f.write(str(niceness))
            except OSError:
                pass  # the process is gone
    return done


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url + "_stcore/health", timeout=5).read() == b"ok"
    except OSError:
        return False


def loopback(url: str) -> bool:
    return urllib.parse.urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


class ServerMeter:
    """The server's CPU time and CPU wait over one measured period (``start`` ... ``stop``, repeatable)."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.cpu = self.wall = self.run = self.wait = 0.0

    def start(self) -> None:
        self._cpu0, self._t0, self._sched0 = cpu_seconds(self.pid), time.perf_counter(), schedstat(self.pid)

    def stop(self) -> None:
        cpu1, sched1 = cpu_seconds(self.pid), schedstat(self.pid)
        self.wall += time.perf_counter() - self._t0
        if self._cpu0 is not None and cpu1 is not None:
            self.cpu += cpu1 - self._cpu0
        # How starved the server was by everything else on the machine, over the threads that lived through
        # the whole period (Streamlit starts a thread per script run; a thread's counts go when it ends).
        for tid in sched1.keys() & self._sched0.keys():
            self.run += sched1[tid][0] - self._sched0[tid][0]
            self.wait += sched1[tid][1] - self._sched0[tid][1]

    def report(self) -> dict:
        out = {"server_cpu_cores_used": round(self.cpu / self.wall, 2) if self.wall and self.pid else None}
        if self.run:  # threads that lived through the measured period only
            out["server_wait_for_cpu_per_cpu_s"] = round(self.wait / self.run, 2)
        return out


class RssSampler:
    """Samples the server's RSS once a second in the background (``async with RssSampler(pid) as s``)."""

    def __init__(self, pid: int | None, every_s: float = 1.0):
        self.pid, self.every_s = pid, every_s
        self.samples: list[float] = []
        self.start_mb = rss_mb(pid)

    async def _run(self) -> None:
        while True:
            r = rss_mb(self.pid)
            if r is not None:
                self.samples.append(r)
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def read(self) -> float | None:
        """The RSS now (also counted towards the peak)."""
        r = rss_mb(self.pid)
        if r is not None:
            self.samples.append(r)
        return r

    @property
    def peak_mb(self) -> float | None:
        return max(self.samples, default=None)


# ----------------------------------------------------------------------------------------------------------
# One session's measurements and the summary
# ----------------------------------------------------------------------------------------------------------
class SessionStats:
    """What one simulated student measured: click latencies, redraw intervals, the step counter, errors."""

    def __init__(self, i: int, playing: bool):
        self.i, self.playing = i, playing
        self.latencies: list[float] = []
        self.redraws: list[float] = []
        self.steps: list[tuple[float, int]] = []  # (time, step counter) while playing
        self.errors: list[str] = []
        self.opened_s: float | None = None
        self.waiting_seen = 0
        self.retries = 0
        self._last_val: int | None = None
        self._last_change: float | None = None

    def record_step(self, now: float, value: int) -> None:
        """A step counter seen while playing: redraw interval = time between two different values."""
        self.steps.append((now, value))
        if self._last_val is not None and value != self._last_val:
            if self._last_change is not None:
                self.redraws.append(now - self._last_change)
            self._last_change = now
        elif self._last_val is None:
            self._last_change = now
        self._last_val = value

    def restart_redraws(self) -> None:
        """Forget the last change (after a Pause/Play probe, whose gap is not a redraw interval)."""
        self._last_val = self._last_change = None

    def steps_per_s(self) -> float | None:
        """Training rate over the playing period (the counter's growth; pauses for probes included)."""
        if len(self.steps) < 2:
            return None
        (t0, s0), (t1, s1) = self.steps[0], self.steps[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None


async def open_sessions(sessions: list, open_one, label: str = "open") -> tuple[list, list[str]]:
    """Open every session at once (``open_one(session)``); returns (the sessions that opened, errors)."""
    opened = await asyncio.gather(*(open_one(s) for s in sessions), return_exceptions=True)
    errors = [f"{label}: {type(e).__name__}: {str(e)[:150]}" for e in opened if isinstance(e, Exception)]
    return [s for s, e in zip(sessions, opened, strict=True) if not isinstance(e, Exception)], errors


async def drive(sessions: list, duration: float, probe_every: float) -> None:
    """Run every session's scenario (``run_playing`` or ``run_idle``) at once; a crash is its error."""
    outcomes = await asyncio.gather(
        *((s.run_playing if s.playing else s.run_idle)(duration, probe_every) for s in sessions),
        return_exceptions=True)
    for s, o in zip(sessions, outcomes, strict=True):
        if isinstance(o, Exception):
            s.errors.append(f"driver: {type(o).__name__}: {str(o)[:200]}")


def rnd(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * (len(v) - 1))))]


def summarize(live: list[SessionStats], open_errors: list[str]) -> dict:
    """Percentiles and totals over all sessions (the part of the report both clients share)."""
    lat = [x for s in live for x in s.latencies]
    redraw = [x for s in live if s.playing for x in s.redraws]
    rates = [r for s in live if s.playing if (r := s.steps_per_s()) is not None]
    errors = open_errors + [f"session {s.i}: {e}" for s in live for e in s.errors]
    opened = [s.opened_s for s in live if s.opened_s is not None]
    return {
        "sessions_served": len(live),
        "clicks": len(lat),
        "click_latency_s": {q: rnd(pct(lat, q)) for q in (50, 90, 99)},
        "click_latency_max_s": round(max(lat), 3) if lat else None,
        "redraw_interval_s": {q: rnd(pct(redraw, q)) for q in (50, 90)},
        "steps_per_s_per_playing_session": {
            "median": round(statistics.median(rates), 1) if rates else None,
            "min": round(min(rates), 1) if rates else None, "max": round(max(rates), 1) if rates else None},
        "open_page_s_median": round(statistics.median(opened), 2) if opened else None,
        "waiting_message_seen": sum(s.waiting_seen for s in live),
        "clicks_repeated": sum(s.retries for s in live),
        "errors": len(errors),
        "error_samples": errors[:10],
    }


# ----------------------------------------------------------------------------------------------------------
# Command line and the run
# ----------------------------------------------------------------------------------------------------------
def arg_parser(doc: str, ttl_default: int | None) -> argparse.ArgumentParser:
    """The options both clients take (each adds its own)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help=f"sessions (<= {MAX_SESSIONS})")
    ap.add_argument("--playing", type=int, default=None, help="how many of them press Play (default: all)")
    ap.add_argument("--duration", type=float, default=60, help=f"seconds of load (<= {MAX_DURATION})")
    ap.add_argument("--probe-every", type=float, default=8.0, help="seconds between probes of one session")
    ap.add_argument("--url", help="target a running server (loopback only) instead of starting one")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for RSS and CPU")
    ap.add_argument("--ttl", type=int, default=ttl_default,
                    help="started server: server.disconnectedSessionTTL; then RSS is measured after the TTL")
    ap.add_argument("--smoke", action="store_true", help="2 sessions, both playing, 15 s")
    ap.add_argument("--json", help="also write the result to this file")
    return ap


def check_args(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Apply --smoke and enforce the bounds (sessions, duration, loopback)."""
    if a.smoke:
        a.sessions, a.playing, a.duration, a.probe_every = 2, 2, 15, 5
    a.playing = a.sessions if a.playing is None else a.playing
    if not 1 <= a.sessions <= MAX_SESSIONS or not 0 <= a.playing <= a.sessions:
        ap.error(f"--sessions must be 1..{MAX_SESSIONS} and --playing 0..sessions")
    if not 1 <= a.duration <= MAX_DURATION:
        ap.error(f"--duration must be 1..{MAX_DURATION} s")
    if a.url and not loopback(a.url):
        ap.error("--url must be a loopback address (this script never loads a remote server)")


def machine() -> dict:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": load,
            "utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M")}


def run_against_server(a: argparse.Namespace, run: Callable[[str, int | None], Awaitable[dict]],
                       env: dict | None = None) -> int:
    """Start a server (or use ``--url``), await ``run(url, pid)``, print and save the result.

    Exit status 0 when there were no errors and the server answered its health check at the end.
    """
    proc = log = None
    if a.url:
        url, pid = a.url.rstrip("/") + "/", a.pid
    else:
        proc, url, log = start_server(a.ttl if a.ttl is not None else 120, env=env)
        pid = proc.pid
    before = machine()
    try:
        res = asyncio.run(run(url, pid))
    finally:
        stop_streamlit(proc)
    if log is not None:
        res.update(log.report())
    start_load = before.pop("loadavg")
    res["machine"] = {**before, "loadavg_at_start": start_load, "loadavg_at_end": machine()["loadavg"]}
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0 if res["errors"] == 0 and res.get("healthy_at_end") else 1

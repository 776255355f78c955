#!/usr/bin/env python3
"""Websocket-level load test: N simulated browser sessions on one cnnviz server, with no browser at all.

``loadtest.py`` drives real Chromium tabs; on one small machine the browsers take a large share of the
cores the server is meant to have. This client speaks Streamlit's own protocol (the protobufs
``BackMsg`` / ``ForwardMsg`` over ``/_stcore/stream``, through the ``websockets`` client that Streamlit
itself depends on) and does what the browser's frontend does for this app, so it measures the server alone:

- open: connect with the ``streamlit`` subprotocol and send a ``rerun_script`` BackMsg for the default page
  (empty page hash and name, as a browser on ``/``); later runs name the page hash from ``new_session``;
- widgets: button ids come from the ``new_element`` deltas (keyed widgets' ids end in their key, e.g.
  ``...-btn_pause``); a click is a ``rerun_script`` with a ``trigger_value`` widget state for that id, and
  with the fragment id of the delta that drew the button when it sits in a fragment (Step). Other widgets'
  states are not echoed: the server keeps a widget's previous value when the client omits it, so this is
  what the browser's message means, without reconstructing every widget's value type;
- fragment timers: an ``auto_rerun`` message (fragment id, interval) starts a ``setInterval``-like timer
  that sends ``rerun_script`` with that fragment id and ``is_auto_rerun`` at a fixed period whether or not
  the previous run finished (re-sent only if the interval changed); ``stop_auto_rerun`` stops it; a
  ``new_session`` for a full run (no fragment ids in its run identity) clears all timers, as the frontend's
  ``cleanupAutoReruns`` does;
- the message cache: cacheable messages' hashes are reported in ``cached_message_hashes`` and expire after
  ``max_cached_message_age`` finished runs, so the server sends references for unchanged figures, as it
  does to a browser.

Each session opens the Train page; the first ``--playing`` press Play, keep their fragment timer going and
every ``--probe-every`` s click Pause (wait until the Play button arrives in the deltas) and Play (wait
until Pause arrives); the others click Step and wait until the Step metric grows. Measured: click latency
(BackMsg sent -> the delta showing the effect arrived), redraw interval (time between deltas with a new
Step value), steps/s per playing session, fragment runs and timer ticks per second, the intervals the
server asked for, server RSS (start, after open, peak, end, after close + TTL), server and client CPU, and
errors (exception elements, error alerts, cache misses, lost connections, timeouts). ``--verify`` (on with
``--smoke``) also checks that a click really changes the server's state: after Pause two plain reruns a
second apart must show the same step counter, and after Play the counter must grow again.

Bounded like ``loadtest.py``: at most 60 sessions, 600 s, loopback only; helpers in ``loadcommon.py``.
Example:  python scripts/wsload.py --sessions 10 --playing 10 --duration 60
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ContextInfo as ClientContext
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadcommon import (  # noqa: E402
    RssSampler,
    ServerMeter,
    SessionStats,
    arg_parser,
    check_args,
    drive,
    healthy,
    open_sessions,
    run_against_server,
    summarize,
)

CLICK_TIMEOUT_S = 30.0
OPEN_TIMEOUT_S = 120.0
PLAY_KEYS = {"btn_play": "Play", "btn_pause": "Pause"}  # the live control's two buttons, by widget key
WAITING_TEXT = "Waiting for a free CPU slot"
SHARED_TEXT = "your view redraws every"  # the status line's note when the class slows the redraws
FINISHED_OK = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)


def widget_key(widget_id: str) -> str:
    """The user key at the end of a keyed widget's id (``$$ID-<hash>-btn_play`` -> ``btn_play``)."""
    return widget_id.rsplit("-", 1)[-1] if widget_id.startswith("$$ID-") else ""


def step_value(body: str) -> int | None:
    """The Step metric's text (``1,234``) as a number."""
    digits = "".join(c for c in body if c.isdigit())
    return int(digits) if digits else None


# ----------------------------------------------------------------------------------------------------------
# The frontend, as far as this app needs it
# ----------------------------------------------------------------------------------------------------------
class WsPage:
    """One Streamlit session over one websocket, doing what the browser's frontend does for this app."""

    def __init__(self, url: str, stats: SessionStats):
        self.url, self.stats = url, stats
        self.page_hash = ""
        self.buttons: dict[str, tuple[str, str]] = {}  # key -> (widget id, fragment id of its delta)
        self.play_label: str | None = None  # "Play" or "Pause", as last drawn
        self.play_label_t = 0.0
        self.step: int | None = None
        self.step_t = 0.0
        self.full_run_done_t = 0.0  # arrival of the last script_finished of a full run
        self.on_step = None  # callback(now, value) for every Step metric drawn
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)
        self.intervals_seen: Counter[float] = Counter()
        self.finished: Counter[str] = Counter()  # script_finished messages by status
        self.ticks_sent = self.fragment_runs = self.full_runs = 0
        self.shared_note_seen = 0
        self._cache: dict[str, list] = {}  # hash -> [run count when last used, fragment id]
        self._runs, self._max_age, self._new_session_seen = 0, 2, False
        self._changed = asyncio.Condition()
        self._context = ClientContext(timezone="UTC", timezone_offset=0, locale="en-US", url=url,
                                      color_scheme="light")  # what the browser reports about itself
        self._closing = False

    # -- connection ----------------------------------------------------------------------------------------
    async def open(self) -> None:
        ws_url = "ws" + self.url[len("http"):] + "_stcore/stream"
        self.ws = await connect(ws_url, subprotocols=["streamlit"], origin=self.url.rstrip("/"),
                                max_size=None, ping_interval=None, open_timeout=OPEN_TIMEOUT_S)
        self._receiver = asyncio.create_task(self._receive())
        await self.rerun()  # what the frontend sends once connected

    async def close(self) -> None:
        self._closing = True
        self._clear_timers()
        await self.ws.close()
        self._receiver.cancel()
        try:
            await self._receiver
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
            pass

    # -- sending -------------------------------------------------------------------------------------------
    def _rerun_msg(self, fragment_id: str = "", auto: bool = False, trigger: str | None = None) -> bytes:
        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string, rs.page_script_hash, rs.page_name = "", self.page_hash, ""
        rs.fragment_id, rs.is_auto_rerun = fragment_id, auto
        if trigger is not None:
            w = rs.widget_states.widgets.add()
            w.id, w.trigger_value = trigger, True
        rs.cached_message_hashes.extend(self._cache)
        rs.context_info.CopyFrom(self._context)
        return msg.SerializeToString()

    async def rerun(self, fragment_id: str = "", auto: bool = False, trigger: str | None = None) -> float:
        """Send a rerun_script BackMsg; returns the time it was sent."""
        data = self._rerun_msg(fragment_id, auto, trigger)
        self._new_session_seen = False
        t = time.perf_counter()
        await self.ws.send(data)
        return t

    async def click(self, key: str) -> float:
        """Click the button with this widget key (as last drawn); returns the time the BackMsg was sent."""
        widget_id, fragment_id = self.buttons[key]
        return await self.rerun(fragment_id=fragment_id, trigger=widget_id)

    # -- fragment timers (the frontend's setInterval per fragment) -----------------------------------------
    def _set_timer(self, fragment_id: str, interval: float) -> None:
        cur = self.timers.get(fragment_id)
        if cur is not None and cur[0] == interval:
            return
        self._clear_timers([fragment_id])
        self.intervals_seen[interval] += 1
        self.timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval)))

    def _clear_timers(self, ids=None) -> None:
        for fid in list(self.timers if ids is None else ids):
            entry = self.timers.pop(fid, None)
            if entry is not None:
                entry[1].cancel()

    async def _tick(self, fragment_id: str, interval: float) -> None:
        due = time.perf_counter() + interval
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                await self.rerun(fragment_id=fragment_id, auto=True)
            except WebSocketException:
                return  # the receiver reports the lost connection
            self.ticks_sent += 1
            due = max(due + interval, time.perf_counter())  # a late timer fires once, it does not catch up

    # -- receiving -----------------------------------------------------------------------------------------
    async def _receive(self) -> None:
        try:
            async for data in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg, time.perf_counter())
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed as e:
            if not self._closing:
                self.stats.errors.append(f"connection lost: {e}")
        finally:
            self._clear_timers()

    def _handle(self, msg: ForwardMsg, now: float) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = [self._runs, msg.delta.fragment_id if kind == "delta" else ""]
        if kind == "ref_hash":
            if msg.ref_hash in self._cache:
                self._cache[msg.ref_hash][0] = self._runs
            else:
                self.stats.errors.append(f"cached message miss {msg.ref_hash[:8]}")
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.delta.fragment_id, now)
        elif kind == "new_session":
            self._new_session_seen = True
            self.page_hash = msg.new_session.page_script_hash
            self._max_age = msg.new_session.config.max_cached_message_age or self._max_age
            if not msg.metadata.run.fragment_ids:  # a full run: the frontend clears every timer
                self._clear_timers()
        elif kind == "auto_rerun":
            self._set_timer(msg.auto_rerun.fragment_id, round(msg.auto_rerun.interval, 6))
        elif kind == "stop_auto_rerun":
            self._clear_timers(list(msg.stop_auto_rerun.fragment_ids))
        elif kind == "script_finished":
            self._finished(msg, now)
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            self.stats.errors.append("script compilation error")
        elif kind == "page_not_found":
            self.stats.errors.append("page not found")

    def _element(self, el, fragment_id: str, now: float) -> None:
        et = el.WhichOneof("type")
        if et == "button":
            key = widget_key(el.button.id)
            self.buttons[key] = (el.button.id, fragment_id)
            if key in PLAY_KEYS:
                self.play_label, self.play_label_t = PLAY_KEYS[key], now
        elif et == "metric" and el.metric.label == "Step":
            v = step_value(el.metric.body)
            if v is not None:
                self.step, self.step_t = v, now
                if self.on_step is not None:
                    self.on_step(now, v)
        elif et == "exception":
            kind = "warning" if el.exception.is_warning else "exception"
            self.stats.errors.append(f"{kind} shown: {el.exception.type}: {el.exception.message[:150]}")
        elif et == "alert" and el.alert.format == Alert.ERROR:
            self.stats.errors.append("error alert: " + el.alert.body[:200])
        elif et == "markdown":
            if WAITING_TEXT in el.markdown.body:
                self.stats.waiting_seen += 1
            if SHARED_TEXT in el.markdown.body:
                self.shared_note_seen += 1

    def _finished(self, msg: ForwardMsg, now: float) -> None:
        status, frags = msg.script_finished, list(msg.metadata.run.fragment_ids)
        self.finished[ForwardMsg.ScriptFinishedStatus.Name(status) + (" (fragment)" if frags else "")] += 1
        if status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
            self.fragment_runs += 1
        elif status == ForwardMsg.FINISHED_SUCCESSFULLY and not frags:
            self.full_runs += 1
            self.full_run_done_t = now
        if status in FINISHED_OK and msg.metadata.HasField("run") and self._new_session_seen:
            self._age_cache(frags)

    def _age_cache(self, fragment_ids: list[str]) -> None:
        """The frontend's ForwardMsgCache.incrementRunCount: expire entries unused for too many runs."""
        self._runs += 1
        for h, (used, frag) in list(self._cache.items()):
            if fragment_ids and (not frag or frag not in fragment_ids):
                continue
            if self._runs - used > self._max_age:
                del self._cache[h]

    # -- waiting -------------------------------------------------------------------------------------------
    async def wait_for(self, pred, timeout: float) -> bool:
        """Wait until ``pred()`` holds (checked after every message); False on timeout."""
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(pred), timeout)
            return True
        except TimeoutError:
            return False


# ----------------------------------------------------------------------------------------------------------
# One simulated student
# ----------------------------------------------------------------------------------------------------------
class WsSession(SessionStats):
    """A student on the Train page: plays and probes with Pause/Play, or stays idle and clicks Step."""

    def __init__(self, i: int, playing: bool, verify: bool):
        super().__init__(i, playing)
        self.verify = verify
        self.pause_checks = 0
        self.recording = False

    async def open(self, url: str) -> None:
        t0 = time.perf_counter()
        self.page = WsPage(url, self)
        self.page.on_step = self._seen_step
        await self.page.open()
        ok = await self.page.wait_for(
            lambda: "btn_step" in self.page.buttons and self.page.full_run_done_t > 0, OPEN_TIMEOUT_S)
        if not ok:
            raise TimeoutError(f"page not ready within {OPEN_TIMEOUT_S:.0f} s")
        self.opened_s = time.perf_counter() - t0

    def _seen_step(self, now: float, value: int) -> None:
        if self.recording:
            self.record_step(now, value)

    async def click_play(self, want: str) -> float | None:
        """Click Play or Pause (whichever is shown); seconds until the other one arrives (None on timeout)."""
        page = self.page
        key = "btn_play" if page.play_label == "Play" else "btn_pause"
        t0 = await page.click(key)
        return await self._latency(t0, lambda: page.play_label == want and page.play_label_t >= t0,
                                   lambda: page.play_label_t, f"button did not turn to {want}")

    async def click_step(self) -> float | None:
        page = self.page
        before = page.step if page.step is not None else -1
        t0 = await page.click("btn_step")
        grew = lambda: page.step is not None and page.step > before and page.step_t >= t0  # noqa: E731
        return await self._latency(t0, grew, lambda: page.step_t, "Step did not update")

    async def _latency(self, t0: float, done, done_at, what: str) -> float | None:
        """Wait for ``done()``; record and return the seconds from ``t0`` to ``done_at()`` (None: timeout)."""
        if await self.page.wait_for(done, CLICK_TIMEOUT_S):
            lat = done_at() - t0
            self.latencies.append(lat)
            return lat
        self.errors.append(f"timeout: {what} within {CLICK_TIMEOUT_S:.0f} s")
        return None

    async def read_step(self) -> int | None:
        """A plain full rerun (no widget changed: trains nothing while paused); the Step value it draws."""
        page = self.page
        t0 = await page.rerun()
        if await page.wait_for(lambda: page.step_t >= t0 and page.full_run_done_t >= t0, CLICK_TIMEOUT_S):
            return page.step
        self.errors.append("timeout: a plain rerun did not finish")
        return None

    async def check_paused(self) -> None:
        """After Pause: the server's step counter must stand still."""
        await asyncio.sleep(0.5)
        s1 = await self.read_step()
        await asyncio.sleep(1.0)
        s2 = await self.read_step()
        self.pause_checks += 1
        if s1 is not None and s2 is not None and s2 != s1:
            self.errors.append(f"paused, but the step counter grew from {s1} to {s2}")

    async def check_resumed(self, timeout: float = 10.0) -> None:
        """After Play: the step counter must grow again."""
        before = self.page.step or 0
        if not await self.page.wait_for(lambda: (self.page.step or 0) > before, timeout):
            self.errors.append(f"played, but the step counter did not grow within {timeout:.0f} s")

    async def run_playing(self, duration: float, probe_every: float) -> None:
        await self.click_play("Pause")
        t_end = time.perf_counter() + duration
        next_probe = time.perf_counter() + probe_every * (0.5 + (self.i % 5) / 5)
        self.recording = True
        while time.perf_counter() < t_end:
            await asyncio.sleep(min(0.2, max(0.0, next_probe - time.perf_counter())))
            if time.perf_counter() < next_probe:
                continue
            self.recording = False  # pause, then play again: two full script runs
            if await self.click_play("Play") is not None and self.verify:
                await self.check_paused()
            if await self.click_play("Pause") is not None and self.verify:
                await self.check_resumed()
            self.restart_redraws()
            self.recording = True
            next_probe = time.perf_counter() + probe_every
        self.recording = False
        await self.click_play("Play")  # stop training

    async def run_idle(self, duration: float, probe_every: float) -> None:
        t_end = time.perf_counter() + duration
        await asyncio.sleep(probe_every * (self.i % 7) / 7)
        while time.perf_counter() < t_end:
            await self.click_step()
            await asyncio.sleep(probe_every)


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------
async def run(a, url: str, pid: int | None) -> dict:
    result: dict = {"client": "websocket", "sessions": a.sessions, "playing": a.playing,
                    "duration_s": a.duration, "verify": a.verify}
    sessions = [WsSession(i, i < a.playing, a.verify) for i in range(a.sessions)]
    meter = ServerMeter(pid)
    async with RssSampler(pid) as rss:
        t_open = time.perf_counter()
        live, open_errors = await open_sessions(sessions, lambda s: s.open(url))
        result["open_all_s"] = round(time.perf_counter() - t_open, 1)
        result["rss_after_open_mb"] = rss.read()
        meter.start()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await drive(live, a.duration, a.probe_every)
        wall = time.perf_counter() - t0
        result["client_cpu_cores_used"] = round((time.process_time() - cpu0) / wall, 2)
        meter.stop()
        result["rss_end_mb"] = rss.read()
        result["healthy_at_end"] = healthy(url)
        for s in live:
            await s.page.close()
        if pid is not None and a.ttl is not None:
            await asyncio.sleep(a.ttl + 15)  # Streamlit frees a closed session after the TTL
            result["rss_after_close_mb"] = rss.read()
    playing = [s for s in live if s.playing]
    result.update(meter.report())
    result.update({"rss_start_mb": rss.start_mb, "rss_peak_mb": rss.peak_mb})
    result.update(summarize(live, open_errors))
    result["fragment_runs_per_s_per_playing_session"] = (
        round(sum(s.page.fragment_runs for s in playing) / len(playing) / wall, 2) if playing else None)
    result["timer_ticks_sent_per_s_per_playing_session"] = (
        round(sum(s.page.ticks_sent for s in playing) / len(playing) / wall, 2) if playing else None)
    seen: Counter[float] = Counter()
    for s in live:
        seen.update(s.page.intervals_seen)
    finished: Counter[str] = Counter()
    for s in playing:
        finished.update(s.page.finished)
    result["script_finished_per_playing_session"] = {k: round(v / len(playing), 1)
                                                      for k, v in sorted(finished.items())}
    result["run_every_intervals_set"] = {str(k): v for k, v in sorted(seen.items())}
    result["shared_server_note_seen"] = sum(s.page.shared_note_seen for s in live)
    result["pause_checks"] = sum(s.pause_checks for s in live)
    return result


def main() -> int:
    ap = arg_parser(__doc__, ttl_default=10)
    ap.add_argument("--verify", action="store_true",
                    help="after every Pause check that the step counter stands still, after Play that it "
                         "grows (two extra plain reruns per probe; on with --smoke)")
    a = ap.parse_args()
    check_args(ap, a)
    a.verify = a.verify or a.smoke
    return run_against_server(a, lambda url, pid: run(a, url, pid))


if __name__ == "__main__":
    sys.exit(main())

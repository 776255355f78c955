"""Serving many sessions from one process: a fair CPU limiter, a session registry and cost/memory accounting.

A Streamlit server runs every browser session in one Python process. When thirty students press Play at
once, the server must stay responsive and share its cores fairly. This module (pure Python, no Streamlit)
provides the pieces the app glues together in ``cnnviz.ui.session_guard``:

- ``FairLimiter``: at most ``slots`` training ticks run at once across all sessions (default: one per CPU);
  a free slot goes to the session that has been waiting longest (FIFO), and a session that gives up waiting
  keeps its place in the line for its next attempt, so a session that trains continuously cannot starve
  the others. It holds only session ids and timestamps.
- ``SessionRegistry``: last interaction and last training tick per session id, so that a tab left playing
  unattended for a long time is paused and forgotten sessions are reaped (bounded size, no references to
  session objects).
- ``live_interval`` and ``TickCost``: the fair share of live ticks. Every playing session asks for a redraw
  every 0.25 s, and one tick costs about 0.15 CPU-seconds (training plus figures), while one Python process
  serves all sessions on about one core. When many sessions play, each one's redraw interval grows (0.25,
  0.5, 1, 2, 4, 8 s) so that all live ticks together stay within a share of the process, leaving the rest
  for clicks and page loads. A session alone keeps its 0.25 s.
- ``estimate_cost`` / ``check_server_cost``: the compute one atomic unit of training work needs (one step,
  or one validation pass), refused above ``SERVER_LIMITS`` with a clear message. Memory is bounded by
  ``config.LIMITS["step_memory_mb"]``; this bounds time, so that no single step holds a CPU slot for
  many seconds.
- ``rss_bytes`` and ``private_nbytes``: measuring what a session costs.
"""

from __future__ import annotations

import math
import os
import threading
import time
import types
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from cnnviz.train.config import INPUT_SHAPE, layer_shapes, spec_layers

__all__ = ["FairLimiter", "SessionRegistry", "SlotResult", "TickCost", "live_interval", "estimate_cost",
           "check_server_cost", "SERVER_LIMITS", "default_slots", "rss_bytes", "private_nbytes", "VAL_IMAGES"]

VAL_IMAGES = 1000  # the validation set every trainer evaluates on its schedule


def _env_float(name: str, default: float) -> float:
    """A positive float from the environment (a deployment setting), or the default."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} must be a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"environment variable {name}={raw!r} must be a positive number")
    return value


def default_slots() -> int:
    """Training ticks allowed at once: ``CNNVIZ_TRAIN_SLOTS`` or one per CPU (at least 1)."""
    return max(1, int(_env_float("CNNVIZ_TRAIN_SLOTS", float(os.cpu_count() or 1))))


# Server-wide bounds on the time of one atomic piece of training work, in GFLOP (1e9 multiply-adds counted
# as 2 FLOP). Measured on a 2-core machine, NumPy does about 3-10 GFLOP/s per core on these layers, so
# 4 GFLOP is well under a second. Every preset at every batch size the sidebar offers fits (the deeper
# preset at batch 512 needs 2.5 GFLOP per step, its validation pass 1.6 GFLOP); custom networks with many
# large filters at large batches do not. Deployments can change them through the environment.
SERVER_LIMITS: dict[str, float] = {
    "step_gflop": _env_float("CNNVIZ_MAX_STEP_GFLOP", 4.0),  # forward + backward of one training step
    "val_gflop": _env_float("CNNVIZ_MAX_VAL_GFLOP", 4.0),  # forward over the 1,000 validation images
}


# ----------------------------------------------------------------------------------------------------------
# Fair limiter
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlotResult:
    """Outcome of an attempt to get a slot: granted, or how many sessions are ahead in the line."""

    granted: bool
    ahead: int = 0
    running: int = 0
    waiting: int = 0
    waited_s: float = 0.0


class FairLimiter:
    """At most ``slots`` holders at once across sessions; free slots go to the longest-waiting session.

    ``acquire(key, timeout)`` blocks up to ``timeout`` seconds. The first attempt of a session puts it in
    line; if it times out it keeps its place (its next attempt is served before sessions that came later),
    unless it does not come back within ``stale_after`` seconds (a closed tab), when its place is dropped.
    Only sessions currently waiting are granted a slot, so a session that stopped trying never blocks the
    others. One session never holds two slots: a second acquire with the same key waits for the first
    release. Thread-safe; holds nothing but keys and timestamps.
    """

    def __init__(self, slots: int | None = None, stale_after: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.slots = default_slots() if slots is None else int(slots)
        if self.slots < 1:
            raise ValueError(f"a limiter needs at least one slot, got {slots}")
        self.stale_after = float(stale_after)
        self._clock = clock
        self._cond = threading.Condition()
        self._line: OrderedDict[str, float] = OrderedDict()  # key -> last attempt, in order of arrival
        self._present: Counter[str] = Counter()  # keys blocked in acquire right now
        self._running: dict[str, float] = {}  # key -> time the slot was granted
        self.granted_total = 0
        self.timeouts_total = 0
        self.max_hold_s = 0.0  # longest time any key held a slot (for the load test's report)

    # -- internals (call with the condition held) ------------------------------------------------------
    def _purge(self, now: float) -> None:
        for key, seen in list(self._line.items()):
            if not self._present[key] and now - seen > self.stale_after:
                del self._line[key]

    def _next_in_line(self) -> str | None:
        for key in self._line:
            if self._present[key] and key not in self._running:
                return key
        return None

    def _result(self, key: str, granted: bool, waited: float) -> SlotResult:
        ahead = 0
        for k in self._line:
            if k == key:
                break
            ahead += 1
        return SlotResult(granted, 0 if granted else ahead, len(self._running), len(self._line), waited)

    # -- API ---------------------------------------------------------------------------------------------
    def acquire(self, key: str, timeout: float = 0.0) -> SlotResult:
        """Try to get a slot for ``key`` within ``timeout`` seconds; returns a SlotResult (check .granted)."""
        start = self._clock()
        deadline = start + max(0.0, float(timeout))
        with self._cond:
            self._line.setdefault(key, start)
            self._line[key] = start
            self._present[key] += 1
            try:
                while True:
                    now = self._clock()
                    self._purge(now)
                    if len(self._running) < self.slots and self._next_in_line() == key:
                        del self._line[key]
                        self._running[key] = now
                        self.granted_total += 1
                        return self._result(key, True, now - start)
                    remaining = deadline - now
                    if remaining <= 0:
                        self.timeouts_total += 1
                        self._line[key] = now  # keeps its place; refreshed so that it is not stale
                        return self._result(key, False, now - start)
                    self._cond.wait(remaining)
            finally:
                self._present[key] -= 1
                if not self._present[key]:
                    del self._present[key]
                self._cond.notify_all()  # the next in line may be someone else now

    def release(self, key: str) -> None:
        """Give back the slot held by ``key`` (a no-op if it holds none)."""
        with self._cond:
            started = self._running.pop(key, None)
            if started is not None:
                self.max_hold_s = max(self.max_hold_s, self._clock() - started)
            self._cond.notify_all()

    def leave(self, key: str) -> None:
        """Drop ``key``'s place in line (it stopped training), e.g. when a session pauses or closes."""
        with self._cond:
            if not self._present[key]:  # a Counter: 0 for a missing key, nothing inserted
                self._line.pop(key, None)
            self._cond.notify_all()

    @contextmanager
    def slot(self, key: str, timeout: float = 0.0) -> Iterator[SlotResult]:
        """``with limiter.slot(key, timeout) as res:`` — train only if ``res.granted``; released on exit."""
        res = self.acquire(key, timeout)
        try:
            yield res
        finally:
            if res.granted:
                self.release(key)

    def holds(self, key: str) -> bool:
        """True while ``key`` holds a slot."""
        with self._cond:
            return key in self._running

    def position(self, key: str) -> int | None:
        """Sessions ahead of ``key`` in line (0 = next), or None if it is not waiting."""
        with self._cond:
            if key not in self._line:
                return None
            return self._result(key, False, 0.0).ahead

    def stats(self) -> dict[str, float]:
        """Slots, running, in line, and counters since start."""
        with self._cond:
            self._purge(self._clock())
            return {"slots": self.slots, "running": len(self._running), "waiting": len(self._line),
                    "granted": self.granted_total, "timeouts": self.timeouts_total,
                    "max_hold_s": round(self.max_hold_s, 3)}


# ----------------------------------------------------------------------------------------------------------
# Session registry and idle reaper
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _SessionInfo:
    first_seen: float
    last_interaction: float
    last_tick: float = 0.0
    ticks: int = 0


class SessionRegistry:
    """Per-session timestamps: last user interaction and last training tick (nothing else is kept).

    ``unattended(key)`` is True when a session has been training without any interaction for longer than
    ``idle_pause_s`` (the app then pauses it, leaving the CPU to students who are there). ``reap()`` forgets
    sessions not seen for ``forget_after_s``; it runs by itself every ``reap_every_s`` on ``interaction`` /
    ``tick``, and the registry never holds more than ``max_sessions`` entries (the oldest are forgotten).
    """

    def __init__(self, idle_pause_s: float = 1800.0, forget_after_s: float = 3600.0,
                 max_sessions: int = 10_000, reap_every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.idle_pause_s = float(idle_pause_s)
        self.forget_after_s = float(forget_after_s)
        self.max_sessions = int(max_sessions)
        self.reap_every_s = float(reap_every_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, _SessionInfo] = OrderedDict()  # least recently seen first
        self._last_reap = clock()

    def _touch(self, key: str, now: float) -> _SessionInfo:
        info = self._sessions.get(key)
        if info is None:
            info = self._sessions[key] = _SessionInfo(first_seen=now, last_interaction=now)
        self._sessions.move_to_end(key)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return info

    def _maybe_reap(self, now: float) -> None:
        if now - self._last_reap >= self.reap_every_s:
            self._reap(now)

    def _reap(self, now: float) -> list[str]:
        self._last_reap = now
        gone = [k for k, i in self._sessions.items()
                if now - max(i.last_interaction, i.last_tick) > self.forget_after_s]
        for k in gone:
            del self._sessions[k]
        return gone

    def interaction(self, key: str) -> None:
        """The user did something (a full script run): resets the unattended clock."""
        with self._lock:
            now = self._clock()
            self._touch(key, now).last_interaction = now
            self._maybe_reap(now)

    def tick(self, key: str) -> None:
        """A live-training tick ran for this session."""
        with self._lock:
            now = self._clock()
            info = self._touch(key, now)
            info.last_tick = now
            info.ticks += 1
            self._maybe_reap(now)

    def unattended(self, key: str) -> bool:
        """True if this session has had no interaction for more than ``idle_pause_s``."""
        with self._lock:
            info = self._sessions.get(key)
            return info is not None and self._clock() - info.last_interaction > self.idle_pause_s

    def forget(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def reap(self) -> list[str]:
        """Forget sessions not seen for ``forget_after_s``; returns their keys."""
        with self._lock:
            return self._reap(self._clock())

    def ticked_within(self, key: str, window_s: float = 10.0) -> bool:
        """True if this session had a live-training tick within the last ``window_s`` seconds."""
        with self._lock:
            info = self._sessions.get(key)
            return info is not None and info.ticks > 0 and self._clock() - info.last_tick <= window_s

    def counts(self, window_s: float = 10.0) -> dict[str, int]:
        """Sessions known, seen within ``window_s``, and training within ``window_s``."""
        with self._lock:
            now = self._clock()
            infos = list(self._sessions.values())
            seen = sum(now - max(i.last_interaction, i.last_tick) <= window_s for i in infos)
            training = sum(now - i.last_tick <= window_s for i in infos if i.ticks)
            return {"known": len(self._sessions), "active": seen, "training": training}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, key: object) -> bool:
        return key in self._sessions


# ----------------------------------------------------------------------------------------------------------
# Fair share of live ticks
# ----------------------------------------------------------------------------------------------------------
LIVE_INTERVALS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # the redraw intervals a playing session may get, in s
LIVE_SHARE = 0.6  # share of the process's capacity that all live ticks together may use
PROCESS_CORES = 1.0  # one Python process (one GIL) runs every session's script: about one core's work
TICK_COST_S = 0.15  # CPU-seconds of one Normal-speed tick (0.1 s training + figures), until measured


def live_interval(n_playing: int, tick_cost_s: float, cores: float, base: float = 0.25,
                  current: float | None = None, share: float = LIVE_SHARE,
                  levels: tuple[float, ...] = LIVE_INTERVALS, hysteresis: float = 0.75) -> float:
    """Seconds between one playing session's live redraws when ``n_playing`` sessions play at once.

    ``n`` sessions ticking every ``I`` seconds at ``tick_cost_s`` CPU-seconds a tick need ``n * cost / I``
    cores; the process can give live ticks ``share * min(cores, PROCESS_CORES)``. The answer is the smallest
    level >= ``base`` (the session's own speed) that fits, or the largest level if none does. A session alone
    always gets ``base``. ``current`` is the interval running now: slowing down happens at once, speeding up
    only to a level that fits with room to spare (within ``hysteresis`` of the budget), so that a count
    wavering at a boundary does not restart every session's timer back and forth.
    """
    if n_playing <= 1:
        return base
    budget = share * min(float(cores), PROCESS_CORES)
    need = n_playing * max(0.0, tick_cost_s) / budget  # the shortest interval the budget allows
    options = [lv for lv in levels if lv >= base] or [base]

    def fitting(shortest: float) -> float:
        return next((lv for lv in options if lv >= shortest), options[-1])

    chosen = fitting(need)
    if current is not None and chosen < current:
        chosen = min(current, fitting(need / hysteresis))
    return chosen


class TickCost:
    """Exponential moving average of the CPU-seconds one live tick costs, over every session (thread-safe)."""

    def __init__(self, initial_s: float = TICK_COST_S, alpha: float = 0.1):
        self._value, self.alpha = float(initial_s), float(alpha)
        self.samples = 0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        """Record the CPU time of one tick (ignored if not a positive finite number)."""
        if not (math.isfinite(seconds) and seconds > 0):
            return
        with self._lock:
            self._value += self.alpha * (seconds - self._value)
            self.samples += 1

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._value


# ----------------------------------------------------------------------------------------------------------
# Compute cost of a configuration
# ----------------------------------------------------------------------------------------------------------
def forward_flops(layers: list) -> int:
    """FLOPs (2 per multiply-add) of one image's forward pass through a valid layer spec, as each layer
    counts its own."""
    layer_shapes(layers)  # validates
    shape, total = INPUT_SHAPE, 0
    for layer in spec_layers(layers):
        total += layer.flops(shape)
        shape = layer.output_shape(shape)
    return total


def estimate_cost(layers: list, batch: int, n_val: int = VAL_IMAGES) -> dict[str, float]:
    """GFLOP of one training step on ``batch`` images (forward + backward ≈ 3 × forward) and of one
    validation pass over ``n_val`` images."""
    f = forward_flops(layers)
    return {"step_gflop": 3 * f * int(batch) / 1e9, "val_gflop": f * int(n_val) / 1e9,
            "forward_mflop_per_image": f / 1e6}


def check_server_cost(config, limits: dict[str, float] | None = None) -> dict[str, float]:
    """Refuse (ValueError with a clear message) a RunConfig whose single step or validation pass would hold
    a shared server's CPU for too long; returns the estimate otherwise."""
    limits = SERVER_LIMITS if limits is None else limits
    cost = estimate_cost(config.layers, config.effective_batch)
    if cost["step_gflop"] > limits["step_gflop"]:
        raise ValueError(
            f"one training step of this configuration needs about {cost['step_gflop']:.1f} GFLOP, more than "
            f"this server allows ({limits['step_gflop']:g} GFLOP, so that one student's step cannot hold a "
            "CPU for seconds): use a smaller batch size, fewer or smaller filters, or fewer conv layers")
    if cost["val_gflop"] > limits["val_gflop"]:
        raise ValueError(
            f"evaluating this network on the {VAL_IMAGES:,} validation images needs about "
            f"{cost['val_gflop']:.1f} GFLOP, more than this server allows ({limits['val_gflop']:g} GFLOP): "
            "use fewer or smaller filters, a larger stride, or fewer conv layers")
    return cost


# ----------------------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------------------
def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc; 0 where /proc is missing."""
    path = f"/proc/{pid or 'self'}/statm"
    try:
        with open(path) as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def private_nbytes(obj: object, max_depth: int = 8) -> dict[str, int]:  # noqa: C901
    """Bytes of NumPy arrays reachable from ``obj`` (dicts, lists, tuples, sets, objects' ``__dict__`` and
    ``__slots__``), split into arrays this object owns (``private``: writeable data) and read-only arrays
    (``shared``: e.g. the cached dataset every session points to); each buffer counted once.

    Used to measure a session's state (``st.session_state`` or one Trainer).
    """
    seen_obj: set[int] = set()
    seen_buf: set[int] = set()
    out = {"private": 0, "shared": 0, "arrays": 0}

    def base_of(a: np.ndarray) -> np.ndarray:
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    def visit(o: object, depth: int) -> None:  # noqa: C901
        if depth > max_depth or id(o) in seen_obj:
            return
        seen_obj.add(id(o))
        if isinstance(o, np.ndarray):
            b = base_of(o)
            if id(b) in seen_buf:
                return
            seen_buf.add(id(b))
            out["arrays"] += 1
            out["private" if o.flags.writeable and b.flags.writeable else "shared"] += b.nbytes
            return
        if isinstance(o, (str, bytes, bytearray, int, float, complex, bool, type(None))):
            return
        if isinstance(o, dict):
            for v in list(o.values()):
                visit(v, depth + 1)
            return
        if isinstance(o, (list, tuple, set, frozenset)):
            for v in list(o):
                visit(v, depth + 1)
            return
        if isinstance(o, (type, types.ModuleType, types.FunctionType, types.MethodType)):
            return
        d = getattr(o, "__dict__", None)
        if isinstance(d, dict):
            visit(d, depth + 1)
        for name in getattr(type(o), "__slots__", ()):
            if hasattr(o, name):
                visit(getattr(o, name), depth + 1)

    visit(obj, 0)
    return out

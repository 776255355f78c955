"""Streamlit glue for serving a classroom: the server-wide fair CPU limiter and the idle pause, per session.

One ``Server`` object per Streamlit process (``st.cache_resource``) holds a ``serving.FairLimiter`` and a
``serving.SessionRegistry``. It is the one deliberately shared, mutable resource of the app: thread-safe,
and it holds only random session keys and timestamps, never a session's model or data. Everything else a
session owns lives in its ``st.session_state`` and goes away with it (Streamlit drops a closed tab's session
``server.disconnectedSessionTTL`` seconds after its websocket closed; a closed tab's live training stops at
once because the browser drives the fragment's timer).

- ``training_slot(live)``: wrap any training work. A live tick waits for a slot in short slices, showing its
  place in line ("waiting for a free CPU slot: 2 sessions ahead") in a placeholder; each update of the
  placeholder is also a point where a click of the same user preempts the wait, so waiting never makes the
  page unresponsive. A button (Step) waits up to ``CLICK_WAIT_S``.
- ``heavy_work()``: building a model (which evaluates it on the validation set) also takes a slot, so that
  thirty students opening the page at once do not all allocate their first evaluation's buffers together.
- ``note_interaction()`` (every full script run) and ``unattended()``: a session that has been playing with
  no interaction for ``IDLE_PAUSE_S`` is paused by the Train page.
- ``redraw_interval(base)`` and ``record_tick_cost(s)``: the fair share of live ticks. The Train page asks
  for its fragment's ``run_every`` interval here; when many sessions play it grows beyond the speed's own
  (``serving.live_interval``, from the sessions that ticked recently and the measured cost of a tick), and
  the status line says so.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from cnnviz.serve import serving

LIVE_WAIT_S = 1.5  # a live tick waits at most this long for a slot (then redraws and tries next tick)
WAIT_SLICE_S = 0.2  # ... in slices of this length, updating its place in line in between
CLICK_WAIT_S = 10.0  # a Step / epoch click waits at most this long
HEAVY_WAIT_S = 30.0  # building a model waits at most this long for a slot, then runs anyway
IDLE_PAUSE_S = 60.0 * float(os.environ.get("CNNVIZ_IDLE_PAUSE_MIN", "30"))  # pause unattended live training
PLAYING_WINDOW_S = 10.0  # a session that ticked within this many seconds counts as playing (the fair share)
KEY = "_session_key"


@dataclass
class Server:
    """The server-wide objects: the fair limiter, the session registry and the measured cost of a tick."""

    limiter: serving.FairLimiter
    registry: serving.SessionRegistry
    tick_cost: serving.TickCost


@st.cache_resource(show_spinner=False)
def server() -> Server:
    """This process's limiter, registry and tick cost (created once, shared by every session by design)."""
    registry = serving.SessionRegistry(idle_pause_s=IDLE_PAUSE_S)
    return Server(serving.FairLimiter(), registry, serving.TickCost())


def session_key() -> str:
    """A random key for this browser session (never another session's, never reused)."""
    ss = st.session_state
    if KEY not in ss:
        ss[KEY] = uuid.uuid4().hex
    return ss[KEY]


def note_interaction() -> None:
    """Record that the user did something (call on every full script run, i.e. from app.py)."""
    server().registry.interaction(session_key())


def unattended() -> bool:
    """True when this session has been running with no interaction for longer than IDLE_PAUSE_S (checked in
    the live fragment's ticks only: a button's callback runs before app.py records the click)."""
    return _in_fragment_body() and server().registry.unattended(session_key())


def redraw_interval(base: float, current: float | None = None) -> float:
    """Seconds between this session's live redraws: ``base`` (its speed's interval) when few sessions play,
    longer when the server's fair share of live ticks says so (``serving.live_interval``; ``current``: the
    interval running now, for its hysteresis). This session counts as playing even before its first tick."""
    srv, key = server(), session_key()
    n = srv.registry.counts(PLAYING_WINDOW_S)["training"]
    if not srv.registry.ticked_within(key, PLAYING_WINDOW_S):
        n += 1
    return serving.live_interval(n, srv.tick_cost.seconds, os.cpu_count() or 1, base=base, current=current)


def record_tick_cost(cpu_s: float) -> None:
    """Report the CPU time one live tick took (training and drawing), for the fair share."""
    server().tick_cost.add(cpu_s)


def leave_line() -> None:
    """Give up this session's place in the line (it stopped playing)."""
    server().limiter.leave(session_key())


def _wait_text(res: serving.SlotResult, slots: int) -> str:
    ahead = "you are next" if res.ahead == 0 else (
        f"{res.ahead} session{'s' if res.ahead != 1 else ''} ahead of you")
    return (f"Waiting for a free CPU slot ({ahead}; {res.running} of {slots} slots busy). The server "
            "shares its cores fairly between everyone training; your model is safe and training continues "
            "by itself.")


def _live_text(n_training: int, slots: int, redraw: tuple[float, float] | None) -> str:
    """The status line of a live tick that got its slot; says so when the class slows this view's redraws."""
    text = (f"Training live · {n_training} session{'s' if n_training != 1 else ''} training on this server, "
            f"{slots} CPU slot{'s' if slots != 1 else ''} shared fairly")
    if redraw is not None and redraw[0] > redraw[1]:
        text += (f". To share the server fairly while others train too, your view redraws every "
                 f"{redraw[0]:g} s instead of every {redraw[1]:g} s")
    return text


def _in_fragment_body() -> bool:
    """True while the live fragment's body runs (where a status line belongs), not in a widget callback."""
    try:  # Streamlit 1.67's thread state; without it there is simply no status line (waiting still works)
        from streamlit.runtime.scriptrunner_utils.script_run_context import RunLocation, ThreadState

        return ThreadState.get().run_location is RunLocation.FRAGMENT
    except (ImportError, AttributeError):
        return False


@contextmanager
def training_slot(live: bool, status=None, max_wait_s: float | None = None,
                  redraw: tuple[float, float] | None = None) -> Iterator[serving.SlotResult]:
    """Hold one of the server's training slots for the duration of the ``with`` block (if granted).

    ``live`` (a Play tick): wait up to LIVE_WAIT_S, in slices, showing the place in line in ``status`` (a
    placeholder the caller created at a fixed place of its page, so that the element tree keeps one shape
    from run to run; its updates also let a click preempt the wait). Otherwise (a button) wait up to
    CLICK_WAIT_S. ``max_wait_s`` overrides the wait (0: take a slot only if one is free now). ``redraw``:
    (interval running, the speed's own interval) for the status line. Yields the SlotResult; the caller trains
    only if ``.granted``. The slot is released when the block exits.
    """
    srv, key = server(), session_key()
    limiter = srv.limiter
    if live:
        srv.registry.tick(key)
    wait = (LIVE_WAIT_S if live else CLICK_WAIT_S) if max_wait_s is None else max_wait_s
    deadline = time.monotonic() + wait
    if not (live and _in_fragment_body()):  # no status line from a button's callback
        status = None
    res = limiter.acquire(key, 0.0)
    try:  # from here on, any exit (including a click preempting a caption update) releases a granted slot
        while not res.granted and time.monotonic() < deadline:
            if status is not None:
                status.caption(_wait_text(res, limiter.slots))  # also a yield point: a click preempts here
            res = limiter.acquire(key, min(WAIT_SLICE_S, max(0.0, deadline - time.monotonic())))
        if status is not None:
            if res.granted:
                status.caption(_live_text(srv.registry.counts()["training"], limiter.slots, redraw))
            else:
                status.caption(_wait_text(res, limiter.slots))
        yield res
    finally:
        if res.granted:
            limiter.release(key)


@contextmanager
def heavy_work(max_wait_s: float | None = None) -> Iterator[serving.SlotResult]:
    """One-off heavy work of this session (building a Trainer, Reset) inside a training slot.

    Waits up to HEAVY_WAIT_S for a slot, then runs anyway: a page must always open. Runs at once if this
    session already holds a slot (nested use).
    """
    srv, key = server(), session_key()
    if srv.limiter.holds(key):
        yield serving.SlotResult(True)
        return
    res = srv.limiter.acquire(key, HEAVY_WAIT_S if max_wait_s is None else max_wait_s)
    try:
        yield res
    finally:
        if res.granted:
            srv.limiter.release(key)

"""Per-session state: this browser session's config, trainer, play flag and messages, in ``st.session_state``.

Keys other modules may rely on (see the team plan):
  "config"      RunConfig of the current model
  "trainer"     the session's Trainer (built lazily by ``get_trainer``)
  "drawing"     latest drawn/uploaded digit (28, 28) float32 in [0, 1], or None
  "user_digits" list of (image (28, 28), label int) added by the Draw page
  "playing"     live training on/off;  "speed"  the live-training speed name
  "error" / "notice"  one-shot messages shown at the top of the next page run
  "model_rev"   incremented whenever the model is replaced (rebuild, reset, upload): a cache key for pages

Nothing here touches another session: every object is created per session, and the shared dataset comes
read-only from ``resources``. Training runs under a per-session lock so that a full rerun and a fragment
tick (which Streamlit may run on different threads) never update one model at once.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from cnnviz.serve import serving
from cnnviz.train.config import RunConfig, preset_config
from cnnviz.train.trainer import Trainer, TrainingDiverged
from cnnviz.ui import resources, session_guard

DEFAULT_PRESET = "classroom"

# Live-training speeds: (seconds between redraws, time budget per redraw, max steps per redraw).
SPEEDS: dict[str, tuple[float, float, int]] = {
    "Slow": (0.5, 0.0, 1),  # one step at a time: watch every update
    "Normal": (0.25, 0.1, 25),
    "Fast": (0.25, 0.15, 200),  # bounded by LIMITS["steps_per_tick"]
}
DEFAULT_SPEED = "Normal"


def init() -> None:
    """Create this session's defaults (once per session; cheap on later runs)."""
    ss = st.session_state
    if "config" not in ss:
        ss["config"] = preset_config(DEFAULT_PRESET)
    ss.setdefault("playing", False)
    ss.setdefault("speed", DEFAULT_SPEED)
    ss.setdefault("drawing", None)
    ss.setdefault("user_digits", [])
    ss.setdefault("model_rev", 0)
    if "train_lock" not in ss:
        ss["train_lock"] = threading.Lock()


def get_config() -> RunConfig:
    """The session's current RunConfig."""
    init()
    return st.session_state["config"]


def get_trainer() -> Trainer:
    """The session's Trainer, built from the session's config on first use."""
    init()
    ss = st.session_state
    tr = ss.get("trainer")
    if tr is None:
        cfg = ss["config"]
        with session_guard.heavy_work():  # its first validation pass: in a fair CPU slot
            tr = Trainer(cfg, resources.dataset(cfg.task, cfg.train_size))
        ss["trainer"] = tr
    return tr


def _lock() -> threading.Lock:
    init()
    return st.session_state["train_lock"]


def set_error(msg: str) -> None:
    st.session_state["error"] = msg


def set_notice(msg: str) -> None:
    st.session_state["notice"] = msg


def _bump() -> None:
    st.session_state["model_rev"] = st.session_state.get("model_rev", 0) + 1


def apply_config(d: dict) -> RunConfig | None:
    """Validate ``d`` with RunConfig.from_dict and rebuild the trainer; on a bad value keep the current model.

    Returns the new config, or None (and an error message for the page) if it was rejected.
    """
    try:
        cfg = RunConfig.from_dict(d, max_train_size=resources.max_train_size())
        _install(cfg)
    except (ValueError, TypeError) as e:
        set_error(f"Configuration not applied: {e}. The current model is kept.")
        return None
    return cfg


def _install(cfg: RunConfig, net=None) -> None:
    """Build a trainer for ``cfg`` (on ``net``'s weights if given) and make it this session's model.

    Raises ValueError, before anything is replaced, for a network too costly for a shared server.
    """
    serving.check_server_cost(cfg)  # no single step may hold a shared server's CPU for long
    with session_guard.heavy_work():
        trainer = Trainer(cfg, resources.dataset(cfg.task, cfg.train_size), net=net)
    with _lock():
        st.session_state["config"] = cfg
        st.session_state["trainer"] = trainer
        st.session_state["playing"] = False
        _replay_user_digits(trainer)
        _bump()


def _replay_user_digits(trainer: Trainer) -> None:
    """Give a rebuilt trainer the user's own digits again (the Draw page's "teach it")."""
    digits = st.session_state.get("user_digits") or []
    if not digits:
        return
    import numpy as np

    images = np.stack([np.asarray(im, dtype=np.float32) for im, _ in digits])[:, None]  # (n, 1, 28, 28)
    labels = np.array([int(lab) for _, lab in digits], dtype=np.int64)
    try:
        trainer.add_examples(images, labels)
    except ValueError as e:
        set_error(f"Your digits could not be added to the new model: {e}")


def reset() -> None:
    """Back to step 0 with the same config (fresh weights from the seed); stops live training."""
    tr = get_trainer()
    with session_guard.heavy_work(), _lock():
        st.session_state["playing"] = False
        tr.reset()
        _bump()


def train(max_steps: int, budget_s: float | None = None, live: bool = False, status=None,
          wait: bool = True, redraw: tuple[float, float] | None = None) -> int:
    """Run up to ``max_steps`` steps, stopping before one that would overrun ``budget_s``; returns steps done.

    The work runs inside one of the server's fair CPU slots (``session_guard.training_slot``; ``live`` = a
    Play tick, which shows its place in line while waiting). Divergence stops live training and leaves a
    clear message; the trainer has already restored the last good weights. If another run of this session
    holds the model, or no CPU slot came free in time, nothing is done (returns 0). ``status``: the
    placeholder for a live tick's status line. ``wait=False``: neither wait for a CPU slot nor for the model
    (a full rerun after a click must return fast; the fragment's next tick trains). ``redraw``: (interval
    running, the speed's own) for the status line, which says when the class slows this session's redraws.
    """
    tr = get_trainer()
    lock = _lock()
    live = live or bool(st.session_state.get("playing"))  # while playing, every call is a live tick
    if live and session_guard.unattended():
        st.session_state["playing"] = False
        session_guard.leave_line()
        set_notice(f"Live training paused after {session_guard.IDLE_PAUSE_S / 60:.0f} minutes without any "
                   "interaction, to leave the CPU to others. Press Play to continue.")
        return 0
    done = 0
    with session_guard.training_slot(live, status=status, max_wait_s=None if wait else 0.0,
                                     redraw=redraw) as slot:
        if not slot.granted:
            if not live:
                set_error("The server is busy: no CPU slot came free within "
                          f"{session_guard.CLICK_WAIT_S:.0f} s. Nothing was trained; please try again.")
            return 0
        if not lock.acquire(timeout=5.0 if wait else 0.0):
            return 0
        try:
            t0 = last = time.perf_counter()
            while done < max_steps:
                tr.step()
                done += 1
                now = time.perf_counter()
                # stop before a step that would overrun the budget (a step's time is its predecessor's)
                if budget_s is not None and (now - t0) + (now - last) > budget_s:
                    break
                last = now
        except TrainingDiverged as e:
            st.session_state["playing"] = False
            set_error(str(e))
        finally:
            lock.release()
    return done


def replace_model(net, cfg: RunConfig) -> None:
    """Use an uploaded network (already validated) with its config; Reset returns to these weights."""
    _install(cfg, net)  # ValueError (shown by the upload box) for a too costly network

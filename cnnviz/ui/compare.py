"""Compare page: up to four runs trained in lockstep on the same minibatches, side by side.

A lesson preset (sigmoid vs ReLU, MSE vs cross-entropy, ...) or the session's current run pinned beside
changed copies of it. The live part (Step, Step ×10, the run cards, curves, filters, gradient norms and the
table of differences) is a fragment; Play gives it a ``run_every`` timer, and each tick trains for a bounded
time inside one of the server's fair CPU slots, as the Train page does (a lockstep step of four runs costs
four steps). Every run is checked with ``serving.check_server_cost`` before it is built.

What the page keeps (the comparison, its source, its play flag, the next pinned run's settings) lives in the
session's typed state, ``AppState.compare`` (``cnnviz.ui.state``); its runs train under the session's model
lock. Widget keys only mirror those values.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from cnnviz.serve import serving
from cnnviz.train import compare as C
from cnnviz.train import health
from cnnviz.train.config import ACTIVATIONS, POOLINGS
from cnnviz.ui import common, resources, session_guard, state
from cnnviz.viz import figures_compare as FC
from cnnviz.viz.names import describe_config

PIN = "pin the current run and change settings"
DEFAULT_LESSON = "sigmoid vs ReLU"
TICK_S, TICK_BUDGET_S, MAX_TICK_STEPS = 0.3, 0.15, 50  # live: interval, training time per tick, steps cap
LIVE_KEY = "cmp_live"
LRS = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.08, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
ACT_LABELS = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
POOL_LABELS = {"max": "max", "avg": "average", "none": "none"}
INIT_LABELS = {"default": "He / Glorot", "tutorial": "uniform(0, 1)"}


# ----------------------------------------------------------------------------------------------------------
# Session objects
# ----------------------------------------------------------------------------------------------------------
def _cs() -> state.CompareState:
    return state.app().compare


def _lock():
    """The session's model lock: a comparison's runs are this session's too, trained one thing at a time."""
    return state.lock()


def _build(specs: list[C.RunSpec], name: str) -> bool:
    """Build a comparison (every run checked against the server's limits first); True on success."""
    try:
        with session_guard.heavy_work():
            cmp = C.Comparison(specs, resources.dataset, serving.check_server_cost, name=name)
    except ValueError as e:
        state.set_error(f"Comparison not built: {e}")
        return False
    with _lock():
        cs = _cs()
        cs.cmp, cs.playing = cmp, False
    return True


def comparison() -> C.Comparison:
    """The session's comparison (the default lesson on a first visit)."""
    cs = _cs()
    if cs.cmp is None:
        name = cs.source if cs.source in C.LESSONS else DEFAULT_LESSON
        if not _build(C.lesson(name), name):
            raise RuntimeError("the default comparison could not be built")
    return cs.cmp


def _on_source() -> None:
    name = _cs().source
    if name in C.LESSONS:
        _build(C.lesson(name), name)


def _pin(add: bool) -> None:
    """Pin the session's run beside a copy with the chosen settings (or add one more such run)."""
    cs = _cs()
    ch = C.pin_changes(state.get_config(), cs.lr, cs.activation, cs.pooling, cs.init)
    if not ch:
        state.set_error("Change at least one setting for the new run: it would be the pinned run again.")
        return
    cfg = state.get_config()
    cur = _cs().cmp
    previous = [r.spec for r in cur.runs] if add and cur is not None and cur.name == PIN else None
    try:
        specs = C.pin_specs(cfg, ch, previous)
    except ValueError as e:
        state.set_error(f"Comparison not built: {e}")
        return
    _build(specs, PIN)


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------
def _train(max_steps: int, budget_s: float | None, live: bool, status=None) -> int:
    """Up to ``max_steps`` lockstep steps within ``budget_s``, in a fair CPU slot; returns the steps done."""
    cmp = comparison()
    done = 0
    with session_guard.training_slot(live, status=status) as slot:
        if not slot.granted:
            if not live:
                state.set_error("The server is busy: no CPU slot came free. Nothing was trained; try again.")
            return 0
        lock = _lock()
        if not lock.acquire(timeout=5.0):
            return 0
        try:
            t0 = last = time.perf_counter()
            while done < max_steps:
                if not cmp.step(1):
                    _cs().playing = False
                    break
                done += 1
                now = time.perf_counter()
                if budget_s is not None and (now - t0) + (now - last) > budget_s:
                    break
                last = now
        finally:
            lock.release()
    return done


def _step(n: int) -> None:
    if _train(n, None, live=False) and n > 1:
        comparison().validate_now()


def _set_playing(on: bool) -> None:
    if state.owns_session():
        _cs().playing = on


def _reset() -> None:
    with session_guard.heavy_work(), _lock():
        _cs().playing = False
        comparison().reset()


# ----------------------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------------------
def _run_hints(cmp: C.Comparison) -> list[list[health.Hint]]:
    """Each run's health hints, cached per lockstep step."""
    caches = state.app().caches
    key = (id(cmp), tuple(r.stopped for r in cmp.runs))
    cached = caches.get("compare_health")
    if cached is not None and cached[0] == key and (
            cached[2] == cmp.step_count or (_cs().playing and 0 <= cmp.step_count - cached[2] < 10)):
        return cached[1]  # while playing, the runs are probed every 10 steps
    x_val, _ = resources.validation_images()
    with _lock():
        nets = [r.trainer.net.copy() for r in cmp.runs]
    out = C.run_health(cmp, nets, x_val)
    caches["compare_health"] = (key, out, cmp.step_count)
    return out


def _cards(cmp: C.Comparison) -> None:
    hints = _run_hints(cmp)
    cols = st.columns(len(cmp.runs))
    for i, (col, r) in enumerate(zip(cols, cmp.runs, strict=True)):
        tr = r.trainer
        recent = tr.history[-20:]
        loss = float(np.mean([x.loss for x in recent])) if recent else None
        val = tr.last_val
        with col.container(border=True):
            st.markdown(f"<div style='font-size:1.25rem;font-weight:700;color:{FC.run_colour(i)}'>"
                        f"■ {r.spec.label}</div>", unsafe_allow_html=True)
            st.markdown(f"step **{tr.step_count:,}** · training loss **{common.fmt(loss, '.3f')}** · "
                        f"validation **{common.fmt(val[2] if val else None, '.1%')}**")
            if r.stopped:
                st.error(r.stopped, icon=":material/warning:")
            for h in hints[i][:1]:  # the most important one (a stuck hint names its cause)
                (st.error if h.severity == "error" else st.warning)(
                    f"**{h.title}.** {h.saw}", icon=":material/stethoscope:")


def _live(interval: float | None) -> None:
    cs = _cs()
    status = st.empty()
    cpu0, trained = time.thread_time(), 0
    if cs.playing:
        if session_guard.unattended():  # nobody has touched the page for a long time: leave the CPU
            cs.playing = False
            session_guard.leave_line()
            state.set_notice("Live training paused after a long time without any interaction. Press Play "
                             "to continue.")
            st.rerun()
        # a lockstep step of four runs costs four steps: the time budget per tick is the Train page's
        trained = _train(MAX_TICK_STEPS, TICK_BUDGET_S, live=True, status=status)
        if not cs.playing:
            st.rerun()  # every run stopped: the timer goes
    cmp = comparison()
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    row.button("Step", key="cmp_step", on_click=_step, args=(1,), icon=":material/skip_next:",
               help="One step of every run, on the same minibatch")
    row.button("Step ×10", key="cmp_step10", on_click=_step, args=(10,), icon=":material/fast_forward:",
               help="Ten steps of every run")
    common.show_error()
    _cards(cmp)
    st.caption(C.batches_note(cmp))
    s = common.scale()
    # on a projector the filters get half the width, so that each tile is at least 150 px
    left, right = st.columns([1, 1] if common.presentation() else [3, 2], gap="medium")
    with left:
        common.plot(FC.compare_curves(C.curve_series(cmp), scale=s), key="cmp_curves")
    with right:
        common.plot(FC.compare_filters(C.first_filters(cmp), cmp.step_count, scale=s), key="cmp_filters")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        common.plot(FC.compare_grad_norms(C.grad_norm_series(cmp), scale=s), key="cmp_grads")
    with right:
        st.subheader("What differs between the runs")
        rows = cmp.differences()
        if rows:
            st.markdown(FC.differences_table(cmp.labels, rows), unsafe_allow_html=True)
        else:
            st.caption("Nothing: the runs have the same settings.")
        first = cmp.runs[0].spec.config
        st.caption(f"Shared by every run: seed {first.seed}, {first.train_size:,} training images.")
    if interval and trained:  # a live tick's CPU time, for the server's fair share of redraws
        session_guard.record_tick_cost(time.thread_time() - cpu0)


def _live_playing(interval: float | None) -> None:
    _live(interval)


def _live_paused(interval: float | None) -> None:
    _live(interval)


def _source_controls() -> None:
    cs = _cs()
    options = [*C.LESSONS, PIN]
    if cs.source not in options:
        cs.source = DEFAULT_LESSON
    st.selectbox("Lesson", options, **state.bind("compare.source", "cmp_source", after=_on_source),
                 help="A ready-made comparison, or your current run (the sidebar's settings) beside changed "
                      "copies of it")
    if cs.source in C.LESSONS:
        st.caption(C.LESSONS[cs.source][1])
        return
    cfg = state.get_config()
    arch = C.current_arch(cfg)
    if cs.lr not in LRS:  # first time (None), or a value no longer offered: the current run's, rounded
        cs.lr = cfg.lr if cfg.lr in LRS else min(LRS, key=lambda v: abs(v - cfg.lr))
    cs.activation = cs.activation if cs.activation in ACTIVATIONS else arch["activation"]
    cs.pooling = cs.pooling if cs.pooling in POOLINGS else arch["pooling"]
    cs.init = cs.init if cs.init in INIT_LABELS else cfg.init
    st.caption(f"Pinned: your current run ({describe_config(cfg)}). Choose what the next run changes:")
    c1, c2, c3, c4 = st.columns(4)
    c1.select_slider("Learning rate", LRS, format_func=lambda v: f"{v:g}",
                     **state.bind("compare.lr", "cmp_lr"))
    c2.selectbox("Activation", list(ACTIVATIONS), format_func=ACT_LABELS.get,
                 **state.bind("compare.activation", "cmp_activation"))
    c3.selectbox("Pooling", list(POOLINGS), format_func=POOL_LABELS.get,
                 **state.bind("compare.pooling", "cmp_pooling"))
    c4.selectbox("Initial weights", list(INIT_LABELS), format_func=INIT_LABELS.get,
                 **state.bind("compare.init", "cmp_init"))
    row = st.container(horizontal=True, gap="small")
    row.button("Compare with the pinned run", key="cmp_pin", on_click=_pin, args=(False,), type="primary",
               icon=":material/push_pin:")
    cur = cs.cmp
    if cur is not None and cur.name == PIN and len(cur.runs) < C.MAX_RUNS:
        row.button("Add as another run", key="cmp_add", on_click=_pin, args=(True,), icon=":material/add:",
                   help=f"Up to {C.MAX_RUNS} runs, all trained on the same minibatches")


def render() -> None:
    """The Compare page."""
    cs = _cs()
    st.title("Compare runs")
    st.caption("Up to four runs trained in lockstep on the same minibatches from the same seed, so that any "
               "difference comes from the settings. One colour per run in every figure.")
    _source_controls()
    try:
        comparison()
    except RuntimeError:
        common.show_error()
        return
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    if cs.playing:
        row.button("Pause", key="cmp_pause", on_click=_set_playing, args=(False,), type="primary",
                   icon=":material/pause:")
    else:
        row.button("Play", key="cmp_play", on_click=_set_playing, args=(True,), type="primary",
                   icon=":material/play_arrow:", help="Train every run continuously, step by step together")
    row.button("Reset", key="cmp_reset", on_click=_reset, icon=":material/restart_alt:",
               help="Every run back to step 0 (same start, same minibatches)")
    interval = session_guard.redraw_interval(TICK_S) if cs.playing else None
    body = _live_playing if interval else _live_paused
    st.fragment(body, run_every=interval, key=LIVE_KEY + ("_playing" if interval else ""))(interval)

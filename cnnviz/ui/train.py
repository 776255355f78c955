"""Train page: step, play and watch the filters and the curves change; replay the filters' history.

The live part of the page (Step buttons, metrics, filters, curves) is one fragment: Step and Step ×10 rerun
only that fragment, not the sidebar and the rest of the app, which keeps a click fast. While playing, the
fragment has ``run_every``: each tick trains for a bounded time (``state.SPEEDS``), then redraws.
Play/Pause, speed and Reset change that timer, so they sit outside the fragment and cause a full rerun
(which also interrupts a running tick at its next drawing call). The replay has its own fragment.

When many students play on one server, the timer's interval grows beyond the speed's own: the server's fair
share of live ticks (``session_guard.redraw_interval``), fed with the CPU time each tick measures here. The
status line then says how often this view redraws, and why.
"""

from __future__ import annotations

import time

import streamlit as st

from cnnviz.train import progress
from cnnviz.ui import common, filter_link, health_panel, keys, session_guard, state
from cnnviz.viz import figures
from cnnviz.viz.names import describe_config

LIVE_KEY, REPLAY_KEY = "train_live", "train_replay_fragment"  # fragment keys
INTERVAL_CACHE = "train_live_interval"  # AppState.caches: the live timer's interval of the last full run


# ----------------------------------------------------------------------------------------------------------
# Button callbacks (run before the page is drawn, so the figures of the same run show their effect)
# ----------------------------------------------------------------------------------------------------------
def _step(n: int) -> None:
    # Step ×10 also validates, so that the curves get a validation point at this very step; a single Step
    # stays as light as possible (validation then follows the trainer's schedule, every val_every steps).
    if state.train(n) and n > 1:
        state.get_trainer().validate_now()
    if state.app().ui.replay_step is None:  # the replay follows the latest step: redraw it too
        st.rerun(scope=[_live_key(), REPLAY_KEY])


def _set_playing(on: bool) -> None:
    # Play and Pause are two buttons with their own keys, and each SETS the flag rather than toggling it.
    # With one key for both, a click that Streamlit replays after an interrupted run could reach the button
    # after its label (and callback) had flipped, and silently undo a Pause (seen in the browser).
    state.app().playing = on


def _reset() -> None:
    state.reset()  # its notice says which weights the run started from (seed, pretrained, uploaded)


def _live_controls() -> None:
    """Play/Pause, speed and Reset: outside the live fragment, because they change its timer. A click here
    is a full rerun, which Streamlit lets interrupt a running tick, so Pause answers at once."""
    playing = state.app().playing
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    if playing:
        row.button("Pause", key="btn_pause", on_click=_set_playing, args=(False,), type="primary",
                   icon=":material/pause:",
                   help="Stop live training (the model and its history are kept). " + keys.HELP)
    else:
        row.button("Play", key="btn_play", on_click=_set_playing, args=(True,), type="primary",
                   icon=":material/play_arrow:", help="Train continuously and watch it learn. " + keys.HELP)
    row.segmented_control("Speed", list(state.SPEEDS), **state.bind("ui.speed", "speed"), required=True,
                          label_visibility="collapsed",
                          help="Slow: one step per redraw. Normal / Fast: as many steps as fit in ~0.1 s / "
                               "~0.15 s per redraw")
    row.button("Reset", key="btn_reset", on_click=_reset, icon=":material/restart_alt:",
               help=f"Back to step 0 from {state.app().start.describe()}, empty history (Undo brings it "
                    "back). Key: R")


def _step_controls(tr) -> bool:
    """Step, Step ×10 and 1 epoch, inside the live fragment: a click redraws only that fragment.
    Returns True when the live timer must change (an epoch run stops live training)."""
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    row.button("Step", key="btn_step", on_click=_step, args=(1,), icon=":material/skip_next:",
               help="One training step (one minibatch, or the full batch). Key: S")
    row.button("Step ×10", key="btn_step10", on_click=_step, args=(10,), icon=":material/fast_forward:",
               help="Ten training steps")
    epoch = row.button("1 epoch", key="btn_epoch", icon=":material/all_inclusive:",
                       help=f"Train one pass over the {tr.n_train:,} training images "
                            f"({tr.steps_per_epoch} steps) with a progress bar")
    playing = state.app().playing
    if epoch:
        _run_epoch(tr)
    # after an epoch a full rerun restarts the live timer (playing) or redraws the replay that follows the
    # latest step
    return epoch and (playing or state.app().ui.replay_step is None)


def _run_epoch(tr) -> None:
    """One epoch in chunks, with a progress bar (long work shows progress)."""
    state.app().playing = False
    n = tr.steps_per_epoch
    bar = st.progress(0.0, text=f"Training one epoch: 0 / {n} steps")
    done, chunk = 0, max(1, n // 20)
    while done < n:
        k = state.train(min(chunk, n - done))
        if k == 0:  # diverged (message set) or the model is busy
            break
        done += k
        bar.progress(done / n, text=f"Training one epoch: {done} / {n} steps")
    bar.empty()
    if done:
        tr.validate_now()
        health_panel.done_message(tr, f"Trained {done} steps (one epoch over {tr.n_train:,} images).")


# ----------------------------------------------------------------------------------------------------------
# The live part
# ----------------------------------------------------------------------------------------------------------
def _metrics(tr) -> None:
    loss, ms = progress.recent_means(tr)
    val = tr.last_val
    common.metric_row([
        ("Step", f"{tr.step_count:,}", "Training steps so far (one minibatch each)"),
        ("Epoch", f"{tr.epochs_done:.2f}", "Passes over the training set so far"),
        ("Train loss", common.fmt(loss), "Mean batch loss over the last 20 steps"),
        ("Val loss", common.fmt(val[1] if val else None),
         f"On the 1,000 validation images, at step {val[0]}" if val else None),
        ("Val accuracy", common.fmt(val[2] if val else None, ".1%"),
         f"On the 1,000 validation images, at step {val[0]}" if val else None),
        ("ms / step", common.fmt(ms, ".1f"),
         "Mean time of forward + backward + update over the last 20 steps"),
    ])
    if val and val[0] != tr.step_count:
        st.caption(f"Validation on the {tr.data.n_val:,} held-out images was last run at step {val[0]} "
                   f"(it runs every {tr.config.val_every} steps, after Step ×10 and after an epoch).")


def curves_figure(tr, scale: float, height: int = 300):
    steps, loss, acc, v = progress.curve_arrays(tr)  # (n,), (n,), (n,), (m, 3): step, loss, acc
    return figures.training_curves(steps, loss, acc, v[:, 0], v[:, 1], v[:, 2], scale=scale, height=height)


def _draw_live(tr) -> None:
    s = common.scale()
    _metrics(tr)
    health_panel.render(tr)
    W = progress.first_conv_weights(tr.net)  # (F, C, KH, KW) or None
    left, right = st.columns([2, 3], gap="medium")
    with left:
        if W is not None:
            # a balanced near-square grid whose height follows from its tiles (figures.filter_grid)
            common.plot(figures.filter_grid(W, title=f"Learned filters at step {tr.step_count}", scale=s),
                        key="train_filters")
        else:
            st.info("This network has no convolution layer, so there are no filters to show.")
    with right:
        common.plot(curves_figure(tr, s, height=360), key="train_curves")


def _live_key() -> str:
    """The live fragment's key (for ``st.rerun(scope=...)``): the playing and the paused live part are two
    fragments (``_live_playing`` / ``_live_paused``, see ``render``), each with its own key."""
    return LIVE_KEY + "_playing" if state.app().playing else LIVE_KEY


def _speed() -> tuple[float, float, int]:
    """(interval, training budget per tick, max steps per tick) of the session's speed."""
    return state.SPEEDS.get(state.app().ui.speed, state.SPEEDS[state.DEFAULT_SPEED])


def _interval(current: float | None = None) -> float | None:
    """Seconds between live redraws, or None when not playing: the speed's interval, stretched by the
    server's fair share when many sessions play (``current``: the interval running now)."""
    if not state.app().playing:
        return None
    return session_guard.redraw_interval(_speed()[0], current)


def _is_fragment_rerun() -> bool:
    """True in a run of the fragment alone (its timer or a click inside it), False in a full script run."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def _live(interval: float | None) -> None:
    """Fragment body: train one tick when playing, then draw controls, metrics, filters, curves, replay.

    ``interval`` is the timer this fragment was started with; when the controls change what it should be
    (play, pause, reset, speed, divergence), a full rerun restarts the fragment with the new timer.
    """
    if not state.owns_session():  # another tab took the session over: a full run says so
        st.rerun()
    cpu0, tick = time.thread_time(), _is_fragment_rerun()
    # One placeholder for the status line, always created (empty when paused): the fragment's element tree
    # keeps the same shape whether playing or not, so a delta of an older run can never address a block
    # where the newer run put an element (the frontend's "'setIn' cannot be called on an ElementNode").
    status = st.empty()
    trained = 0
    if state.app().playing:
        base, budget, max_steps = _speed()
        # In a full rerun (a click: Play, speed, ...) train only if a slot and the model are free right now,
        # so that the click returns fast; the timer's ticks do the waiting.
        trained = state.train(max_steps, budget_s=budget if budget > 0 else None, status=status, wait=tick,
                              redraw=(interval, base) if interval else None)
    tr = state.get_trainer()
    changed = _step_controls(tr)
    # e.g. an epoch run, divergence during this tick, or the class's fair share moved to another interval
    if changed or _interval(interval) != interval:
        st.rerun()
    common.show_error()
    _draw_live(tr)
    if tick and trained:  # a timer tick's CPU time, training and drawing: what the fair share divides
        session_guard.record_tick_cost(time.thread_time() - cpu0)


def _live_playing(interval: float | None) -> None:
    _live(interval)


def _live_paused(interval: float | None) -> None:
    _live(interval)


# ----------------------------------------------------------------------------------------------------------
# Replay
# ----------------------------------------------------------------------------------------------------------
def _on_replay_slider(key: str, latest: int) -> None:
    """The user moved the replay slider: stay there (or follow the latest step again if moved to it)."""
    v = st.session_state.get(key)
    state.app().ui.replay_step = None if v is None or v == latest else int(v)


def _follow_latest() -> None:
    state.app().ui.replay_step = None


def _replay(tr) -> None:
    snaps = tr.snapshots
    ui = state.app().ui
    head = st.container(horizontal=True, vertical_alignment="bottom")
    head.subheader("Replay the filters")
    head.button("Show the latest step", key="btn_replay_latest", type="tertiary", icon=":material/refresh:",
                on_click=_follow_latest, disabled=ui.replay_step is None,
                help="The replay follows the latest step until you move its slider; this goes back to "
                     "following it")
    if len(snaps) < 2:
        st.caption("Train a few steps: every step's filters are recorded (then every few steps) so that you "
                   "can come back here and scrub through how they changed.")
        return
    steps = [sn.step for sn in snaps]
    if ui.replay_step is not None and ui.replay_step not in steps:
        ui.replay_step = None  # that snapshot was thinned out, or the model changed
    key = "replay_step"
    st.session_state[key] = steps[-1] if ui.replay_step is None else ui.replay_step
    chosen = st.select_slider("Show the filters at step", steps, key=key,
                              on_change=_on_replay_slider, args=(key, steps[-1]),
                              help="Recorded snapshots of the first conv layer (spaced out for long runs). "
                                   "It follows the latest step unless you move it.")
    snap = snaps[steps.index(chosen)]
    sample = snaps[:: max(1, len(snaps) // 20)]  # one colour range for the whole run
    zmax = figures.symmetric_range(*(sn.filters for sn in sample), snaps[-1].filters)
    fig = figures.filter_replay(snap.filters, snaps[0].filters, snap.step, scale=common.scale(), zmax=zmax)
    common.plot(fig, key="train_replay")
    st.caption("Left: the filters at that step, on one colour scale for the whole run. Right: how much each "
               "weight moved since initialisation (its own scale).")


def render() -> None:
    """The Train page."""
    tr = state.get_trainer()
    cfg = state.get_config()
    st.title("Train")
    st.caption(f"{describe_config(cfg)} · {tr.net.n_params:,} parameters · {tr.n_train:,} training images")
    _live_controls()
    caches = state.app().caches
    interval = _interval(caches.get(INTERVAL_CACHE))
    caches[INTERVAL_CACHE] = interval
    # Two fragment functions: Streamlit derives a fragment's id from its function's name (not its key), so
    # the playing and the paused live part are different fragments, and a run_every tick the browser still
    # sends after Pause names a fragment this run did not register: the server skips it.
    body = _live_playing if interval else _live_paused
    st.fragment(body, run_every=interval, key=_live_key())(interval)
    filter_link.inspect_link(state.get_trainer().net, key="train")
    st.fragment(_replay_fragment, key=REPLAY_KEY)()  # also in presentation mode: filters learning
    keys.install()


def _replay_fragment() -> None:
    """The replay in its own fragment: moving its slider redraws only the replay, and a Step click (which
    reruns only the live fragment) does not pay for redrawing it. Each of its runs reads the trainer's
    snapshots afresh, so the slider always offers every recorded step."""
    if state.app().playing:
        st.subheader("Replay the filters")
        st.caption("Pause to replay how the filters changed, step by step.")
        return
    _replay(state.get_trainer())

"""Training-health hints on the Train page: what went wrong, the evidence, and a one-click fix.

``render(trainer)`` shows the hints of ``cnnviz.train.health`` for the session's run (computed once per
training step and model, on a copy of the network so that a live tick's forward/backward is never
disturbed). ``done_message`` replaces a plain success message: a run that is stuck or diverged never gets
one. A fix is a new config dict (``health.apply_fix``) applied through ``state.apply_config``, which rebuilds
the model from step 0.
"""

from __future__ import annotations

import streamlit as st

from cnnviz.nn.head import TASK_CLASS_NAMES
from cnnviz.train import health
from cnnviz.ui import common, resources, state
from cnnviz.viz import figures_compare
from cnnviz.viz.names import describe_config

CACHE_KEY = "health"  # in the AppState's caches
LIVE_EVERY = 10  # steps between two health checks while playing (every step otherwise)


def hints(tr) -> list[health.Hint]:
    """The session trainer's hints, cached for (model revision, step)."""
    a = state.app()
    key = (a.model_rev, id(tr), len(tr.val_history), tr.last_divergence)
    cached = a.caches.get(CACHE_KEY)
    if cached is not None and cached[0] == key and (
            cached[2] == tr.step_count or (a.playing and tr.step_count - cached[2] < LIVE_EVERY)):
        return cached[1]  # while playing, a probe every LIVE_EVERY steps keeps the live ticks light
    if tr.step_count == 0 and tr.last_divergence is None:
        result: list[health.Hint] = []
    else:
        x_val, _ = resources.validation_images()
        with state.reading():  # a consistent copy of the weights, never half-updated
            net = tr.net.copy()
        result = health.trainer_health(tr, x_val, net=net)
    a.caches[CACHE_KEY] = (key, result, tr.step_count)
    return result


def _apply(fix: dict, title: str) -> None:
    cfg = state.get_config()
    if not fix:  # "stop here": keep this model, stop live training
        state.app().playing = False
        state.set_notice(f"Stopped here ({title.split(':')[0].lower()}).")
        return
    new = state.apply_config(health.apply_fix(cfg.to_dict(), fix), f"the fix \"{title}\"")
    if new is not None:
        state.set_notice("Fixed and restarted from step 0 (Undo brings the old run back): "
                         f"{describe_config(new)}")
    state.app().health_fixed = True  # the sidebar shows the settings: a full rerun redraws it


def show_hint(h: health.Hint) -> None:
    """One hint as a coloured box: title, what it saw (numbers) and why it matters."""
    box = st.error if h.severity == "error" else st.warning
    box(f"**{h.title}.** {h.saw}  \n*Why it matters:* {h.why}", icon=":material/stethoscope:")


def render(tr) -> None:
    """The hints for the session's run, if any (nothing at all for a healthy run): the boxes, the histogram
    of predicted classes beside them for a stuck run, and one button per distinct fix."""
    a = state.app()
    fixed, a.health_fixed = a.health_fixed, False
    if fixed and _in_fragment():
        st.rerun()  # a fix clicked inside the live fragment: redraw the whole app (sidebar included)
    found = hints(tr)
    if not found:
        return
    stuck = next((h for h in found if h.histogram is not None), None)
    left, right = st.columns([3, 2], gap="medium") if stuck is not None else (st.container(), None)
    with left:
        for h in found:
            show_hint(h)
    if right is not None:
        with right:
            common.plot(figures_compare.prediction_histogram(
                stuck.histogram, list(TASK_CLASS_NAMES[tr.config.task]),
                f"What it predicts for {health.PROBE_IMAGES} validation images", scale=common.scale()),
                key="health_stuck_hist")
    row = st.container(horizontal=True, gap="small")
    seen: list[dict] = []
    for h in found:
        if h.fix in seen:
            continue
        seen.append(h.fix)
        row.button(h.fix_label, key=f"health_{h.kind}_fix", on_click=_apply, args=(h.fix, h.title),
                   icon=":material/healing:", type="primary" if len(seen) == 1 else "secondary",
                   help="Applies this change to the settings and restarts training from step 0")


def done_message(tr, text: str) -> None:
    """A success message for finished training, or, when the run is stuck or diverged, a warning instead
    (kept in the session state: the page reruns after an epoch and shows it at the top)."""
    if health.is_failing(hints(tr)):
        state.set_warning(f"{text} But the run is not learning: see the hints below.")
    else:
        state.set_notice(text)


def _in_fragment() -> bool:
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)

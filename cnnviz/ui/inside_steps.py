"""The Inside page's convolution step-through: the window moves over the image, patch ⊙ filter = value, with
Play / Pause.

A sibling widget module of ``cnnviz.ui.inside`` (that page imports it; no other page does); the steps and
their sums come from the pure ``cnnviz.viz.lesson_math``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz.ui import common, state
from cnnviz.viz import figures
from cnnviz.viz.lesson_math import TUTORIAL_FILTER, TUTORIAL_IMAGE, step_example, sum_latex


def step_through_section(net, image: np.ndarray, scale: float) -> None:
    """The convolution step-through: the window moves, patch ⊙ filter = value, with play/pause."""
    conv = next((layer for layer in net.layers if type(layer).__name__ == "Conv2D"), None)
    options = ["Tutorial example: 3×3 image, 2×2 filter"]
    if conv is not None:
        options.append("This image with a learned filter")
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    ui = state.app().ui
    if ui.step_example not in options:
        ui.step_example = options[0]  # e.g. the learned-filter example of a net that has no conv layer now
    choice = c1.radio("Example", options, horizontal=True,
                      **state.bind("ui.step_example", "inside_step_example"))
    if choice == options[0]:
        img, kern, steps = step_example(TUTORIAL_IMAGE, TUTORIAL_FILTER)
        kind, numbers = "tutorial", True
    else:
        W = np.asarray(conv.params["W"])  # (F, C, KH, KW)
        if not 0 <= ui.step_filter < W.shape[0]:
            ui.step_filter = 0  # the model now has fewer filters
        k = c2.selectbox("Filter", list(range(W.shape[0])), format_func=lambda i: f"filter {i + 1}",
                         **state.bind("ui.step_filter", "inside_step_filter", convert=int))
        sp = conv.spec()
        img, kern, steps = step_example(image, W[k, 0], stride=sp["stride"], padding=sp["padding"])
        kind, numbers = f"real {img.shape} {sp['stride']}", None  # positions differ with the image grid
        if kind not in ui.step_pos:  # start mid-image, where there is ink, rather than in a blank corner
            w_out = steps[-1]["col"] + 1
            ui.step_pos[kind] = (len(steps) // w_out // 2) * w_out + w_out // 3 + 1
    n = len(steps)

    def _moved() -> None:
        ui.step_pos[kind] = int(st.session_state["inside_step_pos"])

    @st.fragment(run_every=0.6 if ui.step_playing else None)
    def _view() -> None:
        current = int(ui.step_pos.get(kind, 1))
        if ui.step_playing:
            current = current % n + max(1, n // 48)  # a full pass in about 48 ticks, then start again
            current = min(current, n)
        ui.step_pos[kind] = min(max(current, 1), n)
        b1, b2 = st.columns([1, 6], vertical_alignment="bottom")
        on = ui.step_playing
        if b1.button("Pause" if on else "Play", key="inside_step_playbtn", width="stretch",
                     icon=":material/pause:" if on else ":material/play_arrow:"):
            ui.step_playing = not on
            st.rerun()  # the fragment's timer starts or stops with a full run
        st.session_state["inside_step_pos"] = ui.step_pos[kind]
        pos = b2.slider("Window position", 1, n, key="inside_step_pos", on_change=_moved,
                        help="Move the window over the image")
        s = steps[pos - 1]
        fig = figures.conv_step_figure(img, kern, steps, pos - 1, numbers=numbers, scale=scale)
        common.plot(fig, key="inside_step_fig")
        st.latex(sum_latex(s, kern))
        if numbers:
            vals = [f"{t['value']:g}" for t in steps]
            w_out = steps[-1]["col"] + 1
            grid = "; ".join(", ".join(vals[r:r + w_out]) for r in range(0, n, w_out))
            st.caption(f"All {n} positions, in reading order: {', '.join(vals)} — the output map "
                       f"[{grid}] (rows separated by ;).")
        else:
            st.caption("Hover over a cell to read its value. The output map fills up as the window moves; "
                       "it is the feature map (before bias and activation) of the chosen filter.")

    _view()

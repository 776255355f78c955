"""The Lesson page's figures: the live figure(s) of each of the ten steps, and the buttons beside them.

A sibling widget module of ``cnnviz.ui.lesson`` (that page imports it; no other page does). Each step's data
comes from the pure ``cnnviz.viz.lesson``; the figures from the figure builders.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz.train.config import preset_config
from cnnviz.ui import common, state
from cnnviz.viz import figures, figures_lesson
from cnnviz.viz import lesson as L
from cnnviz.viz.names import task_name


def use_preset(name: str) -> None:
    """Switch the session's model to the ``name`` preset's network (through ``state.apply_config``: the
    model before goes on the Undo stack)."""
    seed = state.get_config().seed
    what = f"the lesson's switch to the {name} network"
    if state.apply_config(preset_config(name, seed=seed).to_dict(), what) is not None:
        state.set_notice(f"The model is now the {name} network (seed {seed}), at step 0. Undo brings the "
                         "previous model back.")


def _page_link(url_path: str, title: str, icon: str) -> None:
    st.page_link(
        st.Page(lambda: None, title=title, url_path=url_path, icon=icon), label=f"Open {title}", icon=icon
    )


_DIGIT_PX = 460  # step 1's digit: about the width of its half of the figure column on a 1920-px screen


def _fig_1(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    a, b = st.columns([1, 1])
    fig = figures.digit_input_figure(
        d["image"], f"Validation image {lesson.index}: a {lesson.label}", scale=scale, height=_DIGIT_PX
    )
    # the square image fills the column's width; a column narrower than the figure is tall would centre it
    # far below its title, so it hangs from the top instead
    fig.update_yaxes(constraintoward="top")
    with a:
        common.plot(fig, key="lesson_fig_1")
    r0, r1, c0, c1 = d["box"]
    crop = d["image"][r0 : r1 + 1, c0 : c1 + 1]
    b.caption(
        f"The numbers of the inked part (rows {r0}–{r1}, columns {c0}–{c1}); everything around is 0."
    )
    table = {"row": list(range(r0, r1 + 1))}
    table.update({f"col {c0 + j}": np.round(crop[:, j], 2) for j in range(crop.shape[1])})
    b.dataframe(table, height=400, hide_index=True)


def _fig_2(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    st.markdown("**The tutorial's example: a 3 × 3 image, a 2 × 2 filter**")
    steps = d["tutorial_steps"]
    ls = state.app().lesson
    ls.tut_pos = min(max(int(ls.tut_pos), 1), len(steps))
    pos = st.slider("Window position (tutorial example)", 1, len(steps), **state.bind("lesson.tut_pos",
                                                                                        "lesson_tut_pos"))
    common.plot(
        figures.conv_step_figure(
            d["tutorial_image"], d["tutorial_filter"], steps, pos - 1, numbers=True, scale=scale
        ),
        key="lesson_fig_2a",
    )
    if "steps" in d:
        st.markdown("**The digit with the network's filter 1**")
        rsteps = d["steps"]
        if ls.real_pos is None:
            ls.real_pos = d["best"] + 1
        ls.real_pos = min(max(int(ls.real_pos), 1), len(rsteps))
        rpos = st.slider("Window position (digit)", 1, len(rsteps), **state.bind("lesson.real_pos",
                                                                                 "lesson_real_pos"))
        common.plot(
            figures.conv_step_figure(d["image"], d["kernel"], rsteps, rpos - 1, scale=scale),
            key="lesson_fig_2b",
        )


def _fig_3(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    W = d["filters"]  # (F, C, KH, KW)
    F = W.shape[0]
    common.plot(
        figures.map_grid(W[:, 0], "The filters (first conv layer)", kind="diverging",
                         labels=[f"filter {k + 1}" for k in range(F)], cols=min(F, 8),
                         colorbar_title="weight", scale=scale, panel_px=_panel(F)),
        key="lesson_fig_3a",
    )
    common.plot(
        figures.feature_maps_figure(
            d["maps"],
            f"Feature maps of this digit after the {d['act']}",
            ncols=min(8, d["maps"].shape[0]),
            scale=scale,
            labels=[f"filter {k + 1}" for k in range(d["maps"].shape[0])],
        ),
        key="lesson_fig_3b",
    )


def _fig_4(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    common.plot(
        figures.sigmoid_figure(d["z"], "The sigmoid, its slope, and this digit's convolution values",
                               scale=scale, height=int(460 * scale), z_other=d["z_tutorial_init"]),
        key="lesson_fig_4",
    )


def _fig_5(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    common.plot(
        figures.probability_figure(
            d["proba"],
            d["names"],
            "The network's answer for this digit",
            true_index=d["true"],
            scale=scale,
        ),
        key="lesson_fig_5",
    )


def _fig_6(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    common.plot(
        figures_lesson.error_figure(
            d["curve"], d["y"], d["o"], d["o90"], scale=scale, height=int(420 * scale)
        ),
        key="lesson_fig_6",
    )


def _fig_7(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    dW = d["dW"][:, 0]  # (F, KH, KW), first input channel
    common.plot(
        figures.map_grid(
            dW,
            "∂E/∂f for every filter weight (this digit)",
            kind="diverging",
            labels=[f"filter {k + 1}" for k in range(dW.shape[0])],
            cols=min(4, dW.shape[0]),
            scale=scale,
            colorbar_title="∂E/∂f",
        ),
        key="lesson_fig_7",
    )
    _chain_equations(lesson, trainer)


def _fig_8(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    F = d["before"].shape[0]
    rows = [("before", d["before"][:, 0], "diverging"), ("after", d["after"][:, 0], "diverging"),
            ("change", (d["after"] - d["before"])[:, 0], "diverging")]
    common.plot(
        figures.heatmap_rows(rows, "Filters before and after one update (the change on its own scale)",
                             col_labels=[f"filter {k + 1}" for k in range(F)],
                             colorbar_titles=["weight", "weight", "change"], scale=scale,
                             panel_px=min(_panel(F), 120)),
        key="lesson_fig_8",
    )


def _fig_9(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    for col, n in zip(st.columns(3), (1, 10, 50), strict=True):
        col.button(
            f"Train {n} step{'s' if n > 1 else ''}",
            key=f"lesson_train{n}",
            on_click=_train,
            args=(n,),
            width="stretch",
            icon=":material/skip_next:" if n == 1 else ":material/fast_forward:",
        )
    common.plot(figures.filter_replay(d["W"], d["W0"], d["step"], scale=scale), key="lesson_fig_9")


def _fig_10(s: L.Step, d: dict, lesson: L.Lesson, trainer, scale: float) -> None:
    st.dataframe(
        {
            "network": [r[0] for r in d["rows"]],
            "task": [task_name(r[1]) for r in d["rows"]],
            "validation accuracy": [f"{100 * r[2]:.1f}%" for r in d["rows"]],
        },
        hide_index=True,
    )
    c1, c2 = st.columns(2)
    with c1:
        _page_link("compare", "Compare", ":material/compare_arrows:")
    if trainer.config.preset != "classroom":
        c2.button(
            "Use the classroom network (replaces your model, step 0)",
            key="lesson_use_classroom",
            on_click=use_preset,
            args=("classroom",),
            width="stretch",
        )


_FIGURES = {1: _fig_1, 2: _fig_2, 3: _fig_3, 4: _fig_4, 5: _fig_5, 6: _fig_6, 7: _fig_7, 8: _fig_8, 9: _fig_9,
            10: _fig_10}


def step_figures(s: L.Step, lesson: L.Lesson, trainer, scale: float) -> None:
    """The live figure(s) of lesson step ``s``."""
    draw = _FIGURES.get(s.number)
    if draw is not None:
        draw(s, s.data, lesson, trainer, scale)


def _panel(n: int) -> int:
    """Panel size for n filters in the page's right-hand column: large for the tutorial's 3."""
    return int(min(170, max(60, 640 / max(n, 1))))


def _train(n: int) -> None:
    state.train(n)


def _chain_equations(lesson: L.Lesson, trainer) -> None:
    """The chain rule with this digit's numbers: the Inside page's equations (tutorial-shaped network)."""
    from cnnviz.viz.lesson_math import is_tutorial_net, sample_pass, tutorial_equations
    cfg = trainer.config
    sp = sample_pass(lesson.net, lesson.image[None, None], lesson.label, cfg.task, cfg.loss)
    if not is_tutorial_net(sp["net"], cfg.loss):
        st.caption(
            "The step-by-step chain rule is written for the tutorial's network; the Inside page shows "
            "every layer of this one."
        )
        return
    eq = tutorial_equations(sp, lesson.image, lesson.label, cfg.loss)
    k, i, j = eq["m"]
    label = (f"The chain rule for one weight of filter {k + 1} (through its map at row {i}, column {j}), one "
             "factor at a time, with this digit's numbers")
    with st.expander(label, expanded=True):
        for tex, note in eq["backward"]:
            a, b = st.columns([3, 2], vertical_alignment="center")
            a.latex(tex)
            b.markdown(note)

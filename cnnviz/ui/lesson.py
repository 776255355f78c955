"""Lesson page: the tutorial's path through a CNN in ten steps on the live model, each with its text, the
figure it talks about (the other pages' builders), a question for the class with a revealable computed
answer, and Back / Next. The steps' text and answers come from ``cnnviz.viz.lesson`` (pure); this module
only wires them; the steps' figures are drawn by the sibling widget module ``cnnviz.ui.lesson_steps``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz.train.config import preset_config
from cnnviz.ui import common, resources, state
from cnnviz.ui.lesson_steps import step_figures, use_preset
from cnnviz.viz import lesson as L


def _ls() -> state.LessonState:
    """The page's state in the session's typed state: step, picked digit, window positions."""
    return state.app().lesson


def _step() -> int:
    return min(max(int(_ls().step), 1), L.N_STEPS)


def set_step(step: int) -> None:
    """Show lesson step ``step`` (1..N_STEPS, clamped) next (a shared link's ``step=``)."""
    _ls().step = min(max(int(step), 1), L.N_STEPS)


def _go(delta: int) -> None:
    if state.owns_session():
        set_step(_step() + delta)


def _another_digit(n_val: int, seed: int, current: int) -> None:
    _ls().pick = (
        seed,
        (current + 1 + int(np.random.default_rng([seed, current]).integers(n_val - 1))) % n_val,
    )


def _nav(step: int) -> None:
    """Back, the step indicator and Next."""
    c1, c2, c3 = st.columns([1, 5, 1], vertical_alignment="center")
    c1.button(
        "Back",
        key="lesson_back",
        on_click=_go,
        args=(-1,),
        disabled=step == 1,
        icon=":material/arrow_back:",
        width="stretch",
    )
    c2.markdown(
        f"<div style='text-align:center;font-size:1.25rem'><b>Step {step} of {L.N_STEPS}</b> · "
        f"{L.TITLES[step - 1]}</div>",
        unsafe_allow_html=True,
    )
    c3.button(
        "Next",
        key="lesson_next",
        on_click=_go,
        args=(1,),
        disabled=step == L.N_STEPS,
        icon=":material/arrow_forward:",
        width="stretch",
        type="primary",
    )
    st.progress(step / L.N_STEPS)


def _preset_note(cfg) -> None:
    if cfg.preset == "tutorial":
        return
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.info(
        f"This lesson follows the tutorial's network (3 filters, sigmoid, squared error, 0–4 vs 5–9). "
        f"Your model is the {cfg.preset} network: every step works on it too, with its own numbers. The "
        "button beside this replaces your model with the tutorial's (same seed, step 0).",
        icon=":material/info:",
    )
    c2.button(
        "Use the tutorial network",
        key="lesson_use_tutorial",
        on_click=use_preset,
        args=("tutorial",),
        width="stretch",
    )


def _question(s: L.Step) -> None:
    st.markdown(f"**Question for the class.** {s.question}")
    # one expander per step (its own key), so that every new step starts with its answer hidden
    with st.expander("Show the answer (computed from this model)", key=f"lesson_answer_{s.number}"):
        st.markdown(s.answer)


def _text_column(s: L.Step) -> None:
    st.subheader(f"{s.number}. {s.title}")
    for sentence in s.text:
        st.markdown(sentence)
    _question(s)


def _pretrained_others(cfg) -> dict:
    """The shipped tutorial and classroom networks (private copies: a forward pass stores outputs) with their
    tasks' validation images, for step 10."""
    out = {}
    for name in ("tutorial", "classroom"):
        shipped = resources.pretrained(name)
        if shipped is None:
            continue
        net, cfg_d = shipped
        p = preset_config(name)
        data = resources.dataset(p.task, p.train_size)
        out[f"the trained {name} network (shipped)"] = (net.copy(), p.task, data.x_val, data.y_val)
    return out


def render() -> None:
    """Draw the Lesson page for the session's model."""
    st.header("Lesson: how a CNN learns, step by step")
    common.show_error()
    trainer = state.get_trainer()
    cfg = trainer.config
    step = _step()
    _preset_note(cfg)
    _nav(step)
    n_val = len(trainer.data.y_val)
    pick = _ls().pick
    index = pick[1] if pick and pick[0] == cfg.seed else L.default_index(trainer.data.y_val, cfg.seed)
    # a consistent copy of the weights: never half-way through a training step of this session
    with state.lock():
        lesson = L.make_lesson(trainer, index)
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.caption(
        f"The lesson's digit: validation image {lesson.index}, a {lesson.label} (chosen by the seed, "
        f"{cfg.seed}). Model: {cfg.preset} network at step {trainer.step_count}."
    )
    c2.button(
        "Another digit",
        key="lesson_digit",
        on_click=_another_digit,
        args=(n_val, cfg.seed, index),
        icon=":material/shuffle:",
        width="stretch",
    )
    s = L.compute_step(step, lesson, trainer, lambda: _pretrained_others(cfg))
    scale = common.scale()
    left, right = st.columns([2, 3], gap="large")
    with left:
        _text_column(s)
    with right:
        step_figures(s, lesson, trainer, scale)

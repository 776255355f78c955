"""The Lesson page (AppTest) and its computed answers (cnnviz.viz.lesson)."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_helpers import app_state
from streamlit.testing.v1 import AppTest

from cnnviz.train.config import preset_config
from cnnviz.viz import lesson as L

TIMEOUT = 90


def lesson_script(preset: str, seed: int, step: int) -> None:
    """The sidebar and the Lesson page on ``preset`` with ``seed``, at lesson step ``step`` (first run)."""
    import streamlit as st

    from cnnviz.train.config import preset_config
    from cnnviz.ui import common, lesson, sidebar, state

    state.init()
    common.inject_css()
    if not st.session_state.get("_setup"):
        st.session_state["_setup"] = True
        state.apply_config(preset_config(preset, seed=seed).to_dict())
        state.app().lesson.step = step
    sidebar.render()
    lesson.render()


def run_lesson(preset: str, seed: int = 0, step: int = 1) -> AppTest:
    at = AppTest.from_function(lesson_script, args=(preset, seed, step), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def _answer(at: AppTest) -> str:
    exp = [e for e in at.expander if "Show the answer" in e.label]
    assert len(exp) == 1, [e.label for e in at.expander]
    return " ".join(m.value for m in exp[0].markdown)


def _step_shown(at: AppTest) -> int:
    text = " ".join(m.value for m in at.markdown)
    for n in range(L.N_STEPS, 0, -1):
        if f"Step {n} of {L.N_STEPS}" in text:
            return n
    raise AssertionError("no step indicator")


@pytest.mark.parametrize("preset", ["tutorial", "classroom", "deeper"])
def test_every_step_renders_with_an_answer(preset):
    at = run_lesson(preset)
    seen = []
    for n in range(1, L.N_STEPS + 1):
        assert _step_shown(at) == n
        assert at.button(key="lesson_back").disabled == (n == 1)
        answer = _answer(at)
        assert answer.strip(), f"step {n} has no answer"
        seen.append(answer)
        charts = at.get("plotly_chart")
        assert charts or n == 10, f"step {n} shows no figure"
        if n < L.N_STEPS:
            at.button(key="lesson_next").click().run()
            assert not at.exception, (n, at.exception)
    assert at.button(key="lesson_next").disabled
    assert len(set(seen)) == L.N_STEPS  # ten different answers
    at.button(key="lesson_back").click().run()
    assert _step_shown(at) == L.N_STEPS - 1


@pytest.mark.parametrize("step", range(1, L.N_STEPS + 1))
def test_answers_follow_the_model(step):
    """Another seed (another digit and other weights) gives another answer: nothing is written in."""
    a0 = _answer(run_lesson("tutorial", seed=0, step=step))
    a1 = _answer(run_lesson("tutorial", seed=1, step=step))
    assert a0 != a1, f"step {step}: the same answer for seeds 0 and 1: {a0}"


def test_training_step_trains_the_session_model():
    at = run_lesson("tutorial", step=9)
    before = _answer(at)
    assert "No training yet" in before
    at.button(key="lesson_train10").click().run()
    assert not at.exception
    after = _answer(at)
    assert "After 10 steps" in after, after


def test_step_9_offers_1_10_and_50_steps():
    at = run_lesson("tutorial", step=9)
    labels = {k: at.button(key=f"lesson_train{k}").label for k in (1, 10, 50)}
    assert labels == {1: "Train 1 step", 10: "Train 10 steps", 50: "Train 50 steps"}
    at.button(key="lesson_train50").click().run()
    assert not at.exception
    assert "After 50 steps" in _answer(at)


def _chart(at: AppTest, key: str) -> dict:
    import json

    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        if el.proto.id and key in el.proto.id or spec.get("layout", {}).get("_key") == key:
            return spec
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    assert len(specs) == 1, len(specs)
    return specs[0]


def test_step_1_digit_hangs_below_its_title():
    """The square digit in a column narrower than the figure is tall was centred far below its title (a
    gap of ~300 px on a projector): it is anchored to the top."""
    at = run_lesson("tutorial", step=1)
    spec = _chart(at, "lesson_fig_1")
    assert spec["layout"]["yaxis"]["constraintoward"] == "top"
    assert spec["layout"]["yaxis"]["scaleanchor"] == "x"


def test_sigmoid_share_axis_starts_at_0_in_percent():
    """The right axis (share of z values) was synced to the left axis's grid: ticks 0.011, 0.118, 0.225…"""
    import numpy as np

    from cnnviz.viz.figures import sigmoid_figure

    z = np.random.default_rng(0).normal(size=500).astype(np.float32)  # (500,)
    ax = sigmoid_figure(z, scale=1.5, z_other=z + 4).layout.yaxis2
    assert (ax.tickmode, ax.rangemode, ax.tickformat) == ("auto", "tozero", ".0%")


def test_step_8_error_after_one_update_is_not_rounded_to_0():
    """The classroom network's one update on the seed-0 digit drives the right logit so high that float32
    gave E = 0 exactly ("E goes from 2.83 to 0"): E is the float64 value, said in words, and explained."""
    import numpy as np

    from cnnviz.nn.losses import get_loss
    from cnnviz.train.data import load_dataset
    from cnnviz.train.trainer import Trainer

    cfg = preset_config("classroom", seed=0)
    lesson = L.make_lesson(Trainer(cfg, load_dataset(cfg.task, cfg.train_size)))
    s = L.step_update(lesson)
    e0, e1 = s.numbers["E_before"], s.numbers["E_after"]
    assert 0 < e1 < 1e-4 < e0, (e0, e1)
    assert " to 0 " not in s.answer and "almost 0 (below 0.0001)" in s.answer
    assert "batch" in s.answer  # why training does not take one digit at a time
    # the same E as a float64 forward pass of the updated weights
    net = lesson.net.copy()
    fb = L.forward_backward(net, lesson)
    for layer in net.layers:
        for name, p in layer.params.items():
            p -= np.float32(lesson.lr) * layer.grads[name]
    out = net.forward(lesson.image[None, None]).astype(np.float64)  # (1, 10)
    assert np.isclose(e1, get_loss(lesson.loss).forward(out, fb["target"]), rtol=1e-6)


def test_use_tutorial_network_button():
    at = run_lesson("classroom", seed=4, step=3)
    at.button(key="lesson_use_tutorial").click().run()
    assert not at.exception
    cfg = app_state(at).config
    assert (cfg.preset, cfg.seed) == ("tutorial", 4)
    undo = app_state(at).undo[-1]  # the switch can be undone: the classroom model is on the Undo stack
    assert undo.config.preset == "classroom" and "tutorial" in undo.what
    assert "of the 3 filters" in " ".join(m.value for m in at.markdown)


# ----------------------------------------------------------------------------------------------------------
# Links (the whole app: app.py opens the link at session start; the sidebar's "Copy link" writes one)
# ----------------------------------------------------------------------------------------------------------
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _app_with(params: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_app_opens_a_link():
    at = _app_with({"preset": "tutorial", "lr": "0.01", "seed": "3"})
    cfg = app_state(at).config
    assert cfg == preset_config("tutorial", lr=0.01, seed=3)
    opened = [i.value for i in at.info if "Opened a shared link" in i.value]
    # the settings in words, never the config's codes (gt4, mse, sgd)
    assert opened and "Tutorial: 0–4 vs 5–9, mean squared error, SGD lr 0.01" in opened[0], opened
    assert "gt4" not in opened[0] and "sgd" not in opened[0]
    assert not at.warning
    assert at.session_state["sb_preset"] == "tutorial" and at.session_state["sb_seed"] == 3


def test_app_tampered_link_message_and_defaults():
    at = _app_with({"lr": "1e9", "filters": "-3", "foo": "1"})
    assert app_state(at).config == preset_config("classroom")
    text = " ".join(w.value for w in at.warning)
    assert "lr = 1000000000.0 is out of range" in text and "filters = -3" in text and "'foo'" in text


def test_copy_link_writes_the_settings():
    at = _app_with({"preset": "tutorial", "seed": "5"})
    at.button(key="share_copy").click().run()
    assert not at.exception
    code = " ".join(c.value for c in at.code if "preset=" in c.value)
    assert "preset=tutorial" in code and "seed=5" in code
    assert "page=" not in code  # the Train page is the default: a link to it needs no page
    assert at.query_params["preset"] == ["tutorial"] or at.query_params["preset"] == "tutorial"


def test_a_reload_with_the_link_in_the_address_bar_keeps_the_restored_work(monkeypatch):
    """After "Copy link" the address bar holds a link; a reload restores the session from the server's store
    (the cookie names it) and must not apply that link over it. A different link opened later in the same
    browser does apply, and Undo brings the model before it back."""
    from cnnviz.ui import state

    at = _app_with({"preset": "tutorial", "seed": "5"})
    at.button(key="share_copy").click().run()
    a = app_state(at)
    for _ in range(3):
        a.trainer.step()
    tr, n_undo = a.trainer, len(a.undo)
    params = {k: at.query_params[k] for k in at.query_params}
    params = {k: v if isinstance(v, str) else v[0] for k, v in params.items()}
    assert params["preset"] == "tutorial" and params["seed"] == "5"
    monkeypatch.setattr(state, "_cookie_token", lambda: a.token)  # the reloaded tab brings the cookie
    reloaded = _app_with(params)
    assert app_state(reloaded) is a and a.trainer is tr and tr.step_count == 3 and len(a.undo) == n_undo
    assert any("which is kept" in i.value for i in reloaded.info)  # says so, and rebuilds nothing
    other = _app_with({"preset": "classroom", "seed": "7"})
    assert app_state(other) is a and a.config == preset_config("classroom", seed=7)
    assert a.undo[-1].trainer is tr and a.undo[-1].what == "the shared link"
    assert any("Opened a shared link" in i.value for i in other.info)

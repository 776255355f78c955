"""AppTest of the Inspect a filter page: opened from Train, Inside and Gradients; knock out, Restore, Keep.

The test app navigates between callable pages with ``st.navigation`` as app.py does (the page the test starts
on is the default one), so the "Inspect" button's ``st.switch_page`` really switches page.
"""

from __future__ import annotations

import numpy as np
import pytest
from apptest_helpers import app_state, chart_spec, plotly_array
from streamlit.testing.v1 import AppTest

TIMEOUT = 90


def nav_script(start: str, preset: str) -> None:
    """Train, Inside, Gradients and Inspect as navigation pages, ``start`` the default; the session starts
    from the shipped pretrained ``preset`` model (one training step taken, so Gradients has gradients)."""
    import streamlit as st

    from cnnviz.ui import common, gradients, inside, state, train
    from cnnviz.ui import inspect as inspect_page

    state.init()
    if not st.session_state.get("_test_setup_done"):
        st.session_state["_test_setup_done"] = True
        state.apply_config({**state.get_config().to_dict(), "preset": preset})
        common.load_pretrained(preset)
        state.train(1)
    pages = [st.Page(train.render, title="Train", url_path="train", default=start == "train"),
             st.Page(inside.render, title="Inside", url_path="inside", default=start == "inside"),
             st.Page(gradients.render, title="Gradients", url_path="gradients", default=start == "gradients"),
             inspect_page.page()]
    st.navigation(pages).run()


def _app(start: str, preset: str = "classroom") -> AppTest:
    at = AppTest.from_function(nav_script, args=(start, preset), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, [m.label for m in at.metric]
    return found[0]


def _accuracy(at: AppTest) -> float:
    return float(_metric(at, "Validation accuracy").value.rstrip("%")) / 100


def _trained_W(at: AppTest) -> np.ndarray:
    return app_state(at).trainer.net.layers[0].params["W"].copy()


@pytest.mark.parametrize("start", ["train", "inside", "gradients"])
def test_open_a_filter_from_each_page(start):
    at = _app(start)
    assert "Inspect" not in " ".join(t.value for t in at.title)
    at.selectbox(key=f"inspect_link_{start}").set_value((0, 2)).run()
    at.button(key=f"inspect_go_{start}").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Inspect a filter"]
    assert app_state(at).inspect.selection == (0, 2)
    assert at.selectbox(key="inspect_filter_w").value == 2
    assert "Filter 3 of conv 1" in " ".join(m.value for m in at.markdown)
    bars = chart_spec(at, "inspect_classes")["data"][0]
    assert [str(v) for v in bars["x"]] == [str(d) for d in range(10)]
    assert chart_spec(at, "inspect_top")["layout"]["title"]["text"].startswith("The 12 patches")


def test_knock_out_changes_accuracy_restore_brings_it_back_keep_writes_the_model():
    at = _app("train")
    at.button(key="inspect_go_train").click().run()
    at.selectbox(key="inspect_filter_w").set_value(2).run()
    learned_acc = _accuracy(at)
    assert learned_acc > 0.8, "the pretrained classroom model"
    W0 = _trained_W(at)
    at.radio(key="inspect_mode").set_value("knock out").run()
    assert not at.exception, at.exception
    knocked = _accuracy(at)
    assert knocked < learned_acc - 0.005, (learned_acc, knocked)
    assert _metric(at, "Validation accuracy").delta.startswith("-")
    assert int(_metric(at, "Answers changed").value.replace(",", "")) > 0
    np.testing.assert_array_equal(_trained_W(at), W0)  # the session's model is untouched
    # the edited feature map is all zeros, the learned one is not
    maps = chart_spec(at, "inspect_edit_maps")["data"]
    assert np.abs(plotly_array(maps[2]["z"])).max() == 0 and np.abs(plotly_array(maps[1]["z"])).max() > 0
    at.button(key="inspect_restore").click().run()
    assert at.radio(key="inspect_mode").value == "learned"
    assert _accuracy(at) == pytest.approx(learned_acc)
    np.testing.assert_array_equal(_trained_W(at), W0)
    # scale, then keep: now (and only now) the session's model changes
    at.radio(key="inspect_mode").set_value("scale").run()
    at.slider(key="inspect_factor").set_value(-1.0).run()
    np.testing.assert_array_equal(_trained_W(at), W0)
    rev = app_state(at).model_rev
    at.button(key="inspect_keep").click().run()
    assert not at.exception, at.exception
    W1 = _trained_W(at)
    np.testing.assert_allclose(W1[2], -W0[2], rtol=1e-6)
    np.testing.assert_array_equal(np.delete(W1, 2, axis=0), np.delete(W0, 2, axis=0))
    assert app_state(at).model_rev == rev + 1
    tr = app_state(at).trainer
    assert tr.val_history[-1][2] == pytest.approx(tr.evaluate(tr.data.x_val, tr.data.y_val)[1])
    assert at.radio(key="inspect_mode").value == "learned"
    # Keep went on the Undo stack: Undo brings the learned weights back (and the model revision moves on)
    from cnnviz.ui import state

    a = app_state(at)
    assert a.undo and "filter 3 of conv 1" in a.undo[-1].what
    steps = a.trainer.step_count
    assert state.undo(a)
    np.testing.assert_array_equal(_trained_W(at), W0)
    assert app_state(at).trainer.step_count == steps and app_state(at).model_rev == rev + 2
    at.run()
    assert not at.exception, at.exception


def test_paint_a_preset_and_deeper_layer_views():
    at = _app("inside", preset="deeper")
    at.selectbox(key="inspect_link_inside").set_value((1, 4)).run()
    at.button(key="inspect_go_inside").click().run()
    assert not at.exception, at.exception
    assert app_state(at).inspect.selection == (1, 4)
    # a conv-2 filter: an input that maximises it, and its 14x14 receptive field
    mx = chart_spec(at, "inspect_max")
    values = plotly_array(mx["data"][1]["y"])  # the filter's output over the ascent steps
    assert len(values) == 300 and values[-1] > values[0]
    assert "14×14" in chart_spec(at, "inspect_rf")["layout"]["title"]["text"]
    at.radio(key="inspect_mode").set_value("paint").run()
    at.selectbox(key="inspect_channel").set_value(2).run()
    at.button(key="inspect_preset_vertical edge").click().run()
    assert not at.exception, at.exception
    d = app_state(at).inspect.draft
    assert d["mode"] == "paint" and d["channel"] == 2
    k = d["kernel"]
    assert (k[:, :2] < 0).all() and (k[:, 3:] > 0).all()
    W_learned = app_state(at).trainer.net.layers[3].params["W"][4, 2]
    assert np.linalg.norm(k) == pytest.approx(float(np.linalg.norm(W_learned)), rel=1e-5)
    assert not np.allclose(app_state(at).trainer.net.layers[3].params["W"][4, 2], k)


def test_tutorial_network_with_a_drawing():
    """The tutorial's sigmoid net (one output, task 0-4 vs 5-9): the drawing's prediction names the two
    classes, and knocking out a filter moves its probability."""
    at = _app("gradients", preset="tutorial")
    app_state(at).draw.drawing = np.pad(np.ones((20, 4), np.float32), ((4, 4), (12, 12)))  # a "1"
    at.button(key="inspect_go_gradients").click().run()
    assert not at.exception, at.exception
    assert "never fires" not in " ".join(m.value for m in at.markdown), "sigmoid filters are never dead"
    drawing = _metric(at, "Your drawing")
    assert drawing.value.split(" ")[0] in ("0–4", "5–9")
    at.radio(key="inspect_mode").set_value("knock out").run()
    assert not at.exception, at.exception
    assert _metric(at, "Your drawing").delta.startswith("learned: ")
    assert "your drawing" in chart_spec(at, "inspect_edit_maps")["layout"]["title"]["text"]


def test_receptive_field_and_edit_maps_panel_titles_scale_for_a_projector():
    """make_subplots' panel titles ("input", "learned filter", …) stayed at 16 px in presentation mode."""
    from cnnviz.viz import figures_inspect as fi

    img = np.zeros((28, 28), np.float32)  # (H, W)
    fmap = np.linspace(-1, 1, 24 * 24, dtype=np.float32).reshape(24, 24)  # (H_out, W_out)
    figs = [fi.receptive_field(img, (2, 3, 6, 7), fmap, (2, 3), "t", scale=1.5),
            fi.edit_maps(img, fmap, -fmap, "t", scale=1.5)]
    for fig in figs:
        sizes = [a.font.size for a in fig.layout.annotations]
        assert sizes and min(sizes) >= 18, sizes

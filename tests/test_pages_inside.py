"""Inside and Gradients pages: their figure builders, their pure helpers, and the pages run with AppTest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from apptest_helpers import app_state
from streamlit.testing.v1 import AppTest

from cnnviz.nn.head import Head
from cnnviz.nn.network import build
from cnnviz.viz import figures, lesson_math
from cnnviz.viz.explain import conv_step_through

RNG_SEED = 0


def _titles(fig) -> tuple[str, list[str], list[str]]:
    """(figure title, x-axis titles, y-axis titles) of a figure."""
    lay = fig.layout
    xs = [lay[k].title.text for k in lay if k.startswith("xaxis") and lay[k].title.text]
    ys = [lay[k].title.text for k in lay if k.startswith("yaxis") and lay[k].title.text]
    return lay.title.text, xs, ys


def _assert_labelled(fig) -> None:
    title, xs, ys = _titles(fig)
    assert title, "figure has no title"
    assert xs and ys, f"figure {title!r} lacks axis titles (x: {xs}, y: {ys})"


# ----------------------------------------------------------------------------------------------------------
# Figure builders
# ----------------------------------------------------------------------------------------------------------
def _block_names(layout) -> list[str]:
    """The bold block titles of a tiled figure (``figures.tiled_panels``), e.g. "∂E/∂f"."""
    return [a["text"][3:-4] for a in (layout["annotations"] or []) if str(a["text"]).startswith("<b>")]


def test_map_grid_shares_a_symmetric_range():
    rng = np.random.default_rng(RNG_SEED)
    maps = rng.normal(size=(8, 5, 5)).astype(np.float32)
    maps[3, 0, 0] = -7.0  # the largest magnitude sets the range for every panel
    fig = figures.map_grid(maps, "Filters", kind="diverging", cols=4)
    (hm,) = fig.data  # one tiled heatmap, not one subplot per map
    assert hm.zmin == -hm.zmax == -7.0 and hm.zmid == 0
    z = np.asarray(hm.z, dtype=np.float64)
    assert np.nansum(np.abs(z)) == pytest.approx(np.abs(maps).sum(), rel=1e-5)  # every value shown once
    assert [a.text for a in fig.layout.annotations] == [f"map {k}" for k in range(1, 9)]  # numbered from 1
    assert fig.layout.title.text == "Filters"


def test_map_grid_sequential_and_image_kinds():
    acts = np.abs(np.random.default_rng(1).normal(size=(3, 6, 6)))
    fig = figures.map_grid(acts, "After ReLU", kind="sequential")
    assert fig.data[0].colorscale[0][1] != fig.data[0].colorscale[-1][1]
    assert fig.data[0].zmin == pytest.approx(acts.min())
    # tanh outputs have both signs: shown on the diverging scale, centred on 0
    fig = figures.map_grid(acts - acts.mean(), "After tanh", kind="sequential")
    assert fig.data[0].zmin == -fig.data[0].zmax
    img = figures.map_grid(np.zeros((28, 28)), "Input", kind="image")
    assert (img.data[0].zmin, img.data[0].zmax) == (0, 1)


def test_heatmap_rows_one_range_per_row():
    rng = np.random.default_rng(2)
    W, G = rng.normal(size=(3, 5, 5)), 1e-3 * rng.normal(size=(3, 5, 5))
    fig = figures.heatmap_rows([("filter f", W, "diverging"), ("∂E/∂f", G, "diverging"),
                                ("−η·∂E/∂f", -0.1 * G, "diverging")], "Filters and gradients")
    assert len(fig.data) == 3  # one tiled heatmap per block
    for hm, arr in zip(fig.data, (W, G, 0.1 * G), strict=True):
        assert hm.zmin == pytest.approx(-np.abs(arr).max()) and hm.zmax == pytest.approx(np.abs(arr).max())
    assert len({hm.yaxis for hm in fig.data}) == 3  # each block on its own axes, one colour bar each
    assert _block_names(fig.layout) == ["filter f", "∂E/∂f", "−η·∂E/∂f"]
    labels = [a.text for a in fig.layout.annotations if not a.text.startswith("<b>")]
    assert labels == [f"filter {k}" for k in (1, 2, 3)] * 3  # the same tiles in every block


def test_heatmap_rows_wrap_many_filters_into_the_same_grid():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(32, 5, 5))
    fig = figures.heatmap_rows([("filter f", W, "diverging"), ("∂E/∂f", 0.1 * W, "diverging")], "Wrapped")
    for hm in fig.data:  # 32 filters: 4 rows of 8 tiles, in both blocks
        tiles = np.asarray(hm.customdata)[..., 0]  # (R, Cols): tile number from 1, -1 in the gaps
        top_row = tiles[np.argmax((tiles > 0).any(axis=1))]  # the first pixel row that crosses tiles
        assert sorted(set(top_row.tolist()) - {-1}) == list(range(1, 9))
        assert sorted(set(tiles[:, 0].tolist()) - {-1}) == [1, 9, 17, 25]


def test_probability_figure_highlights_top_and_marks_true():
    fig = figures.probability_figure(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], "P", true_index=2)
    bar = fig.data[0]
    assert list(bar.x) == ["a", "b", "c (true)"]
    assert bar.marker.color[1] == figures.HIGHLIGHT and bar.marker.color[0] == figures.MUTED
    _assert_labelled(fig)


def test_conv_step_figure_tutorial_example():
    steps = conv_step_through(lesson_math.TUTORIAL_IMAGE, lesson_math.TUTORIAL_FILTER)
    assert [s["value"] for s in steps] == [9, 32, 14, 26]
    fig = figures.conv_step_figure(lesson_math.TUTORIAL_IMAGE, lesson_math.TUTORIAL_FILTER, steps, 1)
    assert len(fig.data) == 5 and "= 32" in fig.layout.title.text
    out = np.array(fig.data[4].z, dtype=float)  # the output filled up to step 2 of 4
    assert out[0, 0] == 9 and out[0, 1] == 32 and np.isnan(out[1]).all()
    assert all(t.texttemplate for t in fig.data)  # small: numbers written in the cells
    window, cell = fig.layout.shapes
    assert (window.x0, window.x1, window.y0, window.y1) == (0.5, 2.5, -0.5, 1.5)  # row 0, column 1
    assert (window.xref, cell.xref) == (fig.data[0].xaxis, fig.data[4].xaxis)
    _assert_labelled(fig)


def test_conv_step_figure_real_image_numbers_on_hover_and_stride():
    img = np.random.default_rng(3).random((28, 28)).astype(np.float32)
    kern = np.ones((5, 5), dtype=np.float32)
    steps = conv_step_through(img, kern, stride=2)  # 12 x 12 positions
    fig = figures.conv_step_figure(img, kern, steps, 13)  # output row 1, column 1
    assert not fig.data[0].texttemplate and not fig.data[4].texttemplate
    assert fig.data[1].texttemplate  # the 5x5 patch still shows its numbers
    window, cell = fig.layout.shapes
    assert (window.x0, window.y0) == (1.5, 1.5)  # window top-left at pixel (2, 2) with stride 2
    # the window is drawn on the image's axes and the current output cell on the output's axes
    assert (window.xref, cell.xref) == (fig.data[0].xaxis, fig.data[4].xaxis)
    assert (cell.x0, cell.y0) == (0.5, 0.5)


def test_series_figure_log_axis_drops_nonpositive():
    fig = figures.series_figure(np.arange(1, 4), {"0.W": np.array([1e-2, 0.0, 1e-4]), "0.b": np.ones(3)},
                                "Gradient norm", "norm", reference=1e-3, reference_label="guide")
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 2
    assert np.isnan(fig.data[0].y[1])
    _assert_labelled(fig)


def test_histogram_grid_counts_every_value():
    vals = {"0.W": np.random.default_rng(4).normal(size=200), "4.W": np.zeros(50)}
    fig = figures.histogram_grid(vals, "Gradients", bins=20)
    assert len(fig.data) == 2
    assert sum(fig.data[0].y) == 200 and sum(fig.data[1].y) == 50
    _assert_labelled(fig)


def test_flat_vector_figure_marks_segments():
    fig = figures.flat_vector_figure(np.arange(48, dtype=np.float32), 3, "Flattened")
    assert np.asarray(fig.data[0].z).shape == (1, 48)
    assert len(fig.layout.shapes) == 2
    _assert_labelled(fig)


# ----------------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------------
def _image() -> np.ndarray:
    img = np.zeros((28, 28), dtype=np.float32)
    img[6:22, 12:16] = 1.0  # a "1"
    return img


@pytest.mark.parametrize("preset", ["tutorial", "classroom", "deeper"])
def test_stages_follow_the_layers(preset):
    net = build(preset, rng=0)
    net.forward(_image()[None, None])
    sts = lesson_math.stages(net, net.outputs)
    assert [s["type"] for s in sts] == [type(layer).__name__ for layer in net.layers]
    convs = [s for s in sts if s["type"] == "Conv2D"]
    assert all(s["filters"].ndim == 4 and s["colour"] == "diverging" for s in convs)
    assert [s["kind"] for s in sts if s["type"] == "Flatten"] == ["vector"]


def test_sample_pass_leaves_the_model_untouched():
    net = build("classroom", rng=0)
    before = {n: p.copy() for n, p in net.named_params()}
    grads = {n: g.copy() for n, g in net.named_grads()}
    sp = lesson_math.sample_pass(net, _image()[None, None], 1, "digits", "softmax_ce")
    assert sp["loss"] > 0 and len(sp["deltas"]) == len(net.layers)
    for n, p in net.named_params():
        np.testing.assert_array_equal(p, before[n])
    for n, g in net.named_grads():
        np.testing.assert_array_equal(g, grads[n])


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_tutorial_equations_follow_the_chain_rule(loss):
    net = build("tutorial", rng=0)
    img = _image()
    sp = lesson_math.sample_pass(net, img[None, None], 7, "gt4", loss)
    assert lesson_math.is_tutorial_net(sp["net"], loss)
    eq = lesson_math.tutorial_equations(sp, img, 7, loss)
    n = eq["numbers"]
    assert n["y"] == 1.0  # 7 > 4
    assert n["dO_dZ2"] == pytest.approx(n["O"] * (1 - n["O"]), rel=1e-5)
    assert n["delta2"] == pytest.approx(n["dE_dO"] * n["dO_dZ2"], rel=1e-4)
    assert n["dW_m"] == pytest.approx(n["delta2"] * n["A"], rel=1e-4)
    assert n["dA_m"] == pytest.approx(n["delta2"] * n["W_m"], rel=1e-4)
    assert n["dZ1_m"] == pytest.approx(n["dA_m"] * n["A"] * (1 - n["A"]), rel=1e-4)
    if loss == "mse":
        assert n["dE_dO"] == pytest.approx(n["O"] - n["y"], rel=1e-5)
    k, i, j = eq["m"]
    assert img[i:i + 5, j:j + 5].sum() > 0  # the followed feature's window covers ink
    assert len(eq["forward"]) == 5 and len(eq["backward"]) == 7
    assert all(isinstance(t, str) and t for row in eq["forward"] + eq["backward"] for t in row)


@pytest.mark.parametrize("preset,loss,task", [("classroom", "softmax_ce", "digits"),
                                              ("deeper", "softmax_ce", "digits")])
def test_general_equations_one_line_per_layer(preset, loss, task):
    net = build(preset, rng=0)
    sp = lesson_math.sample_pass(net, _image()[None, None], 1, task, loss)
    assert not lesson_math.is_tutorial_net(sp["net"], loss)
    eq = lesson_math.general_equations(sp, loss)
    assert len(eq["forward"]) == len(net.layers) + 1  # + the loss
    assert len(eq["backward"]) == len(net.layers) + 1
    assert r"\operatorname{onehot}(1)" in eq["backward"][0][0]


def test_class_proba_and_targets():
    net = build("tutorial", rng=0)
    out = net.forward(_image()[None, None])
    p = lesson_math.class_proba(out, net)
    assert p.shape == (2,) and p.sum() == pytest.approx(1.0)
    assert Head.for_network(net, "gt4").class_names == ["0–4", "5–9"]
    assert lesson_math.loss_target(7, "gt4", "mse", 1).tolist() == [[1.0]]
    assert lesson_math.loss_target(3, "digits", "softmax_ce", 10).tolist() == [3]
    assert lesson_math.loss_target(3, "digits", "mse", 10).argmax() == 3


def test_step_example_and_sum_text():
    img, kern, steps = lesson_math.step_example(lesson_math.TUTORIAL_IMAGE, lesson_math.TUTORIAL_FILTER)
    assert [s["value"] for s in steps] == [9, 32, 14, 26]
    assert lesson_math.sum_latex(steps[0], kern) == r"1\cdot1 + 7\cdot1 + 11\cdot0 + 1\cdot1 = 9"
    padded, _, steps = lesson_math.step_example(np.ones((4, 4)), np.ones((3, 3)), padding=1)
    assert padded.shape == (6, 6) and len(steps) == 16 and steps[0]["value"] == 4  # corner: 2x2 of ones


@pytest.mark.parametrize("preset,shape", [("tutorial", (3, 24, 24)), ("classroom", (8, 12, 12)),
                                          ("deeper", (16, 7, 7))])
def test_dense_input_shape(preset, shape):
    net = build(preset, rng=0)
    dense = max(i for i, layer in enumerate(net.layers) if type(layer).__name__ == "Dense")
    assert lesson_math.dense_input_shape(net, dense) == shape
    assert lesson_math.param_label(net, "0.W") == "conv 1 weights"  # issue 11: names for people, no "0.W"
    assert lesson_math.param_label(net, f"{dense}.b") == "dense bias"


def test_history_series_and_tutorial_comparison():
    from cnnviz.train.trainer import StepRecord

    hist = [StepRecord(s, 1, 1.0, 0.5, 1.0, {"0.W": 0.1 * s}, {"0.W": 1e-3}) for s in (1, 2, 3)]
    steps, series = lesson_math.history_series(hist, "grad_norms")
    assert steps.tolist() == [1, 2, 3] and series["0.W"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    rng = np.random.default_rng(5)
    x = rng.random((6, 1, 28, 28)).astype(np.float32)
    res = lesson_math.tutorial_comparison(build("tutorial", rng=0), x, np.array([0, 9, 3, 7, 5, 1]))
    assert res["diff"].shape == (3, 1, 5, 5)
    assert -1 <= res["metrics"]["0.W"]["cosine"] <= 1 and res["explanations"]["0.W"]


# ----------------------------------------------------------------------------------------------------------
# The pages, run with AppTest
# ----------------------------------------------------------------------------------------------------------
def _page_script(page: str, preset: str, steps: int, drawing: bool) -> None:
    """A minimal app around one page: the session's config for ``preset``, ``steps`` steps taken."""
    import importlib

    import numpy as np
    import streamlit as st

    from cnnviz.train.config import preset_config
    from cnnviz.ui import state

    if state.STATE_KEY not in st.session_state:
        state.init().config = preset_config(preset)
    state.init()
    if drawing and state.app().draw.drawing is None:
        img = np.zeros((28, 28), dtype=np.float32)
        img[5:23, 13:15] = 1.0
        state.app().draw.drawing = img
    tr = state.get_trainer()
    if steps and not tr.history:
        for _ in range(steps):  # plain steps: Trainer.run would also validate on 1,000 images
            tr.step()
    importlib.import_module(f"cnnviz.ui.{page}").render()


def _app(page: str, preset: str = "classroom", steps: int = 0, drawing: bool = False) -> AppTest:
    at = AppTest.from_function(_page_script, args=(page, preset, steps, drawing), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _open(at, key: str, value) -> AppTest:
    """Open a lazily built tab (its label) or expander (True) of the page, as a click would, and rerun."""
    at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


STEP_TAB, EQ_TAB = "Convolution step-through", "Equations with live numbers"


def _chart_specs(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


@pytest.mark.parametrize("preset,steps", [("tutorial", 0), ("classroom", 2)])
def test_inside_page_runs(preset, steps):
    at = _app("inside", preset, steps)
    specs = _chart_specs(at)
    assert len(specs) >= 6  # input, filters, maps..., flattened, probabilities
    assert all(s["layout"]["title"]["text"] for s in specs)
    assert not any("Step 1 of" in s["layout"]["title"]["text"] for s in specs)  # built when its tab opens
    assert not at.latex
    _open(at, "inside_tab", STEP_TAB)
    assert any("Step 1 of" in s["layout"]["title"]["text"] for s in _chart_specs(at))
    # The step-through defaults to the tutorial's example: 9, 32, 14, 26.
    assert any("9, 32, 14, 26" in c.value for c in at.caption)
    assert any(r"1\cdot1 + 7\cdot1 + 11\cdot0 + 1\cdot1 = 9" in lat.value for lat in at.latex)
    at.slider(key="inside_step_pos").set_value(4).run()
    assert not at.exception
    assert any(r"1\cdot1 + 23\cdot1 + 2\cdot0 + 2\cdot1 = 26" in lat.value for lat in at.latex)
    # Another image and the learned-filter step-through.
    at.number_input(key="inside_index").set_value(17).run()
    at.radio(key="inside_step_example").set_value("This image with a learned filter").run()
    assert not at.exception
    assert any(" of 576: window at row 13" in s["layout"]["title"]["text"] for s in _chart_specs(at))


def test_inside_play_advances_the_window():
    at = _open(_app("inside", "tutorial"), "inside_tab", STEP_TAB)
    assert at.slider(key="inside_step_pos").value == 1
    at.button(key="inside_step_playbtn").click().run()
    assert not at.exception and app_state(at).ui.step_playing
    assert at.slider(key="inside_step_pos").value == 2  # each fragment run moves the window one step
    at.button(key="inside_step_playbtn").click().run()
    assert not app_state(at).ui.step_playing


def test_inside_page_with_a_drawing():
    at = _open(_app("inside", "classroom", drawing=True), "inside_tab", EQ_TAB)
    at.radio(key="inside_source").set_value("Your drawing").run()
    assert not at.exception
    assert any("no true label" in i.value for i in at.info)


def test_inside_equations_tutorial_and_general():
    at = _open(_app("inside", "tutorial", 1), "inside_tab", EQ_TAB)
    assert any(r"\delta_2" in lat.value for lat in at.latex)
    at = _open(_app("inside", "deeper"), "inside_tab", EQ_TAB)
    assert any(r"\operatorname{onehot}" in lat.value for lat in at.latex)
    at = _open(at, "inside_tab", "Forward pass")
    titles = [s["layout"]["title"]["text"] for s in _chart_specs(at)]
    assert not any("convolution 2" in t.lower() for t in titles)  # the second conv block opens on demand
    at = _open(at, "inside_block_2", True)
    assert any("Filters of convolution 2" in s["layout"]["title"]["text"] for s in _chart_specs(at))
    at.selectbox(key="inside_chan_3").set_value(2).run()
    assert not at.exception


def test_gradients_page_before_and_after_a_step():
    at = _app("gradients", "classroom", 0)
    assert any("No training step" in i.value for i in at.info)
    assert [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")] == [
        "The 8 filters the first step will update (initial weights)"]
    at.button(key="grad_first_step").click().run()
    assert not at.exception
    assert at.session_state["cnnviz"].trainer.history
    specs = _chart_specs(at)
    assert len(specs) == 5  # filters, dense, norms, ratios, histograms
    at.segmented_control(key="grad_dense_class").set_value(7).run()
    assert not at.exception
    assert any("“7”" in s["layout"]["title"]["text"] for s in _chart_specs(at))
    at.button(key="grad_step").click().run()
    assert at.session_state["cnnviz"].trainer.history[-1].step == 2


def test_gradients_page_tutorial_comparison():
    at = _app("gradients", "tutorial", 2)
    assert not any(m.label == "Cosine (filters)" for m in at.metric)  # computed only when asked
    at.toggle(key="grad_tut_show").set_value(True).run()
    assert not at.exception
    assert any(m.label == "Cosine (filters)" for m in at.metric)
    assert any("tutorial" in s["layout"]["title"]["text"].lower() or "training images" in
               s["layout"]["title"]["text"] for s in _chart_specs(at))


def test_gradients_page_deeper_layer_choice():
    at = _app("gradients", "deeper", 1)
    at.selectbox(key="grad_conv_layer").set_value(3).run()
    assert not at.exception
    at.selectbox(key="grad_conv_chan_3").set_value(5).run()
    assert not at.exception
    assert any("input channel 6" in s["layout"]["title"]["text"] for s in _chart_specs(at))


CUSTOM = [  # (custom_layers kwargs, task, loss): every layer type, padding, stride, other heads
    ({"n_conv": 3, "filters": 4, "kernel": 3, "activation": "tanh", "pooling": "avg", "padding": 1}, "digits",
     "mse"),
    ({"n_conv": 2, "filters": 6, "kernel": 5, "activation": "sigmoid", "pooling": "none", "stride": 2}, "gt4",
     "softmax_ce"),
    ({"n_conv": 1, "filters": 3, "kernel": 5, "activation": "relu", "pooling": "max"}, "gt4", "bce"),
]


@pytest.mark.parametrize("kw,task,loss", CUSTOM)
def test_helpers_on_custom_architectures(kw, task, loss):
    from cnnviz.nn.network import from_spec
    from cnnviz.train.config import custom_layers

    net = from_spec(custom_layers(task=task, loss=loss, **kw), rng=0)
    img = _image()
    sp = lesson_math.sample_pass(net, img[None, None], 6, task, loss)
    sts = lesson_math.stages(sp["net"], sp["outputs"])
    assert len(sts) == len(net.layers)
    eq = lesson_math.general_equations(sp, loss)
    assert len(eq["forward"]) == len(eq["backward"]) == len(net.layers) + 1
    p = lesson_math.class_proba(sp["out"], sp["net"])
    assert p.shape == (Head.for_network(sp["net"], task, loss).n_classes,) and np.isfinite(p).all()
    dense = max(i for i, layer in enumerate(net.layers) if type(layer).__name__ == "Dense")
    shape = lesson_math.dense_input_shape(net, dense)
    assert int(np.prod(shape)) == net.layers[dense].params["W"].shape[0]
    conv = next(layer for layer in net.layers if type(layer).__name__ == "Conv2D")
    s = conv.spec()
    padded, kern, steps = lesson_math.step_example(img, conv.params["W"][0, 0], s["stride"], s["padding"])
    z = sp["outputs"][0][0, 0] - conv.params["b"][0]  # the first feature map, before its bias
    values = np.array([t["value"] for t in steps]).reshape(z.shape)  # the step-through = the conv layer
    np.testing.assert_allclose(values, z, rtol=1e-4, atol=1e-5)


def _custom_script(kw: dict, task: str, loss: str, page: str) -> None:
    import importlib

    import streamlit as st

    from cnnviz.train.config import custom_layers, preset_config
    from cnnviz.ui import state

    if state.STATE_KEY not in st.session_state:
        state.init().config = preset_config("custom", layers=custom_layers(task=task, loss=loss, **kw),
                                            task=task, loss=loss)
    state.init()
    tr = state.get_trainer()
    if not tr.history:
        tr.step()
    importlib.import_module(f"cnnviz.ui.{page}").render()


@pytest.mark.parametrize("kw,task,loss", CUSTOM[:2])
def test_pages_on_custom_architectures(kw, task, loss):
    for page in ("inside", "gradients"):
        at = AppTest.from_function(_custom_script, args=(kw, task, loss, page), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert all(s["layout"]["title"]["text"] for s in _chart_specs(at))


def test_last_update_is_the_change_the_step_made():
    from cnnviz.train.config import preset_config
    from cnnviz.train.data import Dataset
    from cnnviz.train.trainer import Trainer

    rng = np.random.default_rng(6)
    x = rng.random((64, 1, 28, 28)).astype(np.float32)
    y = np.arange(64) % 10
    tr = Trainer(preset_config("classroom", optimizer="adam", lr=0.01, train_size=200),
                 Dataset(x, y, x[:10], y[:10]))
    assert lesson_math.last_update(tr) is None  # no step yet
    tr.step()
    before = tr.net.layers[0].params["W"].copy()
    tr.step()
    np.testing.assert_allclose(lesson_math.last_update(tr), tr.net.layers[0].params["W"] - before, atol=1e-7)


def test_gradients_page_shows_the_actual_adam_step():
    at = _app("gradients", "deeper", 2)  # the deeper preset trains with Adam
    spec = _chart_specs(at)[0]
    names = _block_names(spec["layout"])
    assert "actual ΔW" in names and "−η·∂E/∂f" in names


def test_inside_pages_through_32_filters_16_at_a_time():
    kw = {"n_conv": 1, "filters": 32, "kernel": 3}
    at = AppTest.from_function(_custom_script, args=(kw, "digits", "softmax_ce", "inside"),
                               default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    def grids() -> dict[str, list[str]]:  # figure title -> its panel labels
        return {s["layout"]["title"]["text"]: [a["text"] for a in s["layout"].get("annotations", [])]
                for s in _chart_specs(at)}

    first = grids()
    maps = [t for t in first if t.startswith("Convolution 1")]
    assert maps == ["Convolution 1: 32 filters 3×3 — maps 1–16 of 32, each 26×26"]
    assert first[maps[0]] == [f"map {k}" for k in range(1, 17)]
    assert any("filters 1–16 of 32" in t for t in first)
    at.segmented_control(key="inside_map_page").set_value(1).run()
    assert not at.exception
    second = grids()
    (maps,) = [t for t in second if t.startswith("Convolution 1")]
    assert "maps 17–32 of 32" in maps and second[maps] == [f"map {k}" for k in range(17, 33)]


def test_sigmoid_inputs_match_a_fresh_forward_pass():
    from cnnviz.viz.activations import sigmoid_preactivations

    net = build("tutorial", rng=0)  # two sigmoid layers
    img = _image()
    sp = lesson_math.sample_pass(net, img[None, None], 7, "gt4", "mse")
    z = lesson_math.sigmoid_inputs(sp["net"], img[None, None], sp["outputs"])
    np.testing.assert_array_equal(z, sigmoid_preactivations(net, img[None, None]))
    assert z.size == 3 * 24 * 24 + 1
    classroom = build("classroom", rng=0)  # no sigmoid at all
    sp = lesson_math.sample_pass(classroom, img[None, None], 7, "digits", "softmax_ce")
    assert lesson_math.sigmoid_inputs(sp["net"], img[None, None], sp["outputs"]).size == 0


def test_step_through_and_equations_count_rows_and_columns_from_1():
    """Filters are numbered from 1 in text; rows, columns and outputs beside them are too (no "output[0, 0]"
    next to "filter 1")."""
    img = np.arange(9, dtype=np.float32).reshape(3, 3)
    kern = np.ones((2, 2), dtype=np.float32)
    steps = conv_step_through(img, kern)
    title = figures.conv_step_figure(img, kern, steps, 0).layout.title.text
    assert "window at row 1, column 1" in title and "output row 1, column 1" in title, title
    assert "[0" not in title
    big = np.ones((4, 4), dtype=np.float32)
    s = lesson_math.sum_latex(conv_step_through(big, np.ones((3, 3), np.float32))[0], np.ones((3, 3)), 4)
    assert "output row 1, column 1" in s, s

"""Unit tests of the Train / Evaluate figure builders in cnnviz.viz.figures (arrays in, go.Figure out)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from cnnviz.viz import figures


def _rng():
    return np.random.default_rng(0)


def _titled(fig: go.Figure) -> str:
    text = fig.layout.title.text
    assert text, "every figure has a title"
    return text


def test_tile_places_every_image_with_nan_gaps():
    stack = np.arange(5 * 3 * 2, dtype=np.float32).reshape(5, 3, 2)  # (n, h, w)
    tiled, index = figures.tile(stack, ncols=2, gap=1)
    assert tiled.shape == (3 * 3 + 2, 2 * 2 + 1)
    assert index.shape == (*tiled.shape, 3)
    for k in range(5):
        r0, c0 = (k // 2) * 4, (k % 2) * 3
        np.testing.assert_array_equal(tiled[r0:r0 + 3, c0:c0 + 2], stack[k])
        assert (index[r0:r0 + 3, c0:c0 + 2, 0] == k).all()
    gaps = index[..., 0] < 0
    assert np.isnan(tiled[gaps]).all() and not np.isnan(tiled[~gaps]).any()
    assert gaps[3].all() and gaps[:, 2].all()  # the gap row and column
    assert gaps[8:, 3:].all()  # the empty sixth cell


def test_filter_grid_shared_symmetric_scale_and_hover():
    W = _rng().normal(size=(8, 1, 5, 5)).astype(np.float32)  # (F, C, KH, KW)
    W[3, 0, 2, 2] = 4.0
    fig = figures.filter_grid(W, ncols=4)
    _titled(fig)
    (hm,) = fig.data
    assert hm.type == "heatmap"
    assert hm.zmin == -4.0 and hm.zmax == 4.0 and hm.zmid == 0.0  # one range for every filter, centred on 0
    assert hm.colorscale == go.Heatmap(colorscale=figures.DIVERGING).colorscale
    z = np.array(hm.z, dtype=np.float64)
    assert np.nansum(np.abs(z)) == pytest.approx(np.abs(W).sum(), rel=1e-5)  # every weight shown once
    assert "w = %{z" in hm.hovertemplate and "filter" in hm.hovertemplate
    custom = np.array(hm.customdata)
    r, c = np.argwhere(z == 4.0)[0]
    assert custom[r, c].tolist() == [4, 1, 2, 2]  # hover names filter 4, channel 1 (from 1), row 2, col 2
    assert [a.text for a in fig.layout.annotations] == [f"filter {i}" for i in range(1, 9)]


def test_filter_grid_several_channels_and_fixed_range():
    W = np.ones((2, 3, 3, 3), dtype=np.float32)
    fig = figures.filter_grid(W, zmax=10.0)
    assert fig.data[0].zmax == 10.0
    assert len(fig.layout.annotations) == 6 and fig.layout.annotations[5].text == "f2·c3"
    with pytest.raises(ValueError):
        figures.filter_grid(np.ones((3, 5, 5)))


def test_filter_grid_all_zero_weights_do_not_break_the_scale():
    fig = figures.filter_grid(np.zeros((3, 1, 5, 5), dtype=np.float32))
    assert fig.data[0].zmax > 0 and np.isfinite(fig.data[0].zmax)


def test_filter_replay_shows_filters_and_change():
    W0 = _rng().normal(size=(3, 1, 5, 5)).astype(np.float32)
    W1 = W0 + 0.01
    fig = figures.filter_replay(W1, W0, step=42)
    assert "42" in _titled(fig)
    assert len(fig.data) == 2
    np.testing.assert_allclose(np.nanmax(np.array(fig.data[1].z, dtype=float)), 0.01, rtol=1e-4)
    assert fig.data[1].zmin == -fig.data[1].zmax  # change centred on 0
    with pytest.raises(ValueError):
        figures.filter_replay(W1, W0[:2], step=1)
    at_start = figures.filter_replay(W0, W0, step=0)  # no change yet: the change panel keeps a readable range
    assert at_start.data[1].zmax == pytest.approx(float(np.abs(W0).max()))


def test_training_curves_train_and_validation_on_a_step_axis():
    steps = np.arange(1, 101)
    loss = np.exp(-steps / 30)
    acc = 1 - loss
    vs = np.array([0, 25, 50, 75, 100])
    fig = figures.training_curves(steps, loss, acc, vs, np.exp(-vs / 30), 1 - np.exp(-vs / 30))
    _titled(fig)
    names = [t.name for t in fig.data]
    assert "validation" in names and any(n.startswith("train") for n in names)
    assert fig.layout.xaxis2.title.text == "step"
    assert fig.layout.yaxis.title.text == "loss" and fig.layout.yaxis2.title.text == "accuracy"
    val = [t for t in fig.data if t.name == "validation"]
    assert list(val[0].x) == list(vs)
    smooth = [t for t in fig.data if t.name.startswith("train (mean")][0]
    assert smooth.y[-1] > loss[-1]  # a trailing mean of a falling curve lags above it


def test_training_curves_empty_and_long_histories():
    e = np.zeros(0)
    fig = figures.training_curves(e, e, e, np.array([0]), np.array([2.3]), np.array([0.1]))
    assert any("press Step" in a.text for a in fig.layout.annotations)
    n = 20_000
    s = np.arange(1, n + 1)
    fig = figures.training_curves(s, np.ones(n), np.ones(n), s[::25], np.ones(n // 25), np.ones(n // 25))
    assert max(len(t.x) for t in fig.data) <= 1500  # thinned so that live redraws stay fast
    assert fig.data[0].x[-1] == n  # the last step is kept


def test_confusion_matrix_counts_colour_share_and_selection():
    cm = np.array([[8, 2], [1, 9]])
    fig = figures.confusion_matrix(cm, ["0–4", "5–9"], selected=(0, 1))
    _titled(fig)
    hm = fig.data[0]
    np.testing.assert_allclose(np.array(hm.z), [[0.8, 0.2], [0.1, 0.9]])
    assert np.array(hm.text).tolist() == [[8, 2], [1, 9]]
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.y0) == (0.5, -0.5)
    with pytest.raises(ValueError):
        figures.confusion_matrix(cm, ["a", "b", "c"])


def test_confusion_matrix_empty_row_is_zero_not_nan():
    fig = figures.confusion_matrix(np.zeros((3, 3), dtype=int), ["a", "b", "c"])
    assert np.isfinite(np.array(fig.data[0].z, dtype=float)).all()


def test_image_gallery_captions_hover_and_empty():
    imgs = _rng().random((7, 28, 28)).astype(np.float32)
    caps = [f"c{i}" for i in range(7)]
    fig = figures.image_gallery(imgs, caps, "Gallery", ncols=3, hover=[f"h{i}" for i in range(7)])
    assert _titled(fig) == "Gallery"
    assert [a.text for a in fig.layout.annotations] == caps
    hm = fig.data[0]
    assert hm.zmin == 0 and hm.zmax == 1 and not hm.showscale
    assert [a.hovertext for a in fig.layout.annotations] == [f"h{i}" for i in range(7)]  # caption hover
    assert hm.text is None and "image %{customdata" in hm.hovertemplate  # pixels name their image
    empty = figures.image_gallery(np.zeros((0, 28, 28)), [], "Nothing")
    assert any("no images" in a.text for a in empty.layout.annotations)


def test_class_accuracy_bars():
    fig = figures.class_accuracy(np.array([1.0, 0.5]), ["0–4", "5–9"], overall=0.75)
    assert "75.0%" in _titled(fig)
    assert list(fig.data[0].y) == [1.0, 0.5]
    assert fig.layout.yaxis.title.text == "accuracy" and fig.layout.xaxis.title.text == "true class"


def test_builders_scale_for_presentation_mode():
    W = np.ones((4, 1, 3, 3), dtype=np.float32)
    small, big = figures.filter_grid(W, scale=1.0), figures.filter_grid(W, scale=1.4)
    assert big.layout.height > small.layout.height and big.layout.font.size > small.layout.font.size


def test_confusion_matrix_cells_are_clickable_markers():
    cm = np.arange(9).reshape(3, 3)
    fig = figures.confusion_matrix(cm, ["a", "b", "c"])
    markers = fig.data[1]
    assert markers.type == "scatter" and len(markers.x) == 9
    k = 1 * 3 + 2  # the marker of cell (true b, predicted c)
    assert (markers.y[k], markers.x[k]) == ("b", "c") and markers.customdata[k][0] == cm[1, 2]

"""Figures made for the projector and for any network size: balanced grids, text sizes, empty log charts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnviz.viz import figures

PROJECTOR = 1.5  # cnnviz.ui.common.PRESENTATION_SCALE (not imported: that module imports Streamlit)


@pytest.mark.parametrize("max_cols", [3, 6, 8])
def test_grid_shape_is_balanced_for_1_to_64(max_cols):
    for n in range(1, 65):
        rows, cols = figures.grid_shape(n, max_cols)
        assert rows * cols >= n and (rows - 1) * cols < n  # room for all, no empty row
        assert cols <= max_cols and rows == math.ceil(n / max_cols)  # as few rows as the width allows
        assert rows * cols - n < rows  # the last row misses at most one tile per row: balanced
    assert figures.grid_shape(9, 8) == (2, 5) and figures.grid_shape(32, 8) == (4, 8)
    assert figures.grid_shape(64, 8) == (8, 8) and figures.grid_shape(1, 8) == (1, 1)


def test_square_cols_near_square():
    assert [figures.square_cols(n) for n in (1, 3, 4, 8, 16, 32, 64)] == [1, 2, 2, 3, 4, 6, 8]


def _font_sizes(obj, inside_font: bool = False) -> list[float]:
    """Every font size set anywhere in a figure's JSON (``font``, ``textfont``, ``tickfont``, ...)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "size" and inside_font and isinstance(v, (int, float)):
                out.append(v)
            out += _font_sizes(v, inside_font=k.endswith("font"))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += _font_sizes(v, inside_font)
    return out


def _builders():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(32, 3, 5, 5)).astype(np.float32)
    steps = np.arange(1, 40)
    yield figures.filter_grid(W[:8, :1], scale=PROJECTOR)
    yield figures.filter_grid(W, scale=PROJECTOR)
    yield figures.filter_replay(W[:8, :1], W[:8, :1] * 0.9, 12, scale=PROJECTOR)
    yield figures.map_grid(rng.random((32, 28, 28)), "Maps", kind="sequential", scale=PROJECTOR)
    yield figures.heatmap_rows([("filter f", W[:, 0], "diverging"), ("∂E/∂f", W[:, 1], "diverging")], "Rows",
                               scale=PROJECTOR)
    yield figures.training_curves(steps, np.ones(39), np.ones(39) / 2, np.array([0, 20]), np.ones(2),
                                  np.ones(2), scale=PROJECTOR)
    yield figures.confusion_matrix(rng.integers(0, 9, (10, 10)), [str(k) for k in range(10)], scale=PROJECTOR)
    yield figures.image_gallery(rng.random((12, 28, 28)), ["7 → 1 · 98%"] * 12, "Gallery", scale=PROJECTOR)
    yield figures.class_accuracy(rng.random(10), [str(k) for k in range(10)], 0.5, scale=PROJECTOR)
    yield figures.series_figure(steps, {"conv 1 weights": np.zeros(39)}, "Norms", "norm", scale=PROJECTOR,
                                what="gradients", reference=1e-3, reference_label="guide")
    yield figures.histogram_grid({"conv 1 weights": rng.normal(size=99), "dense weights": np.zeros(9)}, "H",
                                 scale=PROJECTOR)
    yield figures.sigmoid_figure(rng.normal(size=500) * 4, scale=PROJECTOR)
    yield figures.flat_vector_figure(rng.random(96), 3, "Flat", scale=PROJECTOR)
    yield figures.probability_figure(rng.random(10), [str(k) for k in range(10)], "P", scale=PROJECTOR)
    yield figures.feature_maps_figure(rng.random((16, 24, 24)), "Maps", scale=PROJECTOR)
    yield figures.digit_input_figure(rng.random((28, 28)), scale=PROJECTOR)
    yield figures.explanation_overlay(rng.random((28, 28)), rng.normal(size=(28, 28)), "Saliency", "g",
                                      scale=PROJECTOR)


def test_every_figure_text_is_at_least_18_px_on_the_projector():
    for fig in _builders():
        spec = fig.to_plotly_json()
        sizes = _font_sizes(spec)
        assert spec["layout"]["font"]["size"] >= 18, spec["layout"]["title"]["text"]
        assert sizes and min(sizes) >= 18, (spec["layout"]["title"]["text"], sorted(sizes)[:3])


def test_filter_tiles_are_150_px_on_the_projector_up_to_8_filters():
    for F in range(1, 9):
        cols = figures.filter_cols(F)
        assert figures.filter_tile_px(cols) * PROJECTOR >= 150
        assert cols * figures.filter_tile_px(cols) * PROJECTOR <= 560  # fits the Train page's filter column


def test_filter_labels_count_from_1_and_replay_uses_the_live_grid():
    W = np.random.default_rng(1).normal(size=(12, 1, 5, 5)).astype(np.float32)
    live = figures.filter_grid(W)
    replay = figures.filter_replay(W, W * 0.5, 7)
    cols_live = np.asarray(live.data[0].z).shape[1]
    assert all(np.asarray(t.z).shape[1] == cols_live for t in replay.data)  # same columns, same tiles
    tile_labels = [a.text for a in live.layout.annotations]
    assert tile_labels[0] in ("filter 1", "1") and tile_labels[-1] in ("filter 12", "12")
    assert [a.text for a in replay.layout.annotations if not a.text.startswith("<b>")] == tile_labels * 2


def test_long_labels_shrink_to_numbers_when_tiles_are_narrow():
    W = np.zeros((64, 1, 3, 3), dtype=np.float32)
    fig = figures.filter_grid(W, tile_px=24)
    assert [a.text for a in fig.layout.annotations][:3] == ["1", "2", "3"]


def test_log_chart_says_why_it_is_empty():
    msg = figures.log_empty_message({"a": np.zeros(5), "b": np.zeros(5)}, "gradients",
                                    "every output sigmoid is saturated")
    assert msg.replace("<br>", " ") == "all gradients are exactly 0: every output sigmoid is saturated"
    assert figures.log_empty_message({"a": np.array([0.0, 1e-9])}, "gradients") is None
    assert "no gradients recorded" in figures.log_empty_message({}, "gradients")
    assert "cannot draw 0 or negative" in figures.log_empty_message({"a": -np.ones(3)}).replace("<br>", " ")
    fig = figures.series_figure(np.arange(3), {"conv 1 weights": np.zeros(3)}, "Norms", "norm",
                                what="gradients", empty_reason="every output sigmoid is saturated")
    notes = [a.text.replace("<br>", " ") for a in fig.layout.annotations]
    assert "all gradients are exactly 0: every output sigmoid is saturated" in notes
    fine = figures.series_figure(np.arange(3), {"conv 1 weights": np.ones(3)}, "Norms", "norm")
    assert not [a for a in fine.layout.annotations if "exactly 0" in a.text]


def test_histogram_ticks_are_not_a_fixed_exponent_format():
    vals = {"conv 1 weights": np.zeros(20), "dense weights": np.linspace(-1, 1, 20)}
    fig = figures.histogram_grid(vals, "H")
    for ax in (fig.layout.xaxis, fig.layout.xaxis2):
        assert ax.tickformat in (None, "") and "0e+0" not in ax.ticktext and "0" in ax.ticktext
    assert any("exactly 0" in a.text for a in fig.layout.annotations)


def test_validation_point_at_step_0_is_not_clipped():
    fig = figures.training_curves(np.arange(1, 4), np.ones(3), np.ones(3), np.array([0]), np.ones(1),
                                  np.ones(1))
    val = [t for t in fig.data if t.name == "validation"]
    assert val and all(t.cliponaxis is False for t in val)


def test_sigmoid_figure_curves_and_histogram_share_the_z_axis():
    z = np.array([-30.0, -1.0, 0.0, 0.5, 2.0, 25.0])
    fig = figures.sigmoid_figure(z)
    bars, sig, dsig = fig.data
    assert sum(bars.y) == z.size and bars.yaxis == "y2" and bars.xaxis in (None, "x")
    assert np.all(np.diff(sig.y) >= 0) and max(dsig.y) == pytest.approx(0.25, abs=1e-3)
    assert fig.layout.xaxis.range == (-30.0, 30.0)
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "33% of 6 units have σ′ < 0.01" in notes  # -30 and 25 are saturated

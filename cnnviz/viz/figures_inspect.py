"""Plotly figures of the "Inspect a filter" page: arrays in, ``go.Figure`` out (see ``cnnviz.viz.inspect``).

Galleries are ONE heatmap of tiles (as in ``figures.tile``): cheap to build, and hover still names the image.
Filters and classes are numbered from 1 in every visible text.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnviz.viz.figures import DIVERGING, HIGHLIGHT, IMAGE, MUTED, TRAIN_COLOUR, style, symmetric_range, tile

__all__ = ["filter_strip", "patch_gallery", "class_bars", "max_input", "filter_weights", "receptive_field",
           "edit_maps"]

_AXIS = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": "", "constrain": "domain"}
_THUMB = 2  # the digit beside each patch is shown at half size (28 -> 14 px)


def _style(fig: go.Figure, title: str, height: int, scale: float, margin: dict | None = None,
           **layout) -> go.Figure:
    """The app's look (``figures.style``) with this page's own margins."""
    style(fig, title, height=height, scale=scale, **layout)
    if margin:
        fig.update_layout(margin=margin)
    return fig


def _image_axes(fig: go.Figure, **kw) -> None:
    fig.update_xaxes(**_AXIS, **kw)
    fig.update_yaxes(**_AXIS, autorange="reversed", **kw)


def _rect(top, left, bottom, right, xref="x", yref="y", colour=HIGHLIGHT, width=2) -> dict:
    """A rectangle shape around pixels top..bottom, left..right (inclusive) of an image-like heatmap."""
    return {"type": "rect", "x0": left - 0.5, "x1": right + 0.5, "y0": top - 0.5, "y1": bottom + 0.5,
            "xref": xref, "yref": yref, "line": {"color": colour, "width": width}}


def filter_strip(images: np.ndarray, selected: int, title: str, dead: np.ndarray | None = None,
                 scale: float = 1.0, height: int = 150) -> go.Figure:
    """Every filter of a layer as one small image (F, S, S) in [0, 1] (e.g. the average of its top patches),
    labelled "filter 1".., the ``selected`` one outlined. Clicking a tile selects an invisible marker on it
    (trace 1, point index = filter): Plotly reports no clicks on heatmaps, only on markers."""
    images = np.asarray(images, dtype=np.float32)
    F, S = images.shape[0], images.shape[-1]
    zoom = max(1, 20 // S)
    big = images.repeat(zoom, axis=1).repeat(zoom, axis=2)  # (F, P, P)
    P = S * zoom
    gap = max(2, P // 4)
    tiled, _ = tile(big, F, gap)  # (P, F * (P + gap) - gap): one row
    dead = np.zeros(F, dtype=bool) if dead is None else np.asarray(dead, dtype=bool)
    fig = go.Figure(go.Heatmap(z=tiled, colorscale=IMAGE, zmin=0, zmax=1, showscale=False, hoverinfo="skip"))
    centres = np.arange(F) * (P + gap) + (P - 1) / 2  # (F,) tile centres on x
    fig.add_trace(go.Scatter(
        x=centres, y=np.full(F, (P - 1) / 2), mode="markers", showlegend=False,
        marker={"size": round(P * 1.6 * scale), "opacity": 0, "symbol": "square"},
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
        customdata=np.arange(1, F + 1), text=np.where(dead, " (dead: never fires)", ""),
        hovertemplate="filter %{customdata}%{text}<br>click to inspect it<extra></extra>"))
    c0 = selected * (P + gap)
    notes = [{"x": centres[f], "y": P + 0.5, "text": f"{f + 1}", "showarrow": False, "yanchor": "top",
              "xref": "x", "yref": "y", "font": {"size": round(13 * scale),
                                                 "color": HIGHLIGHT if f == selected else MUTED}}
             for f in range(F)]
    _style(fig, title, height=height, scale=scale, annotations=notes, dragmode=False,
           shapes=[_rect(0, c0, P - 1, c0 + P - 1, width=3)],
           margin={"l": 8, "r": 8, "t": round(40 * scale), "b": round(22 * scale)})
    _image_axes(fig)
    fig.update_yaxes(scaleanchor="x", range=[P + 3, -1.5])
    fig.update_xaxes(range=[-1.5, len(tiled[0]) + 0.5])
    return fig


def patch_gallery(patches: np.ndarray, digits: np.ndarray, boxes: np.ndarray, values: np.ndarray,
                  labels: np.ndarray, title: str, ncols: int = 4, scale: float = 1.0,
                  height: int | None = None, average: bool = False) -> go.Figure:
    """The receptive-field patches (k, S, S) that excite a filter, each enlarged, with its whole digit
    (k, 28, 28) small beside it and the patch's place marked on it; ``values`` (k,) above each tile.

    boxes (k, 4): (top, left, bottom, right) of each patch on its digit; labels (k,) the digits' classes.
    ``average``: a first tile with the pixel-wise mean of the k patches (what they have in common).
    """
    patches = np.asarray(patches, dtype=np.float32)
    digits = np.asarray(digits, dtype=np.float32)
    k, S = patches.shape[0], patches.shape[-1]
    if k == 0:
        return style(go.Figure(), title, height=120, scale=scale)
    a = 1 if average else 0  # tiles before the first patch
    n = k + a
    zoom = max(1, 28 // S)
    P = S * zoom
    big = patches.repeat(zoom, axis=1).repeat(zoom, axis=2)  # (k, P, P) nearest-neighbour enlargement
    h, w = digits.shape[1:]
    small = digits.reshape(k, h // _THUMB, _THUMB, w // _THUMB, _THUMB).mean(axis=(2, 4))  # (k, 14, 14)
    t = small.shape[1]
    cell = np.full((n, max(P, t), P + 1 + t), np.nan, dtype=np.float32)  # (n, CH, CW): patch | gap | digit
    cell[a:, :P, :P] = big
    cell[a:, :t, P + 1:] = small
    if average:
        cell[0, :P, :P] = big.mean(axis=0)  # (P, P)
    gap = max(3, P // 5)
    tiled, index = tile(cell, ncols, gap)  # (R, Cols), (R, Cols, 3)
    CH, CW = cell.shape[1:]
    hover = [f"the average of these {k} patches"] * a + [
        f"digit {int(lab)} · image {i + 1}<br>patch rows {b[0] + 1}–{b[2] + 1}, columns {b[1] + 1}–{b[3] + 1}"
        f"<br>output {v:.3f}" for i, (lab, b, v) in enumerate(zip(labels, boxes, values, strict=True))]
    hover = np.array(hover, dtype=object)
    text = np.where(index[..., 0] >= 0, hover[np.maximum(index[..., 0], 0)], "")
    ncols = max(1, min(ncols, n))
    shapes, notes = [], []
    for j in range(n):
        r0, c0 = (j // ncols) * (CH + gap), (j % ncols) * (CW + gap)
        shapes.append({"type": "rect", "xref": "x", "yref": "y", "line": {"color": MUTED, "width": 1},
                       "x0": c0 - 0.5, "x1": c0 + P - 0.5, "y0": r0 - 0.5, "y1": r0 + P - 0.5})
        label = "average" if j < a else f"{values[j - a]:.3g}"
        notes.append({"x": c0 + (P - 1) / 2, "y": r0 - 0.6, "text": label, "showarrow": False,
                      "yanchor": "bottom", "xref": "x", "yref": "y", "font": {"size": round(13 * scale)}})
        if j < a:
            continue
        top, left, bottom, right = (np.asarray(boxes[j - a], dtype=np.float64) / _THUMB)
        shapes.append({"type": "rect", "xref": "x", "yref": "y", "line": {"color": HIGHLIGHT, "width": 1.5},
                       "x0": c0 + P + 1 + max(left, 0) - 0.5, "x1": c0 + P + 1 + min(right, t - 1) + 0.5,
                       "y0": r0 + max(top, 0) - 0.5, "y1": r0 + min(bottom, t - 1) + 0.5})
    fig = go.Figure(go.Heatmap(z=tiled, colorscale=IMAGE, zmin=0, zmax=1, showscale=False, hoverongaps=False,
                               text=text, hovertemplate="%{text}<extra></extra>"))
    nrows = -(-n // ncols)
    _style(fig, title, height=height or (60 + 95 * nrows), scale=scale, shapes=shapes, annotations=notes,
           margin={"l": 8, "r": 8, "t": round(50 * scale), "b": 8})
    _image_axes(fig)
    fig.update_yaxes(scaleanchor="x")
    return fig


def class_bars(means: np.ndarray, counts: np.ndarray | None = None, title: str = "Mean activation per digit",
               scale: float = 1.0, height: int = 260) -> go.Figure:
    """Mean activation (K,) per digit 0..K-1 as bars; the two largest in the highlight colour."""
    means = np.asarray(means, dtype=np.float64)
    K = len(means)
    finite = np.where(np.isfinite(means), means, -np.inf)
    top = set(np.argsort(-finite, kind="stable")[:2].tolist()) if np.ptp(np.nan_to_num(means)) > 0 else set()
    colours = [HIGHLIGHT if i in top else TRAIN_COLOUR for i in range(K)]
    n = counts if counts is not None else np.full(K, -1)
    fig = go.Figure(go.Bar(x=[str(i) for i in range(K)], y=means, marker={"color": colours},
                           customdata=np.asarray(n), text=[f"{m:.2g}" for m in means], textposition="outside",
                           cliponaxis=False,
                           hovertemplate="digit %{x}<br>mean activation %{y:.3f}<br>%{customdata} images"
                                         "<extra></extra>"))
    _style(fig, title, height=height, scale=scale, margin={"l": 50, "r": 10, "t": round(50 * scale), "b": 40})
    fig.update_xaxes(title_text="digit", type="category")
    fig.update_yaxes(title_text="mean activation", gridcolor="#eef0f4", zerolinecolor=MUTED)
    return fig


def max_input(image: np.ndarray, box: tuple[int, int, int, int], values: np.ndarray, title: str,
              scale: float = 1.0, height: int = 300) -> go.Figure:
    """The input (H, W) found by gradient ascent, the receptive field of the maximised unit outlined, and
    the filter's output over the ascent steps ``values`` (steps,)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                        subplot_titles=("the input it likes most", "its output while searching"))
    fig.add_trace(go.Heatmap(z=np.asarray(image, dtype=np.float32), colorscale=IMAGE, zmin=0, zmax=1,
                             showscale=False, hovertemplate="row %{y}, col %{x}<br>%{z:.2f}<extra></extra>"),
                  row=1, col=1)
    v = np.asarray(values, dtype=np.float64)
    fig.add_trace(go.Scatter(x=np.arange(1, len(v) + 1), y=v, mode="lines", line={"color": TRAIN_COLOUR},
                             hovertemplate="step %{x}<br>output %{y:.3f}<extra></extra>"), row=1, col=2)
    H, W = np.shape(image)
    top, left, bottom, right = box
    _style(fig, title, height=height, scale=scale, showlegend=False,
          shapes=[_rect(max(top, 0), max(left, 0), min(bottom, H - 1), min(right, W - 1))],
          margin={"l": 10, "r": 10, "t": round(60 * scale), "b": 40})
    fig.update_xaxes(**_AXIS, row=1, col=1)
    fig.update_yaxes(**_AXIS, autorange="reversed", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="ascent step", row=1, col=2)
    fig.update_yaxes(title_text="filter output", gridcolor="#eef0f4", row=1, col=2)
    return fig


def filter_weights(W_f: np.ndarray, title: str, scale: float = 1.0, height: int = 260,
                   zmax: float | None = None) -> go.Figure:
    """One filter's weights (C, KH, KW) as heatmaps on one diverging scale (one tile per input channel,
    numbered from 1 on hover)."""
    W_f = np.asarray(W_f, dtype=np.float32)
    C, KH, KW = W_f.shape
    z = float(zmax) if zmax else symmetric_range(W_f)
    ncols = min(C, 4)  # several input channels: rows of 4 tiles, large enough to read
    tiled, index = tile(W_f, ncols, gap=1)
    custom = np.where(index[..., :1] >= 0, index + 1, 0)  # (R, Cols, 3) channel, row, col from 1
    trace = dict(z=tiled, customdata=custom, colorscale=DIVERGING, zmid=0.0, zmin=-z, zmax=z,
                 hoverongaps=False,
                 colorbar={"title": {"text": "weight", "side": "right"}, "thickness": round(10 * scale)},
                 hovertemplate="input channel %{customdata[0]}, row %{customdata[1]}, col %{customdata[2]}"
                               "<br>w = %{z:.3f}<extra></extra>")
    fig = go.Figure(go.Heatmap(**trace))
    _style(fig, title, height=height, scale=scale, margin={"l": 10, "r": 10, "t": round(50 * scale), "b": 10})
    _image_axes(fig)
    fig.update_yaxes(scaleanchor="x")
    return fig


def _subplot_titles(fig: go.Figure, scale: float) -> None:
    """make_subplots writes its panel titles at a fixed 16 px; scale them like the rest of the figure text
    (≥ 18 px in presentation mode)."""
    fig.update_annotations(font_size=round(13 * scale))


def receptive_field(image: np.ndarray, box: tuple[int, int, int, int], fmap: np.ndarray,
                    unit: tuple[int, int], title: str, scale: float = 1.0, height: int = 280) -> go.Figure:
    """Which input pixels reach one output: the digit (H, W) with the receptive field of output ``unit``
    (row, col) outlined, beside the filter's feature map (H_out, W_out) with that unit marked."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("input", "its feature map"))
    fig.add_trace(go.Heatmap(z=np.asarray(image, dtype=np.float32), colorscale=IMAGE, zmin=0, zmax=1,
                             showscale=False, hovertemplate="row %{y}, col %{x}<extra></extra>"),
                  row=1, col=1)
    fmap = np.asarray(fmap, dtype=np.float32)
    z = symmetric_range(fmap)
    fig.add_trace(go.Heatmap(z=fmap, colorscale=DIVERGING, zmid=0, zmin=-z, zmax=z, showscale=False,
                             hovertemplate="row %{y}, col %{x}<br>%{z:.3f}<extra></extra>"), row=1, col=2)
    H, W = np.shape(image)
    top, left, bottom, right = box
    r, c = unit
    _style(fig, title, height=height, scale=scale, showlegend=False,
          shapes=[_rect(max(top, 0), max(left, 0), min(bottom, H - 1), min(right, W - 1)),
                  _rect(r, c, r, c, xref="x2", yref="y2")],
          margin={"l": 10, "r": 10, "t": round(60 * scale), "b": 10})
    _subplot_titles(fig, scale)
    _image_axes(fig)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return fig


def edit_maps(image: np.ndarray, learned: np.ndarray, edited: np.ndarray, title: str, scale: float = 1.0,
              height: int = 280) -> go.Figure:
    """One digit (H, W) and the filter's feature map (H_out, W_out) with the learned and the changed weights,
    the two maps on one colour scale so that a change in strength is visible."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.05,
                        subplot_titles=("the digit", "learned filter", "changed filter"))
    fig.add_trace(go.Heatmap(z=np.asarray(image, dtype=np.float32), colorscale=IMAGE, zmin=0, zmax=1,
                             showscale=False, hoverinfo="skip"), row=1, col=1)
    z = symmetric_range(learned, edited)
    for col, m in ((2, learned), (3, edited)):
        fig.add_trace(go.Heatmap(z=np.asarray(m, dtype=np.float32), colorscale=DIVERGING, zmid=0, zmin=-z,
                                 zmax=z, showscale=col == 3, colorbar={"thickness": round(10 * scale)},
                                 hovertemplate="row %{y}, col %{x}<br>%{z:.3f}<extra></extra>"),
                      row=1, col=col)
    _style(fig, title, height=height, scale=scale, margin={"l": 10, "r": 10, "t": round(60 * scale), "b": 10})
    _subplot_titles(fig, scale)
    _image_axes(fig)
    for col in (1, 2, 3):
        fig.update_yaxes(scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    return fig

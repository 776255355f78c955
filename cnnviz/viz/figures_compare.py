"""Figure builders for the Compare page: several runs in one picture, one colour per run in every figure.

Arrays (and run labels) in, ``plotly.graph_objects.Figure`` out; no Streamlit, no trainers. The colours are
Okabe and Ito's colour-blind-safe palette, in the order of the runs (``RUN_COLOURS``).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnviz.viz.figures import _TILE_AXIS, DIVERGING, MUTED, _smooth, _thin, style, symmetric_range, tile

RUN_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")  # blue, vermillion, green, purple
LAYER_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def run_colour(i: int) -> str:
    """The colour of run ``i`` (0-based) in every Compare figure."""
    return RUN_COLOURS[i % len(RUN_COLOURS)]


def compare_curves(runs: list[dict], scale: float = 1.0, height: int = 560) -> go.Figure:
    """Loss (top) and accuracy (bottom) of several runs against the step, overlaid.

    runs: one dict per run with "label", "steps", "loss", "acc" (n,) from its step records and
    "val_steps", "val_loss", "val_acc" (m,) from its validations. The training curve is a moving average
    (solid), validation is dotted with markers, both in the run's colour.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    longest = max((len(r["steps"]) for r in runs), default=0)
    window = max(1, min(25, longest // 10))
    for i, r in enumerate(runs):
        colour, label = run_colour(i), r["label"]
        steps = np.asarray(r["steps"], dtype=np.float64)
        for row, key, vkey in ((1, "loss", "val_loss"), (2, "acc", "val_acc")):
            y = _smooth(np.asarray(r[key], dtype=np.float64), window)
            xs, ys = _thin(steps, y)
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", line={"color": colour, "width": 2.6}, name=label,
                legendgroup=label, showlegend=row == 1,
                hovertemplate=f"{label}<br>step %{{x}}<br>training {key} %{{y:.4f}}<extra></extra>"),
                row=row, col=1)
            fig.add_trace(go.Scatter(
                x=np.asarray(r["val_steps"], dtype=np.float64), y=np.asarray(r[vkey], dtype=np.float64),
                mode="lines+markers", line={"color": colour, "width": 1.8, "dash": "dot"},
                marker={"size": round(7 * scale), "symbol": "diamond", "color": colour},
                name=f"{label} (validation)", legendgroup=label, showlegend=False,
                hovertemplate=f"{label}<br>step %{{x}}<br>validation {key} %{{y:.4f}}<extra></extra>"),
                row=row, col=1)
    grid = {"gridcolor": "#eef1f6", "zeroline": False}
    fig.update_xaxes(**grid, rangemode="tozero", tickformat=",d")
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_yaxes(**grid, rangemode="tozero", title_text="loss", row=1, col=1)
    fig.update_yaxes(**grid, range=[0, 1.02], tickformat=".0%", title_text="accuracy", row=2, col=1)
    # short enough for half a projector's width; the legend's title says what the solid lines are
    title = "Loss and accuracy (dotted: validation)"
    solid = "solid: training" + (f", mean of {window} steps" if window > 1 else "")
    # one legend entry per run (its colour): with an entry per curve, three or four runs wrapped the legend
    # onto three or four lines, over the title in presentation mode
    style(fig, title, height=height, scale=scale,
          legend={"orientation": "h", "yanchor": "bottom", "y": 1.06, "x": 0,
                  "title": {"text": solid + " ·", "side": "left"},
                  "font": {"size": round(13 * scale)}},
          hovermode="x unified")
    fig.update_layout(margin={"t": round(110 * scale), "l": round(70 * scale)}, title_y=0.985,
                      title_yanchor="top")
    if longest == 0:
        fig.add_annotation(text="no steps yet: press Step or Play", x=0.5, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font={"size": round(15 * scale), "color": MUTED})
    return fig


def compare_filters(filters: list[tuple[str, np.ndarray | None]], step: int, scale: float = 1.0,
                    tile_px: int | None = None) -> go.Figure:
    """The first conv layer's filters of each run, one row per run, at the same step.

    filters: (run label, W (F, C, KH, KW) or None for a run without a conv layer). Each row has its own
    diverging colour range centred on 0 (blue negative, red positive), since runs differ in scale; the
    row's title, in the run's colour, gives that range. Filters are numbered from 1.
    """
    n = len(filters)
    tile_px = tile_px or (120 if n <= 2 else 75)  # rough height of one row of tiles, in pixels
    titles = []
    for i, (label, W) in enumerate(filters):
        rng = symmetric_range(W) if W is not None else 0.0
        text = f"{label}: ±{rng:.2g}" if W is not None else f"{label}: no conv layer"
        titles.append(f"<span style='color:{run_colour(i)}'><b>{text}</b></span>")
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles, vertical_spacing=0.12 / max(n - 1, 1))
    max_rows = 1
    for i, (_label, W) in enumerate(filters):
        if W is None:
            continue
        W = np.asarray(W, dtype=np.float32)
        F, C, KH, KW = W.shape
        stack = W[:, 0] if C == 1 else W.mean(axis=1)  # (F, KH, KW): mean over input channels if several
        ncols = min(F, 4 if F <= 8 else 8)
        max_rows = max(max_rows, -(-F // ncols))
        tiled, index = tile(stack, ncols, gap=1)  # (R, Cols)
        z = symmetric_range(W)
        fig.add_trace(go.Heatmap(
            z=tiled, customdata=index[..., 0] + 1, colorscale=DIVERGING, zmid=0.0, zmin=-z, zmax=z,
            showscale=False, hoverongaps=False,
            hovertemplate="filter %{customdata}<br>w = %{z:.4f}<extra></extra>"), row=i + 1, col=1)
        fig.update_xaxes(**_TILE_AXIS, row=i + 1, col=1)  # image-like axes: no ticks, y downwards
        fig.update_yaxes(**_TILE_AXIS, autorange="reversed", row=i + 1, col=1)
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=i + 1, col=1)
    style(fig, f"Filters of conv 1 at step {step} (each row: its own colour scale)",
          height=round(70 + n * (max_rows * tile_px * 1.1 + 45)), scale=scale, showlegend=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=round(14 * scale), xanchor="left", x=0.0)
    fig.update_layout(margin={"l": 10, "r": 10, "t": round(70 * scale), "b": 10})
    return fig


def compare_grad_norms(runs: list[dict], scale: float = 1.0, height: int = 420) -> go.Figure:
    """Per-layer gradient norms of several runs over the steps, log scale: colour = run, dash = layer.

    runs: dicts with "label", "steps" (S,) and "series" {layer name ("conv 1 weights"): values (S,)}.
    """
    fig = go.Figure()
    layer_names: list[str] = []
    for r in runs:
        for name in r["series"]:
            if name not in layer_names:
                layer_names.append(name)
    vals = []
    for i, r in enumerate(runs):
        steps = np.asarray(r["steps"], dtype=np.float64)
        for name, v in r["series"].items():
            v = np.asarray(v, dtype=np.float64)
            v = np.where(v > 0, v, np.nan)  # a log axis cannot show 0 (a dead layer: the line stops)
            xs, ys = _thin(steps, v)
            vals.append(ys[np.isfinite(ys)])
            dash = LAYER_DASHES[layer_names.index(name) % len(LAYER_DASHES)]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", line={"color": run_colour(i), "width": 2.2, "dash": dash},
                name=f"{r['label']} · {name}", legendgroup=r["label"],
                hovertemplate=f"{r['label']}<br>{name}<br>step %{{x}}<br>‖∇‖ = %{{y:.3g}}<extra></extra>"))
    fig.update_xaxes(title_text="step", tickformat=",d", gridcolor="#eef1f6", rangemode="tozero")
    fig.update_yaxes(title_text="gradient norm ‖∇‖", type="log", exponentformat="power", gridcolor="#eef1f6")
    allv = np.concatenate(vals) if vals else np.zeros(0)
    if allv.size and np.log10(allv.max() / allv.min()) >= 1:
        fig.update_yaxes(dtick=1)
    style(fig, "Gradient norm per layer (colour: run; line style: layer)", height=height, scale=scale,
          legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0,
                  "font": {"size": round(12 * scale)}})
    fig.update_layout(margin={"b": round(120 * scale), "l": round(70 * scale)})
    return fig


def prediction_histogram(counts: np.ndarray, class_names: list[str], title: str, scale: float = 1.0,
                         colour: str = "#D55E00") -> go.Figure:
    """Bars of how many probe images each class is given (a stuck run puts them all on one class)."""
    counts = np.asarray(counts, dtype=np.int64)
    fig = go.Figure(go.Bar(x=class_names, y=counts, marker_color=colour, text=counts, textposition="outside",
                           hovertemplate="%{x}: %{y} images<extra></extra>"))
    fig.update_xaxes(type="category", title_text="predicted class")
    fig.update_yaxes(title_text="images", range=[0, max(1, int(counts.max(initial=0))) * 1.18])
    style(fig, title, height=260, scale=scale, showlegend=False)
    return fig


def differences_table(labels: list[str], rows: list[dict]) -> str:
    """The differences between runs as an HTML table (text wraps; each run's name in its colour); ``rows``
    as ``Comparison.differences`` gives them ({"setting": ..., label: value for each run})."""
    import html

    head = "".join(f"<th style='color:{run_colour(i)}'>{html.escape(label)}</th>"
                   for i, label in enumerate(labels))
    body = "".join("<tr><td><b>" + html.escape(r["setting"]) + "</b></td>"
                   + "".join(f"<td>{html.escape(r[label])}</td>" for label in labels) + "</tr>"
                   for r in rows)
    return (f"<table style='width:100%'><thead><tr><th>setting</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")

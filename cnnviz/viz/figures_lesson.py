"""The lesson's two figures that no other page draws: the sigmoid with its slope and a digit's convolution
values, and the error as a function of the output. Arrays in, Plotly Figure out, with the app's look
(``figures.style``); every other lesson figure is one of ``cnnviz.viz.figures``' builders.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cnnviz.viz import figures


def sigmoid_figure(
    z: np.ndarray, z_other: np.ndarray | None = None, scale: float = 1.0, height: int = 380
) -> go.Figure:
    """σ(z) and its slope σ'(z) = σ(1 − σ) on [−10, 10], over a histogram of the values ``z`` (n,) (this
    digit's convolution outputs); ``z_other`` (m,): the same with the tutorial's uniform(0, 1) weights."""
    t = np.linspace(-10, 10, 401)  # (401,)
    s = 1.0 / (1.0 + np.exp(-t))
    fig = go.Figure()
    lo = float(min(-10, np.min(z)))
    hi = float(max(10, np.max(z)))
    bins = {"start": lo, "end": hi, "size": (hi - lo) / 80}
    fig.add_trace(
        go.Histogram(
            x=np.asarray(z, dtype=np.float64),
            xbins=bins,
            name="this digit's z",
            marker_color=figures.TRAIN_COLOUR,
            opacity=0.55,
            yaxis="y2",
            histnorm="probability",
        )
    )
    if z_other is not None:
        fig.add_trace(
            go.Histogram(
                x=np.asarray(z_other, dtype=np.float64),
                xbins=bins,
                name="z with uniform(0, 1) weights",
                marker_color=figures.MUTED,
                opacity=0.55,
                yaxis="y2",
                histnorm="probability",
            )
        )
    fig.add_trace(go.Scatter(x=t, y=s, name="σ(z)", line={"color": "#222", "width": 3}))
    fig.add_trace(
        go.Scatter(
            x=t,
            y=s * (1 - s),
            name="slope σ'(z)",
            line={"color": figures.HIGHLIGHT, "width": 3, "dash": "dash"},
        )
    )
    for x0, x1 in ((lo, -4.6), (4.6, hi)):
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#d9534f", opacity=0.08, line_width=0)
    fig.add_annotation(
        x=7.3,
        y=0.5,
        text="flat:<br>slope < 0.01",
        showarrow=False,
        font={"size": 14 * scale, "color": "#a33"},
    )
    figures.style(
        fig,
        "The sigmoid, its slope, and this digit's convolution values",
        height=height,
        scale=scale,
        barmode="overlay",
        xaxis={"title": "z", "range": [lo, hi]},
        yaxis={"title": "σ(z), σ'(z)", "range": [-0.02, 1.05]},
        # its own ticks from 0 (not synced to the left axis's grid, which gave 0.011, 0.118, …), in percent
        yaxis2={"title": "share of values", "overlaying": "y", "side": "right", "showgrid": False,
                "tickmode": "auto", "rangemode": "tozero", "tickformat": ".0%"},
        legend={"orientation": "h", "y": -0.22},
    )
    fig.update_layout(margin_r=round(90 * scale))  # room for the right axis and its title
    return fig


def error_figure(
    kind: str, y: float, o: float, o90: float, scale: float = 1.0, height: int = 360
) -> go.Figure:
    """The error against the output: ``kind`` "mse" (E = (y − O)²/2 over O in [0, 1], target ``y``) or "ce" /
    "bce" (E = −log p over p, the probability of the right class); the current output ``o`` and the
    90%-sure output ``o90`` marked."""
    p = np.linspace(0.001, 1.0, 400)  # (400,)
    if kind == "mse":
        e = (y - p) ** 2 / 2
        xt, title = "output O", f"E = (y − O)² / 2 for y = {y:g}"
        err = lambda v: (y - v) ** 2 / 2  # noqa: E731
    else:
        e = -np.log(p)
        xt, title = "probability of the right class p", "E = −log p"
        err = lambda v: -np.log(max(v, 1e-12))  # noqa: E731
    fig = go.Figure(go.Scatter(x=p, y=e, name="E", line={"color": "#222", "width": 3}))
    fig.add_trace(
        go.Scatter(
            x=[o],
            y=[err(o)],
            mode="markers+text",
            name="this digit",
            marker={"size": 16 * scale, "color": figures.HIGHLIGHT},
            text=[f"now: E = {err(o):.3g}"],
            textposition="top right" if o < 0.5 else "top left",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[o90],
            y=[err(o90)],
            mode="markers+text",
            name="90% sure",
            marker={"size": 14 * scale, "color": figures.TRAIN_COLOUR, "symbol": "diamond"},
            text=[f"90% sure: E = {err(o90):.3g}"],
            textposition="top right" if o90 < 0.5 else "top left",
        )
    )
    figures.style(
        fig,
        title,
        height=height,
        scale=scale,
        xaxis={"title": xt, "range": [0, 1.02]},
        yaxis={"title": "E"},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig

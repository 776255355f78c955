"""The lesson's figure that no other page draws: the error as a function of the output. Arrays in, Plotly
Figure out, with the app's look (``figures.style``); every other lesson figure is one of
``cnnviz.viz.figures``' builders.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cnnviz.viz import figures


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

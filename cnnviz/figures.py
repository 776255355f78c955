"""Plotly figure builders: NumPy arrays in, ``plotly.graph_objects.Figure`` out.

Nothing here knows about Streamlit or about the network objects: callers pass plain arrays, so every builder
can be unit-tested on its own. One colour convention across the app:

* weights and gradients: a diverging, colour-blind-safe scale centred on 0 (``DIVERGING``), one shared range
  per figure so that filters can be compared;
* images: greyscale (``IMAGE``);
* activations / feature maps: a perceptually uniform sequential scale (``SEQUENTIAL``).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

DIVERGING = "RdBu_r"  # blue = negative, red = positive; readable with red-green colour blindness
IMAGE = "gray"
SEQUENTIAL = "Viridis"
TRAIN_COLOUR = "#3b6fd8"
VAL_COLOUR = "#e07b00"
HIGHLIGHT = "#e07b00"
MUTED = "#9aa5b8"
FONT = "Inter, Segoe UI, Helvetica, Arial, sans-serif"


def style(fig: go.Figure, title: str, height: int = 320, scale: float = 1.0, **layout) -> go.Figure:
    """Apply the app-wide look: title, font, margins, white background. ``scale`` > 1 for presentation mode."""
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": round(16 * scale)}},
        font={"family": FONT, "size": round(12 * scale)},
        height=round(height * scale),
        margin={"l": 50, "r": 20, "t": round(50 * scale), "b": 45},
        plot_bgcolor="white",
        paper_bgcolor="white",
        **layout,
    )
    return fig


def symmetric_range(*arrays: np.ndarray) -> float:
    """Largest absolute value over all arrays (at least a tiny epsilon), for a colour scale centred on 0."""
    m = max((float(np.max(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    return m if m > 0 and np.isfinite(m) else 1e-12

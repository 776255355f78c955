"""A trainer's progress as the Train page shows it: its curves as arrays, its recent means, its first
filters. No Streamlit here; ``cnnviz.ui.train`` lays these out."""

from __future__ import annotations

import numpy as np


def curve_arrays(tr) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trainer's training curves: steps (n,), loss (n,), accuracy (n,) float64, and its validation
    points (m, 3): step, loss, accuracy."""
    h = tr.history
    steps = np.fromiter((r.step for r in h), dtype=np.float64, count=len(h))
    loss = np.fromiter((r.loss for r in h), dtype=np.float64, count=len(h))
    acc = np.fromiter((r.acc for r in h), dtype=np.float64, count=len(h))
    v = np.asarray(tr.val_history, dtype=np.float64).reshape(-1, 3)  # (m, 3): step, loss, acc
    return steps, loss, acc, v


def recent_means(tr, n: int = 20) -> tuple[float | None, float | None]:
    """Mean batch loss and mean ms per step over the last ``n`` steps (None before the first step)."""
    recent = tr.history[-n:]
    if not recent:
        return None, None
    return float(np.mean([r.loss for r in recent])), float(np.mean([r.ms for r in recent]))


def first_conv_weights(net) -> np.ndarray | None:
    """The first conv layer's weights (F, C, KH, KW), or None if the network has none (not a copy)."""
    for layer in net.layers:
        if type(layer).__name__ == "Conv2D":
            return layer.params["W"]
    return None

"""The inputs z of a network's sigmoid layers (its pre-activations), for the σ / σ′ figure.

Pure NumPy on top of ``nn.network.Network``: the forward pass runs on a private copy (``net.copy()``), so the
session's network and its stored outputs are never touched, and nothing imports Streamlit or Plotly.
"""

from __future__ import annotations

import numpy as np


def sigmoid_preactivations(net, x: np.ndarray) -> np.ndarray:
    """Every value that enters a Sigmoid layer of ``net`` for the images ``x`` (N, C, H, W), flattened.

    Returns a float32 vector (M,) (empty when the network has no sigmoid). These are the z of σ(z): where |z|
    is large, σ′(z) = σ(1 − σ) is almost 0 and the gradient through that unit vanishes.
    """
    kinds = [type(layer).__name__ for layer in net.layers]
    if "Sigmoid" not in kinds:
        return np.zeros(0, dtype=np.float32)
    work = net.copy()
    work.forward(np.asarray(x, dtype=np.float32))
    outs = [np.asarray(x, dtype=np.float32), *work.outputs]  # outs[i] is the input of layer i
    zs = [outs[i].ravel() for i, k in enumerate(kinds) if k == "Sigmoid"]
    return np.concatenate(zs).astype(np.float32)

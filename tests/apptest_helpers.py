"""Helpers for reading Plotly charts out of a ``streamlit.testing.v1.AppTest`` run."""

from __future__ import annotations

import base64
import json

import numpy as np

# A config whose training blows up within ~20 steps: a linear output trained with MSE and SGD at lr 10.
DIVERGING = {"preset": "custom", "loss": "mse", "optimizer": "sgd", "lr": 10.0, "momentum": 0.9,
             "train_size": 500, "layers": [
                 {"type": "Conv2D", "in_channels": 1, "out_channels": 8, "kernel_size": 5},
                 {"type": "ReLU"}, {"type": "MaxPool2D", "size": 2}, {"type": "Flatten"},
                 {"type": "Dense", "in_features": 1152, "out_features": 10}]}


def chart_spec(at, key: str) -> dict:
    """The Plotly JSON (data, layout) of the chart drawn with ``key`` (``st.plotly_chart(..., key=key)``)."""
    charts = [c for c in at.get("plotly_chart") if str(c.proto.id).endswith(key)]
    assert charts, f"no chart with key {key}: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(charts[0].proto.spec)


def plotly_array(v) -> np.ndarray:
    """A Plotly JSON array: a plain list, or Plotly's typed-array form {"dtype", "bdata", "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v)


def app_state(at):
    """The session's typed state (``cnnviz.ui.state.AppState``) of an AppTest run."""
    from cnnviz.ui import state

    return at.session_state[state.STATE_KEY]

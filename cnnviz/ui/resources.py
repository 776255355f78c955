"""Read-only resources shared by every session: datasets and pretrained models, loaded once per server.

Everything returned here is cached with ``st.cache_resource`` and therefore shared between all browser
sessions. It must never be mutated: dataset arrays are made read-only (a write raises), and callers that
want to train a pretrained model take ``net.copy()`` first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st

from cnnviz import data

MODELS_DIR = data.ASSETS_DIR / "models"


def _freeze(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


@st.cache_resource(show_spinner="Loading the MNIST subset…", max_entries=16)
def _shared_dataset(task: str, train_size: int) -> data.Dataset:
    ds = data.load_dataset(task, train_size)
    _freeze(ds.x_train, ds.y_train, ds.x_val, ds.y_val)
    return ds


def dataset(task: str, train_size: int) -> data.Dataset:
    """The shipped subset for a task and training-set size (arrays shared and read-only).

    Returns a shallow copy of the cached Dataset object, so that a session re-binding one of its attributes
    (e.g. adding "your digits" to x_train) never changes what other sessions see.
    """
    return dataclasses.replace(_shared_dataset(task, int(train_size)))


@st.cache_resource(show_spinner=False, max_entries=8)
def _shared_model(path: str, mtime: float):
    from cnnviz import io

    net, cfg = io.load_model_and_config(path)
    for _, arr in net.named_params():
        arr.flags.writeable = False
    return net, cfg


def pretrained(name: str):
    """The shipped pretrained model ``assets/models/{name}.npz`` as (Network, config dict or None), or None.

    The network is shared by every session and its weights are read-only: predict with it, or ``.copy()``
    it before training.
    """
    path = MODELS_DIR / f"{name}.npz"
    if not path.is_file():
        return None
    return _shared_model(str(path), Path(path).stat().st_mtime)


def validation_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 validation images (N, 1, 28, 28) float32 and digit labels (N,), shared and read-only."""
    ds = _shared_dataset("digits", 200)
    return ds.x_val, ds.y_val

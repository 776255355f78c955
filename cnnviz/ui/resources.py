"""Read-only resources shared by every session: datasets and pretrained models, loaded once per server.

Everything returned here is cached with ``st.cache_resource`` and therefore shared between all browser
sessions. It must never be mutated: dataset arrays are made read-only (a write raises), and callers that
want to train a pretrained model take ``net.copy()`` first.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import streamlit as st

from cnnviz.train import config as C
from cnnviz.train import data

MODELS_DIR = data.ASSETS_DIR / "models"


def _freeze(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


@st.cache_resource(show_spinner="Loading the MNIST subset…", max_entries=16)
def _shared_dataset(task: str, train_size: int) -> data.Dataset:
    ds = data.load_dataset(task, train_size)
    _freeze(ds.x_train, ds.y_train, ds.x_val, ds.y_val)
    return ds


MNIST_DIR_ENV = "CNNVIZ_MNIST_DIR"  # a folder with the standard MNIST IDX files (optional)


def mnist_dir() -> str | None:
    """The folder named by $CNNVIZ_MNIST_DIR when it exists (the full MNIST is then offered), else None."""
    path = os.environ.get(MNIST_DIR_ENV, "").strip()
    return path if path and Path(path).is_dir() else None


def max_train_size() -> int:
    """Largest training-set size offered: 4,000 (shipped subset), or 60,000 with the full MNIST configured."""
    return C.TRAIN_SIZE_IDX_MAX if mnist_dir() else C.TRAIN_SIZE_SUBSET_MAX


@st.cache_resource(show_spinner="Loading the full MNIST from its IDX files (once per server, a few seconds)…",
                   max_entries=1)
def _full_mnist(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All of the full MNIST in ``path`` as network inputs, loaded once: x_train (N, 1, 28, 28) float32,
    y_train (N,) int64, and the validation images: the first 1,000 of t10k (or the last 1,000 training
    images, then kept out of training). Read-only."""
    files = data.load_idx_dir(path)
    images, labels = files["train"]
    if "test" in files:
        val_images, val_labels = files["test"][0][:1000], files["test"][1][:1000]
    else:
        val_images, val_labels = images[-1000:], labels[-1000:]
        images, labels = images[:-1000], labels[:-1000]
    arrays = (data.to_input(images), labels.astype(np.int64), data.to_input(val_images),
              val_labels.astype(np.int64))
    _freeze(*arrays)
    return arrays


def dataset(task: str, train_size: int) -> data.Dataset:
    """The data for a task and training-set size (arrays shared and read-only).

    Up to 4,000 images come from the shipped subset (the fixed stratified split); more come from the full
    MNIST when $CNNVIZ_MNIST_DIR names its IDX files (views of one shared copy, so many sessions cost no
    more memory). Returns a new Dataset object, so that a session re-binding one of its attributes (e.g.
    adding "your digits") never changes what other sessions see. Raises ValueError for an impossible size.
    """
    n = int(train_size)
    if n <= C.TRAIN_SIZE_SUBSET_MAX:
        return dataclasses.replace(_shared_dataset(task, n))
    path = mnist_dir()
    if path is None:
        raise ValueError(f"train_size = {n} needs the full MNIST: set ${MNIST_DIR_ENV} to a folder with its "
                         f"IDX files (the shipped subset has {C.TRAIN_SIZE_SUBSET_MAX:,} training images)")
    x, y, xv, yv = _full_mnist(path)
    if n > len(x):
        raise ValueError(f"train_size = {n} but the MNIST files in {path} hold {len(x):,} training images")
    return data.Dataset(x[:n], y[:n], xv, yv, task, f"idx:{path}")  # views, no copy


@st.cache_resource(show_spinner=False, max_entries=8)
def _shared_model(path: str, mtime: float):
    from cnnviz.train import model_file as io

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

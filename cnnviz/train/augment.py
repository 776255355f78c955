"""Data augmentation for hand-drawn digits, and the training of the Draw page's model (``draw.npz``).

Digits drawn with a mouse differ from MNIST's pen strokes: thicker or thinner, slightly rotated, off-centre.
``augment`` makes random small shifts, rotations (up to 15 degrees), scalings, shears and stroke-thickness
changes of a whole batch at once (one affine map per image, bilinear sampling by index arithmetic, no loop
over images or pixels).
``train_draw_model`` trains a network on the augmented training split and saves it; it is what
``python -m cnnviz assets`` calls to rebuild ``assets/models/draw.npz``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

DRAW_MODEL_PRESET = "deeper"


def _affine_sample(images: np.ndarray, inv: np.ndarray, offset: np.ndarray, centre: float) -> np.ndarray:
    """Resample a batch through per-image affine maps with bilinear interpolation (zeros outside).

    images: (N, H, W); inv: (N, 2, 2) maps an output offset from ``centre`` to a source offset; offset: (N, 2)
    source-space translation (dy, dx). Returns (N, H, W).
    """
    N, H, W = images.shape
    yy, xx = np.meshgrid(np.arange(H, dtype=np.float32), np.arange(W, dtype=np.float32), indexing="ij")
    out_pts = np.stack([yy.ravel() - centre, xx.ravel() - centre])  # (2, H*W)
    src = inv @ out_pts + (centre + offset)[:, :, None]  # (N, 2, H*W)
    sy, sx = src[:, 0], src[:, 1]  # (N, H*W) each
    y0 = np.floor(sy)
    x0 = np.floor(sx)
    wy = (sy - y0).astype(np.float32)
    wx = (sx - x0).astype(np.float32)
    # A one-pixel zero border; indices clipped into it read 0 for points outside the image.
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1))).reshape(N, (H + 2) * (W + 2))  # (N, (H+2)*(W+2))
    iy0 = np.clip(y0.astype(np.int64) + 1, 0, H + 1)
    iy1 = np.clip(y0.astype(np.int64) + 2, 0, H + 1)
    ix0 = np.clip(x0.astype(np.int64) + 1, 0, W + 1)
    ix1 = np.clip(x0.astype(np.int64) + 2, 0, W + 1)

    def at(iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
        return np.take_along_axis(padded, iy * (W + 2) + ix, axis=1)  # (N, H*W)

    top = at(iy0, ix0) * (1 - wx) + at(iy0, ix1) * wx
    bottom = at(iy1, ix0) * (1 - wx) + at(iy1, ix1) * wx
    return (top * (1 - wy) + bottom * wy).reshape(N, H, W)  # (N, H, W)


def _morph(images: np.ndarray, op: Callable) -> np.ndarray:
    """Grey-scale dilation (np.maximum) or erosion (np.minimum) by a 3x3 cross: (N, H, W) -> (N, H, W)."""
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # (N, H+2, W+2)
    out = images.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        op(out, p[:, dy:dy + images.shape[1], dx:dx + images.shape[2]], out=out)
    return out


def augment(
    images: np.ndarray,
    rng: np.random.Generator,
    max_shift: float = 2.0,
    max_rotation: float = 15.0,
    scale_range: tuple[float, float] = (0.85, 1.12),
    max_shear: float = 0.15,
    thickness: tuple[float, float] = (-0.8, 2.0),
    p_thickness: float = 0.6,
) -> np.ndarray:
    """Randomly transformed copies of a batch of digits, float32 in [0, 1], same shape as ``images``.

    images: (N, 28, 28) or (N, 1, 28, 28), values in [0, 1]. Each image gets its own shift (up to
    ``max_shift`` px), rotation (up to ``max_rotation`` degrees either way), scale (x and y drawn separately
    within ``scale_range``, so the aspect changes a little), shear and, with probability ``p_thickness``, a
    thicker or thinner stroke: an amount drawn from the ``thickness`` range, where -1 is a 3x3 erosion, 1 a
    3x3 dilation, 2 two dilations, and values in between blend the neighbouring steps. The brightest
    pixel of each result is rescaled to 1, as ``canvas_to_mnist`` does. All randomness comes from ``rng``.
    """
    x = np.asarray(images, dtype=np.float32)
    squeeze = x.ndim == 4
    if squeeze:
        if x.shape[1] != 1:
            raise ValueError(f"augment expects one channel, got shape {x.shape}")
        x = x[:, 0]  # (N, H, W)
    if x.ndim != 3:
        raise ValueError(f"augment expects (N, H, W) or (N, 1, H, W), got shape {np.shape(images)}")
    N, H, W = x.shape
    if N == 0:
        return np.asarray(images, dtype=np.float32).copy()

    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation, N))  # (N,)
    scale = rng.uniform(scale_range[0], scale_range[1], (N, 2))  # (N, 2): (sy, sx)
    shear = rng.uniform(-max_shear, max_shear, N)  # (N,)
    shift = rng.uniform(-max_shift, max_shift, (N, 2))  # (N, 2): (dy, dx)
    cos, sin = np.cos(theta), np.sin(theta)
    # Forward map of (dy, dx) offsets: rotation @ shear @ scale; we need its inverse to sample the source.
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)  # (N, 2, 2)
    shr = np.zeros((N, 2, 2))
    shr[:, 0, 0] = 1.0
    shr[:, 1, 1] = 1.0
    shr[:, 1, 0] = shear
    scl = np.zeros((N, 2, 2))
    scl[:, 0, 0] = scale[:, 0]
    scl[:, 1, 1] = scale[:, 1]
    fwd = rot @ shr @ scl  # (N, 2, 2)
    inv = np.linalg.inv(fwd).astype(np.float32)  # (N, 2, 2)
    offset = -(inv @ shift[:, :, None])[:, :, 0]  # (N, 2): shift applied in output space
    out = _affine_sample(x, inv, offset.astype(np.float32), centre=(H - 1) / 2 + 0.5)  # (N, H, W)

    amount = rng.uniform(thickness[0], thickness[1], N).astype(np.float32)  # (N,): < 0 thinner, > 0 thicker
    amount *= rng.random(N) < p_thickness
    thick = _morph(out, np.maximum)  # one dilation
    thicker = _morph(thick, np.maximum)  # two
    thin = _morph(out, np.minimum)  # one erosion
    a = amount[:, None, None]  # (N, 1, 1)
    out = np.where(a > 1, thick + (a - 1) * (thicker - thick),
                   np.where(a > 0, out + a * (thick - out), out + a * (out - thin)))
    peak = out.max(axis=(1, 2), keepdims=True)  # (N, 1, 1)
    out = np.clip(out / np.maximum(peak, 1e-6), 0.0, 1.0).astype(np.float32)
    return out[:, None] if squeeze else out  # (N, 1, H, W) or (N, H, W)


def train_draw_model(
    out_path: str | os.PathLike = "assets/models/draw.npz",
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    preset: str = DRAW_MODEL_PRESET,
    log: Callable[[str], None] | None = print,
) -> float:
    """Train ``preset`` with augmentation on the 4,000 training images, save it, return validation accuracy.

    Each epoch draws freshly augmented copies of every training image (3 in 4 augmented, 1 in 4 clean), trains
    with Adam and a cosine learning-rate decay, and reports the accuracy on the 1,000 untouched validation
    images. Deterministic for a given ``seed``. Saved with ``model_file.save_model`` (config and metadata
    included) so the app's loader and the model-file checks apply to it.
    """
    from cnnviz.nn.losses import SoftmaxCrossEntropy
    from cnnviz.nn.network import build
    from cnnviz.nn.optim import Adam
    from cnnviz.train.config import RunConfig, preset_config
    from cnnviz.train.data import fixed_split, load_subset, to_input
    from cnnviz.train.model_file import save_model

    rng = np.random.default_rng(seed)
    images, labels = load_subset()
    train_idx, val_idx = fixed_split(labels)
    x_train = to_input(images[train_idx])  # (4000, 1, 28, 28)
    y_train = labels[train_idx].astype(np.int64)
    x_val = to_input(images[val_idx])  # (1000, 1, 28, 28)
    y_val = labels[val_idx].astype(np.int64)

    net = build(preset, rng=rng)
    loss_fn = SoftmaxCrossEntropy()
    opt = Adam(lr)
    n = len(x_train)
    steps_per_epoch = -(-n // batch_size)
    total_steps = epochs * steps_per_epoch
    step = 0
    t0 = time.perf_counter()
    val_acc = 0.0
    for epoch in range(epochs):
        x_aug = augment(x_train, rng)  # (N, 1, 28, 28)
        keep = rng.random(n) < 0.25
        x_aug[keep] = x_train[keep]
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / total_steps))
            logits = net.forward(x_aug[idx])  # (B, 10)
            losses.append(loss_fn.forward(logits, y_train[idx]))
            net.backward(loss_fn.backward())
            opt.step(net)
            step += 1
        val_acc = float((net.forward(x_val).argmax(axis=1) == y_val).mean())
        if log:
            log(f"draw model epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}, "
                f"val acc {val_acc:.2%} ({time.perf_counter() - t0:.0f} s)")
    config = preset_config(preset).to_dict()
    config.update(optimizer="adam", lr=lr, batch_size=batch_size, seed=seed, train_size=n)
    extra = {"purpose": "draw", "val_acc": val_acc, "epochs": epochs, "lr_schedule": "cosine",
             "augmentation": "shift 2 px, rotation 15 deg, scale 0.85-1.12, shear 0.15, thickness -0.8..2 "
                             "(3 in 4 images per epoch)"}
    save_model(out_path, net, config=RunConfig.from_dict(config), extra=extra)
    return val_acc

"""Data augmentation for hand-drawn digits, and the training of the Draw page's model (``draw.npz``).

Digits drawn with a mouse differ from MNIST's pen strokes: thicker or thinner, slightly rotated, off-centre.
``augment`` makes random small shifts, rotations (up to 15 degrees), scalings, shears and stroke-thickness
changes of a whole batch at once (one affine map per image, bilinear sampling by index arithmetic, no loop
over images or pixels).
``train_draw_model`` trains the Draw page's network on MNIST, typeset digits and synthetic non-digits, all
augmented, and saves it; it is what ``python -m cnnviz assets`` calls to rebuild ``assets/models/draw.npz``.
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


def _soft_cross_entropy(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(logits) (N, K) against target distributions (N, K), mean over the batch.

    Returns (loss, dE/dlogits (N, K) = (softmax - target) / N). A one-hot row is the usual loss; a uniform
    row (1/K each) teaches the network to have no preference (outlier exposure, for non-digits)."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)
    loss = float(-(target * log_p).sum(axis=1).mean(dtype=np.float64))
    return loss, ((np.exp(log_p) - target) / len(logits)).astype(np.float32)


def _load_drawn_check():
    """The held-out drawn-digit and non-digit generators in tests/drawn_digits.py, if this is a checkout.

    They are only *reported* after training (never used to choose anything), so the build log shows the
    numbers README quotes; a packaged install without tests/ skips them."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tests" / "drawn_digits.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("cnnviz_drawn_digits_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DRAW_TYPESET_SHARE = 0.5  # share of each epoch's digits that are typeset (the rest are MNIST)
DRAW_NONDIGITS = 3000  # synthetic non-digits per epoch (fresh augmentations of a fixed pool)
NOT_DIGIT_QUANTILE = 0.01  # the not-a-digit threshold flags this share of the MNIST validation digits
CROSSINGS_QUANTILE = 0.002  # the stroke-crossing limit flags at most this share of the MNIST digits


def stroke_crossing_limit(mnist_images: np.ndarray) -> float:
    """The ``stroke_crossings`` limit (see cnnviz.drawing.reading) above which a drawing is "not a digit":
    the value that at most ``CROSSINGS_QUANTILE`` of these MNIST digits (N, 28, 28) or (N, 1, 28, 28) in
    [0, 1] exceed (the crossings are counts averaged over four lines, so the limit is a multiple of 1/4)."""
    from cnnviz.drawing.reading import stroke_crossings

    c = stroke_crossings(np.asarray(mnist_images, dtype=np.float32).reshape(-1, 28, 28))  # (N,)
    return float(np.quantile(c, 1 - CROSSINGS_QUANTILE, method="higher"))


def train_draw_model(
    out_path: str | os.PathLike = "assets/models/draw.npz",
    epochs: int = 40,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    preset: str = DRAW_MODEL_PRESET,
    log: Callable[[str], None] | None = print,
    typeset_path: str | os.PathLike | None = None,
) -> float:
    """Train the Draw page's model and save it; returns the accuracy on the 1,000 MNIST validation images.

    Training data of every epoch, all through ``augment`` (3 in 4 images augmented, 1 in 4 clean):
      * the 4,000 MNIST training images;
      * the typeset digits (``assets/typeset_digits.npz``: 0-9 in 27 outline fonts, upright and italic,
        prepared like a drawing) repeated to as many images as MNIST, so they are about half of the digits:
        they bring the shapes MNIST's pen digits rarely have (a 6 curled at the top, a 9 with a curved tail);
      * ``DRAW_NONDIGITS`` synthetic non-digits (dots, lines, scribbles, blobs, letters, ...) with a uniform
        target over the ten digits (outlier exposure): the model learns to be unsure of them.
    Adam with a cosine learning-rate decay. After training, the not-a-digit threshold on the top probability
    (of the average answer over seven small changes of the drawing, ``cnnviz.drawing.reading.views_top``) is
    set so that ``NOT_DIGIT_QUANTILE`` of the MNIST validation digits fall below it, and is saved in the
    model file's metadata (``not_digit_below``) for ``cnnviz.drawing.read_digit``; so is the stroke-crossing
    limit, from the 5,000 MNIST training and validation digits (``max_stroke_crossings``, see
    ``stroke_crossing_limit``). Deterministic for a seed.
    """
    from cnnviz.drawing.fonts import TYPESET_PATH, font_credits, load_typeset
    from cnnviz.drawing.nondigits import make_nondigits
    from cnnviz.nn.network import build
    from cnnviz.nn.optim import Adam
    from cnnviz.train.config import RunConfig, preset_config
    from cnnviz.train.data import fixed_split, load_subset, to_input
    from cnnviz.train.model_file import save_model

    say = log or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    images, labels = load_subset()
    train_idx, val_idx = fixed_split(labels)
    x_mnist = to_input(images[train_idx])  # (4000, 1, 28, 28)
    y_mnist = labels[train_idx].astype(np.int64)
    x_val = to_input(images[val_idx])  # (1000, 1, 28, 28)
    y_val = labels[val_idx].astype(np.int64)

    typeset_path = typeset_path or TYPESET_PATH
    ty_images, ty_labels, _styles = load_typeset(typeset_path)
    credits = font_credits(typeset_path)
    say(f"typeset digits: {len(ty_labels)} images from {typeset_path}, fonts: "
        + "; ".join(f"{c['font']} ({c['package']}, {c['licence']})" for c in credits))
    n_rep = int(round(len(x_mnist) * DRAW_TYPESET_SHARE / (1 - DRAW_TYPESET_SHARE) / len(ty_labels)))
    x_type = np.tile(to_input(ty_images), (max(1, n_rep), 1, 1, 1))  # (n_rep * n_typeset, 1, 28, 28)
    y_type = np.tile(ty_labels, max(1, n_rep))
    nd_images, _kinds = make_nondigits(DRAW_NONDIGITS, np.random.default_rng(seed + 1000))
    x_nd = to_input(nd_images)  # (DRAW_NONDIGITS, 1, 28, 28)
    nd_val, _ = make_nondigits(900, np.random.default_rng(seed + 2000))

    x_clean = np.concatenate([x_mnist, x_type, x_nd])  # (N, 1, 28, 28)
    K = 10
    target = np.zeros((len(x_clean), K), dtype=np.float32)  # (N, 10)
    digit_labels = np.concatenate([y_mnist, y_type])
    target[np.arange(len(digit_labels)), digit_labels] = 1.0
    target[len(digit_labels):] = 1.0 / K
    say(f"training set per epoch: {len(x_mnist)} MNIST + {len(x_type)} typeset ({n_rep} x {len(ty_labels)}) "
        f"+ {len(x_nd)} non-digits, augmented afresh each epoch")

    net = build(preset, rng=rng)
    opt = Adam(lr)
    n = len(x_clean)
    total_steps = epochs * -(-n // batch_size)
    step = 0
    t0 = time.perf_counter()
    val_acc = 0.0
    for epoch in range(epochs):
        x_aug = augment(x_clean, rng)  # (N, 1, 28, 28)
        keep = rng.random(n) < 0.25
        x_aug[keep] = x_clean[keep]
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / total_steps))
            loss, dlogits = _soft_cross_entropy(net.forward(x_aug[idx]), target[idx])  # (B, 10)
            losses.append(loss)
            net.backward(dlogits)
            opt.step(net)
            step += 1
        if epoch % 5 == 4 or epoch == epochs - 1:
            val_acc = float((net.forward(x_val).argmax(axis=1) == y_val).mean())
            say(f"draw model epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}, "
                f"MNIST val acc {val_acc:.2%} ({time.perf_counter() - t0:.0f} s)")

    from cnnviz.drawing.reading import views_top

    val_top = views_top(net, x_val[:, 0])  # (1000,) the average answer over seven views of each drawing
    threshold = float(np.clip(np.quantile(val_top, NOT_DIGIT_QUANTILE), 0.2, 0.6))
    nd_top = views_top(net, nd_val)  # (900,)
    say(f"not-a-digit threshold (top probability of the average over seven views below it): {threshold:.3f}; "
        f"flags {(val_top < threshold).mean():.1%} of MNIST val digits and {(nd_top < threshold).mean():.1%} "
        f"of {len(nd_top)} fresh synthetic non-digits")
    from cnnviz.drawing.reading import stroke_crossings

    max_crossings = stroke_crossing_limit(np.concatenate([x_mnist, x_val]))
    nd_crowded = stroke_crossings(nd_val) > max_crossings  # (900,)
    say(f"stroke-crossing limit: {max_crossings:.2f}; flags "
        f"{(stroke_crossings(x_val[:, 0]) > max_crossings).mean():.1%} of MNIST val digits; with the "
        f"threshold, {((nd_top < threshold) | nd_crowded).mean():.1%} of the fresh synthetic non-digits")
    config = preset_config(preset).to_dict()
    config.update(optimizer="adam", lr=lr, batch_size=batch_size, seed=seed, train_size=len(x_mnist))
    extra = {"purpose": "draw", "val_acc": val_acc, "epochs": epochs, "lr_schedule": "cosine",
             "not_digit_below": threshold, "not_digit_views": True, "max_stroke_crossings": max_crossings,
             "training_data": f"{len(x_mnist)} MNIST, {len(x_type)} typeset digits ({len(credits)} fonts), "
                              f"{len(x_nd)} synthetic non-digits (uniform target)",
             "augmentation": "shift 2 px, rotation 15 deg, scale 0.85-1.12, shear 0.15, thickness -0.8..2 "
                             "(3 in 4 images per epoch)"}
    save_model(out_path, net, config=RunConfig.from_dict(config), extra=extra)
    check = _load_drawn_check()
    if check is not None:
        say("held-out check (reported only, never used for training or choices): "
            + check.summary(net, threshold, max_crossings, use_views=True))
    say(f"draw model trained in {time.perf_counter() - t0:.0f} s")
    return val_acc

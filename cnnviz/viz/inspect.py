"""Look into one conv filter: what it responds to, and what happens to the network if you change it.

Pure NumPy on top of ``nn.network.Network`` (``forward`` / ``backward`` of its own layers): nothing here
imports Streamlit or Plotly, and nothing changes the ``params`` (or the forward caches) of a network passed
in: every function works on a ``copy()``, so a session's trained model can be inspected while it trains.

A filter is named by ``(li, f)``: ``li`` the index of a Conv2D in ``net.layers`` and ``f`` its output
channel, both from 0 here (the page shows "conv 1", "filter 1").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from cnnviz.nn.layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, Tanh
from cnnviz.nn.network import Network
from cnnviz.train.data import task_targets

__all__ = ["conv_layers", "activate", "is_dead", "RFGeometry", "rf_geometry", "receptive_field",
           "layer_outputs", "Patches", "top_patches", "class_means", "MaxInput", "maximize_input",
           "EDIT_MODES", "PRESETS", "preset_kernel", "edit_filter", "predictions", "accuracy", "feature_map",
           "weights_fingerprint", "filter_output_position", "describe_patch", "cut_patches",
           "is_first_layer_filter", "confidence", "filter_summary", "strip_averages",
           "apply_grid_edits", "strongest_image"]

_ELEMENTWISE = (ReLU, Sigmoid, Tanh)
_POOLS = (MaxPool2D, AvgPool2D)


def conv_layers(net: Network) -> list[int]:
    """Indices in ``net.layers`` of its Conv2D layers, in order (conv 1, conv 2, ...)."""
    return [i for i, layer in enumerate(net.layers) if isinstance(layer, Conv2D)]


def _check_filter(net: Network, li: int, f: int) -> Conv2D:
    if not 0 <= li < len(net.layers) or not isinstance(net.layers[li], Conv2D):
        raise ValueError(f"layer {li} is not a convolution layer; conv layers are at {conv_layers(net)}")
    conv = net.layers[li]
    if not 0 <= f < conv.out_channels:
        raise ValueError(f"filter {f} is out of range: this layer has {conv.out_channels} filters")
    return conv


def _prefix(net: Network, upto: int) -> Network:
    """A copy of layers 0..upto (inclusive): forward/backward on it never touch ``net``'s caches."""
    return Network(net.copy().layers[:upto + 1])


def weights_fingerprint(net: Network, upto: int | None = None) -> str:
    """A short hash of the weights of layers 0..upto (all by default): a cache key for computed views."""
    h = hashlib.blake2b(digest_size=12)
    for i, layer in enumerate(net.layers[: None if upto is None else upto + 1]):
        for key in sorted(layer.params):
            p = np.ascontiguousarray(layer.params[key])
            h.update(f"{i}.{key}{p.shape}{p.dtype}".encode())
            h.update(p.tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Receptive field
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RFGeometry:
    """Where output unit (r, c) of a layer looks on the input: rows ``start + r*jump .. + size - 1``
    (the same for columns). ``start`` may be negative (zero padding reaches outside the image)."""

    jump: int
    start: int
    size: int

    def box(self, r: int, c: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) on the input, inclusive, not clipped to the image."""
        top, left = self.start + r * self.jump, self.start + c * self.jump
        return top, left, top + self.size - 1, left + self.size - 1


def rf_geometry(net: Network, li: int) -> RFGeometry:
    """The receptive field of layer ``li``'s output units on the network input.

    Composed layer by layer from the input: a conv or pool with kernel k, stride s, padding p maps
    (jump, start, size) to (jump*s, start - p*jump, size + (k - 1)*jump); elementwise layers change nothing.
    """
    jump, start, size = 1, 0, 1
    for pos, layer in enumerate(net.layers[:li + 1]):
        if isinstance(layer, Conv2D):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
        elif isinstance(layer, _POOLS):
            k, s, p = layer.size, layer.stride, 0
        elif isinstance(layer, _ELEMENTWISE):
            continue
        else:
            raise ValueError(f"layer {pos} ({type(layer).__name__}) has no spatial receptive field")
        start -= p * jump
        size += (k - 1) * jump
        jump *= s
    return RFGeometry(jump, start, size)


def receptive_field(net: Network, li: int, r: int, c: int, shape=(28, 28)) -> np.ndarray:
    """Boolean mask (H, W) of the input pixels that can reach output unit (r, c) of layer ``li``."""
    top, left, bottom, right = rf_geometry(net, li).box(r, c)
    H, W = shape
    mask = np.zeros((H, W), dtype=bool)
    mask[max(top, 0):max(bottom + 1, 0), max(left, 0):max(right + 1, 0)] = True
    return mask


def filter_output_position(net: Network, li: int, shape=(1, 28, 28)) -> tuple[int, int, int, int]:
    """(H_out, W_out, r, c): layer ``li``'s output size for an input ``shape`` (C, H, W), its centre unit."""
    s = tuple(shape)
    for layer in net.layers[:li + 1]:
        s = layer.output_shape(s)
    _, Ho, Wo = s
    return Ho, Wo, Ho // 2, Wo // 2


# ----------------------------------------------------------------------------------------------------------
# What it responds to
# ----------------------------------------------------------------------------------------------------------
def layer_outputs(net: Network, li: int, x: np.ndarray, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(raw, activated): conv layer ``li``'s output (N, F, H_out, W_out) before and after its activation.

    x: (N, C, H, W). ``activated`` is the output of the elementwise layer right after the conv (what the next
    layer sees), or ``raw`` itself when none follows.
    """
    _check_filter(net, li, 0)
    has_act = li + 1 < len(net.layers) and isinstance(net.layers[li + 1], _ELEMENTWISE)
    sub = _prefix(net, li + 1 if has_act else li)
    raws, acts = [], []
    for s in range(0, len(x), chunk):
        sub.forward(x[s:s + chunk])
        raws.append(np.array(sub.outputs[li]))  # (n, F, H_out, W_out), a copy in C order
        acts.append(np.array(sub.outputs[-1]) if has_act else raws[-1])
    raw = np.concatenate(raws)  # (N, F, H_out, W_out)
    return raw, (np.concatenate(acts) if has_act else raw)


def activate(net: Network, li: int, raw: np.ndarray) -> np.ndarray:
    """Apply the elementwise activation that follows conv layer ``li`` (if any) to ``raw`` (any shape):
    e.g. one filter's raw maps (N, H_out, W_out) -> what the next layer sees. Uses a copy of that layer."""
    if li + 1 < len(net.layers) and isinstance(net.layers[li + 1], _ELEMENTWISE):
        return type(net.layers[li + 1])().forward(np.asarray(raw))
    return np.asarray(raw)


def is_dead(net: Network, li: int, raw_f: np.ndarray) -> bool:
    """True when a filter followed by ReLU never fires: its raw output ``raw_f`` (any shape) is <= 0
    everywhere, so the ReLU passes nothing on (and no gradient comes back to train it)."""
    follows_relu = li + 1 < len(net.layers) and isinstance(net.layers[li + 1], ReLU)
    return bool(follows_relu and np.max(raw_f) <= 0)


@dataclass
class Patches:
    """The k images where one filter responds most (or least), one position per image, best first.

    index (k,) image numbers; rows, cols (k,) the output unit; values (k,) the filter's raw output there;
    patches (k, S, S) the receptive field cut from the input (zeros outside the image); boxes (k, 4) the
    receptive field (top, left, bottom, right) on the input, inclusive, not clipped.
    """

    index: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    patches: np.ndarray
    boxes: np.ndarray


def cut_patches(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Square patches (k, S, S) cut from images (k, H, W) at boxes (k, 4), zero outside the image."""
    images = np.asarray(images, dtype=np.float32)
    k, H, W = images.shape
    if k == 0:
        return np.zeros((0, 1, 1), dtype=np.float32)
    S = int(boxes[0, 2] - boxes[0, 0] + 1)
    pad = max(0, int(-boxes[:, :2].min()), int(boxes[:, 2:].max()) - min(H, W) + 1)
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))  # (k, H + 2pad, W + 2pad)
    rr = boxes[:, 0, None] + pad + np.arange(S)  # (k, S)
    cc = boxes[:, 1, None] + pad + np.arange(S)  # (k, S)
    return padded[np.arange(k)[:, None, None], rr[:, :, None], cc[:, None, :]]  # (k, S, S)


def top_patches(raw_f: np.ndarray, images: np.ndarray, geometry: RFGeometry, k: int = 12,
                largest: bool = True) -> Patches:
    """The ``k`` images whose strongest (``largest``) or most negative response of one filter is most extreme.

    raw_f: (N, H_out, W_out) the filter's raw output on every image; images: (N, H, W) the inputs. Each image
    contributes its single most extreme position, so the gallery shows k different digits rather than one
    digit at k neighbouring positions. Ties go to the earlier image and position.
    """
    raw_f = np.asarray(raw_f)
    N, Ho, Wo = raw_f.shape
    flat = raw_f.reshape(N, Ho * Wo)  # (N, P)
    signed = flat if largest else -flat
    pos = signed.argmax(axis=1)  # (N,) first maximum per image
    best = signed[np.arange(N), pos]  # (N,)
    k = min(int(k), N)
    order = np.argsort(-best, kind="stable")[:k]  # (k,) best images first
    rows, cols = np.divmod(pos[order], Wo)
    boxes = np.array([geometry.box(int(r), int(c)) for r, c in zip(rows, cols, strict=True)],
                     dtype=np.int64).reshape(-1, 4)  # (k, 4)
    imgs = np.asarray(images)[order]
    return Patches(order, rows, cols, flat[order, pos[order]], cut_patches(imgs, boxes), boxes)


def class_means(act_f: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per class: the mean over its images of the filter's mean activation over the map.

    act_f: (N, H_out, W_out), labels: (N,) ints in [0, n_classes). Returns (means (n_classes,), counts
    (n_classes,)); a class without images gets NaN.
    """
    per_image = np.asarray(act_f, dtype=np.float64).reshape(len(act_f), -1).mean(axis=1)  # (N,)
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)[:n_classes]
    sums = np.bincount(labels, weights=per_image, minlength=n_classes)[:n_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means, counts


def describe_patch(mean_patch: np.ndarray, min_contrast: float = 0.25) -> str | None:
    """Where the ink is in an average patch (S, S) of [0, 1] pixels, in a few words, or None when no simple
    description fits (no half differs from its opposite by ``min_contrast``, nor is the patch nearly all
    ink or all background). E.g. "ink on the left and none on the right (a stroke's right edge)"."""
    m = np.asarray(mean_patch, dtype=np.float64)
    h = m.shape[0] // 2
    if h == 0:
        return None
    up, down, left, right = m[:h].mean(), m[-h:].mean(), m[:, :h].mean(), m[:, -h:].mean()
    options = [(up - down, "ink in the upper half and none in the lower half (a stroke's lower edge)"),
               (down - up, "ink in the lower half and none in the upper half (a stroke's upper edge)"),
               (left - right, "ink on the left and none on the right (a stroke's right edge)"),
               (right - left, "ink on the right and none on the left (a stroke's left edge)")]
    contrast, words = max(options, key=lambda o: o[0])
    if contrast >= min_contrast:
        return words
    if m.mean() >= 0.6:
        return "ink all over (inside thick strokes)"
    if m.mean() <= 0.08:
        return "almost no ink (background)"
    return None


# ----------------------------------------------------------------------------------------------------------
# An input that maximises it
# ----------------------------------------------------------------------------------------------------------
@dataclass
class MaxInput:
    """Result of ``maximize_input``: ``image`` (H, W) in [0, 1], ``values`` (steps,) the filter's raw output
    at unit (row, col) after each step, and that unit's receptive field ``box`` (top, left, bottom, right)."""

    image: np.ndarray
    values: np.ndarray
    row: int
    col: int
    box: tuple[int, int, int, int]


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of x (..., H, W), radius 2 sigma, edges zero-padded."""
    radius = max(1, int(round(2 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    g = np.exp(-t * t / (2 * sigma * sigma))
    g /= g.sum()
    H, W = x.shape[-2:]
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(radius, radius), (radius, radius)])
    rows = sum(g[i] * xp[..., i:i + H, :] for i in range(len(g)))  # (..., H, W + 2r)
    return sum(g[i] * rows[..., :, i:i + W] for i in range(len(g))).astype(x.dtype)  # (..., H, W)


def maximize_input(net: Network, li: int, f: int, steps: int = 300, lr: float = 0.05, l2: float = 0.02,
                   blur_sigma: float = 0.6, blur_every: int = 2, jitter: int = 1, rng=None,
                   callback=None, shape=(1, 28, 28), settle: float = 0.0) -> MaxInput:
    """Gradient ascent on the input to raise filter ``f``'s raw output at the centre unit of layer ``li``.

    Uses the network's own ``forward`` / ``backward(need_dx=True)`` on a copy of layers 0..li. Each step:
    x += lr * g / rms(g) (g = d output / d x, taken on x shifted by up to ``jitter`` pixels, so the pattern
    does not rely on one exact pixel grid), then x -= lr * l2 * x (weight decay towards black), clipped to
    [0, 1] (an image the network could be shown); every ``blur_every`` steps a Gaussian blur of
    ``blur_sigma`` pixels smooths out high-frequency noise. Jitter and blur act in all but the last
    ``settle`` fraction of the steps; those are plain ascent, which raises the output further but turns
    the image into pixel noise within a few dozen steps (so the default is 0: smooth strokes a student can
    read, reaching about what the best validation patches reach).
    ``callback(step, value, image)`` after each step may stream progress. Returns a ``MaxInput``.
    """
    _check_filter(net, li, f)
    rng = np.random.default_rng(0) if rng is None else np.random.default_rng(rng)
    sub = _prefix(net, li)
    Ho, Wo, r, c = filter_output_position(net, li, shape)
    C, H, W = shape
    x = rng.uniform(0.0, 0.1, size=(1, C, H, W)).astype(np.float32)  # (1, C, H, W) a faint random start
    dout = np.zeros((1, net.layers[li].out_channels, Ho, Wo), dtype=np.float32)  # (1, F, H_out, W_out)
    dout[0, f, r, c] = 1.0
    values = np.empty(steps, dtype=np.float32)
    settle = int(steps * (1.0 - settle))  # the last steps without jitter or blur sharpen the found pattern
    for step in range(steps):
        dy, dx_ = (rng.integers(-jitter, jitter + 1, size=2) if jitter and step < settle else (0, 0))
        xs = np.roll(x, (int(dy), int(dx_)), axis=(2, 3))  # (1, C, H, W) jittered
        sub.forward(xs)
        g = np.roll(sub.backward(dout, need_dx=True), (-int(dy), -int(dx_)), axis=(2, 3))  # (1, C, H, W)
        x += lr * g / (np.sqrt(np.mean(g * g)) + 1e-8)
        x -= lr * l2 * x
        if blur_every and blur_sigma > 0 and (step + 1) % blur_every == 0 and step < settle:
            x = _blur(x, blur_sigma)
        np.clip(x, 0.0, 1.0, out=x)
        values[step] = sub.forward(x)[0, f, r, c]
        if callback is not None:
            callback(step, float(values[step]), x[0, 0])
    box = rf_geometry(net, li).box(r, c)
    return MaxInput(x[0, 0].copy(), values, r, c, box)


# ----------------------------------------------------------------------------------------------------------
# Change it and see
# ----------------------------------------------------------------------------------------------------------
EDIT_MODES = ("learned", "knock out", "scale", "paint")
PRESETS = ("vertical edge", "horizontal edge", "blur", "identity")


def preset_kernel(name: str, size: int = 5) -> np.ndarray:
    """A (size, size) float32 kernel of unit L2 norm: "vertical edge" (dark left, bright right),
    "horizontal edge" (dark top, bright bottom), "blur" (all equal) or "identity" (the centre pixel)."""
    ramp = np.sign(np.arange(size) - (size - 1) / 2).astype(np.float32)  # (size,) -1 .. 0 .. +1
    if name == "vertical edge":
        k = np.tile(ramp, (size, 1))  # (size, size): columns left -, right +
    elif name == "horizontal edge":
        k = np.tile(ramp[:, None], (1, size))  # (size, size): rows top -, bottom +
    elif name == "blur":
        k = np.ones((size, size), dtype=np.float32)
    elif name == "identity":
        k = np.zeros((size, size), dtype=np.float32)
        k[size // 2, size // 2] = 1.0
    else:
        raise ValueError(f"unknown preset {name!r}; expected one of {PRESETS}")
    return (k / np.linalg.norm(k)).astype(np.float32)


def edit_filter(net: Network, li: int, f: int, mode: str, factor: float = 1.0,
                kernel: np.ndarray | None = None, channel: int | None = None) -> Network:
    """A copy of ``net`` with filter ``f`` of conv layer ``li`` changed; ``net`` itself is never touched.

    mode "learned": unchanged copy; "knock out": its weights and bias set to 0 (its feature map is all 0);
    "scale": weights and bias times ``factor`` (its raw output is exactly ``factor`` times the learned one);
    "paint": weights replaced by ``kernel`` — (KH, KW) for input channel ``channel`` (every channel when
    None), or (C, KH, KW) — bias kept.
    """
    _check_filter(net, li, f)
    if mode not in EDIT_MODES:
        raise ValueError(f"unknown edit {mode!r}; expected one of {EDIT_MODES}")
    out = net.copy()
    conv = out.layers[li]
    W, b = conv.params["W"], conv.params["b"]  # (F, C, KH, KW), (F,): fresh copies owned by ``out``
    if mode == "knock out":
        W[f] = 0.0
        b[f] = 0.0
    elif mode == "scale":
        W[f] *= np.float32(factor)
        b[f] *= np.float32(factor)
    elif mode == "paint":
        if kernel is None:
            raise ValueError("paint needs a kernel")
        k = np.asarray(kernel, dtype=W.dtype)
        if not np.all(np.isfinite(k)):
            raise ValueError("the painted weights must be finite numbers")
        if k.ndim == 2 and channel is not None:
            if not 0 <= channel < W.shape[1]:
                raise ValueError(f"channel {channel} is out of range: this layer has {W.shape[1]} inputs")
            target = W[f, channel]
        else:
            target = W[f]
        if k.shape != target.shape[-k.ndim:] or k.ndim not in (2, 3):
            raise ValueError(f"painted kernel has shape {k.shape}, expected {target.shape}")
        target[...] = k
    return out


def predictions(net: Network, x: np.ndarray, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(classes (N,), probabilities (N, K)) for x (N, 1, H, W) on a copy of ``net`` (K = 1: P(class 1))."""
    work = net.copy()
    probs = np.concatenate([work.predict_proba(x[s:s + chunk]) for s in range(0, len(x), chunk)])  # (N, K)
    classes = (probs[:, 0] > 0.5).astype(np.int64) if probs.shape[1] == 1 else probs.argmax(axis=1)
    return classes, probs


def accuracy(net: Network, x: np.ndarray, labels: np.ndarray, task: str = "digits") -> float:
    """Fraction of x (N, 1, H, W) classified right; labels are digits (N,), mapped to the task's classes."""
    classes, _ = predictions(net, x)
    return float(np.mean(classes == task_targets(labels, task)))


def feature_map(net: Network, li: int, f: int, image: np.ndarray) -> np.ndarray:
    """Filter ``f``'s activated map (H_out, W_out) of conv layer ``li`` for one image (H, W)."""
    _check_filter(net, li, f)
    x = np.asarray(image, dtype=np.float32).reshape(1, 1, *np.shape(image)[-2:])  # (1, 1, H, W)
    _, act = layer_outputs(net, li, x)
    return act[0, f]


def is_first_layer_filter(net: Network, li: int) -> bool:
    """True for a conv layer that sees the input pixels directly (its filter is its own best input)."""
    return not any(isinstance(layer, (Conv2D, *_POOLS, Flatten, Dense)) for layer in net.layers[:li])


# ----------------------------------------------------------------------------------------------------------
# What the Inspect page shows, as data and words (the page only lays them out)
# ----------------------------------------------------------------------------------------------------------
def confidence(p: np.ndarray, c: int) -> float:
    """Probability of class ``c`` from probabilities (1, K) (K = 1: the sigmoid output is P(class 1))."""
    if p.shape[1] == 1:
        return float(p[0, 0] if c == 1 else 1.0 - p[0, 0])
    return float(p[0, c])


def filter_summary(name: str, dead: bool, means: np.ndarray, first: bool, top: Patches, low: Patches) -> str:
    """One sentence (Markdown) answering "what does it detect?" from the numbers on the page."""
    if dead:
        return (f"**{name} never fires** on the validation images: its output is negative everywhere, so the "
                "ReLU after it outputs 0 for every digit (and no gradient reaches it to revive it). It is a "
                "*dead* filter; the patches below are the places where it came closest.")
    order = np.argsort(-np.nan_to_num(means, nan=-np.inf), kind="stable")
    hi, lo = order[:2], order[-1]
    best = "its weights are the pattern it likes most" if first else "the input it likes most is on the right"
    likes = describe_patch(top.patches.mean(axis=0))  # (S, S) average of the top patches
    hates = describe_patch(low.patches.mean(axis=0))
    words = f"patches with **{likes}**" if likes else "the patches just below"
    against = f"; patches with {hates} drive it negative" if hates and hates != likes else ""
    return (f"**{name}** responds most to {words}{against}. On average it fires most for **{hi[0]}s and "
            f"{hi[1]}s** and least for **{lo}s** (bars); {best}.")


def strip_averages(net: Network, li: int, raw: np.ndarray, images: np.ndarray,
                   k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Every filter of conv layer ``li`` at a glance: the average of its ``k`` top patches (F, S, S) and
    whether it is dead (F,), from its raw outputs (N, F, H_out, W_out) on images (N, H, W)."""
    geo = rf_geometry(net, li)
    F = raw.shape[1]
    avg = np.stack([top_patches(raw[:, j], images, geo, k=k).patches.mean(axis=0) for j in range(F)])
    return avg, np.array([is_dead(net, li, raw[:, j]) for j in range(F)])  # (F, S, S), (F,)


def apply_grid_edits(base: np.ndarray, edited_rows: dict) -> np.ndarray:
    """A copy of kernel ``base`` (KH, KW) with a data editor's edited cells ({row: {"1".."KW": value}},
    columns named from 1) written in; cells that are not finite numbers are ignored."""
    k = np.array(base, dtype=np.float32)
    for row, cells in edited_rows.items():
        for col, value in cells.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if np.isfinite(v):
                k[int(row), int(col) - 1] = v
    return k


def strongest_image(raw_f: np.ndarray) -> int:
    """The index of the image whose map (N, H_out, W_out) holds the filter's largest output."""
    return int(raw_f.reshape(len(raw_f), -1).max(axis=1).argmax())

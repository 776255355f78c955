"""The Draw page's decision for one drawing: a digit, "not sure: 3 or 8?", or "this is not a digit".

``read_digit`` runs the draw model on a prepared (28, 28) digit and turns its ten probabilities into a
verdict (contract, shared/DESIGN.md §2):

* **not a digit** when the top probability is below the model's threshold. The shipped draw model was trained
  with *outlier exposure*: besides digits it saw synthetic non-digits (dots, lines, scribbles, blobs,
  letters) with the target "every digit equally likely", so on things that are not digits its probabilities
  spread out and the top one stays low. The threshold is calibrated at training time on the MNIST
  validation digits (it flags 1% of them) and stored in the model file (``not_digit_below``).
* For the shipped model the top probability of that test is taken from the *average* of the network's
  answers on seven views of the drawing (as drawn, turned 10 degrees either way, 15% smaller and larger,
  moved 1.5 px two ways; ``views_top``): a digit stays the same digit under such small changes, a
  non-digit's answer wanders, so the average's top probability drops further. Calibrated the same way
  (1% of MNIST validation), flagged by the file's ``not_digit_views``.
* **not a digit** also when the drawing crosses too many strokes (``stroke_crossings``): a digit is a few
  strokes, so a row or column of pixels through it meets at most three or four of them, while spirals,
  scribbles, hatching and grids meet many in several rows and columns. This second signal does not depend
  on the network; its limit is calibrated at training time on the MNIST training and validation digits
  (it flags at most 0.2% of them) and stored in the model file (``max_stroke_crossings``).
* **unsure** when the runner-up has at least ``UNSURE_RATIO`` of the top probability: the candidates are the
  two or three digits within that ratio, best first.
* **digit** otherwise.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DRAW_MODEL_PATH = Path(__file__).resolve().parents[2] / "assets" / "models" / "draw.npz"
DEFAULT_NOT_DIGIT_BELOW = 0.5  # for a network whose file carries no calibrated threshold
UNSURE_RATIO = 0.5  # the runner-up within this share of the top probability makes the answer "unsure"
MAX_CANDIDATES = 3
VERDICTS = ("digit", "unsure", "not a digit")
INK_LEVEL = 0.35  # a pixel of the prepared (28, 28) digit counts as stroke above this
CROSSING_LINES = 4  # stroke_crossings averages the counts of this many busiest rows (and columns)
# views_top's small changes of a drawing: (rotation in degrees, scale, shift (dy, dx) in pixels)
VIEWS = ((0.0, 1.0, (0.0, 0.0)), (10.0, 1.0, (0.0, 0.0)), (-10.0, 1.0, (0.0, 0.0)), (0.0, 0.85, (0.0, 0.0)),
         (0.0, 1.15, (0.0, 0.0)), (0.0, 1.0, (1.5, 1.5)), (0.0, 1.0, (-1.5, -1.5)))


def views(images: np.ndarray) -> np.ndarray:
    """The VIEWS of each prepared digit: (N, 28, 28) in [0, 1] -> (N, len(VIEWS), 28, 28), each view's
    brightest pixel scaled to 1 (as the canvas conversion does)."""
    from cnnviz.train.augment import _affine_sample  # the augmentation's bilinear resampler

    x = np.asarray(images, dtype=np.float32)
    n, v = len(x), len(VIEWS)
    inv = np.empty((v, 2, 2), dtype=np.float32)
    off = np.empty((v, 2), dtype=np.float32)
    for i, (deg, scale, shift) in enumerate(VIEWS):
        a = np.deg2rad(deg)
        fwd = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale  # (2, 2)
        inv[i] = np.linalg.inv(fwd)
        off[i] = -(inv[i] @ np.asarray(shift, dtype=np.float32))
    tiled = np.repeat(x, v, axis=0)  # (N * V, 28, 28): image 0's views first
    out = _affine_sample(tiled, np.tile(inv, (n, 1, 1)), np.tile(off, (n, 1)), centre=14.0)  # (N * V, 28, 28)
    out = out / np.maximum(out.max(axis=(1, 2), keepdims=True), 1e-6)
    return out.reshape(n, v, 28, 28).astype(np.float32)  # (N, V, 28, 28)


def views_top(net, images: np.ndarray) -> np.ndarray:
    """The top probability of the network's average answer over the VIEWS of each digit (N, 28, 28): (N,)."""
    vw = views(images)  # (N, V, 28, 28)
    n, v = vw.shape[:2]
    p = np.asarray(net.predict_proba(vw.reshape(n * v, 1, 28, 28)), dtype=np.float64)  # (N * V, K)
    return p.reshape(n, v, -1).mean(axis=1).max(axis=1)  # (N,)


@dataclass(frozen=True)
class DigitReading:
    """What the Draw page says about one drawing.

    verdict: "digit", "unsure" or "not a digit"; digit: the digit (int) when the verdict is "digit", else
    None; proba: (10,) float64, the ten digits' probabilities (sum 1); candidates: the likely digits, best
    first (one for "digit", two or three for "unsure", the closest shapes for "not a digit").
    """

    verdict: str
    digit: int | None
    proba: np.ndarray
    candidates: tuple[int, ...]

    def message(self) -> str:
        """The sentence for people: "3", "Not sure: 3 or 8?", "This does not look like a digit"."""
        if self.verdict == "digit":
            return str(self.digit)
        if self.verdict == "unsure":
            names = [str(c) for c in self.candidates]
            return "Not sure: " + (", ".join(names[:-1]) + " or " + names[-1]) + "?"
        return "This does not look like a digit"


def stroke_crossings(images: np.ndarray) -> np.ndarray:
    """How many strokes the busiest lines through each prepared digit cross.

    images: (..., 28, 28) in [0, 1]. For every row and every column, the number of separate runs of stroke
    pixels (above ``INK_LEVEL``); the result is the mean over the ``CROSSING_LINES`` busiest rows plus the
    mean over the busiest columns: (...,) float64. An 8 gives about 2 + 3, a spiral or a scribble 8 or more.
    """
    x = np.asarray(images, dtype=np.float32)
    ink = (x > INK_LEVEL).astype(np.int8)  # (..., 28, 28)
    starts_r = (np.diff(ink, axis=-1) == 1).sum(-1) + ink[..., :, 0]  # (..., 28): runs in each row
    starts_c = (np.diff(ink, axis=-2) == 1).sum(-2) + ink[..., 0, :]  # (..., 28): runs in each column
    k = CROSSING_LINES
    busiest = np.sort(starts_r, axis=-1)[..., -k:].mean(-1) + np.sort(starts_c, axis=-1)[..., -k:].mean(-1)
    return busiest.astype(np.float64)  # (...,)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float):
    from cnnviz.train.model_file import load_model_full

    net, _config, extra = load_model_full(path)
    threshold = float((extra or {}).get("not_digit_below", DEFAULT_NOT_DIGIT_BELOW))
    max_crossings = (extra or {}).get("max_stroke_crossings")
    use_views = bool((extra or {}).get("not_digit_views", False))
    return net, threshold, (float(max_crossings) if max_crossings is not None else None), use_views


def load_draw_model(path: str | os.PathLike | None = None):
    """(a private copy of the draw model, its not-a-digit threshold) from ``path`` (default: the shipped
    ``assets/models/draw.npz``). The file is read once per change; every call returns a fresh copy, so
    callers in different threads never share a network's buffers."""
    p = Path(path) if path is not None else DRAW_MODEL_PATH
    net, threshold, _, _ = _load(str(p), p.stat().st_mtime)
    return net.copy(), threshold


def draw_model_max_crossings(path: str | os.PathLike | None = None) -> float | None:
    """The draw model's calibrated stroke-crossing limit (``max_stroke_crossings`` in its file), or None for
    a file without one (then only the probability threshold decides "not a digit")."""
    p = Path(path) if path is not None else DRAW_MODEL_PATH
    return _load(str(p), p.stat().st_mtime)[2]


def draw_model_uses_views(path: str | os.PathLike | None = None) -> bool:
    """Whether the draw model's threshold applies to the average over VIEWS (``not_digit_views``)."""
    p = Path(path) if path is not None else DRAW_MODEL_PATH
    return _load(str(p), p.stat().st_mtime)[3]


def verdict_from_proba(proba: np.ndarray, not_digit_below: float = DEFAULT_NOT_DIGIT_BELOW,
                       unsure_ratio: float = UNSURE_RATIO, too_many_strokes: bool = False,
                       score: float | None = None) -> DigitReading:
    """The reading for ten probabilities (10,) (see the module docstring for the rules); too_many_strokes:
    the drawing's stroke crossings are above the model's limit (then it is "not a digit" whatever the
    probabilities); score: the top probability compared with not_digit_below (default: the largest of
    ``proba``; for the shipped model, ``views_top``)."""
    p = np.asarray(proba, dtype=np.float64).reshape(-1)
    if p.shape != (10,) or not np.all(np.isfinite(p)):
        raise ValueError(f"expected ten finite digit probabilities, got shape {np.shape(proba)}")
    p = np.clip(p, 0.0, None)
    p = p / p.sum() if p.sum() > 0 else np.full(10, 0.1)
    order = np.argsort(-p, kind="stable")
    top = float(p[order[0]])
    close = tuple(int(k) for k in order[:MAX_CANDIDATES] if p[k] >= unsure_ratio * top)
    if (top if score is None else float(score)) < not_digit_below or too_many_strokes:
        return DigitReading("not a digit", None, p, close)
    if len(close) > 1:
        return DigitReading("unsure", None, p, close)
    return DigitReading("digit", int(order[0]), p, (int(order[0]),))


def read_digit(image: np.ndarray, net=None, not_digit_below: float | None = None,
               max_crossings: float | None = None, use_views: bool | None = None) -> DigitReading:
    """The Draw page's reading of one prepared digit.

    image: (28, 28) float32 in [0, 1], the output of ``canvas_to_mnist`` / ``image_file_to_mnist``.
    net: a 10-class network (default: a copy of the shipped draw model). Its buffers are overwritten by the
    forward pass, so pass a network no other thread is using. not_digit_below: the top probability under
    which the answer is "not a digit" (default: the shipped model's calibrated threshold, or
    ``DEFAULT_NOT_DIGIT_BELOW`` for another network). max_crossings: the ``stroke_crossings`` above which the
    answer is "not a digit" (default: the shipped model's calibrated limit when ``net`` is the shipped model,
    else no limit). use_views: compare the top probability of the average over VIEWS with not_digit_below
    (default: as the shipped model's file says when ``net`` is the shipped model, else no).
    """
    x = np.asarray(image, dtype=np.float32)
    if x.shape != (28, 28):
        raise ValueError(f"expected a (28, 28) image, got shape {x.shape}")
    if net is None:
        net, shipped = load_draw_model()
        if not_digit_below is None:
            not_digit_below = shipped
        if max_crossings is None:
            max_crossings = draw_model_max_crossings()
        if use_views is None:
            use_views = draw_model_uses_views()
    if not_digit_below is None:
        not_digit_below = DEFAULT_NOT_DIGIT_BELOW
    proba = np.asarray(net.predict_proba(x[None, None]), dtype=np.float64)[0]  # (1, 1, 28, 28) -> (10,)
    if proba.shape != (10,):
        raise ValueError(f"read_digit needs a network with ten digit outputs, this one has {proba.size}")
    crowded = max_crossings is not None and float(stroke_crossings(x)) > max_crossings
    score = float(views_top(net, x[None])[0]) if use_views else None
    return verdict_from_proba(proba, not_digit_below, too_many_strokes=crowded, score=score)

"""The Draw page's decision for one drawing: a digit, "not sure: 3 or 8?", or "this is not a digit".

``read_digit`` runs the draw model on a prepared (28, 28) digit and turns its ten probabilities into a
verdict (contract, shared/DESIGN.md §2):

* **not a digit** when the top probability is below the model's threshold. The shipped draw model was trained
  with *outlier exposure*: besides digits it saw synthetic non-digits (dots, lines, scribbles, blobs,
  letters) with the target "every digit equally likely", so on things that are not digits its probabilities
  spread out and the top one stays low. The threshold is calibrated at training time on the MNIST
  validation digits (it flags 1% of them) and stored in the model file (``not_digit_below``).
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


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float):
    from cnnviz.train.model_file import load_model_full

    net, _config, extra = load_model_full(path)
    threshold = float((extra or {}).get("not_digit_below", DEFAULT_NOT_DIGIT_BELOW))
    return net, threshold


def load_draw_model(path: str | os.PathLike | None = None):
    """(a private copy of the draw model, its not-a-digit threshold) from ``path`` (default: the shipped
    ``assets/models/draw.npz``). The file is read once per change; every call returns a fresh copy, so
    callers in different threads never share a network's buffers."""
    p = Path(path) if path is not None else DRAW_MODEL_PATH
    net, threshold = _load(str(p), p.stat().st_mtime)
    return net.copy(), threshold


def verdict_from_proba(proba: np.ndarray, not_digit_below: float = DEFAULT_NOT_DIGIT_BELOW,
                       unsure_ratio: float = UNSURE_RATIO) -> DigitReading:
    """The reading for ten probabilities (10,) (see the module docstring for the rules)."""
    p = np.asarray(proba, dtype=np.float64).reshape(-1)
    if p.shape != (10,) or not np.all(np.isfinite(p)):
        raise ValueError(f"expected ten finite digit probabilities, got shape {np.shape(proba)}")
    p = np.clip(p, 0.0, None)
    p = p / p.sum() if p.sum() > 0 else np.full(10, 0.1)
    order = np.argsort(-p, kind="stable")
    top = float(p[order[0]])
    close = tuple(int(k) for k in order[:MAX_CANDIDATES] if p[k] >= unsure_ratio * top)
    if top < not_digit_below:
        return DigitReading("not a digit", None, p, close)
    if len(close) > 1:
        return DigitReading("unsure", None, p, close)
    return DigitReading("digit", int(order[0]), p, (int(order[0]),))


def read_digit(image: np.ndarray, net=None, not_digit_below: float | None = None) -> DigitReading:
    """The Draw page's reading of one prepared digit.

    image: (28, 28) float32 in [0, 1], the output of ``canvas_to_mnist`` / ``image_file_to_mnist``.
    net: a 10-class network (default: a copy of the shipped draw model). Its buffers are overwritten by the
    forward pass, so pass a network no other thread is using. not_digit_below: the top probability under
    which the answer is "not a digit" (default: the shipped model's calibrated threshold, or
    ``DEFAULT_NOT_DIGIT_BELOW`` for another network).
    """
    x = np.asarray(image, dtype=np.float32)
    if x.shape != (28, 28):
        raise ValueError(f"expected a (28, 28) image, got shape {x.shape}")
    if net is None:
        net, shipped = load_draw_model()
        if not_digit_below is None:
            not_digit_below = shipped
    if not_digit_below is None:
        not_digit_below = DEFAULT_NOT_DIGIT_BELOW
    proba = np.asarray(net.predict_proba(x[None, None]), dtype=np.float64)[0]  # (1, 1, 28, 28) -> (10,)
    if proba.shape != (10,):
        raise ValueError(f"read_digit needs a network with ten digit outputs, this one has {proba.size}")
    return verdict_from_proba(proba, not_digit_below)

"""Losses: ``forward(pred, target) -> float`` (mean over the batch) and ``backward() -> dpred``.

MSE is the tutorial's E = (y - O)^2 / 2, summed over outputs and averaged over the batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Loss", "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "get_loss", "LOSSES", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, K), stable (shifted by the row maximum)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _check_pred(pred: np.ndarray, name: str, what: str) -> None:
    """pred must be a non-empty (N, K) batch."""
    if pred.ndim != 2:
        raise ValueError(f"{name} expects {what} (N, K), got shape {pred.shape}")
    if pred.shape[0] == 0:
        raise ValueError(f"{name}: empty batch (N = 0), the mean over the batch is undefined")


def _as_2d_target(pred: np.ndarray, target) -> np.ndarray:
    """Float targets shaped like pred (N, K); a (N,) target is accepted for K = 1."""
    target = np.asarray(target)
    if target.shape != pred.shape:
        if target.size != pred.size:
            raise ValueError(f"target shape {target.shape} does not match prediction shape {pred.shape}")
        target = target.reshape(pred.shape)
    return target.astype(pred.dtype, copy=False)


class Loss:
    """Base class: ``forward`` stores what ``backward`` needs."""

    name = ""

    def forward(self, pred: np.ndarray, target) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    __call__ = forward


class MSE(Loss):
    """E = mean_n sum_k (target - pred)^2 / 2 for pred (N, K) and float target (N, K).

    dE/dpred = (pred - target) / N.
    """

    name = "mse"

    def __init__(self):
        self._diff = None

    def forward(self, pred: np.ndarray, target) -> float:
        _check_pred(pred, "MSE", "predictions")
        diff = pred - _as_2d_target(pred, target)  # (N, K)
        self._diff = diff
        return float(0.5 * np.vdot(diff, diff) / pred.shape[0])

    def backward(self) -> np.ndarray:
        if self._diff is None:
            raise RuntimeError("MSE.backward called before forward")
        return self._diff * (1.0 / self._diff.shape[0])


class BinaryCrossEntropy(Loss):
    """-mean_n sum_k [t log p + (1 - t) log(1 - p)] on probabilities p (N, K) (after a sigmoid).

    p is clipped to [eps, 1 - eps] so that a saturated sigmoid gives a large finite loss, not inf.
    """

    name = "bce"

    def __init__(self, eps: float = 1e-7):
        self.eps = eps
        self._cache = None

    def forward(self, pred: np.ndarray, target) -> float:
        _check_pred(pred, "BinaryCrossEntropy", "probabilities")
        t = _as_2d_target(pred, target)
        p = np.clip(pred, self.eps, 1.0 - self.eps)
        self._cache = (p, t)
        ll = t * np.log(p) + (1.0 - t) * np.log1p(-p)
        return float(-ll.sum(dtype=np.float64) / pred.shape[0])

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("BinaryCrossEntropy.backward called before forward")
        p, t = self._cache
        return (p - t) / (p * (1.0 - p) * p.shape[0])


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(logits) (N, K) with integer labels (N,), mean over the batch.

    Computed with log-sum-exp (stable for any logits); dE/dlogits = (softmax - onehot) / N.
    """

    name = "softmax_ce"

    def __init__(self):
        self._cache = None

    def forward(self, logits: np.ndarray, labels) -> float:
        _check_pred(logits, "SoftmaxCrossEntropy", "logits")
        labels = np.asarray(labels)
        if labels.shape != (logits.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"SoftmaxCrossEntropy expects integer labels ({logits.shape[0]},), "
                             f"got {labels.dtype} {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            raise ValueError(f"labels must lie in 0..{logits.shape[1] - 1}")
        shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K)
        expz = np.exp(shifted)
        sumexp = expz.sum(axis=1)  # (N,)
        rows = np.arange(logits.shape[0])
        loss = np.log(sumexp) - shifted[rows, labels]  # (N,)
        self._cache = (expz / sumexp[:, None], labels)
        return float(loss.mean(dtype=np.float64))

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        proba, labels = self._cache
        d = proba.copy()
        d[np.arange(d.shape[0]), labels] -= 1.0
        d *= 1.0 / d.shape[0]
        return d


LOSSES: dict[str, type[Loss]] = {"mse": MSE, "bce": BinaryCrossEntropy, "softmax_ce": SoftmaxCrossEntropy}


def get_loss(name: str) -> Loss:
    """A new loss object for "mse", "bce" or "softmax_ce"."""
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None

"""Optimisers: ``step(net)`` updates every layer's ``params`` in place from its ``grads``."""

from __future__ import annotations

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "make_optimizer", "OPTIMIZERS"]


def _named(net):
    """(name, param, grad) for every parameter of a Network (anything with ``.layers``)."""
    for i, layer in enumerate(net.layers):
        for key, p in layer.params.items():
            yield f"{i}.{key}", p, layer.grads[key]


class Optimizer:
    """Base class; per-parameter state is keyed by the parameter's name ("0.W", ...)."""

    def __init__(self, lr: float):
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0

    def reset(self) -> None:
        """Forget momentum/moment estimates (e.g. after the model was rebuilt)."""
        self.state.clear()
        self.t = 0

    def _slot(self, name: str, p: np.ndarray, key: str) -> np.ndarray:
        st = self.state.setdefault(name, {})
        buf = st.get(key)
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
            buf = st[key] = np.zeros_like(p)
        return buf

    def step(self, net) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """p -= lr * v with v = momentum * v + g (PyTorch's form; v = g when momentum is 0)."""

    def __init__(self, lr: float, momentum: float = 0.0):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def step(self, net) -> None:
        self.t += 1
        for name, p, g in _named(net):
            if self.momentum:
                v = self._slot(name, p, "v")
                v *= self.momentum
                v += g
                g = v
            p -= (self.lr * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam with bias correction: p -= lr * m_hat / (sqrt(v_hat) + eps)."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        for nm, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{nm} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def step(self, net) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1 = 1.0 - b1 ** self.t
        c2 = 1.0 - b2 ** self.t
        for name, p, g in _named(net):
            m = self._slot(name, p, "m")
            v = self._slot(name, p, "v")
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            denom = np.sqrt(v * (1.0 / c2))
            denom += self.eps
            p -= ((self.lr / c1) * m / denom).astype(p.dtype, copy=False)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float, **kw) -> Optimizer:
    """``SGD`` for "sgd" (kw: momentum), ``Adam`` for "adam" (kw: beta1, beta2, eps)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}") from None
    return cls(lr, **kw)

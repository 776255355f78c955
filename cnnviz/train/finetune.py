"""Fine-tune a trained 10-digit network on a few of the user's own digits ("teach it" on the Draw page).

A handful of user images in a 4,000-image training set would be seen once per epoch and barely move a trained
network. Here every step trains on all the user's images together with a fresh random sample of the base
training set, so the network learns the new examples quickly while the MNIST sample keeps it from
forgetting everything else.
"""

from __future__ import annotations

import numpy as np

from cnnviz.nn.losses import get_loss
from cnnviz.nn.optim import make_optimizer


def fine_tune(net, x_user: np.ndarray, y_user: np.ndarray, x_base: np.ndarray, y_base: np.ndarray,
              steps: int, lr: float = 1e-3, base_per_step: int = 32, seed: int = 0) -> list[float]:
    """Train ``net`` (softmax outputs over 10 digits) in place for ``steps`` Adam steps; returns each loss.

    x_user (n, 1, 28, 28) float32 in [0, 1] with digit labels y_user (n,); x_base (N, 1, 28, 28) and y_base
    (N,) the base training set (read only). Each step's batch: every user image (at most 64) plus
    ``base_per_step`` random base images. Raises ValueError for empty or mismatched inputs.
    """
    xu = np.asarray(x_user, dtype=np.float32)
    yu = np.asarray(y_user, dtype=np.int64)
    if xu.ndim != 4 or xu.shape[1:] != (1, 28, 28) or len(xu) == 0 or yu.shape != (len(xu),):
        raise ValueError(f"user images must be (n, 1, 28, 28) with n labels, got {xu.shape} and {yu.shape}")
    xu, yu = xu[-64:], yu[-64:]  # the most recent ones
    rng = np.random.default_rng(seed)
    opt = make_optimizer("adam", lr)
    loss_fn = get_loss("softmax_ce")
    losses = []
    for _ in range(int(steps)):
        idx = rng.choice(len(x_base), size=min(base_per_step, len(x_base)), replace=False)
        x = np.concatenate([xu, x_base[idx]])  # (n + b, 1, 28, 28)
        y = np.concatenate([yu, np.asarray(y_base[idx], dtype=np.int64)])  # (n + b,)
        out = net.forward(x)  # (n + b, 10)
        loss = float(loss_fn.forward(out, y))
        if not np.isfinite(loss):
            raise ValueError("the loss became NaN/inf; the model was not changed further")
        net.backward(loss_fn.backward())
        opt.step(net)
        losses.append(loss)
    return losses

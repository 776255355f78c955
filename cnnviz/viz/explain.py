"""Why did the network say that? Convolution step-through, saliency and occlusion maps.

Pure NumPy on top of ``nn.network.Network`` (``forward``, ``backward``, ``predict_proba``): nothing here
imports Streamlit or Plotly, and nothing changes a network's ``params`` (``backward`` only fills ``grads``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnviz.nn.head import Head


def conv_step_through(image: np.ndarray, kernel: np.ndarray, stride: int = 1) -> list[dict]:
    """Every position of a 2-D cross-correlation, in reading order, for a step-by-step animation.

    image: (H, W), kernel: (KH, KW), no padding. Returns one dict per output position with ``row``, ``col``
    (output indices), ``patch`` (KH, KW) (the window under the kernel), ``product`` (KH, KW) (patch * kernel)
    and ``value`` (its sum, the output at (row, col)). The tutorial's image [[1,7,2],[11,1,23],[2,2,2]] with
    kernel [[1,1],[0,1]] gives values 9, 32, 14, 26.
    """
    image = np.asarray(image)
    kernel = np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"image and kernel must be 2-D, got shapes {image.shape} and {kernel.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    KH, KW = kernel.shape
    H, W = image.shape
    if KH > H or KW > W:
        raise ValueError(f"kernel {kernel.shape} is larger than image {image.shape}")
    windows = sliding_window_view(image, (KH, KW))[::stride, ::stride]  # (H_out, W_out, KH, KW)
    H_out, W_out = windows.shape[:2]
    patches = windows.reshape(H_out * W_out, KH, KW)  # (P, KH, KW), copies the strided view
    products = patches * kernel  # (P, KH, KW)
    values = products.sum(axis=(1, 2))  # (P,)
    rows, cols = np.divmod(np.arange(H_out * W_out), W_out)  # (P,), (P,)
    return [
        {"row": int(r), "col": int(c), "patch": p, "product": q, "value": v.item()}
        for r, c, p, q, v in zip(rows, cols, patches, products, values, strict=True)
    ]


def _class_score(net, x: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray]:
    """Forward ``x`` (N, 1, 28, 28) and return (scores (N,), dscore/dout (N, K)) for class ``cls``.

    The score is the logit for a softmax network, or the sigmoid output itself for the binary network (K = 1;
    then ``cls`` 1 means "5-9" and 0 means "0-4", whose score is 1 - output).
    """
    out = net.forward(x)  # (N, K)
    N, K = out.shape
    dout = np.zeros_like(out)  # (N, K)
    if K == 1:
        sign = 1.0 if cls == 1 else -1.0
        dout[:, 0] = sign
        score = out[:, 0] if cls == 1 else 1.0 - out[:, 0]
    else:
        if not 0 <= cls < K:
            raise ValueError(f"class {cls} is out of range for a network with {K} outputs")
        dout[:, cls] = 1.0
        score = out[:, cls]
    return score, dout


def saliency(net, x: np.ndarray, cls: int) -> np.ndarray:
    """Gradient of the class score with respect to the input pixels, shape (28, 28) (or the input's H, W).

    x: (1, 1, H, W). The score is the class logit (softmax networks) or the sigmoid output (binary network),
    so the map says which pixels would raise the class score if brightened (positive) or darkened (negative).
    Uses the network's own analytic backward; ``params`` are untouched (``grads`` are overwritten).
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"saliency expects one image of shape (1, C, H, W), got {x.shape}")
    _, dout = _class_score(net, x, cls)
    dx = net.backward(dout, need_dx=True)  # (1, C, H, W)
    if dx is None:
        raise RuntimeError("the network's backward did not return an input gradient")
    return np.asarray(dx)[0].sum(axis=0)  # (H, W)


def occlusion(net, x: np.ndarray, cls: int, size: int = 4, stride: int = 2, fill: float = 0.0) -> np.ndarray:
    """Drop in the class probability when a size×size square is blanked (set to ``fill``), per pixel: (H, W).

    x: (1, C, H, W). All occluded copies are built at once and run as one batch (P, C, H, W). Each pixel gets
    the mean probability drop over the squares covering it (positive = the square mattered for ``cls``). The
    default fill 0 erases ink to the black background, which is what "removing part of the drawing" means.
    For the binary network the probability of class 1 ("5-9") is its sigmoid output, of class 0 one minus it.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"occlusion expects one image of shape (1, C, H, W), got {x.shape}")
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be >= 1, got size={size}, stride={stride}")
    _, C, H, W = x.shape
    tops = np.arange(0, max(H - size, 0) + 1, stride)  # (PY,)
    lefts = np.arange(0, max(W - size, 0) + 1, stride)  # (PX,)
    # Make sure the last row/column of pixels is covered too.
    if tops[-1] + size < H:
        tops = np.append(tops, H - size)
    if lefts[-1] + size < W:
        lefts = np.append(lefts, W - size)
    ys = np.arange(H)
    xs = np.arange(W)
    in_y = (ys[None, :] >= tops[:, None]) & (ys[None, :] < tops[:, None] + size)  # (PY, H)
    in_x = (xs[None, :] >= lefts[:, None]) & (xs[None, :] < lefts[:, None] + size)  # (PX, W)
    masks = in_y[:, None, :, None] & in_x[None, :, None, :]  # (PY, PX, H, W)
    masks = masks.reshape(-1, H, W)  # (P, H, W)
    occluded = np.where(masks[:, None], np.float32(fill), x)  # (P, C, H, W)
    batch = np.concatenate([x, occluded])  # (1 + P, C, H, W): the original first, all in one forward pass
    p = Head.expand(np.asarray(net.predict_proba(batch)))  # (1 + P, classes): one output p -> (1 - p, p)
    if not 0 <= cls < p.shape[1]:
        raise ValueError(f"class {cls} is out of range for a network with {p.shape[1]} classes")
    prob = p[:, cls]  # (1 + P,)
    drops = prob[0] - prob[1:]  # (P,)
    total = np.tensordot(drops, masks.astype(np.float32), axes=1)  # (H, W)
    counts = masks.sum(axis=0)  # (H, W)
    return (total / np.maximum(counts, 1)).astype(np.float32)  # (H, W)

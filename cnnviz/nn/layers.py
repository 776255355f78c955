"""Layers of the NumPy CNN: forward, analytic backward, params and grads.

Every layer has ``forward(x) -> y`` (it keeps what backward needs), ``backward(dout, need_dx=True) -> dx``
(it fills ``grads`` and never changes ``params``; with ``need_dx=False`` it skips the input gradient and
returns ``None``), ``params`` / ``grads`` dicts with the same keys and shapes, ``spec()`` (its constructor
keyword arguments as a JSON-able dict; ``Layer.from_spec`` reads it back) and answers questions about its
shapes and cost without allocating anything: ``output_shape(in_shape)`` (per-sample shape, no batch axis),
``param_shapes()``, ``n_params()`` and ``flops(in_shape)``. The spec validation, the model loader, the limits
and the serving cost all ask the layers.

Images are NCHW. Arrays stay float32 unless the input is float64 (the gradient-check tests use float64).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from cnnviz.nn import fast_conv

__all__ = [
    "Layer",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Dense",
    "Flatten",
    "Sigmoid",
    "ReLU",
    "Tanh",
    "LAYER_TYPES",
    "conv2d_loops",
    "im2col",
    "col2im",
    "as_rng",
    "init_weights",
]

INIT_SCHEMES = ("he", "glorot", "tutorial")


def as_rng(rng=None) -> np.random.Generator:
    """A Generator from a Generator, an int seed, or None (= seed 0, so that runs are reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    return np.random.default_rng(rng)


def init_weights(shape, fan_in: int, fan_out: int, rng, scheme: str = "he") -> np.ndarray:
    """Initial float32 weights of ``shape``.

    "he": normal with std sqrt(2 / fan_in) (for ReLU); "glorot": uniform in +-sqrt(6 / (fan_in + fan_out))
    (for sigmoid/tanh/linear); "tutorial": uniform(0, 1), the tutorial's ``np.random.rand``.
    """
    rng = as_rng(rng)
    if scheme == "he":
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=shape)
    elif scheme == "tutorial":
        w = rng.random(shape)
    else:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {INIT_SCHEMES}")
    return w.astype(np.float32)


def _check_int(name: str, value, minimum: int) -> int:
    """Validate a positive (or >= minimum) integer constructor argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_shape3(in_shape, layer: str) -> tuple[int, int, int]:
    """A per-sample image shape (C, H, W), or ValueError."""
    if len(in_shape) != 3:
        raise ValueError(f"{layer} needs an image input (C, H, W), got shape {tuple(in_shape)}")
    return tuple(int(s) for s in in_shape)


class Layer:
    """Base class: no parameters, identity shape."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def spec(self) -> dict:
        """Constructor keyword arguments plus ``"type"``; ``from_spec`` rebuilds the layer from it."""
        return {"type": type(self).__name__}

    def output_shape(self, in_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape; ValueError if incompatible."""
        return tuple(in_shape)

    def param_shapes(self) -> dict[str, tuple]:
        """The shapes of ``params``, known without allocating them (empty for parameter-free layers)."""
        return {}

    def n_params(self) -> int:
        """Number of trainable scalars."""
        return sum(math.prod(shape) for shape in self.param_shapes().values())

    def flops(self, in_shape: tuple) -> int:
        """FLOPs of one sample's forward pass (2 per multiply-add); an elementwise layer counts one per
        output value, small next to the products."""
        return math.prod(self.output_shape(in_shape))

    @classmethod
    def spec_args(cls) -> tuple[set[str], set[str]]:
        """(every spec keyword, the required ones): the constructor's arguments without rng, init, fast."""
        names, required = set(), set()
        for name, prm in inspect.signature(cls.__init__).parameters.items():
            if name in ("self", "rng", "init", "fast") or prm.kind in (prm.VAR_POSITIONAL, prm.VAR_KEYWORD):
                continue
            names.add(name)
            if prm.default is prm.empty:
                required.add(name)
        return names, required

    @classmethod
    def from_spec(cls, spec: dict, rng=None, init: str | None = None) -> Layer:
        """The layer a spec dict describes ({"type": ..., **constructor arguments}); ``init`` None (the
        default) allocates no weights, for shape and cost questions."""
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        if "init" in inspect.signature(cls.__init__).parameters:
            return cls(**kwargs, rng=rng, init=init)
        return cls(**kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------------


class Conv2D(Layer):
    """2-D cross-correlation with zero padding and stride (what the tutorial and every framework call
    convolution).

    Input (N, C, H, W), output (N, F, H_out, W_out), H_out = (H + 2*padding - KH) // stride + 1.
    params["W"] is (F, C, KH, KW), params["b"] is (F,).

    ``forward`` and ``backward`` below are the whole algorithm: im2col turns every window into a column,
    and one matrix product applies every filter to every window. ``fast=True`` (the default) runs the same
    arithmetic arranged for speed in ``fast_conv.py``; ``fast=False`` runs the code you read here. Both
    take and return NCHW arrays (of any memory layout) and are tested equal to a loop oracle and to each
    other.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, *,
                 init: str | None = "he", fast: bool = True):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels, 1)
        self.out_channels = _check_int("out_channels", out_channels, 1)
        self.kernel_size = _check_int("kernel_size", kernel_size, 1)
        self.stride = _check_int("stride", stride, 1)
        self.padding = _check_int("padding", padding, 0)
        self.fast = bool(fast)
        if init is not None:  # None: no weights, for shape checks only
            self.reset_parameters(rng, init)
        self._cache = None

    def reset_parameters(self, rng=None, init: str = "he") -> None:
        """Draw new weights (scheme "he", "glorot" or "tutorial") and zero biases."""
        F, C, K = self.out_channels, self.in_channels, self.kernel_size
        self.params["W"] = init_weights((F, C, K, K), C * K * K, F * K * K, rng, init)  # (F, C, KH, KW)
        self.params["b"] = np.zeros(F, dtype=np.float32)  # (F,)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def spec(self) -> dict:
        return {"type": "Conv2D", "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def output_shape(self, in_shape):
        C, H, W = _check_shape3(in_shape, "Conv2D")
        if C != self.in_channels:
            raise ValueError(f"Conv2D in_channels = {self.in_channels} but its input has {C} channels")
        K, s, p = self.kernel_size, self.stride, self.padding
        if H + 2 * p < K or W + 2 * p < K:
            raise ValueError(f"Conv2D kernel {K}x{K} is larger than its padded input {H + 2 * p}x{W + 2 * p}")
        return (self.out_channels, (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1)

    def param_shapes(self) -> dict[str, tuple]:
        F, C, K = self.out_channels, self.in_channels, self.kernel_size
        return {"W": (F, C, K, K), "b": (F,)}

    def flops(self, in_shape) -> int:
        F, Ho, Wo = self.output_shape(in_shape)
        return 2 * F * Ho * Wo * self.in_channels * self.kernel_size ** 2

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) -> y (N, F, H_out, W_out)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2D expects input (N, {self.in_channels}, H, W), got {x.shape}")
        _, Ho, Wo = self.output_shape(x.shape[1:])
        dtype = np.result_type(x.dtype, self.params["W"].dtype)  # float64 in the gradient checks
        x = x.astype(dtype, copy=False)
        W = self.params["W"].astype(dtype, copy=False)  # (F, C, KH, KW)
        b = self.params["b"].astype(dtype, copy=False)  # (F,)
        self._cache = None  # let the allocator reuse the previous step's memory
        if self.fast:
            y, cache = fast_conv.forward(x, W, b, self.stride, self.padding, Ho, Wo)
            self._cache = ("fast", cache)
            return y
        N = x.shape[0]
        F, C, K, _ = W.shape
        p = self.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # (N, C, H + 2p, W + 2p), zeros around
        cols = im2col(xp, K, self.stride, Ho, Wo)  # (C*KH*KW, N*H_out*W_out): one window per column
        y = W.reshape(F, C * K * K) @ cols  # (F, N*H_out*W_out): every filter times every window
        y = y.reshape(F, N, Ho, Wo) + b[:, None, None, None]  # (F, N, H_out, W_out)
        self._cache = ("im2col", x.shape, cols)
        return y.transpose(1, 0, 2, 3)  # (N, F, H_out, W_out)

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """dout (N, F, H_out, W_out) -> dx (N, C, H, W); fills grads["W"] (F, C, KH, KW) and grads["b"] (F,).

        The forward pass was y = W2 @ cols + b with W2 = W reshaped (F, C*KH*KW), so by the chain rule
        dW2 = dy @ cols.T (each weight's gradient sums input * dout over every window it touched),
        db = dy summed over windows, and dcols = W2.T @ dy, which col2im adds back into the pixels.
        """
        if self._cache is None:
            raise RuntimeError("Conv2D.backward called before forward")
        W = self.params["W"]
        if self._cache[0] == "fast":
            dW, db, dx = fast_conv.backward(dout, W, self._cache[1], self.stride, self.padding, need_dx)
            self.grads["W"], self.grads["b"] = dW, db
            return dx
        _, x_shape, cols = self._cache
        N = x_shape[0]
        F, C, K, _ = W.shape
        _, _, Ho, Wo = dout.shape
        W2 = W.reshape(F, C * K * K).astype(cols.dtype, copy=False)  # (F, C*KH*KW)
        dy = dout.transpose(1, 0, 2, 3).reshape(F, N * Ho * Wo).astype(cols.dtype, copy=False)  # (F, N*Ho*Wo)
        self.grads["b"] = dy.sum(axis=1)  # (F,)
        self.grads["W"] = (dy @ cols.T).reshape(W.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
        if not need_dx:
            return None
        dcols = W2.T @ dy  # (C*KH*KW, N*H_out*W_out): the gradient of every window
        return col2im(dcols, x_shape, K, self.stride, self.padding, Ho, Wo)  # (N, C, H, W)


def im2col(xp: np.ndarray, K: int, s: int, Ho: int, Wo: int) -> np.ndarray:
    """Padded images xp (N, C, Hp, Wp) -> cols (C*K*K, N*H_out*W_out), one K x K window per column:
    cols[(c, i, j), (n, y, x)] = xp[n, c, y*s + i, x*s + j].

    The loop runs over the K*K kernel offsets (25 for a 5x5 filter), never over pixels or images: offset
    (i, j) of every window at once is one strided slice of the image."""
    N, C = xp.shape[:2]
    cols = np.empty((C, K, K, N, Ho, Wo), dtype=xp.dtype)  # (C, KH, KW, N, H_out, W_out)
    xt = xp.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp)
    for i in range(K):
        for j in range(K):
            cols[:, i, j] = xt[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]  # (C, N, Ho, Wo)
    return cols.reshape(C * K * K, N * Ho * Wo)


def col2im(dcols: np.ndarray, x_shape, K: int, s: int, p: int, Ho: int, Wo: int) -> np.ndarray:
    """The adjoint of im2col: window gradients dcols (C*K*K, N*H_out*W_out) -> dx (N, C, H, W), adding up
    where windows overlap and dropping the padding."""
    N, C, H, W = x_shape
    dcols = dcols.reshape(C, K, K, N, Ho, Wo)  # (C, KH, KW, N, H_out, W_out)
    dxp = np.zeros((C, N, H + 2 * p, W + 2 * p), dtype=dcols.dtype)  # (C, N, Hp, Wp)
    for i in range(K):
        for j in range(K):
            dxp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += dcols[:, i, j]
    return dxp[:, :, p:p + H, p:p + W].transpose(1, 0, 2, 3)  # (N, C, H, W)


def conv2d_loops(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1,
                 padding: int = 0) -> np.ndarray:
    """The definition, one output number at a time (a reference for reading and testing, not for use):
    y[n, f, r, c] = sum over (ch, i, j) of xp[n, ch, r*s + i, c*s + j] * W[f, ch, i, j], plus b[f].
    x (N, C, H, W), W (F, C, KH, KW), b (F,) -> (N, F, H_out, W_out)."""
    N, _, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # (N, C, Hp, Wp)
    Ho = (H + 2 * padding - KH) // stride + 1
    Wo = (Wd + 2 * padding - KW) // stride + 1
    y = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, W))
    for n in range(N):
        for f in range(F):
            for r in range(Ho):
                for c in range(Wo):
                    patch = xp[n, :, r * stride:r * stride + KH, c * stride:c * stride + KW]  # (C, KH, KW)
                    y[n, f, r, c] = np.sum(patch * W[f]) + b[f]
    return y


# ----------------------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------------------


class _Pool2D(Layer):
    """Shared window bookkeeping of the pooling layers (window ``size``, stride defaults to size)."""

    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size = _check_int("size", size, 1)
        self.stride = self.size if stride is None else _check_int("stride", stride, 1)
        self._cache = None

    def spec(self) -> dict:
        d = {"type": type(self).__name__, "size": self.size}
        if self.stride != self.size:
            d["stride"] = self.stride
        return d

    def output_shape(self, in_shape):
        C, H, W = _check_shape3(in_shape, type(self).__name__)
        k, s = self.size, self.stride
        if H < k or W < k:
            raise ValueError(f"{type(self).__name__} window {k}x{k} is larger than its input {H}x{W}")
        return (C, (H - k) // s + 1, (W - k) // s + 1)

    def _windows(self, x):
        """The k*k strided views x[:, :, i::s, j::s] (each (N, C, H_out, W_out)), in window order."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects input (N, C, H, W), got {x.shape}")
        _, Ho, Wo = self.output_shape(x.shape[1:])
        k, s = self.size, self.stride
        return [x[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]
                for i in range(k) for j in range(k)]

    def _dx_buffer(self, x, dtype):
        """An (N, C, H, W) buffer for dx laid out in memory like x (so that the window loops walk both in
        the same order), zeroed unless the windows tile x exactly (then every element is written once and
        zeroing first would be wasted work)."""
        k, s = self.size, self.stride
        _, _, H, W = x.shape
        tiles = s == k and H % k == 0 and W % k == 0
        return (np.empty_like if tiles else np.zeros_like)(x, dtype=dtype), not tiles


class MaxPool2D(_Pool2D):
    """Max pooling over size x size windows. (N, C, H, W) -> (N, C, H_out, W_out).

    Backward sends each output's gradient to ONE input: the first maximum in window order (row by row),
    as PyTorch does. MNIST images have many tied 1.0 pixels; a mask of all maxima would over-count.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        wins = self._windows(x)
        out = wins[0].copy(order="K")  # (N, C, H_out, W_out), laid out like x: the loop reads both in order
        for w in wins[1:]:
            np.maximum(out, w, out=out)
        self._cache = (x, out)
        return out

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._cache is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        if not need_dx:
            return None
        x, out = self._cache
        dtype = np.result_type(x.dtype, dout.dtype)
        dx, accumulate = self._dx_buffer(x, dtype)
        taken = None  # windows whose gradient went to an earlier maximum
        for w, d in zip(self._windows(x), self._windows(dx), strict=True):
            first = np.equal(w, out)  # a maximum of its window ...
            if taken is None:
                taken = first  # (may alias: this window's mask is used below, before taken changes)
            else:
                first &= ~taken  # ... and the first one in window order
                taken |= first
            if accumulate:
                d += dout * first
            else:
                np.multiply(dout, first, out=d)
        return dx


class AvgPool2D(_Pool2D):
    """Average pooling over size x size windows. (N, C, H, W) -> (N, C, H_out, W_out)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        wins = self._windows(x)
        out = wins[0].copy(order="K")  # (N, C, H_out, W_out), laid out like x
        for w in wins[1:]:
            out += w
        out *= 1.0 / len(wins)
        self._cache = x
        return out

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._cache is None:
            raise RuntimeError("AvgPool2D.backward called before forward")
        if not need_dx:
            return None
        x = self._cache
        dtype = np.result_type(x.dtype, dout.dtype)
        dx, accumulate = self._dx_buffer(x, dtype)
        part = dout * np.asarray(1.0 / (self.size * self.size), dtype=dtype)
        for d in self._windows(dx):
            if accumulate:
                d += part
            else:
                np.copyto(d, part)
        return dx


# ----------------------------------------------------------------------------------------------------
# Dense and reshaping
# ----------------------------------------------------------------------------------------------------


class Dense(Layer):
    """Fully connected: y = x @ W + b. x (N, in_features) -> (N, out_features).

    params["W"] is (in_features, out_features) (the tutorial's ``wo``), params["b"] is (out_features,).
    """

    def __init__(self, in_features, out_features, rng=None, *, init: str | None = "glorot"):
        super().__init__()
        self.in_features = _check_int("in_features", in_features, 1)
        self.out_features = _check_int("out_features", out_features, 1)
        if init is not None:  # None: no weights, for shape checks only
            self.reset_parameters(rng, init)
        self._x = None

    def reset_parameters(self, rng=None, init: str = "glorot") -> None:
        """Draw new weights (scheme "he", "glorot" or "tutorial") and zero biases."""
        fi, fo = self.in_features, self.out_features
        self.params["W"] = init_weights((fi, fo), fi, fo, rng, init)  # (in, out)
        self.params["b"] = np.zeros(fo, dtype=np.float32)  # (out,)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def spec(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features, "out_features": self.out_features}

    def output_shape(self, in_shape):
        if len(in_shape) != 1:
            raise ValueError(f"Dense needs a flat input (features,), got shape {tuple(in_shape)}; "
                             "put a Flatten layer before it")
        if int(in_shape[0]) != self.in_features:
            raise ValueError(f"Dense in_features = {self.in_features} but its input has "
                             f"{in_shape[0]} features")
        return (self.out_features,)

    def param_shapes(self) -> dict[str, tuple]:
        return {"W": (self.in_features, self.out_features), "b": (self.out_features,)}

    def flops(self, in_shape) -> int:
        self.output_shape(in_shape)
        return 2 * self.in_features * self.out_features

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Dense expects input (N, {self.in_features}), got {x.shape}")
        W, b = self.params["W"], self.params["b"]
        self._x = x
        out = fast_conv.matmul(x, W)  # (N, out); x @ W, cut into single-thread pieces
        out += b
        return out

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        x = self._x
        self.grads["W"] = fast_conv.matmul(x.T, dout)  # (in, out)
        self.grads["b"] = dout.sum(axis=0)  # (out,)
        if not need_dx:
            return None
        W = self.params["W"]
        # dx is laid out in memory like x, so that the layers before get back the layout they produced
        dx = np.empty_like(x, dtype=np.result_type(dout.dtype, W.dtype))  # (N, in)
        if W.shape[1] == 1:  # one output (the tutorial's): dx is an outer product
            return fast_conv.outer(dout, W.T, out=dx)  # (N, 1) @ (1, in) -> (N, in)
        return fast_conv.matmul(dout, W.T, out=dx)  # (N, in)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C order."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def output_shape(self, in_shape):
        return (math.prod(int(s) for s in in_shape),)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (N, C*H*W); no -1, so N = 0 works

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        if not need_dx:
            return None
        return dout.reshape(self._shape)  # (N, C, H, W)


# ----------------------------------------------------------------------------------------------------
# Activations
# ----------------------------------------------------------------------------------------------------


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5 (one ufunc, no overflow); dy = y (1 - y)."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.multiply(x, 0.5)
        np.tanh(y, out=y)
        y *= 0.5
        y += 0.5
        self._y = y
        return y

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._y is None:
            raise RuntimeError("Sigmoid.backward called before forward")
        if not need_dx:
            return None
        y = self._y
        dx = np.subtract(1.0, y, dtype=np.result_type(y, dout))  # then in place: one temporary
        dx *= y
        dx *= dout
        return dx


class ReLU(Layer):
    """max(x, 0); the gradient passes where x > 0."""

    def __init__(self):
        super().__init__()
        self._y = None
        self._zeros = None  # (C, H, W) zeros of x's dtype, broadcast over the batch

    def forward(self, x: np.ndarray) -> np.ndarray:
        # max with a zeros array, not the scalar 0: NumPy's SIMD loop for maximum needs both operands to be
        # arrays (a scalar takes a slower path)
        z = self._zeros
        if z is None or z.shape != x.shape[1:] or z.dtype != x.dtype:
            self._zeros = z = np.zeros(x.shape[1:], dtype=x.dtype)
        y = np.maximum(x, z)
        self._y = y
        return y

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._y is None:
            raise RuntimeError("ReLU.backward called before forward")
        if not need_dx:
            return None
        return np.multiply(dout, self._y > 0, dtype=np.result_type(dout, self._y))


class Tanh(Layer):
    """tanh(x); dy = 1 - y^2."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.tanh(x)
        self._y = y
        return y

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._y is None:
            raise RuntimeError("Tanh.backward called before forward")
        if not need_dx:
            return None
        y = self._y
        return dout * (1.0 - y * y)


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Conv2D, MaxPool2D, AvgPool2D, Dense, Flatten, Sigmoid, ReLU, Tanh)
}

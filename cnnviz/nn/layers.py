"""Layers of the NumPy CNN: forward, analytic backward, params and grads.

Every layer has ``forward(x) -> y`` (it keeps what backward needs), ``backward(dout, need_dx=True) -> dx``
(it fills ``grads`` and never changes ``params``; with ``need_dx=False`` it skips the input gradient and
returns ``None``), ``params`` / ``grads`` dicts with the same keys and shapes, ``spec()`` (its constructor
keyword arguments as a JSON-able dict) and ``output_shape(in_shape)`` (per-sample shape, no batch axis).

Images are NCHW. Arrays stay float32 unless the input is float64 (the gradient-check tests use float64).
"""

from __future__ import annotations

import math

import numpy as np

from cnnviz.perf.blas import AVX512_KERNELS, openblas_kernels

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


# OpenBLAS runs a matrix product on one thread when it has at most about 2**18 multiply-adds, and on more
# threads above that. For the small products of these networks a second thread gains little on an idle
# machine, and on a busy one it waits for a free core: measured here under load, (64, 1152) @ (1152, 10)
# took 14 ms (median) on two threads and 0.02 ms on one. So the products below are split into pieces
# under that size, and every BLAS call stays on the calling thread.
_SERIAL_MACS = 1 << 18

# OpenBLAS's AVX-512 kernels (SkylakeX and later) have small-matrix routines that multiply a 3-row matrix
# fast; its AVX2 kernels (Haswell, Zen) do not, and one matrix-vector product per filter beats them there.
# Measured for the tutorial net's convolution on 100 images: Haswell 0.23 ms as a product, 0.18 ms as three
# matrix-vector products; SkylakeX 0.08 ms as a product. OpenBLAS picks its kernels from the CPU model when
# NumPy loads, or from OPENBLAS_CORETYPE (see cnnviz.perf.blas).
FAST_SMALL_PRODUCTS = openblas_kernels().lower() in AVX512_KERNELS


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, K) @ b (K, N) in blocks of at most ``_SERIAL_MACS`` multiply-adds (one thread each),
    cutting the largest of M, N, K (a cut K is summed back)."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n <= _SERIAL_MACS:
        return a @ b
    out = np.empty((m, n), dtype=np.result_type(a.dtype, b.dtype))
    if m >= n and m >= k:
        step = max(1, _SERIAL_MACS // (k * n))
        for i in range(0, m, step):
            np.matmul(a[i:i + step], b, out=out[i:i + step])
    elif n >= k:
        step = max(1, _SERIAL_MACS // (m * k))
        for i in range(0, n, step):
            np.matmul(a, b[:, i:i + step], out=out[:, i:i + step])
    else:
        step = max(1, _SERIAL_MACS // (m * n))
        np.matmul(a[:, :step], b[:step], out=out)
        for i in range(step, k, step):
            out += a[:, i:i + step] @ b[i:i + step]
    return out


def _outer(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """col (M, 1) @ row (1, N) in row blocks of at most ``_SERIAL_MACS`` (one thread each). np.dot, because
    for this outer product it takes 0.017 ms where broadcasting takes 0.037 ms and np.matmul 0.16 ms (the
    tutorial net's dense layer, 100 images)."""
    m, n = col.shape[0], row.shape[1]
    out = np.empty((m, n), dtype=np.result_type(col.dtype, row.dtype))
    step = max(1, _SERIAL_MACS // max(1, n))
    for i in range(0, m, step):
        np.dot(col[i:i + step], row, out=out[i:i + step])
    return out


def _matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[y] = a @ b[y] for a (M, K), b (Y, K, L), out (Y, M, L), in column blocks (one thread each)."""
    m, k = a.shape
    L = b.shape[2]
    cols = max(1, _SERIAL_MACS // max(1, m * k))
    for c in range(0, L, cols):
        np.matmul(a, b[:, :, c:c + cols], out=out[:, :, c:c + cols])
    return out


def _matmul_rows_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum over y of a[y] @ b[y] for a (Y, M, L), b (Y, L, N): (M, N), in blocks along L (one thread each)."""
    _, m, L = a.shape
    n = b.shape[2]
    cols = max(1, _SERIAL_MACS // max(1, m * n))
    total = np.zeros((a.shape[0], m, n), dtype=np.result_type(a.dtype, b.dtype))  # (Y, M, N)
    for c in range(0, L, cols):
        total += np.matmul(a[:, :, c:c + cols], b[:, c:c + cols, :])
    return total.sum(axis=0)


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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------------


class Conv2D(Layer):
    """2-D cross-correlation with zero padding and stride.

    Input (N, C, H, W), output (N, F, H_out, W_out), H_out = (H + 2*padding - KH) // stride + 1.
    params["W"] is (F, C, KH, KW), params["b"] is (F,).

    Two implementations behind the same API, tested equal: the general path (``fast = False``) is plain
    im2col by KH*KW slice copies (a loop over kernel offsets, never over pixels or images) and one matrix
    product; the default fast path (``_forward_fast``) puts the images on the innermost axis, which makes
    the copies contiguous and the products well shaped (see the comment there).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, *,
                 init: str | None = "he"):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels, 1)
        self.out_channels = _check_int("out_channels", out_channels, 1)
        self.kernel_size = _check_int("kernel_size", kernel_size, 1)
        self.stride = _check_int("stride", stride, 1)
        self.padding = _check_int("padding", padding, 0)
        self.fast = True  # images-innermost implementation (tests switch it off to compare)
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
            raise ValueError(f"Conv2D expects {self.in_channels} input channels, got {C}")
        K, s, p = self.kernel_size, self.stride, self.padding
        if H + 2 * p < K or W + 2 * p < K:
            raise ValueError(f"Conv2D kernel {K}x{K} is larger than its padded input {H + 2 * p}x{W + 2 * p}")
        return (self.out_channels, (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        """Zero-pad H and W by ``padding``: (N, C, H, W) -> (N, C, H + 2p, W + 2p)."""
        p = self.padding
        if p == 0:
            return x
        N, C, H, W = x.shape
        xp = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=x.dtype)
        xp[:, :, p:p + H, p:p + W] = x
        return xp

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) -> (N, F, H_out, W_out)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2D expects input (N, {self.in_channels}, H, W), got {x.shape}")
        dtype = np.result_type(x.dtype, self.params["W"].dtype)
        x = x.astype(dtype, copy=False)
        self._cache = None  # let the allocator reuse the previous step's memory
        if self.fast:
            return self._forward_fast(x)
        return self._forward_general(x)

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """dout (N, F, H_out, W_out) -> dx (N, C, H, W); fills grads["W"], grads["b"]."""
        if self._cache is None:
            raise RuntimeError("Conv2D.backward called before forward")
        if self._cache[0] == "fast":
            return self._backward_fast(dout, need_dx)
        return self._backward_general(dout, need_dx)

    # -- general path: im2col by slice copies, one matrix product ---------------------------------------

    def _forward_general(self, x: np.ndarray) -> np.ndarray:
        _, Ho, Wo = self.output_shape(x.shape[1:])
        dtype = x.dtype
        W, b = self.params["W"], self.params["b"]
        N, C = x.shape[:2]
        F, _, K, _ = W.shape
        s = self.stride
        xp = self._pad(x)
        # im2col: cols[c, i, j, n, y, x] = xp[n, c, y*s + i, x*s + j]
        cols = np.empty((C, K, K, N, Ho, Wo), dtype=dtype)  # (C, KH, KW, N, H_out, W_out)
        xt = xp.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view
        for i in range(K):
            for j in range(K):
                cols[:, i, j] = xt[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]
        cols2 = cols.reshape(C * K * K, N * Ho * Wo)  # (C*KH*KW, N*H_out*W_out)
        out = _matmul(W.reshape(F, C * K * K).astype(dtype, copy=False), cols2)  # (F, N*H_out*W_out)
        out = out.reshape(F, N, Ho, Wo)  # (F, N, H_out, W_out)
        out += b.astype(dtype, copy=False)[:, None, None, None]
        self._cache = ("general", x.shape, cols2)
        return out.transpose(1, 0, 2, 3)  # (N, F, H_out, W_out) view

    def _backward_general(self, dout: np.ndarray, need_dx: bool) -> np.ndarray | None:
        _, x_shape, cols2 = self._cache
        N, C, H, Wd = x_shape
        W = self.params["W"]
        F, _, K, _ = W.shape
        _, _, Ho, Wo = dout.shape
        s, p = self.stride, self.padding
        dtype = cols2.dtype
        d2 = np.ascontiguousarray(dout.transpose(1, 0, 2, 3), dtype=dtype).reshape(F, N * Ho * Wo)
        self.grads["b"] = np.einsum("fp->f", d2)  # (F,)
        self.grads["W"] = _matmul(d2, cols2.T).reshape(W.shape)  # (F, C, KH, KW)
        if not need_dx:
            return None
        dcols = _matmul(W.reshape(F, C * K * K).astype(dtype, copy=False).T, d2)  # (C*KH*KW, N*H_out*W_out)
        dcols = dcols.reshape(C, K, K, N, Ho, Wo)  # (C, KH, KW, N, H_out, W_out)
        dxp = np.zeros((C, N, H + 2 * p, Wd + 2 * p), dtype=dtype)  # (C, N, Hp, Wp)
        for i in range(K):
            for j in range(K):
                dxp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += dcols[:, i, j]
        return dxp[:, :, p:p + H, p:p + Wd].transpose(1, 0, 2, 3)  # (N, C, H, W) view

    # -- fast path: images on the innermost axis (see _correlate_nlast) -------------------------------

    def _forward_fast(self, x: np.ndarray) -> np.ndarray:
        _, Ho, Wo = self.output_shape(x.shape[1:])
        N, C, H, Wd = x.shape
        dtype = x.dtype
        W, b = self.params["W"], self.params["b"]
        p = self.padding
        xt = _to_nlast(x, p)  # (Hp, C, Wp, N)
        out, win = _correlate_nlast(xt, W.astype(dtype, copy=False), self.stride, Ho, Wo)  # (F, Ho, Wo, N)
        out += b.astype(dtype, copy=False)[:, None, None, None]
        self._cache = ("fast", x.shape, win)
        return out.transpose(3, 0, 1, 2)  # (N, F, H_out, W_out) view

    def _backward_fast(self, dout: np.ndarray, need_dx: bool) -> np.ndarray | None:
        _, x_shape, win = self._cache
        N, C, H, Wd = x_shape
        W = self.params["W"]
        F, _, K, _ = W.shape
        _, _, Ho, Wo = dout.shape
        p, s = self.padding, self.stride
        dtype = win.dtype
        L = Wo * N
        dT = np.ascontiguousarray(dout.transpose(1, 2, 3, 0), dtype=dtype)  # (F, H_out, W_out, N)
        d2 = dT.reshape(F, Ho * L)  # (F, P)
        self.grads["b"] = np.einsum("fp->f", d2)  # (F,); 3x faster than d2.sum(axis=1) here
        # per output row y: win[y] (R, L) @ dout[:, y].T (L, F), summed over rows
        R = K * C * K
        d3 = dT.reshape(F, Ho, L)  # (F, H_out, W_out*N)
        if F <= 3 and not FAST_SMALL_PRODUCTS:  # matrix-vector products per filter, as in _correlate_nlast
            per_row = np.empty((F, Ho, R, 1), dtype=dtype)
            for f in range(F):
                np.matmul(win, d3[f][:, :, None], out=per_row[f])  # (H_out, R, L) @ (H_out, L, 1)
            g = per_row.sum(axis=1)[:, :, 0]  # (F, R)
        else:
            g = _matmul_rows_sum(win, d3.transpose(1, 2, 0)).T  # (F, R)
        self.grads["W"] = np.ascontiguousarray(g.reshape(F, K, C, K).transpose(0, 2, 1, 3))  # (F, C, KH, KW)
        if not need_dx:
            return None
        q = K - 1 - p
        if s == 1 and q >= 0:
            # dx is the correlation of dout, padded by K-1-p, with the flipped filters (F and C swapped)
            dpad = np.zeros((Ho + 2 * q, F, Wo + 2 * q, N), dtype=dtype)  # (Ho + 2q, F, Wo + 2q, N)
            dpad[q:q + Ho, :, q:q + Wo] = dT.transpose(1, 0, 2, 3)
            Wflip = W.astype(dtype, copy=False)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, KH, KW)
            dxt, _ = _correlate_nlast(dpad, Wflip, 1, H, Wd)  # (C, H, W, N)
            return dxt.transpose(3, 0, 1, 2)  # (N, C, H, W) view
        # strided: scatter the window gradients back (col2im on the column-shifted layout)
        R = K * C * K
        Wr = W.transpose(0, 2, 1, 3).reshape(F, R).astype(dtype, copy=False)  # (F, KH*C*KW)
        dwin = np.empty((Ho, R, L), dtype=dtype)  # (H_out, R, L): per row Wr.T (R, F) @ dout[:, y] (F, L)
        _matmul_rows(np.ascontiguousarray(Wr.T), dT.reshape(F, Ho, L).transpose(1, 0, 2), dwin)
        dwin = dwin.reshape(Ho, K, C, K, Wo, N)  # (H_out, KH, C, KW, W_out, N)
        Hp, Wp = H + 2 * p, Wd + 2 * p
        dcolsj = np.zeros((Hp, C, K, Wo, N), dtype=dtype)  # (Hp, C, KW, W_out, N)
        for i in range(K):
            dcolsj[i:i + s * (Ho - 1) + 1:s] += dwin[:, i]
        dxt = np.zeros((Hp, C, Wp, N), dtype=dtype)  # (Hp, C, Wp, N)
        for j in range(K):
            dxt[:, :, j:j + s * (Wo - 1) + 1:s] += dcolsj[:, :, j]
        return dxt[p:p + H, :, p:p + Wd].transpose(3, 1, 0, 2)  # (N, C, H, W) view


# Images-innermost convolution. With the images last, a shifted window of the input is a block of long
# contiguous rows, so the copies run at memcpy speed and the matrix products get W_out * N columns. Only
# the KW column shifts are copied (colsj: KW times the input, not KH*KW times as in im2col): for output
# row y the KH*C*KW rows (i, c, j) of its window are consecutive rows of colsj, so one strided view gives
# every row's window, and batched matmuls (a (F, R) @ (R, W_out*N) product per output row) do the
# convolution. The output is (F, H_out, W_out, N) in memory; Flatten then reshapes it without a copy.


def _to_nlast(x: np.ndarray, p: int) -> np.ndarray:
    """(N, C, H, W) -> zero-padded (H + 2p, C, W + 2p, N): images on the innermost axis."""
    N, C, H, W = x.shape
    xt = np.empty((H + 2 * p, C, W + 2 * p, N), dtype=x.dtype) if p == 0 else \
        np.zeros((H + 2 * p, C, W + 2 * p, N), dtype=x.dtype)
    xt[p:p + H, :, p:p + W] = x.transpose(2, 1, 3, 0)  # (H, C, W, N)
    return xt


def _correlate_nlast(xt: np.ndarray, W: np.ndarray, s: int, Ho: int, Wo: int):
    """Cross-correlate padded images xt (Hp, C, Wp, N) with filters W (F, C, K, K), stride s.

    Returns (out (F, H_out, W_out, N), win): win (H_out, K*C*K, W_out*N) is the window view, which the
    filter gradient reuses.
    """
    Hp, C, Wp, N = xt.shape
    F, _, K, _ = W.shape
    L = Wo * N
    colsj = np.empty((Hp, C, K, Wo, N), dtype=xt.dtype)  # colsj[y, c, j, x, n] = xt[y, c, x*s + j, n]
    for j in range(K):
        colsj[:, :, j] = xt[:, :, j:j + s * (Wo - 1) + 1:s]
    R = K * C * K
    item = colsj.itemsize
    # (H_out, KH*C*KW, W_out*N): win[y, (i, c, j), (x, n)] = xt[y*s + i, c, x*s + j, n] (an overlapping view;
    # the ndarray constructor is as_strided without its 4 us of Python)
    win = np.ndarray((Ho, R, L), dtype=colsj.dtype, buffer=colsj,
                     strides=(s * C * K * L * item, L * item, item))
    win.flags.writeable = False
    Wr = W.transpose(0, 2, 1, 3).reshape(F, R)  # (F, KH*C*KW), rows in (i, c, j) order
    out = np.empty((F, Ho, Wo, N), dtype=xt.dtype)  # (F, H_out, W_out, N)
    if F <= 3 and not FAST_SMALL_PRODUCTS:
        # OpenBLAS's AVX2 kernels are slow on products with 1-3 rows (see FAST_SMALL_PRODUCTS)
        for f in range(F):
            np.matmul(win.transpose(0, 2, 1), Wr[f], out=out[f].reshape(Ho, L))  # (H_out, L, R) @ (R,)
    else:
        _matmul_rows(Wr, win, out.reshape(F, Ho, L).transpose(1, 0, 2))  # per output row: (F, R) @ (R, L)
    return out, win


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
        """dx with the memory layout of x (so that the writes below and the next layer's reads are
        contiguous), zeroed unless the windows tile x exactly (then every element is written once)."""
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
        out = np.array(wins[0], order="K")  # (N, C, H_out, W_out), x's memory layout
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
        # ufuncs (not np.where) so that every temporary keeps the memory layout of x
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
        out = np.array(wins[0], order="K")  # (N, C, H_out, W_out), x's memory layout
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
            raise ValueError(f"Dense expects {self.in_features} input features, got {in_shape[0]}")
        return (self.out_features,)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Dense expects input (N, {self.in_features}), got {x.shape}")
        W, b = self.params["W"], self.params["b"]
        self._x = x
        out = _matmul(x, W)  # (N, out)
        out += b
        return out

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        x = self._x
        self.grads["W"] = _matmul(x.T, dout)  # (in, out)
        self.grads["b"] = dout.sum(axis=0)  # (out,)
        if not need_dx:
            return None
        W = self.params["W"]
        if x.flags.f_contiguous and not x.flags.c_contiguous:
            # x came from a Flatten of an images-innermost conv output: give dx the same layout
            if W.shape[1] == 1:
                return _outer(W, dout.T).T  # (N, in), memory (in, N)
            return _matmul(W, dout.T).T  # (N, in), memory (in, N)
        return _matmul(dout, W.T)  # (N, in)


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
        dx = np.subtract(1.0, y, dtype=np.result_type(y, dout))  # keeps y's memory layout
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
        # arrays (measured 0.05 ms vs 0.09 ms for the classroom net's 8x24x24 maps at batch 64)
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

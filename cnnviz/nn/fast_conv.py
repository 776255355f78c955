"""The fast convolution: the same numbers as ``Conv2D``'s im2col path in ``layers.py``, arranged for speed.

Read ``layers.Conv2D`` first; this module only changes where the numbers sit in memory and how the matrix
products are cut. ``Conv2D(fast=True)`` (the default) calls ``forward`` and ``backward`` here; both take and
return plain C-contiguous NCHW arrays, so no other layer sees this module's layout. tests/test_layers.py
checks both paths against a loop oracle and against each other.

Three things make it fast on a small CPU:
- inside the convolution the images sit between the rows and the columns, (H, C, N, W) (see ``_windows``):
  only the KW column shifts are copied (not the KH*KW copies of im2col), a window is a strided view, and
  each output row is one matrix product with N * W_out columns;
- every matrix product is split into pieces small enough for one BLAS thread (``matmul``);
- on OpenBLAS's AVX2 kernels, 1-3 filters are multiplied one matrix-vector product at a time
  (``FAST_SMALL_PRODUCTS``).
"""

from __future__ import annotations

import numpy as np

from cnnviz.perf.blas import AVX512_KERNELS, openblas_kernels

# OpenBLAS runs a matrix product on one thread when it has at most about 2**18 multiply-adds, and on more
# threads above that. For the small products of these networks a second thread gains little on an idle
# machine, and on a busy one the product waits for a free core, which can cost far more than the product
# itself (docs/performance.md). So the products below are split into pieces under that size, and every
# BLAS call stays on the calling thread.
_SERIAL_MACS = 1 << 18

# OpenBLAS's AVX-512 kernels (SkylakeX and later) have small-matrix routines that multiply a 3-row matrix
# fast; its AVX2 kernels (Haswell, Zen) do not, and one matrix-vector product per filter beats them there
# (docs/performance.md). OpenBLAS picks its kernels from the CPU model when NumPy loads, or from
# OPENBLAS_CORETYPE (see cnnviz.perf.blas).


def fast_small_products(kernels: str) -> bool:
    """Whether OpenBLAS's kernel set ``kernels`` (a name such as "Haswell") multiplies 3-row matrices fast."""
    return kernels.lower() in AVX512_KERNELS


FAST_SMALL_PRODUCTS = fast_small_products(openblas_kernels())


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
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


def outer(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """col (M, 1) @ row (1, N) in row blocks of at most ``_SERIAL_MACS`` (one thread each). np.dot, because
    for an outer product it is faster than both broadcasting and np.matmul (docs/performance.md)."""
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


# Output rows per block: a block of the output (or of dout) moves between NCHW and this module's layout
# while it is still in the cache, and no second full-size copy of the output is allocated.
_BLOCK_FLOATS = 1 << 17


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, padding: int, Ho: int, Wo: int):
    """x (N, C, H, W), W (F, C, K, K), b (F,) -> (y (N, F, H_out, W_out) C-contiguous, cache for backward)."""
    N = x.shape[0]
    F, _, K, _ = W.shape
    L = N * Wo
    win = _windows(_to_rows(x, padding), K, stride, Ho, Wo)  # (H_out, KH*C*KW, N*W_out)
    Wr = _filters_as_rows(W)  # (F, KH*C*KW)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)  # (N, F, H_out, W_out)
    h = max(1, _BLOCK_FLOATS // max(1, F * L))
    blk = np.empty((F, min(h, Ho), L), dtype=x.dtype)  # (F, rows, N*W_out)
    for y0 in range(0, Ho, h):
        y1 = min(Ho, y0 + h)
        part = blk[:, :y1 - y0]  # (F, rows, N*W_out)
        _multiply(Wr, win[y0:y1], part)
        part += b[:, None, None]
        y[:, :, y0:y1] = part.reshape(F, y1 - y0, N, Wo).transpose(2, 0, 1, 3)  # (N, F, rows, W_out)
    return y, (x.shape, win)


def backward(dout: np.ndarray, W: np.ndarray, cache, stride: int, padding: int, need_dx: bool):
    """dout (N, F, H_out, W_out) -> (dW (F, C, K, K), db (F,), dx (N, C, H, W) or None)."""
    x_shape, win = cache
    N, C, _, _ = x_shape
    F, _, K, _ = W.shape
    _, _, Ho, Wo = dout.shape
    dtype = win.dtype
    L = N * Wo
    R = K * C * K
    db = np.einsum("nfhw->f", dout).astype(dtype, copy=False)  # (F,); einsum's loop beats sum over 3 axes
    # dW (as (F, R)) = sum over output rows y of dout[:, :, y] (F, L) @ win[y].T (L, R)
    g = np.zeros((F, R), dtype=dtype)
    h = max(1, _BLOCK_FLOATS // max(1, F * L))
    blk = np.empty((F, min(h, Ho), N, Wo), dtype=dtype)  # (F, rows, N, W_out)
    for y0 in range(0, Ho, h):
        y1 = min(Ho, y0 + h)
        part = blk[:, :y1 - y0]
        part[...] = dout[:, :, y0:y1].transpose(1, 2, 0, 3)  # (F, rows, N, W_out)
        d3 = part.reshape(F, y1 - y0, L)  # (F, rows, N*W_out)
        if F <= 3 and not FAST_SMALL_PRODUCTS:  # matrix-vector products per filter, as in _multiply
            for f in range(F):
                g[f] += np.matmul(win[y0:y1], d3[f][:, :, None]).sum(axis=0)[:, 0]  # (rows, R, 1) summed
        else:
            g += _matmul_rows_sum(win[y0:y1], d3.transpose(1, 2, 0)).T  # (F, R)
    dW = np.ascontiguousarray(g.reshape(F, K, C, K).transpose(0, 2, 1, 3))  # (F, C, KH, KW)
    if not need_dx:
        return dW, db, None
    return dW, db, _dx(dout.astype(dtype, copy=False), W.astype(dtype, copy=False), x_shape, stride, padding)


def _dx(dout: np.ndarray, W: np.ndarray, x_shape, s: int, p: int) -> np.ndarray:
    """dout (N, F, H_out, W_out), W (F, C, K, K) -> dx (N, C, H, W), C-contiguous."""
    N, C, H, Wd = x_shape
    F, _, K, _ = W.shape
    _, _, Ho, Wo = dout.shape
    dtype = dout.dtype
    q = K - 1 - p
    if s == 1 and q >= 0:
        # dx is the correlation of dout, padded by K-1-p, with the flipped filters (F and C swapped)
        dpad = np.zeros((Ho + 2 * q, F, N, Wo + 2 * q), dtype=dtype)  # (Ho + 2q, F, N, Wo + 2q)
        dpad[q:q + Ho, :, :, q:q + Wo] = dout.transpose(2, 1, 0, 3)
        Wflip = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, KH, KW)
        dxt = _correlate_rows(dpad, Wflip, 1, H, Wd)  # (C, H, N, W)
        return np.ascontiguousarray(dxt.transpose(2, 0, 1, 3))  # (N, C, H, W)
    # strided: scatter the window gradients back (col2im on the column-shifted layout)
    R = K * C * K
    L = N * Wo
    dT = np.ascontiguousarray(dout.transpose(1, 2, 0, 3)).reshape(F, Ho, L)  # (F, H_out, N*W_out)
    Wr = _filters_as_rows(W)  # (F, KH*C*KW)
    dwin = np.empty((Ho, R, L), dtype=dtype)  # (H_out, R, L): per row Wr.T (R, F) @ dout[:, y] (F, L)
    _matmul_rows(np.ascontiguousarray(Wr.T), dT.transpose(1, 0, 2), dwin)
    dwin = dwin.reshape(Ho, K, C, K, N, Wo)  # (H_out, KH, C, KW, N, W_out)
    Hp, Wp = H + 2 * p, Wd + 2 * p
    dcolsj = np.zeros((Hp, C, K, N, Wo), dtype=dtype)  # (Hp, C, KW, N, W_out)
    for i in range(K):
        dcolsj[i:i + s * (Ho - 1) + 1:s] += dwin[:, i]
    dxt = np.zeros((Hp, C, N, Wp), dtype=dtype)  # (Hp, C, N, Wp)
    for j in range(K):
        dxt[:, :, :, j:j + s * (Wo - 1) + 1:s] += dcolsj[:, :, j]
    return np.ascontiguousarray(dxt[p:p + H, :, :, p:p + Wd].transpose(2, 1, 0, 3))  # (N, C, H, W)


def _to_rows(x: np.ndarray, p: int) -> np.ndarray:
    """(N, C, H, W) -> zero-padded (H + 2p, C, N, W + 2p): the images between the rows and the columns."""
    N, C, H, W = x.shape
    xt = np.empty((H + 2 * p, C, N, W + 2 * p), dtype=x.dtype) if p == 0 else \
        np.zeros((H + 2 * p, C, N, W + 2 * p), dtype=x.dtype)
    xt[p:p + H, :, :, p:p + W] = x.transpose(2, 1, 0, 3)  # (H, C, N, W)
    return xt


def _windows(xt: np.ndarray, K: int, s: int, Ho: int, Wo: int) -> np.ndarray:
    """Padded images xt (Hp, C, N, Wp) -> win (H_out, K*C*K, N*W_out), a read-only overlapping view:
    win[y, (i, c, j), (n, x)] = xt[y*s + i, c, n, x*s + j].

    Only the KW column shifts are copied (colsj, KW times the input): for output row y, the KH*C*KW rows
    (i, c, j) of its windows are consecutive rows of colsj, so one strided view gives every row's windows.
    """
    Hp, C, N, Wp = xt.shape
    L = N * Wo
    colsj = np.empty((Hp, C, K, N, Wo), dtype=xt.dtype)  # colsj[y, c, j, n, x] = xt[y, c, n, x*s + j]
    for j in range(K):
        colsj[:, :, j] = xt[:, :, :, j:j + s * (Wo - 1) + 1:s]
    R = K * C * K
    item = colsj.itemsize
    # the ndarray constructor is as_strided without its Python overhead
    win = np.ndarray((Ho, R, L), dtype=colsj.dtype, buffer=colsj,
                     strides=(s * C * K * L * item, L * item, item))
    win.flags.writeable = False
    return win


def _filters_as_rows(W: np.ndarray) -> np.ndarray:
    """W (F, C, K, K) -> (F, K*C*K), rows in the (i, c, j) order of the windows."""
    F, C, K, _ = W.shape
    return W.transpose(0, 2, 1, 3).reshape(F, K * C * K)


def _multiply(Wr: np.ndarray, win: np.ndarray, out: np.ndarray) -> None:
    """out[:, y] = Wr (F, R) @ win[y] (R, L) for every row y of win (Y, R, L); out (F, Y, L) may be a view."""
    F = Wr.shape[0]
    if F <= 3 and not FAST_SMALL_PRODUCTS:
        # OpenBLAS's AVX2 kernels are slow on products with 1-3 rows (see FAST_SMALL_PRODUCTS)
        for f in range(F):
            np.matmul(win.transpose(0, 2, 1), Wr[f], out=out[f])  # (Y, L, R) @ (R,) -> (Y, L)
    else:
        _matmul_rows(Wr, win, out.transpose(1, 0, 2))  # per row: (F, R) @ (R, L)


def _correlate_rows(xt: np.ndarray, W: np.ndarray, s: int, Ho: int, Wo: int) -> np.ndarray:
    """Cross-correlate padded images xt (Hp, C, N, Wp) with filters W (F, C, K, K), stride s:
    out (F, H_out, N, W_out)."""
    N = xt.shape[2]
    F, _, K, _ = W.shape
    out = np.empty((F, Ho, N, Wo), dtype=xt.dtype)  # (F, H_out, N, W_out)
    _multiply(_filters_as_rows(W), _windows(xt, K, s, Ho, Wo), out.reshape(F, Ho, N * Wo))
    return out

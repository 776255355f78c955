"""The fast convolution: the same numbers as ``Conv2D``'s im2col path in ``layers.py``, arranged for speed.

Read ``layers.Conv2D`` first; this module only changes where the numbers sit in memory and how the matrix
products are cut. ``Conv2D(fast=True)`` (the default) calls ``forward`` and ``backward`` here. Both take
NCHW arrays of any memory layout and return NCHW arrays (shape (N, C, H, W), indexed as usual) whose memory
has the images innermost: they are transposed views of the buffers the products write, not copies. No other
layer asks how its input is laid out; the generic layers keep whatever layout they are given (their
outputs are allocated like their inputs), so this layout passes through them without being copied, and
the gradient comes back in it. tests/test_layers.py checks both paths against a loop oracle and against
each other, and the other layers on these views against the same arrays made C-contiguous.

Three things make it fast on a small CPU:
- inside the convolution the images sit on the innermost axis, (H, C, W, N) (see ``_windows``): only the
  KW column shifts are copied (not the KH*KW copies of im2col), each as contiguous rows of N images, a
  window is a strided view, and each output row is one matrix product with W_out * N columns;
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


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a (M, K) @ b (K, N) in blocks of at most ``_SERIAL_MACS`` multiply-adds (one thread each),
    cutting the largest of M, N, K (a cut K is summed back). ``out`` (M, N) may have any memory layout
    (NumPy's matmul multiplies in the transposed order for a transposed output)."""
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a.dtype, b.dtype))
    if m * k * n <= _SERIAL_MACS:
        return np.matmul(a, b, out=out)
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


def outer(col: np.ndarray, row: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """col (M, 1) @ row (1, N) in row blocks of at most ``_SERIAL_MACS`` (one thread each). np.dot, because
    for an outer product it is faster than both broadcasting and np.matmul (docs/performance.md).
    ``out`` (M, N) may have any memory layout: np.dot writes only C-contiguous arrays, so a transposed
    ``out`` gets the transposed product and any other layout gets NumPy's broadcasting product."""
    m, n = col.shape[0], row.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(col.dtype, row.dtype))
    if not out.flags.c_contiguous:
        if out.T.flags.c_contiguous:
            outer(row.T, col.T, out.T)  # out.T (N, M) = row.T (N, 1) @ col.T (1, M)
        else:
            np.multiply(col, row, out=out)
        return out
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


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, padding: int, Ho: int, Wo: int):
    """x (N, C, H, W) in any memory layout, W (F, C, K, K), b (F,) -> (y (N, F, H_out, W_out), cache).

    y is indexed like any NCHW array; in memory it is (F, H_out, W_out, N), the order the products write it
    in, so it is returned as a transposed view rather than copied."""
    N = x.shape[0]
    F, _, K, _ = W.shape
    win = _windows(_to_nlast(x, padding), K, stride, Ho, Wo)  # (H_out, KH*C*KW, W_out*N)
    out = np.empty((F, Ho, Wo, N), dtype=x.dtype)  # (F, H_out, W_out, N)
    _multiply(_filters_as_rows(W), win, out.reshape(F, Ho, Wo * N))
    out += b[:, None, None, None]
    return out.transpose(3, 0, 1, 2), (x.shape, win)  # (N, F, H_out, W_out) view


def backward(dout: np.ndarray, W: np.ndarray, cache, stride: int, padding: int, need_dx: bool):
    """dout (N, F, H_out, W_out), any memory layout -> (dW (F, C, K, K), db (F,), dx (N, C, H, W) or None).

    dx, like forward's output, is a transposed view of images-innermost memory."""
    x_shape, win = cache
    N, C, _, _ = x_shape
    F, _, K, _ = W.shape
    _, _, Ho, Wo = dout.shape
    dtype = win.dtype
    L = Wo * N
    R = K * C * K
    # no copy when dout has forward's layout (the layers after the convolution keep it)
    dT = np.ascontiguousarray(dout.transpose(1, 2, 3, 0), dtype=dtype)  # (F, H_out, W_out, N)
    db = np.einsum("fp->f", dT.reshape(F, Ho * L))  # (F,); einsum's loop beats sum(axis=1) here
    # dW (as (F, R)) = sum over output rows y of dout[:, y] (F, L) @ win[y].T (L, R)
    d3 = dT.reshape(F, Ho, L)  # (F, H_out, W_out*N)
    if F <= 3 and not FAST_SMALL_PRODUCTS:  # matrix-vector products per filter, as in _multiply
        g = np.empty((F, R), dtype=dtype)
        for f in range(F):
            g[f] = np.matmul(win, d3[f][:, :, None]).sum(axis=0)[:, 0]  # (H_out, R, 1) summed over rows
    else:
        g = _matmul_rows_sum(win, d3.transpose(1, 2, 0)).T  # (F, R)
    dW = np.ascontiguousarray(g.reshape(F, K, C, K).transpose(0, 2, 1, 3))  # (F, C, KH, KW)
    if not need_dx:
        return dW, db, None
    return dW, db, _dx(dT, W.astype(dtype, copy=False), x_shape, stride, padding)


def _dx(dT: np.ndarray, W: np.ndarray, x_shape, s: int, p: int) -> np.ndarray:
    """dT (F, H_out, W_out, N), W (F, C, K, K) -> dx (N, C, H, W), a view of images-innermost memory."""
    N, C, H, Wd = x_shape
    F, _, K, _ = W.shape
    _, Ho, Wo, _ = dT.shape
    dtype = dT.dtype
    q = K - 1 - p
    if s == 1 and q >= 0:
        # dx is the correlation of dout, padded by K-1-p, with the flipped filters (F and C swapped)
        dpad = np.zeros((Ho + 2 * q, F, Wo + 2 * q, N), dtype=dtype)  # (Ho + 2q, F, Wo + 2q, N)
        dpad[q:q + Ho, :, q:q + Wo] = dT.transpose(1, 0, 2, 3)
        Wflip = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, KH, KW)
        dxt = _correlate_nlast(dpad, Wflip, 1, H, Wd)  # (C, H, W, N)
        return dxt.transpose(3, 0, 1, 2)  # (N, C, H, W) view
    # strided: scatter the window gradients back (col2im on the column-shifted layout)
    R = K * C * K
    L = Wo * N
    Wr = _filters_as_rows(W)  # (F, KH*C*KW)
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


def _to_nlast(x: np.ndarray, p: int) -> np.ndarray:
    """(N, C, H, W) -> zero-padded (H + 2p, C, W + 2p, N): the images on the innermost axis."""
    N, C, H, W = x.shape
    xt = np.empty((H + 2 * p, C, W + 2 * p, N), dtype=x.dtype) if p == 0 else \
        np.zeros((H + 2 * p, C, W + 2 * p, N), dtype=x.dtype)
    xt[p:p + H, :, p:p + W] = x.transpose(2, 1, 3, 0)  # (H, C, W, N)
    return xt


def _windows(xt: np.ndarray, K: int, s: int, Ho: int, Wo: int) -> np.ndarray:
    """Padded images xt (Hp, C, Wp, N) -> win (H_out, K*C*K, W_out*N), a read-only overlapping view:
    win[y, (i, c, j), (x, n)] = xt[y*s + i, c, x*s + j, n].

    Only the KW column shifts are copied (colsj, KW times the input), each a block of contiguous rows of N
    images: for output row y, the KH*C*KW rows (i, c, j) of its windows are consecutive rows of colsj, so
    one strided view gives every row's windows.
    """
    Hp, C, Wp, N = xt.shape
    L = Wo * N
    colsj = np.empty((Hp, C, K, Wo, N), dtype=xt.dtype)  # colsj[y, c, j, x, n] = xt[y, c, x*s + j, n]
    for j in range(K):
        colsj[:, :, j] = xt[:, :, j:j + s * (Wo - 1) + 1:s]
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


def _correlate_nlast(xt: np.ndarray, W: np.ndarray, s: int, Ho: int, Wo: int) -> np.ndarray:
    """Cross-correlate padded images xt (Hp, C, Wp, N) with filters W (F, C, K, K), stride s:
    out (F, H_out, W_out, N)."""
    N = xt.shape[3]
    F, _, K, _ = W.shape
    out = np.empty((F, Ho, Wo, N), dtype=xt.dtype)  # (F, H_out, W_out, N)
    _multiply(_filters_as_rows(W), _windows(xt, K, s, Ho, Wo), out.reshape(F, Ho, Wo * N))
    return out

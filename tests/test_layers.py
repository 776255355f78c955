"""Layer tests: numerical gradient checks (float64, central differences), a naive-loop conv oracle,
the tutorial's worked example, max-pool tie routing, dtype handling and the fast conv path."""

import numpy as np
import pytest
from gradcheck import numerical_grad, rel_error
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnviz.nn import fast_conv
from cnnviz.nn.layers import (
    LAYER_TYPES,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)


def to64(layer):
    for k in layer.params:
        layer.params[k] = layer.params[k].astype(np.float64)
    return layer


def check_layer_grads(layer, x, seed=0, tol=1e-7):
    """Check dx and every dparam of ``layer`` at ``x`` for the loss sum(y * r) with a random r."""
    rng = np.random.default_rng(seed)
    to64(layer)
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer.forward(x) * r))

    layer.forward(x)
    dx = layer.backward(r.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert dx.shape == x.shape
    assert dx.dtype == np.float64
    num_dx = numerical_grad(loss, x)
    assert rel_error(dx, num_dx) < tol, f"dx rel error {rel_error(dx, num_dx)}"
    for k, p in layer.params.items():
        assert grads[k].shape == p.shape
        num = numerical_grad(loss, p)
        assert rel_error(grads[k], num) < tol, f"d{k} rel error {rel_error(grads[k], num)}"


def naive_conv(x, W, b, stride, padding):
    """Loop oracle: out[n, f, y, x] = sum_{c,i,j} xp[n, c, y*s + i, x*s + j] * W[f, c, i, j] + b[f]."""
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho = (H + 2 * padding - KH) // stride + 1
    Wo = (Wd + 2 * padding - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for yy in range(Ho):
                for xx in range(Wo):
                    patch = xp[n, :, yy * stride:yy * stride + KH, xx * stride:xx * stride + KW]
                    out[n, f, yy, xx] = np.sum(patch * W[f]) + b[f]
    return out


CONV_CASES = [
    # (N, C, H, W, F, K, stride, padding)
    (2, 1, 7, 7, 3, 3, 1, 0),
    (2, 1, 6, 9, 2, 3, 1, 0),   # non-square, single channel (fast path)
    (2, 3, 7, 6, 2, 3, 1, 1),   # several channels, padding 1, non-square
    (2, 2, 8, 7, 3, 3, 2, 0),   # stride 2
    (1, 2, 7, 9, 2, 5, 2, 2),   # stride 2, padding 2, kernel 5
    (2, 1, 9, 8, 2, 5, 1, 2),   # single channel, padding 2 (fast path with padding)
    (2, 1, 9, 8, 2, 4, 3, 1),   # stride 3, even kernel, single channel
    (1, 2, 5, 5, 1, 5, 1, 0),   # kernel as large as the input
    (2, 2, 5, 6, 2, 2, 1, 2),   # padding larger than kernel - 1 (dx by scatter, not by correlation)
]


@pytest.fixture(params=[False, True], ids=["per-filter-products", "one-product"])
def small_products(request, monkeypatch):
    """Run a test with both ways the fast path multiplies 1-3 filters (as on AVX2 and on AVX-512 OpenBLAS
    kernels), whichever kernels this machine has."""
    monkeypatch.setattr(fast_conv, "FAST_SMALL_PRODUCTS", request.param)
    return request.param


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_naive_loops(case, fast, small_products):
    N, C, H, W, F, K, s, p = case
    rng = np.random.default_rng(1)
    layer = to64(Conv2D(C, F, K, stride=s, padding=p, rng=rng))
    layer.fast = fast
    layer.params["b"] = rng.standard_normal(F)
    x = rng.standard_normal((N, C, H, W))
    y = layer.forward(x)
    expected = naive_conv(x, layer.params["W"], layer.params["b"], s, p)
    assert y.shape == expected.shape == (N, F, (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_gradients(case, fast, small_products):
    N, C, H, W, F, K, s, p = case
    rng = np.random.default_rng(2)
    layer = Conv2D(C, F, K, stride=s, padding=p, rng=rng)
    layer.fast = fast
    check_layer_grads(layer, rng.standard_normal((N, C, H, W)))


def test_conv_tutorial_worked_example():
    """The tutorial's 3x3 image and 2x2 filter give [[9, 32], [14, 26]]."""
    layer = Conv2D(1, 1, 2)
    layer.params["W"][...] = np.array([[1, 1], [0, 1]], dtype=np.float32)
    layer.params["b"][...] = 0
    img = np.array([[1, 7, 2], [11, 1, 23], [2, 2, 2]], dtype=np.float32)[None, None]
    out = layer.forward(img)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0], [[9, 32], [14, 26]])


@pytest.mark.parametrize("case", CONV_CASES + [(5, 1, 28, 28, 3, 5, 1, 0), (7, 8, 14, 14, 16, 5, 1, 2)])
def test_conv_fast_path_equals_general_path(case, small_products):
    """The fast path gives the general im2col path's output and gradients (float32), also for inputs whose
    memory is not in NCHW order (transposed views)."""
    N, C, H, W, F, K, s, p = case
    rng = np.random.default_rng(3)
    for layout in [(0, 1, 2, 3), (1, 2, 3, 0), (2, 1, 3, 0)]:
        fast = Conv2D(C, F, K, stride=s, padding=p, rng=rng)
        fast.params["b"][...] = rng.standard_normal(F)
        general = Conv2D(C, F, K, stride=s, padding=p)
        general.params = {k: v.copy() for k, v in fast.params.items()}
        general.fast = False
        shape = (N, C, H, W)
        mem = rng.random(tuple(shape[a] for a in layout), dtype=np.float32)
        x = mem.transpose(np.argsort(layout))  # (N, C, H, W) view of memory in another order
        assert x.shape == shape
        y1, y2 = fast.forward(x), general.forward(x)
        assert y1.dtype == y2.dtype == np.float32
        np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
        d = rng.standard_normal(y1.shape).astype(np.float32)
        dx1, dx2 = fast.backward(d), general.backward(d)
        np.testing.assert_allclose(dx1, dx2, rtol=1e-5, atol=1e-5)
        for k in ("W", "b"):
            np.testing.assert_allclose(fast.grads[k], general.grads[k], rtol=1e-4, atol=1e-4)


def test_conv_backward_without_dx_fills_grads_and_keeps_params():
    rng = np.random.default_rng(4)
    layer = Conv2D(2, 3, 3, padding=1, rng=rng)
    before = {k: v.copy() for k, v in layer.params.items()}
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = layer.forward(x)
    assert layer.backward(np.ones_like(y), need_dx=False) is None
    np.testing.assert_allclose(layer.grads["b"], [2 * 25] * 3)
    for k in before:
        np.testing.assert_array_equal(layer.params[k], before[k])
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32


def test_conv_rejects_wrong_channels():
    with pytest.raises(ValueError):
        Conv2D(3, 2, 3).forward(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ValueError):
        Conv2D(1, 2, 0)


POOL_CASES = [(2, None, (2, 3, 6, 8)), (3, 2, (2, 2, 7, 9)), (2, 1, (1, 2, 5, 4)), (2, None, (1, 2, 5, 7))]


@pytest.mark.parametrize("size,stride,shape", POOL_CASES)
def test_pool_gradients(size, stride, shape):
    rng = np.random.default_rng(5)
    # distinct values so that the max is unique and the max-pool gradient is well defined
    x = rng.permutation(np.prod(shape)).reshape(shape) / 7.0
    check_layer_grads(MaxPool2D(size, stride), x.copy())
    check_layer_grads(AvgPool2D(size, stride), x.copy())


def test_maxpool_values_and_odd_size():
    x = np.arange(2 * 1 * 5 * 5, dtype=np.float32).reshape(2, 1, 5, 5)
    out = MaxPool2D(2).forward(x)
    assert out.shape == (2, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [16, 18]])
    avg = AvgPool2D(2).forward(x)
    np.testing.assert_array_equal(avg[0, 0], [[3, 5], [13, 15]])


def test_maxpool_routes_tied_gradient_to_first_maximum_only():
    """MNIST has tied 1.0 pixels: the whole gradient goes to the first max in window order, as PyTorch."""
    x = np.array([[[[1.0, 1.0, 0.0, 0.5],
                    [1.0, 0.0, 0.5, 0.5],
                    [0.0, 0.0, 0.25, 0.75],
                    [0.0, 1.0, 0.75, 0.75]]]], dtype=np.float32)
    pool = MaxPool2D(2)
    out = pool.forward(x)
    np.testing.assert_array_equal(out[0, 0], [[1.0, 0.5], [1.0, 0.75]])
    dx = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]], dtype=np.float32))
    expected = np.array([[10, 0, 0, 20],
                         [0, 0, 0, 0],
                         [0, 0, 0, 40],
                         [0, 30, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(dx[0, 0], expected)
    assert dx.sum() == 100.0


def test_maxpool_overlapping_windows_accumulate():
    x = np.array([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]])
    pool = MaxPool2D(2, stride=1)
    out = pool.forward(x)
    np.testing.assert_array_equal(out[0, 0], [[5, 5], [0, 0]])
    dx = pool.backward(np.ones((1, 1, 2, 2)))
    # both top windows pick the 5; the bottom windows are all-zero ties, first element wins
    np.testing.assert_array_equal(dx[0, 0], [[0, 2, 0], [1, 1, 0], [0, 0, 0]])


def test_dense_gradients_and_values():
    rng = np.random.default_rng(6)
    layer = Dense(7, 4, rng=rng)
    check_layer_grads(layer, rng.standard_normal((5, 7)))
    layer = Dense(2, 1)
    layer.params["W"][...] = [[2.0], [3.0]]
    layer.params["b"][...] = [1.0]
    np.testing.assert_array_equal(layer.forward(np.array([[1.0, 1.0]], np.float32)), [[6.0]])


@pytest.mark.parametrize("cls", [Sigmoid, ReLU, Tanh])
def test_activation_gradients(cls):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 4, 5)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    check_layer_grads(cls(), x)


def test_activation_values():
    x = np.array([-80.0, -2.0, 0.0, 2.0, 80.0], dtype=np.float32)
    s = Sigmoid().forward(x)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ReLU().forward(x), [0, 0, 0, 2, 80])
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))


def test_flatten_is_c_order_and_reversible():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    f = Flatten()
    y = f.forward(x)
    np.testing.assert_array_equal(y, x.reshape(2, 12))
    np.testing.assert_array_equal(f.backward(y), x)
    check_layer_grads(Flatten(), np.random.default_rng(8).standard_normal((2, 3, 2, 2)))


@pytest.mark.parametrize("name", sorted(LAYER_TYPES))
def test_float32_stays_float32(name):
    """float32 in -> float32 out and float32 grads (no silent float64 upcasts)."""
    rng = np.random.default_rng(9)
    make = {"Conv2D": lambda: Conv2D(2, 3, 3, padding=1, rng=rng), "Dense": lambda: Dense(6, 4, rng=rng)}
    layer = make.get(name, LAYER_TYPES[name])()
    x = rng.standard_normal((2, 6) if name == "Dense" else (2, 2, 6, 6)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32
    for g in layer.grads.values():
        assert g.dtype == np.float32


def test_spec_roundtrip_of_layers():
    layers = (Conv2D(2, 4, 3, stride=2, padding=1), MaxPool2D(3, 2), AvgPool2D(2), Dense(5, 3), Flatten())
    for layer in layers:
        spec = layer.spec()
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        assert LAYER_TYPES[spec["type"]](**kwargs).spec() == spec


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("size,stride,shape", POOL_CASES)
def test_pool_same_result_for_any_memory_layout(cls, size, stride, shape):
    """Pools keep the input's memory layout; values and gradients must not depend on it."""
    rng = np.random.default_rng(10)
    mem = np.round(rng.random((shape[1], shape[2], shape[3], shape[0])) * 4).astype(np.float32)  # ties
    x_odd = mem.transpose(3, 0, 1, 2)  # (N, C, H, W) view with images innermost
    x_c = np.ascontiguousarray(x_odd)
    a, b = cls(size, stride), cls(size, stride)
    ya, yb = a.forward(x_odd), b.forward(x_c)
    np.testing.assert_array_equal(ya, yb)
    d = rng.standard_normal(ya.shape).astype(np.float32)
    np.testing.assert_array_equal(a.backward(d), b.backward(d))
    if cls is MaxPool2D:  # each output's gradient lands on exactly one input
        np.testing.assert_allclose(a.backward(d).sum(), d.sum(), rtol=1e-5)


@pytest.mark.parametrize("case", [(3, 2, 7, 6, 4, 3, 1, 1), (2, 3, 9, 8, 2, 3, 2, 1),
                                  (4, 1, 8, 8, 3, 5, 1, 2)])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_products_split_for_one_thread_give_same_results(case, fast, monkeypatch):
    """The products are split into pieces small enough for one BLAS thread; force tiny pieces (so every
    split path runs) and compare with unsplit products."""
    N, C, H, W, F, K, s, p = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    conv = Conv2D(C, F, K, stride=s, padding=p, rng=rng)
    conv.fast = fast
    dense = Dense(F * ((H + 2 * p - K) // s + 1) * ((W + 2 * p - K) // s + 1), 3, rng=rng)
    flat = Flatten()

    def run():
        y = dense.forward(flat.forward(conv.forward(x)))
        d = np.linspace(-1, 1, y.size, dtype=np.float32).reshape(y.shape)
        dx = conv.backward(flat.backward(dense.backward(d)))
        return [y, dx, conv.grads["W"], conv.grads["b"], dense.grads["W"], dense.grads["b"]]

    whole = run()
    monkeypatch.setattr(fast_conv, "_SERIAL_MACS", 37)
    split = run()
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       F=st.integers(1, 4), K=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 3))
def test_conv_random_shapes_match_oracle_and_general_path(N, C, H, W, F, K, s, p):
    """Random shapes, strides and paddings: the fast path equals the loop oracle (forward) and the
    general path (forward and all gradients)."""
    assume(H + 2 * p >= K and W + 2 * p >= K)
    rng = np.random.default_rng(N * 1000 + C * 100 + H * 10 + W)
    fast = to64(Conv2D(C, F, K, stride=s, padding=p, rng=rng))
    fast.params["b"] = rng.standard_normal(F)
    general = Conv2D(C, F, K, stride=s, padding=p)
    general.params = {k: v.copy() for k, v in fast.params.items()}
    general.fast = False
    x = rng.standard_normal((N, C, H, W))
    y = fast.forward(x)
    np.testing.assert_allclose(y, naive_conv(x, fast.params["W"], fast.params["b"], s, p), atol=1e-10)
    np.testing.assert_allclose(general.forward(x), y, atol=1e-10)
    d = rng.standard_normal(y.shape)
    np.testing.assert_allclose(fast.backward(d), general.backward(d), atol=1e-10)
    for k in ("W", "b"):
        np.testing.assert_allclose(fast.grads[k], general.grads[k], atol=1e-10)


def test_split_matmul_cuts_any_dimension(monkeypatch):
    monkeypatch.setattr(fast_conv, "_SERIAL_MACS", 37)
    rng = np.random.default_rng(12)
    for m, k, n in [(50, 3, 2), (2, 3, 50), (2, 50, 3), (7, 7, 7), (1, 1, 1)]:
        a, b = rng.random((m, k)), rng.random((k, n))
        np.testing.assert_allclose(fast_conv.matmul(a, b), a @ b, rtol=1e-12)
        for out in (np.empty((m, n)), np.empty((n, m)).T):  # any layout of out
            assert fast_conv.matmul(a, b, out=out) is out
            np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_outer_product_in_single_thread_blocks_equals_numpy():
    """Dense's outer product runs in row blocks (one BLAS thread each); blocks must tile the result."""
    rng = np.random.default_rng(9)
    col = rng.standard_normal((1728, 1)).astype(np.float32)
    row = rng.standard_normal((1, 333)).astype(np.float32)
    assert 1728 * 333 > 2 * fast_conv._SERIAL_MACS  # three blocks or more
    np.testing.assert_array_equal(fast_conv.outer(col, row), col * row)
    for out in (np.empty((333, 1728), np.float32).T, np.empty((1728, 666), np.float32)[:, ::2]):
        assert fast_conv.outer(col, row, out=out) is out  # transposed, and neither C nor F order
        np.testing.assert_array_equal(out, col * row)


@pytest.mark.parametrize("case", CONV_CASES)
def test_the_loop_reference_in_layers_matches_the_test_oracle_and_both_paths(case):
    """layers.conv2d_loops (the definition a student reads) equals this file's independent oracle, and the
    im2col path (Conv2D(fast=False)) and the fast path equal it."""
    from cnnviz.nn.layers import conv2d_loops

    N, C, H, W, F, K, s, p = case
    rng = np.random.default_rng(21)
    x = rng.standard_normal((N, C, H, W))
    Wt, b = rng.standard_normal((F, C, K, K)), rng.standard_normal(F)
    ref = conv2d_loops(x, Wt, b, s, p)
    np.testing.assert_allclose(ref, naive_conv(x, Wt, b, s, p), rtol=1e-12, atol=1e-12)
    for fast in (False, True):
        layer = Conv2D(C, F, K, stride=s, padding=p, fast=fast)
        layer.params = {"W": Wt.copy(), "b": b.copy()}
        np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CONV_CASES)
def test_the_fast_path_returns_nchw_views_and_takes_any_dout(case):
    """The fast path's output and dx are NCHW arrays (indexed like the general path's, and equal to it in
    test_conv_fast_path_equals_general_path) whose memory has the images innermost, not copied to NCHW
    order; its backward gives the same numbers for dout in any memory layout."""
    N, C, H, W, F, K, s, p = case
    rng = np.random.default_rng(22)
    layer = Conv2D(C, F, K, stride=s, padding=p, rng=rng)
    assert layer.fast  # the default
    x = rng.random((N, C, H, W), dtype=np.float32)
    y = layer.forward(x)
    assert y.shape == (N, F) + layer.output_shape((C, H, W))[1:]
    assert y.base is not None and y.transpose(1, 2, 3, 0).flags.c_contiguous  # (F, H_out, W_out, N) memory
    d = rng.standard_normal(y.shape).astype(np.float32)
    results = []
    for dout in (d, _images_innermost(d), np.asfortranarray(d)):
        dx = layer.backward(dout)
        assert dx.shape == (N, C, H, W) and dx.strides[0] == dx.itemsize  # the images innermost
        results.append((dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def _images_innermost(x):
    """The same (N, C, H, W) values in memory ordered (C, H, W, N), as the fast convolution returns them."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


@pytest.mark.parametrize("make", [ReLU, Sigmoid, Tanh, lambda: MaxPool2D(2), lambda: AvgPool2D(2),
                                  lambda: MaxPool2D(3, 2), Flatten],
                         ids=["relu", "sigmoid", "tanh", "maxpool", "avgpool", "maxpool3s2", "flatten"])
def test_generic_layers_give_the_same_numbers_for_any_layout_and_keep_it(make):
    """No layer depends on how its input is laid out in memory: the fast convolution's images-innermost
    views and C-contiguous arrays give identical outputs and gradients. The outputs and gradients of the
    elementwise and pooling layers keep the input's memory order, so that the fast path's layout passes
    through them without copies and dout reaches the convolution in its own layout."""
    rng = np.random.default_rng(23)
    x_c = np.round(rng.standard_normal((6, 3, 8, 8)) * 2).astype(np.float32)  # ties for max-pool
    x_v = _images_innermost(x_c)
    a, b = make(), make()
    y_v, y_c = a.forward(x_v), b.forward(x_c)
    np.testing.assert_array_equal(y_v, y_c)
    d = rng.standard_normal(y_c.shape).astype(np.float32)
    d_v = np.ascontiguousarray(d.T).T if d.ndim == 2 else _images_innermost(d)  # as Dense returns it
    dx_v, dx_c = a.backward(d_v), b.backward(d)
    np.testing.assert_array_equal(dx_v, dx_c)
    if y_v.ndim == 4:
        assert y_v.transpose(1, 2, 3, 0).flags.c_contiguous
    else:  # Flatten: the images-innermost input becomes an (N, C*H*W) view, transposed in memory, no copy
        assert np.shares_memory(y_v, x_v) and y_v.T.flags.c_contiguous
    assert dx_v.transpose(1, 2, 3, 0).flags.c_contiguous
    assert dx_c.flags.c_contiguous


@pytest.mark.parametrize("n_out", [1, 4])
def test_dense_dx_is_laid_out_like_its_input(n_out):
    """Dense gives the same numbers for a transposed input (Flatten of the fast convolution's output) and
    a C-contiguous one, and returns dx in its input's memory order, for the one-output outer product too."""
    rng = np.random.default_rng(24)
    x_c = rng.standard_normal((5, 12)).astype(np.float32)
    x_t = np.ascontiguousarray(x_c.T).T  # (N, in), memory (in, N)
    a = Dense(12, n_out, rng=rng)
    b = Dense(12, n_out)
    b.params = {k: v.copy() for k, v in a.params.items()}
    np.testing.assert_allclose(a.forward(x_t), b.forward(x_c), rtol=1e-6)
    d = rng.standard_normal((5, n_out)).astype(np.float32)
    dx_t, dx_c = a.backward(d), b.backward(d)
    np.testing.assert_allclose(dx_t, dx_c, rtol=1e-6)
    np.testing.assert_allclose(dx_c, d @ a.params["W"].T, rtol=1e-6)
    assert dx_t.T.flags.c_contiguous and dx_c.flags.c_contiguous
    for k in ("W", "b"):
        np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=1e-6)

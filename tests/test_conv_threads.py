"""The threaded images-innermost convolution: a large convolution is cut into parts of output rows that run on
helper threads (CNNVIZ_CONV_THREADS). Its results must not depend on the split: the same as one thread (and
as the general im2col path), for batches below and above the threshold, with padding and stride variants,
also when the helper is busy or several callers (app sessions) convolve at once."""

import threading

import numpy as np
import pytest

from cnnviz import layers
from cnnviz.layers import Conv2D, conv_threads

# (N, C, H, W, F, K, stride, padding): F <= 3 uses matrix-vector products, F > 3 batched matrix products
CASES = [
    (7, 1, 28, 28, 3, 5, 1, 0),   # the tutorial's conv, small batch
    (5, 1, 28, 28, 8, 5, 1, 2),   # classroom-like filters with padding
    (4, 1, 13, 11, 2, 3, 2, 1),   # stride 2, padding 1, non-square
    (3, 2, 12, 12, 4, 3, 3, 0),   # two channels, stride 3
    (6, 1, 9, 9, 3, 5, 1, 4),     # padding larger than K - 1: parts made only of padding rows
    (2, 3, 10, 8, 5, 4, 1, 1),    # three channels, even kernel
]


def _conv(C, F, K, s, p, fast=True):
    conv = Conv2D(C, F, K, stride=s, padding=p, rng=np.random.default_rng(3))
    conv.params["b"] = np.random.default_rng(4).standard_normal(F).astype(np.float32)
    conv.fast = fast
    return conv


def _run(conv, x, dout):
    """forward output, dx, dW, db (copies) of one forward and backward."""
    y = np.array(conv.forward(x))
    dx = np.array(conv.backward(dout, need_dx=True))
    return y, dx, conv.grads["W"].copy(), conv.grads["b"].copy()


def _data(N, C, H, W, F, K, s, p, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((N, C, H, W), dtype=np.float32)
    Ho, Wo = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
    dout = rng.standard_normal((N, F, Ho, Wo)).astype(np.float32)
    return x, dout


def _assert_same(a, b, exact_output=True):
    (y1, dx1, dw1, db1), (y2, dx2, dw2, db2) = a, b
    if exact_output:  # each output row is the same product on the same data, whatever the split
        np.testing.assert_array_equal(y1, y2)
    else:
        np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-5, atol=1e-5)
    # the filter gradient sums the parts' partial products: float32 rounding of a different order only
    np.testing.assert_allclose(dw1, dw2, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(db1, db2, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_equals_one_thread_and_general_path(case, threads, monkeypatch):
    N, C, H, W, F, K, s, p = case
    x, dout = _data(*case)
    monkeypatch.setattr(layers, "_usable_cores", lambda: 4)
    monkeypatch.setattr(layers, "_CONV_THREAD_MIN_MACS", 0)  # split even these small convolutions
    monkeypatch.setenv("CNNVIZ_CONV_THREADS", "1")
    one = _conv(C, F, K, s, p)
    ref = _run(one, x, dout)
    assert len(one._cache[2]) == 1
    monkeypatch.setenv("CNNVIZ_CONV_THREADS", str(threads))
    split = _conv(C, F, K, s, p)
    got = _run(split, x, dout)
    Ho = (H + 2 * p - K) // s + 1
    assert len(split._cache[2]) == min(threads, Ho)  # really split
    _assert_same(ref, got)
    _assert_same(_run(_conv(C, F, K, s, p, fast=False), x, dout), got, exact_output=False)


@pytest.mark.parametrize("N, parts", [(1, 1), (60, 1), (120, 2), (200, 2)])
def test_tutorial_conv_splits_only_large_batches(N, parts, monkeypatch):
    """Real threshold: single-image predict and small batches stay on one thread; the tutorial's 200-image
    step is split in two. Results equal the one-thread path either way."""
    monkeypatch.setattr(layers, "_usable_cores", lambda: 2)
    monkeypatch.delenv("CNNVIZ_CONV_THREADS", raising=False)
    x, dout = _data(N, 1, 28, 28, 3, 5, 1, 0, seed=N)
    conv = _conv(1, 3, 5, 1, 0)
    got = _run(conv, x, dout)
    assert len(conv._cache[2]) == parts
    monkeypatch.setenv("CNNVIZ_CONV_THREADS", "1")
    _assert_same(_run(_conv(1, 3, 5, 1, 0), x, dout), got)


def test_need_dx_false_and_float64_with_threads(monkeypatch):
    monkeypatch.setattr(layers, "_usable_cores", lambda: 2)
    monkeypatch.setattr(layers, "_CONV_THREAD_MIN_MACS", 0)
    x, dout = _data(3, 1, 10, 10, 3, 3, 1, 1)
    x64, dout64 = x.astype(np.float64), dout.astype(np.float64)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CNNVIZ_CONV_THREADS", threads)
        conv = _conv(1, 3, 3, 1, 1)
        for k in conv.params:
            conv.params[k] = conv.params[k].astype(np.float64)
        y = np.array(conv.forward(x64))
        assert y.dtype == np.float64
        assert conv.backward(dout64, need_dx=False) is None
        assert conv.grads["W"].dtype == np.float64
        results[threads] = (y, conv.grads["W"].copy(), conv.grads["b"].copy())
    np.testing.assert_array_equal(results["1"][0], results["2"][0])
    np.testing.assert_allclose(results["1"][1], results["2"][1], rtol=1e-12)
    np.testing.assert_allclose(results["1"][2], results["2"][2], rtol=1e-12)


def _take_all_helpers(free) -> int:
    """Mark every helper busy; returns how many were idle."""
    n = 0
    while free.acquire(blocking=False):
        n += 1
    return n


def test_busy_helper_runs_the_part_on_the_calling_thread():
    """When no helper is idle the caller does every part itself (it never waits in a queue)."""
    _, free = layers._helper_pool(1)
    seen = []

    def part(lo, hi):
        seen.append((lo, hi, threading.current_thread().name))
        return hi - lo

    idle = _take_all_helpers(free)
    assert idle >= 1
    try:
        assert layers._run_parts(part, [0, 3, 7]) == [3, 4]
    finally:
        for _ in range(idle):
            free.release()
    assert [name for _, _, name in seen] == [threading.current_thread().name] * 2
    seen.clear()
    assert layers._run_parts(part, [0, 3, 7]) == [3, 4]
    helpers = {lo: name for lo, _, name in seen}
    assert helpers[0] == threading.current_thread().name
    assert helpers[3].startswith("cnnviz-conv")
    assert _take_all_helpers(free) == idle  # every helper was given back after its part
    for _ in range(idle):
        free.release()


def test_helper_exception_reaches_the_caller():
    def part(lo, hi):
        if lo > 0:
            raise ValueError("boom in part")
        return lo

    _, free = layers._helper_pool(1)
    idle = _take_all_helpers(free)
    for _ in range(idle):
        free.release()
    with pytest.raises(ValueError, match="boom in part"):
        layers._run_parts(part, [0, 2, 4])
    assert _take_all_helpers(free) == idle  # the helper was given back
    for _ in range(idle):
        free.release()


def test_many_callers_at_once_get_their_own_results(monkeypatch):
    """Several sessions convolving at the same time (each with its own layer) share the helper pool."""
    monkeypatch.setattr(layers, "_usable_cores", lambda: 2)
    monkeypatch.setattr(layers, "_CONV_THREAD_MIN_MACS", 0)
    monkeypatch.setenv("CNNVIZ_CONV_THREADS", "2")
    inputs = [_data(4 + k, 1, 16, 16, 3, 5, 1, k % 3, seed=k) for k in range(6)]
    expected = [_run(_conv(1, 3, 5, 1, k % 3), *inputs[k]) for k in range(6)]
    got, errors = [None] * 6, []

    def session(k):
        try:
            conv = _conv(1, 3, 5, 1, k % 3)
            for _ in range(5):
                got[k] = _run(conv, *inputs[k])
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(6):
        _assert_same(expected[k], got[k])


@pytest.mark.parametrize("env, cores, expected", [
    (None, 2, 2), (None, 8, 2), (None, 1, 1), ("1", 8, 1), ("4", 8, 4), ("4", 2, 2), ("0", 2, 1),
    ("-3", 2, 1), ("two", 2, 1), ("", 2, 2),
])
def test_conv_threads_follows_env_and_cores(env, cores, expected, monkeypatch):
    monkeypatch.setattr(layers, "_usable_cores", lambda: cores)
    if env is None:
        monkeypatch.delenv("CNNVIZ_CONV_THREADS", raising=False)
    else:
        monkeypatch.setenv("CNNVIZ_CONV_THREADS", env)
    assert conv_threads() == expected

"""The tutorial's loop algorithm (cnnviz.nn.tutorial): shapes, worked example, agreement with cnnviz's forward
pass, its vectorised replica, and the gradient comparison against true (numerically checked) gradients."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.nn import tutorial as T
from cnnviz.nn.layers import Conv2D
from cnnviz.nn.network import build
from cnnviz.train.data import fixed_split, load_subset


@pytest.fixture(scope="module")
def data200():
    """The tutorial's 200 images (stratified prefix of the training order), float64 in [0, 1], binary y."""
    images, labels = load_subset()
    idx = fixed_split(labels)[0][:200]
    return images[idx].astype(np.float64) / 255.0, (labels[idx] > 4).astype(np.float64)


@pytest.fixture(scope="module")
def params():
    return T.init_params(np.random.default_rng(0))


def test_worked_example_through_the_tutorial_loops():
    image = np.array([[1, 7, 2], [11, 1, 23], [2, 2, 2]], dtype=float)
    kernel = np.array([[1, 1], [0, 1]], dtype=float)
    out = T.tutorial_conv(image[None], kernel[None])  # (1, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], [[9, 32], [14, 26]])


def test_tutorial_shapes_and_patches(data200, params):
    x, _ = data200
    X = T.to_tutorial_layout(x)
    assert X.shape == (28, 28, 200)
    patches = T.extract_patches(X)
    assert patches.shape == (200, 576, 5, 5)
    # patch j = a*24 + b of image i is X[a:a+5, b:b+5, i], i.e. the transposed image's window
    np.testing.assert_array_equal(patches[7, 3 * 24 + 11], x[7].T[3:8, 11:16])
    filter_output = T.conv_forward_loops(patches, params["f"])
    assert filter_output.shape == (200, 3, 576)


def test_loop_forward_equals_cnnviz_forward(data200, params):
    x, y = data200
    x, y = x[:12], y[:12]
    X = T.to_tutorial_layout(x)
    cache = T.tutorial_forward(T.extract_patches(X), y, params)
    W, Wd = T.params_to_cnnviz(params)
    conv = Conv2D(1, 3, 5)
    conv.params["W"], conv.params["b"] = W, np.zeros(3)
    maps = conv.forward(x[:, None])  # (12, 3, 24, 24), natural orientation
    # the tutorial's features are ordered (filter, column, row) of the natural maps
    np.testing.assert_allclose(cache["filter_output"], maps.transpose(0, 1, 3, 2).reshape(12, 3, 576),
                               rtol=1e-12, atol=1e-12)
    # the whole cnnviz tutorial preset up to the dense output (before the tutorial's standardisation)
    net = build("tutorial", rng=0).astype(np.float64)
    net.set_params({"0.W": W, "0.b": np.zeros(3), "3.W": Wd, "3.b": np.zeros(1)})
    net.forward(x[:, None])
    np.testing.assert_allclose(net.outputs[1].transpose(0, 1, 3, 2).reshape(12, -1),
                               cache["filter_output_sigmoid"].T, rtol=1e-12)
    np.testing.assert_allclose(net.outputs[3][:, 0], cache["z_raw"][0], rtol=1e-12)


def test_params_round_trip(params):
    W, Wd = T.params_to_cnnviz(params)
    assert W.shape == (3, 1, 5, 5) and Wd.shape == (1728, 1)
    np.testing.assert_array_equal(W[1, 0], params["f"][:, :, 1].T)
    back = T.params_from_cnnviz(W, Wd)
    np.testing.assert_array_equal(back["f"], params["f"])
    np.testing.assert_array_equal(back["wo"], params["wo"])


def test_vectorised_replica_equals_the_loops(data200, params):
    x, y = data200
    X = T.to_tutorial_layout(x[:16])
    loss, g = T.tutorial_step(X, y[:16], params)
    v = T.tutorial_gradients(X, y[:16], params)
    assert loss == pytest.approx(v["loss"], rel=1e-12)
    assert g["f"].shape == (5, 5, 3) and g["wo"].shape == (1728, 1)
    np.testing.assert_allclose(v["f"], g["f"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(v["wo"], g["wo"], rtol=1e-10, atol=1e-14)


def test_true_gradients_match_numerical_differentiation(data200):
    """The reference: central differences of the tutorial's own (loop) forward pass, mean loss."""
    x, y = data200
    x, y = x[:6], y[:6]
    rng = np.random.default_rng(3)
    W = rng.uniform(-0.3, 0.3, size=(3, 1, 5, 5))
    Wd = rng.uniform(-0.2, 0.2, size=(1728, 1))
    true = T.true_gradients(x, y, W, Wd)
    X = T.to_tutorial_layout(x)
    patches = T.extract_patches(X)

    def loss(W_, Wd_):
        return float(T.tutorial_forward(patches, y, T.params_from_cnnviz(W_, Wd_))["error"].mean())

    eps = 1e-6
    for flat in rng.choice(75, size=6, replace=False):
        idx = np.unravel_index(flat, W.shape)
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        num = (loss(Wp, Wd) - loss(Wm, Wd)) / (2 * eps)
        assert true["0.W"][idx] == pytest.approx(num, rel=1e-4, abs=1e-9)
    for i in rng.choice(1728, size=6, replace=False):
        Wp, Wm = Wd.copy(), Wd.copy()
        Wp[i] += eps
        Wm[i] -= eps
        num = (loss(W, Wp) - loss(W, Wm)) / (2 * eps)
        assert true["3.W"][i, 0] == pytest.approx(num, rel=1e-4, abs=1e-9)


def test_compare_gradients_finds_the_known_discrepancies(data200, params):
    x, y = data200
    r = T.compare_gradients(T.params_to_cnnviz(params), x, y)
    assert r["tutorial"]["0.W"].shape == r["true"]["0.W"].shape == (3, 1, 5, 5)
    assert r["tutorial"]["3.W"].shape == r["true"]["3.W"].shape == (1728, 1)
    # the tutorial's filter gradient points away from the true one (the issue measured about -0.7)
    assert r["metrics"]["0.W"]["cosine"] < -0.5
    assert r["metrics"]["3.W"]["cosine"] < 0.9
    rows = {row["label"]: row["metrics"] for row in r["ablation"]}
    assert rows["all fixed"]["0.W"]["cosine"] > 0.999999
    assert rows["all fixed"]["0.W"]["rel_error"] < 1e-8
    assert rows["all fixed"]["3.W"]["rel_error"] < 1e-8
    # fixing the standardisation alone makes the dense gradient's direction right, leaving the scale N x
    fixed_std = rows["fix only: " + T.MISTAKES["standardisation"][0]]["3.W"]
    assert fixed_std["cosine"] > 0.999999 and fixed_std["norm_ratio"] == pytest.approx(200, rel=1e-6)
    # each of the three mistakes the issue names is enough on its own to spoil the filter gradient
    left = {m["key"]: m["cosine_if_only_left"]["0.W"] for m in r["mistakes"]}
    for key in ("standardisation", "average_before", "resize"):
        assert left[key] < 0.9, (key, left[key])
    assert left["sum_over_images"] > 0.999999  # a scale-only mistake leaves the direction alone
    assert all(m["explanation"] and m["title"] for m in r["mistakes"])
    assert "cosine" in r["explanations"]["0.W"] and "resize" in r["explanations"]["0.W"]
    assert "all fixed" in T.format_comparison(r)


def test_compare_gradients_from_a_network_with_loops(data200):
    x, y = data200
    net = build("tutorial", rng=1, init="tutorial")
    fast = T.compare_gradients(net, x[:10, None].astype(np.float32), y[:10])
    slow = T.compare_gradients(net, x[:10, None].astype(np.float32), y[:10], use_loops=True)
    for key in ("0.W", "3.W"):
        np.testing.assert_allclose(fast["tutorial"][key], slow["tutorial"][key], rtol=1e-9, atol=1e-14)
        assert fast["tutorial"][key].shape == dict(net.named_params())[key].shape
    assert T.compare_gradients(net, x[:30], y[:30], max_images=12)["n_images"] == 12
    with pytest.raises(ValueError):
        T.compare_gradients(net, x[:1], y[:1])
    with pytest.raises(ValueError):
        T.tutorial_gradients(T.to_tutorial_layout(x[:4]), y[:4], T.params_from_cnnviz(
            *T._weights_of(net)), fixes=("nonsense",))

"""Network tests: presets, spec round trip and validation, shape inference, an end-to-end gradient check,
copy independence, and small training runs that must learn."""

import json
from pathlib import Path

import numpy as np
import pytest
from gradcheck import numerical_grad, rel_error

from cnnviz.nn.layers import Conv2D, Dense, Sigmoid
from cnnviz.nn.losses import MSE, SoftmaxCrossEntropy
from cnnviz.nn.network import PRESET_LAYERS, Network, build, from_spec, infer_shapes
from cnnviz.nn.optim import SGD, Adam

ASSET = Path(__file__).resolve().parents[1] / "assets" / "mnist_5k.npz"


@pytest.mark.parametrize("name,out_shape,n_params", [
    ("tutorial", (5, 1), 3 * 25 + 3 + 1728 + 1),
    ("classroom", (5, 10), 8 * 25 + 8 + 1152 * 10 + 10),
    ("deeper", (5, 10), 8 * 25 + 8 + 16 * 8 * 25 + 16 + 784 * 10 + 10),
])
def test_presets_shapes(name, out_shape, n_params):
    net = build(name, rng=0)
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    y = net.forward(x)
    assert y.shape == out_shape and y.dtype == np.float32
    assert net.n_params == n_params
    assert len(net.outputs) == len(net.layers)
    assert net.outputs[-1] is y
    p = net.predict_proba(x)
    assert p.shape == out_shape
    if name == "tutorial":
        assert np.all((p > 0) & (p < 1))
    else:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    net.backward(np.ones_like(y))
    for (pn, prm), (gn, g) in zip(net.named_params(), net.named_grads(), strict=True):
        assert pn == gn and prm.shape == g.shape and g.dtype == np.float32
        assert np.all(np.isfinite(g))


def test_tutorial_preset_is_the_tutorials_network():
    net = build("tutorial")
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Conv2D", "Sigmoid", "Flatten", "Dense", "Sigmoid"]
    assert net.layers[0].params["W"].shape == (3, 1, 5, 5)
    assert net.layers[3].params["W"].shape == (1728, 1)
    assert [name for name, _ in net.named_params()] == ["0.W", "0.b", "3.W", "3.b"]
    assert infer_shapes(PRESET_LAYERS["tutorial"]) == [(3, 24, 24), (3, 24, 24), (1728,), (1,), (1,)]
    tut = build("tutorial", init="tutorial", rng=1)
    w = tut.layers[0].params["W"]
    assert w.min() >= 0 and w.max() < 1 and w.std() > 0.2  # uniform(0, 1) as the tutorial's np.random.rand


def test_seeded_init_is_deterministic_and_differs_by_seed():
    a, b, c = build("classroom", rng=3), build("classroom", rng=3), build("classroom", rng=4)
    np.testing.assert_array_equal(a.layers[0].params["W"], b.layers[0].params["W"])
    assert not np.array_equal(a.layers[0].params["W"], c.layers[0].params["W"])
    # He init before ReLU: std close to sqrt(2 / 25)
    w = build("deeper", rng=0).layers[3].params["W"]
    assert abs(w.std() - np.sqrt(2 / 200)) < 0.01


def test_spec_round_trip_through_json():
    for name in PRESET_LAYERS:
        net = build(name, rng=0)
        spec = json.loads(json.dumps(net.spec()))
        assert spec == PRESET_LAYERS[name]
        assert from_spec(spec).spec() == spec
    custom = [{"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 2,
               "padding": 1},
              {"type": "Tanh"}, {"type": "AvgPool2D", "size": 2}, {"type": "Flatten"},
              {"type": "Dense", "in_features": 4 * 7 * 7, "out_features": 10}]
    net = from_spec(custom, rng=0, input_shape=(1, 28, 28))
    assert net.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    assert from_spec(net.spec()).spec() == net.spec()


@pytest.mark.parametrize("bad", [
    [],
    [{"type": "Conv3D", "in_channels": 1}],
    [{"type": "Conv2D", "in_channels": 1, "out_channels": 3}],  # missing kernel_size
    [{"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 5, "dilation": 2}],
    [{"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 5.5}],
    [{"type": "Conv2D", "in_channels": 1, "out_channels": 0, "kernel_size": 5}],
    [{"type": "MaxPool2D", "size": "2"}],
    [{"type": "Dense", "in_features": 10, "out_features": True}],
    ["ReLU"],
])
def test_from_spec_rejects_bad_specs(bad):
    with pytest.raises(ValueError):
        from_spec(bad)


def test_infer_shapes_checks_compatibility():
    ok = PRESET_LAYERS["deeper"]
    assert infer_shapes(ok)[-1] == (10,)
    wrong_dense = [dict(s) for s in PRESET_LAYERS["classroom"]]
    wrong_dense[-1]["in_features"] = 1000
    with pytest.raises(ValueError, match="1152"):
        infer_shapes(wrong_dense)
    with pytest.raises(ValueError, match="Flatten"):
        infer_shapes([{"type": "Dense", "in_features": 784, "out_features": 10}])
    with pytest.raises(ValueError, match="channels"):
        infer_shapes([{"type": "Conv2D", "in_channels": 3, "out_channels": 2, "kernel_size": 3}])
    too_small = [{"type": "Conv2D", "in_channels": 1, "out_channels": 2, "kernel_size": 5}] + \
        [{"type": "MaxPool2D", "size": 2}] * 5  # 24 -> 12 -> 6 -> 3 -> 1 -> too small
    with pytest.raises(ValueError, match="layer 5"):
        infer_shapes(too_small)
    with pytest.raises(ValueError):
        from_spec(wrong_dense, input_shape=(1, 28, 28))
    assert infer_shapes([{"type": "Flatten"}], input_shape=(2, 3, 4)) == [(24,)]


def test_network_end_to_end_gradient_check():
    """Whole-network backward (conv, pool, dense, softmax CE) against central differences, float64."""
    rng = np.random.default_rng(0)
    spec = [{"type": "Conv2D", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1},
            {"type": "Tanh"}, {"type": "MaxPool2D", "size": 2},
            {"type": "Conv2D", "in_channels": 3, "out_channels": 2, "kernel_size": 2, "stride": 2},
            {"type": "Sigmoid"}, {"type": "Flatten"},
            {"type": "Dense", "in_features": 2 * 2 * 1, "out_features": 3}]
    net = from_spec(spec, rng=rng, input_shape=(2, 8, 6)).astype(np.float64)
    x = rng.standard_normal((3, 2, 8, 6))
    labels = np.array([0, 2, 1])
    loss = SoftmaxCrossEntropy()

    def f():
        return loss.forward(net.forward(x), labels)

    f()
    dx = net.backward(loss.backward(), need_dx=True)
    analytic = {n: g.copy() for n, g in net.named_grads()}
    assert dx.shape == x.shape
    for name, p in net.named_params():
        err = rel_error(numerical_grad(f, p), analytic[name])
        assert err < 1e-6, (name, err)
    # without need_dx the first layer skips its input gradient
    f()
    assert net.backward(loss.backward()) is None


def test_copy_is_independent_and_backward_keeps_params():
    net = build("classroom", rng=0)
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    y = net.forward(x)
    before = {n: p.copy() for n, p in net.named_params()}
    net.backward(np.ones_like(y))
    for n, p in net.named_params():
        np.testing.assert_array_equal(p, before[n])
    twin = net.copy()
    np.testing.assert_array_equal(twin.forward(x), y)
    twin.layers[0].params["W"] += 1.0
    np.testing.assert_array_equal(net.layers[0].params["W"], before["0.W"])
    for (_, g), (_, g2) in zip(net.named_grads(), twin.named_grads(), strict=True):
        np.testing.assert_array_equal(g, g2)


def test_predict_proba_sigmoid_output_is_one_column():
    net = Network([Conv2D(1, 2, 3, rng=0), Sigmoid(), _flatten(), Dense(2 * 4 * 4, 1, rng=0), Sigmoid()])
    net.layers[3].params["W"][...] = 1.0 / 32
    net.layers[3].params["b"][...] = -0.5
    # zero images: conv 0 -> sigmoid 0.5 -> dense 32 * 0.5 / 32 - 0.5 = 0 -> sigmoid 0.5
    p = net.predict_proba(np.zeros((3, 1, 6, 6), np.float32))
    assert p.shape == (3, 1)
    np.testing.assert_allclose(p, 0.5)
    net.layers[3].params["b"][...] = 0.0
    np.testing.assert_allclose(net.predict_proba(np.zeros((1, 1, 6, 6), np.float32)), 1 / (1 + np.exp(-0.5)),
                               rtol=1e-6)


def _flatten():
    from cnnviz.nn.layers import Flatten
    return Flatten()


def _bars(n, rng):
    """Synthetic 2-class images (N, 1, 12, 12): a horizontal or a vertical bar at a random place, noisy."""
    x = rng.random((n, 1, 12, 12), dtype=np.float32) * 0.3
    y = rng.integers(0, 2, n)
    pos = rng.integers(1, 11, n)
    for i in range(n):
        if y[i]:
            x[i, 0, :, pos[i]] = 1.0
        else:
            x[i, 0, pos[i], :] = 1.0
    return x, y


def test_small_cnn_learns_synthetic_bars():
    rng = np.random.default_rng(0)
    x, y = _bars(256, rng)
    xv, yv = _bars(200, rng)
    spec = [{"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
            {"type": "ReLU"}, {"type": "MaxPool2D", "size": 2}, {"type": "Flatten"},
            {"type": "Dense", "in_features": 4 * 5 * 5, "out_features": 2}]
    net = from_spec(spec, rng=1)
    loss, opt = SoftmaxCrossEntropy(), Adam(0.01)
    first = None
    for step in range(60):
        idx = np.arange(step * 32, step * 32 + 32) % 256
        value = loss.forward(net.forward(x[idx]), y[idx])
        first = value if first is None else first
        net.backward(loss.backward())
        opt.step(net)
    acc = (net.predict_proba(xv).argmax(1) == yv).mean()
    assert value < first / 4
    assert acc >= 0.95


@pytest.mark.slow
@pytest.mark.skipif(not ASSET.exists(), reason="assets/mnist_5k.npz not built")
def test_classroom_and_tutorial_learn_on_real_mnist():
    with np.load(ASSET) as d:
        images, labels = d["images"], d["labels"]
    order = np.random.default_rng(0).permutation(len(labels))[:1200]  # the file is sorted by digit
    x = (images[order, None] / np.float32(255)).astype(np.float32)  # (N, 1, 28, 28)
    y = labels[order].astype(np.int64)
    xtr, ytr, xva, yva = x[:1000], y[:1000], x[1000:], y[1000:]
    net = build("classroom", rng=0)
    loss, opt = SoftmaxCrossEntropy(), SGD(0.1, momentum=0.9)
    for _ in range(2):
        for i in range(0, 1000, 50):
            loss.forward(net.forward(xtr[i:i + 50]), ytr[i:i + 50])
            net.backward(loss.backward())
            opt.step(net)
    acc = (net.predict_proba(xva).argmax(1) == yva).mean()
    assert acc > 0.8, acc
    # the tutorial net, full batch of 200 with MSE on digit > 4: loss goes down, beats chance
    tut = build("tutorial", rng=0)
    t = (ytr[:200] > 4).astype(np.float32)[:, None]
    mse, adam = MSE(), Adam(0.001)
    losses = []
    for _ in range(60):
        losses.append(mse.forward(tut.forward(xtr[:200]), t))
        tut.backward(mse.backward())
        adam.step(tut)
    assert losses[-1] < 0.85 * losses[0]
    assert all(b < a for a, b in zip(losses[::10], losses[10::10], strict=False))
    assert ((tut.predict_proba(xva)[:, 0] > 0.5) == (yva > 4)).mean() > 0.6


def test_infer_shapes_allocates_no_weights():
    """Validating a (possibly hostile) custom spec must not allocate its weights."""
    huge = [{"type": "Flatten"}, {"type": "Dense", "in_features": 784, "out_features": 10 ** 9}]
    assert infer_shapes(huge) == [(784,), (10 ** 9,)]


@pytest.mark.parametrize("name", sorted(PRESET_LAYERS))
def test_presets_fast_and_general_conv_paths_agree(name):
    """Whole presets give the same outputs and gradients with the fast convolution as with the plain im2col
    path, on images with tied maxima."""
    rng = np.random.default_rng(5)
    x = (rng.random((6, 1, 28, 28)) > 0.7).astype(np.float32)  # many tied 1.0 pixels, as in MNIST
    fast = build(name, rng=1)
    general = fast.copy()
    for layer in general.layers:
        if isinstance(layer, Conv2D):
            layer.fast = False
    y1, y2 = fast.forward(x), general.forward(x)
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    d = rng.standard_normal(y1.shape).astype(np.float32)
    dx1, dx2 = fast.backward(d, need_dx=True), general.backward(d, need_dx=True)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-4, atol=1e-6)
    for (n, g1), (_, g2) in zip(fast.named_grads(), general.named_grads(), strict=True):
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5, err_msg=n)


@pytest.mark.parametrize("name", sorted(PRESET_LAYERS))
def test_empty_batch_and_integer_images(name):
    net = build(name, rng=0)
    y = net.forward(np.zeros((0, 1, 28, 28), np.float32))
    assert y.shape[0] == 0
    net.backward(np.zeros_like(y))
    assert net.predict_proba(np.zeros((0, 1, 28, 28), np.float32)).shape[0] == 0
    images = np.random.default_rng(0).integers(0, 256, (2, 1, 28, 28)).astype(np.uint8)
    assert net.forward(images).dtype == np.float32  # raw uint8 pixels give float32, not float64

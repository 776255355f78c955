"""Loss tests: exact values, numerical gradient checks (float64, central differences), stability."""

import numpy as np
import pytest
from gradcheck import numerical_grad, rel_error

from cnnviz.nn.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy, get_loss, softmax


def test_mse_is_the_tutorials_half_squared_error_mean_over_batch():
    pred = np.array([[0.5], [1.0], [0.0]])
    target = np.array([[1.0], [1.0], [1.0]])
    loss = MSE()
    # ((0.5)^2 / 2 + 0 + 1 / 2) / 3
    assert loss.forward(pred, target) == pytest.approx((0.125 + 0.5) / 3, abs=1e-15)
    np.testing.assert_allclose(loss.backward(), [[-0.5 / 3], [0.0], [-1.0 / 3]])
    # sums over outputs, averages over the batch
    assert MSE().forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])) == pytest.approx(2.5)
    # a (N,) target is accepted for K = 1
    assert MSE().forward(pred, target[:, 0]) == pytest.approx((0.125 + 0.5) / 3)


def test_bce_values_and_clipping():
    p = np.array([[0.8], [0.3]])
    t = np.array([[1.0], [0.0]])
    expected = -(np.log(0.8) + np.log(0.7)) / 2
    assert BinaryCrossEntropy().forward(p, t) == pytest.approx(expected, rel=1e-12)
    # a saturated sigmoid gives a large finite loss and gradient, not inf/nan
    loss = BinaryCrossEntropy()
    value = loss.forward(np.array([[0.0], [1.0]], dtype=np.float32), np.array([[1.0], [0.0]]))
    assert np.isfinite(value) and value > 10
    assert np.all(np.isfinite(loss.backward()))


def test_softmax_ce_values_and_stability():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    lse = np.log(np.exp(1) + np.exp(2) + np.exp(3))
    expected = ((lse - 3.0) + np.log(3.0)) / 2
    loss = SoftmaxCrossEntropy()
    assert loss.forward(logits, labels) == pytest.approx(expected, rel=1e-12)
    p = softmax(logits)
    d = loss.backward()
    np.testing.assert_allclose(d, (p - np.eye(3)[labels]) / 2)
    big = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    loss = SoftmaxCrossEntropy()
    assert loss.forward(big, np.array([0])) == pytest.approx(0.0, abs=1e-6)
    assert loss.forward(big, np.array([1])) == pytest.approx(2000.0, rel=1e-6)
    assert np.all(np.isfinite(loss.backward()))
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("name", ["mse", "bce", "softmax_ce"])
def test_loss_gradients(name):
    rng = np.random.default_rng(0)
    N, K = 4, 3
    if name == "softmax_ce":
        pred = rng.standard_normal((N, K)) * 2
        target = rng.integers(0, K, N)
    else:
        pred = rng.uniform(0.05, 0.95, (N, K))
        target = rng.uniform(0, 1, (N, K)) if name == "mse" else (rng.random((N, K)) > 0.5).astype(float)
    loss = get_loss(name)
    loss.forward(pred, target)
    analytic = loss.backward()
    assert analytic.shape == pred.shape
    numeric = numerical_grad(lambda: get_loss(name).forward(pred, target), pred)
    assert rel_error(analytic, numeric) < 1e-7


def test_get_loss_and_bad_input():
    assert isinstance(get_loss("mse"), MSE)
    assert isinstance(get_loss("bce"), BinaryCrossEntropy)
    assert isinstance(get_loss("softmax_ce"), SoftmaxCrossEntropy)
    with pytest.raises(ValueError):
        get_loss("hinge")
    with pytest.raises(ValueError):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError):
        MSE().forward(np.zeros((2, 3)), np.zeros((2, 2)))
    for name in ("mse", "bce", "softmax_ce"):  # an empty batch has no mean: a clear error, not nan
        with pytest.raises(ValueError, match="empty"):
            target = np.zeros(0, np.int64) if name == "softmax_ce" else np.zeros((0, 3))
            get_loss(name).forward(np.zeros((0, 3)), target)

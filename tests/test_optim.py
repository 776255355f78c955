"""Optimiser tests: exact hand-computed updates for SGD, SGD with momentum and Adam."""

import numpy as np
import pytest

from cnnviz.nn.layers import Dense
from cnnviz.nn.network import Network
from cnnviz.nn.optim import SGD, Adam, make_optimizer


def one_param_net(w, g):
    """A Network whose only parameter 0.W is ``w`` with gradient ``g`` (bias zero, zero grad)."""
    layer = Dense(len(w), 1)
    layer.params["W"] = np.array(w, dtype=np.float32).reshape(-1, 1)
    layer.params["b"] = np.zeros(1, np.float32)
    layer.grads["W"] = np.array(g, dtype=np.float32).reshape(-1, 1)
    layer.grads["b"] = np.zeros(1, np.float32)
    return Network([layer])


def test_sgd_plain_update():
    net = one_param_net([1.0, -2.0], [0.5, -4.0])
    ref = net.layers[0].params["W"]
    SGD(0.1).step(net)
    assert net.layers[0].params["W"] is ref  # updated in place
    np.testing.assert_allclose(ref[:, 0], [1.0 - 0.05, -2.0 + 0.4], rtol=1e-7)
    assert ref.dtype == np.float32


def test_sgd_momentum_exact_updates():
    net = one_param_net([1.0], [1.0])
    opt = SGD(0.1, momentum=0.9)
    opt.step(net)  # v = 1, w = 1 - 0.1 = 0.9
    np.testing.assert_allclose(net.layers[0].params["W"][0, 0], 0.9, rtol=1e-6)
    net.layers[0].grads["W"][...] = 2.0
    opt.step(net)  # v = 0.9 * 1 + 2 = 2.9, w = 0.9 - 0.29 = 0.61
    np.testing.assert_allclose(net.layers[0].params["W"][0, 0], 0.61, rtol=1e-6)


def test_adam_exact_updates():
    net = one_param_net([1.0, 1.0], [0.5, -0.1])
    opt = Adam(0.01)
    opt.step(net)
    # step 1: m_hat = g, v_hat = g^2 -> update = lr * g / (|g| + eps) = +-lr
    np.testing.assert_allclose(net.layers[0].params["W"][:, 0], [0.99, 1.01], rtol=1e-6)
    net.layers[0].grads["W"][...] = [[0.0], [0.0]]
    opt.step(net)
    # step 2: m = 0.9 * 0.1 * g, m_hat = m / 0.19; v = 0.999 * 0.001 * g^2, v_hat = v / 0.001999
    g = np.array([0.5, -0.1])
    m_hat = 0.9 * 0.1 * g / (1 - 0.9 ** 2)
    v_hat = 0.999 * 0.001 * g ** 2 / (1 - 0.999 ** 2)
    expected = np.array([0.99, 1.01]) - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(net.layers[0].params["W"][:, 0], expected, rtol=1e-6)
    assert opt.t == 2


def test_optimizers_do_not_touch_gradients_and_factory():
    net = one_param_net([1.0], [0.3])
    make_optimizer("adam", 0.1).step(net)
    np.testing.assert_allclose(net.layers[0].grads["W"][0, 0], 0.3, rtol=1e-7)
    assert isinstance(make_optimizer("sgd", 0.1, momentum=0.5), SGD)
    assert make_optimizer("sgd", 0.1, momentum=0.5).momentum == 0.5
    with pytest.raises(ValueError):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError):
        SGD(-1.0)
    with pytest.raises(ValueError):
        SGD(0.1, momentum=1.5)

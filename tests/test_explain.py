"""explain.py: the convolution step-through, saliency (vs a numerical gradient) and occlusion maps."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.nn.layers import Dense, Flatten
from cnnviz.nn.network import Network, build
from cnnviz.viz.explain import conv_step_through, occlusion, saliency

TUTORIAL_IMAGE = np.array([[1, 7, 2], [11, 1, 23], [2, 2, 2]])
TUTORIAL_KERNEL = np.array([[1, 1], [0, 1]])


# ----------------------------------------------------------------------------------------------------------
# conv_step_through
# ----------------------------------------------------------------------------------------------------------
def test_tutorial_worked_example():
    steps = conv_step_through(TUTORIAL_IMAGE, TUTORIAL_KERNEL)
    assert [s["value"] for s in steps] == [9, 32, 14, 26]
    assert [(s["row"], s["col"]) for s in steps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    first = steps[0]
    np.testing.assert_array_equal(first["patch"], [[1, 7], [11, 1]])
    np.testing.assert_array_equal(first["product"], [[1, 7], [0, 1]])
    assert set(first) == {"row", "col", "patch", "product", "value"}


def _naive(image, kernel, stride):
    """Loop oracle: the textbook cross-correlation."""
    KH, KW = kernel.shape
    H_out = (image.shape[0] - KH) // stride + 1
    W_out = (image.shape[1] - KW) // stride + 1
    out = np.zeros((H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            out[i, j] = (image[i * stride:i * stride + KH, j * stride:j * stride + KW] * kernel).sum()
    return out


@pytest.mark.parametrize("shape,kshape,stride",
                         [((6, 7), (3, 3), 1), ((9, 8), (3, 2), 2), ((28, 28), (5, 5), 3)])
def test_matches_naive_loop(shape, kshape, stride):
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=shape), rng.normal(size=kshape)
    steps = conv_step_through(image, kernel, stride)
    ref = _naive(image, kernel, stride)
    assert len(steps) == ref.size
    for s in steps:
        assert s["value"] == pytest.approx(ref[s["row"], s["col"]])
        r, c = s["row"] * stride, s["col"] * stride
        np.testing.assert_array_equal(s["patch"], image[r:r + kshape[0], c:c + kshape[1]])
        np.testing.assert_allclose(s["product"], s["patch"] * kernel)


def test_step_through_rejects_bad_input():
    with pytest.raises(ValueError):
        conv_step_through(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        conv_step_through(np.zeros((4, 4, 1)), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        conv_step_through(np.zeros((4, 4)), np.zeros((2, 2)), stride=0)


# ----------------------------------------------------------------------------------------------------------
# saliency
# ----------------------------------------------------------------------------------------------------------
def _numerical_input_gradient(score, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central differences of score(batch) -> (B,) for every pixel of x (1, 1, H, W), all in one batch."""
    _, _, H, W = x.shape
    eye = np.eye(H * W).reshape(H * W, 1, H, W)  # (P, 1, H, W): one pixel nudged per copy
    plus = score(x + eps * eye)  # (P,)
    minus = score(x - eps * eye)
    return ((plus - minus) / (2 * eps)).reshape(H, W)


@pytest.mark.parametrize("preset,cls", [("classroom", 3), ("deeper", 7)])
def test_saliency_matches_numerical_gradient_of_logit(preset, cls):
    net = build(preset, rng=np.random.default_rng(1)).astype(np.float64)
    rng = np.random.default_rng(2)
    x = rng.random((1, 1, 28, 28))
    sal = saliency(net, x, cls)
    assert sal.shape == (28, 28)
    num = _numerical_input_gradient(lambda b: net.forward(b)[:, cls], x)
    # ReLU kinks and max-pool ties make a handful of pixels non-differentiable; compare as a whole.
    err = np.linalg.norm(sal - num) / np.linalg.norm(num)
    assert err < 1e-5, err


@pytest.mark.parametrize("cls", [0, 1])
def test_saliency_of_binary_network_is_gradient_of_sigmoid_output(cls):
    net = build("tutorial", rng=np.random.default_rng(3)).astype(np.float64)
    x = np.random.default_rng(4).random((1, 1, 28, 28)) * 0.3
    sal = saliency(net, x, cls)
    sign = 1.0 if cls == 1 else -1.0  # class 0 ("0-4") is 1 - output
    num = _numerical_input_gradient(lambda b: sign * net.forward(b)[:, 0], x)
    np.testing.assert_allclose(sal, num, rtol=1e-5, atol=1e-9)


def test_saliency_leaves_weights_alone():
    net = build("classroom", rng=0)
    before = {k: v.copy() for k, v in net.named_params()}
    saliency(net, np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32), 2)
    for k, v in net.named_params():
        np.testing.assert_array_equal(v, before[k])


def test_saliency_rejects_batches():
    net = build("classroom", rng=0)
    with pytest.raises(ValueError):
        saliency(net, np.zeros((2, 1, 28, 28), np.float32), 0)


# ----------------------------------------------------------------------------------------------------------
# occlusion
# ----------------------------------------------------------------------------------------------------------
def _quadrant_net() -> Network:
    """A linear net whose class-3 logit is 5 x (ink in the top-left 14x14 quadrant); other logits 0."""
    dense = Dense(784, 10, rng=0)
    W = np.zeros((28, 28, 10), np.float32)
    W[:14, :14, 3] = 5.0 / 50
    dense.params["W"] = W.reshape(784, 10)  # (784, 10): flattened pixel -> class
    dense.params["b"] = np.zeros(10, np.float32)
    return Network([Flatten(), dense])


class _CountingNet:
    """Wraps a network and counts predict_proba calls, to show occlusion runs one batch."""

    def __init__(self, net):
        self.net, self.calls, self.batch_sizes = net, 0, []

    def predict_proba(self, x):
        self.calls += 1
        self.batch_sizes.append(len(x))
        return self.net.predict_proba(x)


def test_occlusion_finds_the_region_that_matters():
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 4:10, 4:10] = 1.0  # ink the class-3 region reads
    x[0, 0, 18:24, 18:24] = 1.0  # ink it ignores
    net = _CountingNet(_quadrant_net())
    occ = occlusion(net, x, 3, size=4, stride=2)
    assert occ.shape == (28, 28) and occ.dtype == np.float32
    assert net.batch_sizes == [1 + 13 * 13]  # the original and every occluded copy in one batch
    assert occ[4:10, 4:10].min() > 0.01  # hiding that ink lowers P(3)
    assert np.abs(occ[16:, 16:]).max() < 1e-6  # hiding ink the class ignores changes nothing
    assert np.abs(occ[:, 20:]).max() < 1e-6 and np.abs(occ[20:, :]).max() < 1e-6


def test_occlusion_covers_every_pixel_with_odd_sizes():
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 0:3, 0:3] = 1.0
    occ = occlusion(_quadrant_net(), x, 3, size=5, stride=4)  # 28 is not a multiple of the stride
    assert occ.shape == (28, 28)
    assert occ[0, 0] > 0
    x[0, 0] = 0
    x[0, 0, 25:, 25:] = 1.0  # last rows/cols are covered by a square too
    assert np.abs(occlusion(_quadrant_net(), x, 3, size=5, stride=4)).max() < 1e-6


def test_occlusion_on_binary_network():
    net = build("tutorial", rng=0)
    x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    o1 = occlusion(net, x, 1)
    o0 = occlusion(net, x, 0)
    np.testing.assert_allclose(o1, -o0, atol=1e-6)  # P(0-4) = 1 - P(5-9)


def test_occlusion_rejects_bad_arguments():
    net = _quadrant_net()
    with pytest.raises(ValueError):
        occlusion(net, np.zeros((2, 1, 28, 28), np.float32), 0)
    with pytest.raises(ValueError):
        occlusion(net, np.zeros((1, 1, 28, 28), np.float32), 0, size=0)

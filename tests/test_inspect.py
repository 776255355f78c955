"""Inspect a filter, the NumPy core (cnnviz.viz.inspect): top patches against a brute-force loop, the
receptive field against the network's own gradient, input maximisation, edits and their exact effect."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.nn.layers import Conv2D
from cnnviz.nn.network import Network, build
from cnnviz.train import data
from cnnviz.train import model_file as io
from cnnviz.viz import figures_inspect as figs
from cnnviz.viz import inspect as insp


@pytest.fixture(scope="module")
def val():
    ds = data.load_dataset("digits", 200)
    return ds.x_val[:300], ds.y_val[:300]  # (300, 1, 28, 28), (300,)


@pytest.fixture(scope="module")
def deeper():
    """The shipped trained deeper net (two conv layers), or a seeded random one if it is missing."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "assets" / "models" / "deeper.npz"
    return io.load_model(path) if path.is_file() else build("deeper", rng=1)


@pytest.fixture(scope="module")
def classroom():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "assets" / "models" / "classroom.npz"
    return io.load_model(path) if path.is_file() else build("classroom", rng=1)


def _params(net: Network) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in net.named_params()}


def _conv_out_loop(net: Network, li: int, f: int, image: np.ndarray, r: int, c: int) -> float:
    """Oracle: filter f's raw output at (r, c) for one image (H, W), by running layers 0..li-1 and then one
    explicit sum over the receptive window of conv li."""
    x = image[None, None].astype(np.float64)  # (1, 1, H, W)
    for layer in net.layers[:li]:
        x = layer.forward(x.astype(np.float32)).astype(np.float64)
    conv = net.layers[li]
    p, s, K = conv.padding, conv.stride, conv.kernel_size
    xp = np.pad(x[0], ((0, 0), (p, p), (p, p)))  # (C, H + 2p, W + 2p)
    window = xp[:, r * s:r * s + K, c * s:c * s + K]  # (C, K, K)
    return float(np.sum(window * conv.params["W"][f]) + conv.params["b"][f])


@pytest.mark.parametrize("which, conv_pos, f", [("classroom", 0, 2), ("deeper", 0, 4), ("deeper", 1, 6)])
@pytest.mark.parametrize("largest", [True, False])
def test_top_patches_are_the_top_activations(request, val, which, conv_pos, f, largest):
    net = request.getfixturevalue(which)
    x, _ = val
    x = x[:60]
    li = insp.conv_layers(net)[conv_pos]
    raw, _ = insp.layer_outputs(net, li, x)
    geo = insp.rf_geometry(net, li)
    got = insp.top_patches(raw[:, f], x[:, 0], geo, k=9, largest=largest)
    # brute force: every image, every output position, one explicit sum each
    Ho, Wo = raw.shape[2:]
    sign = 1.0 if largest else -1.0
    best = []
    for n in range(len(x)):
        vals = [(sign * _conv_out_loop(net, li, f, x[n, 0], r, c), r, c)
                for r in range(Ho) for c in range(Wo)]
        v, r, c = max(vals, key=lambda t: t[0])
        best.append((v, n, r, c))
    best.sort(key=lambda t: -t[0])
    expect_vals = np.array([sign * b[0] for b in best[:9]])
    np.testing.assert_allclose(got.values, expect_vals, rtol=1e-4, atol=1e-4)
    # the same images (ties aside), and each value is the output at the reported position
    assert set(got.index.tolist()) == {b[1] for b in best[:9]}
    for n, r, c, v in zip(got.index, got.rows, got.cols, got.values, strict=True):
        assert _conv_out_loop(net, li, f, x[n, 0], int(r), int(c)) == pytest.approx(float(v), abs=1e-4)
    # the patches are the receptive fields cut from those images
    for n, box, patch in zip(got.index, got.boxes, got.patches, strict=True):
        top, left, bottom, right = box
        padded = np.pad(x[n, 0], 20)
        np.testing.assert_array_equal(patch, padded[top + 20:bottom + 21, left + 20:right + 21])


def test_receptive_field_matches_the_gradient(deeper):
    """The pixels that can reach one conv-2 output are exactly where its input gradient can be nonzero."""
    li = insp.conv_layers(deeper)[1]
    Ho, Wo, r, c = insp.filter_output_position(deeper, li)
    for rr, cc in [(r, c), (0, 0), (Ho - 1, 3)]:
        mask = insp.receptive_field(deeper, li, rr, cc)
        sub = Network(deeper.copy().layers[:li + 1]).astype(np.float64)
        rng = np.random.default_rng(0)
        reach = np.zeros((28, 28), dtype=bool)
        for _ in range(6):  # several random inputs: ReLU/max-pool gates differ, their union is the field
            sub.forward(rng.uniform(0, 1, size=(1, 1, 28, 28)))
            dout = np.zeros((1, 16, Ho, Wo))
            dout[0, :, rr, cc] = 1.0
            reach |= np.abs(sub.backward(dout, need_dx=True)[0, 0]) > 0
        assert not (reach & ~mask).any(), "a pixel outside the field reached the output"
        assert reach.sum() >= 0.8 * mask.sum()
    geo = insp.rf_geometry(deeper, li)
    assert geo.size == 14 and geo.jump == 2


@pytest.mark.parametrize("f", [2, 6, 10])
def test_maximised_input_excites_the_filter_far_more_than_the_mean_patch(deeper, val, f):
    x, _ = val
    li = insp.conv_layers(deeper)[1]
    before = _params(deeper)
    mx = insp.maximize_input(deeper, li, f, steps=300)
    raw, _ = insp.layer_outputs(deeper, li, x)
    _, _, r, c = insp.filter_output_position(deeper, li)
    sub = Network(deeper.copy().layers[:li + 1])
    mean_patch = float(sub.forward(x.mean(axis=0, keepdims=True))[0, f, r, c])  # the mean validation image
    patches = raw[:, f].ravel()  # (N * H_out * W_out,) the filter's output on every validation patch
    reached = float(mx.values[-1])
    assert mx.image.shape == (28, 28) and 0 <= mx.image.min() and mx.image.max() <= 1
    assert reached > 5 * max(abs(mean_patch), 0.2), (reached, mean_patch)
    assert (reached - patches.mean()) / patches.std() > 2.5, "far above the typical validation patch"
    assert reached > 0.9 * float(patches.max()), "about as high as the best validation patch, or higher"
    assert mx.values[-1] > mx.values[:10].max()
    # the image really does that: an independent forward pass gives the same value
    again = Network(deeper.copy().layers[:li + 1]).forward(mx.image[None, None])  # (1, F, H_out, W_out)
    np.testing.assert_allclose(again[0, f, r, c], reached, rtol=1e-4, atol=1e-4)
    for k, v in _params(deeper).items():
        np.testing.assert_array_equal(v, before[k])
    # plain ascent at the end (``settle``) goes higher still: well past every validation patch
    sharp = insp.maximize_input(deeper, li, f, steps=300, settle=0.3, blur_every=8, l2=0.002)
    assert sharp.values[-1] > 1.5 * float(patches.max())


def test_first_layer_maximiser_is_the_filter_itself(classroom):
    """Without regularisation, the [0, 1] image that maximises a first-layer unit has ink exactly where the
    filter's weights are positive (the page says so instead of running the search)."""
    W = classroom.layers[0].params["W"][2, 0]  # (5, 5)
    mx = insp.maximize_input(classroom, 0, 2, steps=100, l2=0.0, blur_every=0, jitter=0)
    top, left, bottom, right = mx.box
    patch = mx.image[top:bottom + 1, left:right + 1]
    np.testing.assert_array_equal(patch > 0.5, W > 0)
    assert insp.is_first_layer_filter(classroom, 0)


def test_knock_out_equals_zeroing_the_weights_and_the_feature_map(deeper, val):
    x, _ = val
    x = x[:50]
    li = insp.conv_layers(deeper)[1]
    before = _params(deeper)
    edited = insp.edit_filter(deeper, li, 5, "knock out")
    # 1) as zeroing those weights by hand
    manual = deeper.copy()
    manual.layers[li].params["W"][5] = 0.0
    manual.layers[li].params["b"][5] = 0.0
    np.testing.assert_array_equal(edited.copy().forward(x), manual.forward(x))
    # 2) as removing the feature map: run the net with channel 5 of conv 2's output set to 0
    net = deeper.copy()
    h = x
    for i, layer in enumerate(net.layers):
        h = layer.forward(h)
        if i == li:
            h = h.copy()
            h[:, 5] = 0.0
    np.testing.assert_allclose(edited.copy().forward(x), h, rtol=1e-5, atol=1e-5)
    assert not np.allclose(h, deeper.copy().forward(x)), "the filter mattered"
    # the original network is untouched
    for k, v in _params(deeper).items():
        np.testing.assert_array_equal(v, before[k])


def test_scale_and_paint(classroom, val):
    x, _ = val
    x = x[:20]
    raw0, _ = insp.layer_outputs(classroom, 0, x)
    scaled = insp.edit_filter(classroom, 0, 3, "scale", factor=-1.5)
    raw1, _ = insp.layer_outputs(scaled, 0, x)
    np.testing.assert_allclose(raw1[:, 3], -1.5 * raw0[:, 3], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(raw1[:, :3], raw0[:, :3])
    k = insp.preset_kernel("vertical edge", 5)
    assert np.linalg.norm(k) == pytest.approx(1.0)
    assert (k[:, :2] < 0).all() and (k[:, 3:] > 0).all() and (k[:, 2] == 0).all()
    painted = insp.edit_filter(classroom, 0, 3, "paint", kernel=k)
    np.testing.assert_array_equal(painted.layers[0].params["W"][3, 0], k)
    # a vertical stroke: the painted vertical-edge filter answers its two edges with opposite signs
    img = np.zeros((28, 28), np.float32)
    img[4:24, 12:16] = 1.0
    fm = insp.layer_outputs(insp.edit_filter(classroom, 0, 3, "paint", kernel=k * 4), 0, img[None, None])[0]
    row = fm[0, 3, 10] - classroom.layers[0].params["b"][3]  # (24,) one row of the raw map, bias removed
    assert row.argmax() < row.argmin()  # dark-then-bright (left edge) positive, bright-then-dark negative
    with pytest.raises(ValueError):
        insp.edit_filter(classroom, 0, 3, "paint", kernel=np.ones((3, 3)))
    with pytest.raises(ValueError):
        insp.edit_filter(classroom, 0, 99, "knock out")
    assert np.abs(insp.preset_kernel("identity")).sum() == pytest.approx(1.0)


def test_class_means_and_accuracy(classroom, val):
    x, y = val
    raw, act = insp.layer_outputs(classroom, 0, x)
    means, counts = insp.class_means(act[:, 2], y)
    for d in range(10):
        sel = act[y == d, 2]
        assert counts[d] == len(sel)
        assert means[d] == pytest.approx(float(sel.mean()), rel=1e-5)
    acc = insp.accuracy(classroom, x, y)
    out = classroom.copy().forward(x)
    assert acc == pytest.approx(float(np.mean(out.argmax(1) == y)))
    assert np.isnan(insp.class_means(act[:5, 2], np.zeros(5, int))[0][1])


def test_everything_works_on_a_copy_and_figures_build(deeper, val):
    x, y = val
    before = _params(deeper)
    li = insp.conv_layers(deeper)[1]
    fp = insp.weights_fingerprint(deeper)
    raw, act = insp.layer_outputs(deeper, li, x)
    geo = insp.rf_geometry(deeper, li)
    top = insp.top_patches(raw[:, 3], x[:, 0], geo, k=12)
    mx = insp.maximize_input(deeper, li, 3, steps=20)
    fm = insp.feature_map(deeper, li, 3, x[0, 0])
    assert fm.shape == raw.shape[2:]
    assert insp.weights_fingerprint(deeper) == fp
    assert insp.weights_fingerprint(insp.edit_filter(deeper, li, 3, "scale", factor=2.0)) != fp
    for k, v in _params(deeper).items():
        np.testing.assert_array_equal(v, before[k])
    figs.patch_gallery(top.patches, x[top.index, 0], top.boxes, top.values, y[top.index], "t", ncols=6)
    figs.class_bars(*insp.class_means(act[:, 3], y))
    figs.max_input(mx.image, mx.box, mx.values, "m")
    figs.filter_weights(deeper.layers[li].params["W"][3], "w")
    figs.receptive_field(x[0, 0], tuple(top.boxes[0]), fm, (1, 1), "r")
    figs.edit_maps(x[0, 0], fm, fm * 0, "e")
    assert isinstance(deeper.layers[li], Conv2D)


def test_describe_patch():
    p = np.zeros((5, 5))
    p[:2] = 1.0
    up = "ink in the upper half and none in the lower half (a stroke's lower edge)"
    assert insp.describe_patch(p) == up
    assert insp.describe_patch(p.T) == "ink on the left and none on the right (a stroke's right edge)"
    down = "ink in the lower half and none in the upper half (a stroke's upper edge)"
    assert insp.describe_patch(p[::-1]) == down
    assert insp.describe_patch(np.ones((5, 5))) == "ink all over (inside thick strokes)"
    assert insp.describe_patch(np.zeros((14, 14))) == "almost no ink (background)"
    assert insp.describe_patch(np.full((5, 5), 0.4)) is None


def test_activate_and_dead(classroom, val):
    x, _ = val
    raw, act = insp.layer_outputs(classroom, 0, x[:10])
    np.testing.assert_array_equal(insp.activate(classroom, 0, raw[:, 3]), act[:, 3])
    assert insp.is_dead(classroom, 0, -np.abs(raw[:, 3]) - 1e-3)
    assert not insp.is_dead(classroom, 0, np.abs(raw[:, 3]) + 1e-3)
    tutorial = build("tutorial", rng=0)  # sigmoid after the conv: a negative output still passes something on
    assert not insp.is_dead(tutorial, 0, -np.ones(4))

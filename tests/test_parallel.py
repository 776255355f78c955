"""Data-parallel steps over processes give the one-process step's loss, outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.nn.losses import get_loss
from cnnviz.nn.network import PRESET_LAYERS, build, from_spec
from cnnviz.perf.bench import load_data
from cnnviz.perf.parallel import MIN_SLICE, ParallelStep
from cnnviz.train.config import RunConfig
from cnnviz.train.data import Dataset
from cnnviz.train.trainer import Trainer

RNG = np.random.default_rng(3)
X = RNG.random((150, 1, 28, 28), dtype=np.float32)
DIGITS = RNG.integers(0, 10, 150)


@pytest.fixture(scope="module")
def tutorial_pool():
    with ParallelStep(PRESET_LAYERS["tutorial"], "mse", workers=2) as pool:
        yield pool


@pytest.fixture(scope="module")
def classroom_pool():
    with ParallelStep(PRESET_LAYERS["classroom"], "softmax_ce", workers=3) as pool:
        yield pool


def _one_process(net, loss_name, x, t):
    loss = get_loss(loss_name)
    out = net.forward(x)
    value = loss.forward(out, t)
    net.backward(loss.backward())
    return value, out.copy(), {k: g.copy() for k, g in net.named_grads()}


def _assert_same_step(pool, preset, loss_name, x, t):
    net = build(preset, rng=1)
    value1, out1, grads1 = _one_process(net, loss_name, x, t)
    value2, out2 = pool.step(net, get_loss(loss_name), x, t)
    assert value2 == pytest.approx(value1, rel=1e-5)
    np.testing.assert_allclose(out2, out1, rtol=1e-5, atol=1e-6)
    for name, g in net.named_grads():
        np.testing.assert_allclose(g, grads1[name], rtol=1e-4, atol=1e-6 * np.abs(grads1[name]).max())
        assert np.abs(g).max() > 0


def test_two_processes_equal_one_on_the_tutorial_net(tutorial_pool):
    _assert_same_step(tutorial_pool, "tutorial", "mse", X, (DIGITS > 4).astype(np.float32)[:, None])


def test_three_processes_and_uneven_slices_equal_one_on_the_classroom_net(classroom_pool):
    x, labels = X[:131], DIGITS[:131]  # slices of 43, 44 and 44 images
    _assert_same_step(classroom_pool, "classroom", "softmax_ce", x, labels)


def test_the_same_pool_takes_a_larger_batch_then_a_smaller_one(tutorial_pool):
    big = np.concatenate([X, X])
    t_big = (np.concatenate([DIGITS, DIGITS]) > 4).astype(np.float32)[:, None]
    _assert_same_step(tutorial_pool, "tutorial", "mse", big, t_big)
    _assert_same_step(tutorial_pool, "tutorial", "mse", X[:90], t_big[:90])


def test_a_small_batch_runs_in_this_process_only(tutorial_pool):
    n = 2 * MIN_SLICE - 1
    t = (DIGITS[:n] > 4).astype(np.float32)[:, None]
    net = build("tutorial", rng=1)
    value1, out1, grads1 = _one_process(net, "mse", X[:n], t)
    value2, out2 = tutorial_pool.step(net, get_loss("mse"), X[:n], t)
    assert value2 == value1  # the very same computation, so bit for bit
    np.testing.assert_array_equal(out2, out1)
    for name, g in net.named_grads():
        np.testing.assert_array_equal(g, grads1[name])


def test_a_helpers_error_is_raised_here_and_the_pool_keeps_working(classroom_pool):
    labels = DIGITS[:120].copy()
    labels[-1] = 12  # only the last helper's slice has the bad label
    net = build("classroom", rng=1)
    with pytest.raises(RuntimeError, match="labels must lie in 0..9"):
        classroom_pool.step(net, get_loss("softmax_ce"), X[:120], labels)
    _assert_same_step(classroom_pool, "classroom", "softmax_ce", X[:120], DIGITS[:120])


def test_an_error_in_this_process_leaves_the_helpers_in_step(classroom_pool):
    labels = DIGITS[:120].copy()
    labels[0] = -1  # only this process's slice is bad
    with pytest.raises(ValueError, match="labels must lie"):
        classroom_pool.step(build("classroom", rng=1), get_loss("softmax_ce"), X[:120], labels)
    _assert_same_step(classroom_pool, "classroom", "softmax_ce", X[:120], DIGITS[:120])


def test_a_network_of_other_layers_or_another_loss_is_refused(tutorial_pool):
    with pytest.raises(ValueError, match="differ from the spec"):
        tutorial_pool.step(build("classroom"), get_loss("mse"), X[:100], np.zeros((100, 10), np.float32))
    with pytest.raises(ValueError, match="the loss is 'bce', its workers use 'mse'"):
        tutorial_pool.step(build("tutorial"), get_loss("bce"), X[:100], np.zeros((100, 1), np.float32))


def test_close_stops_the_helpers_and_frees_the_shared_memory():
    from multiprocessing import shared_memory

    pool = ParallelStep(PRESET_LAYERS["tutorial"], "mse", workers=2)
    net = build("tutorial")
    pool.step(net, get_loss("mse"), X[:100], np.zeros((100, 1), np.float32))
    procs, names = list(pool._procs), [shm.name for shm in pool._shms]
    assert names and all(p.is_alive() for p in procs)
    pool.close()
    pool.close()  # idempotent
    assert not any(p.is_alive() for p in procs)
    for name in names:
        with pytest.raises(FileNotFoundError):
            shared_memory.SharedMemory(name=name)
    with pytest.raises(RuntimeError, match="is closed"):
        pool.step(net, get_loss("mse"), X[:100], np.zeros((100, 1), np.float32))


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        ParallelStep(PRESET_LAYERS["tutorial"], "mse", workers=0)


def test_a_trainer_with_a_pool_follows_the_one_process_trainer():
    spec = PRESET_LAYERS["classroom"]
    x, digits, _ = load_data(300)  # the shipped MNIST subset
    data = Dataset(x[:256], digits[:256], x[256:], digits[256:], "digits", "test")
    cfg = RunConfig(preset="classroom", layers=spec, loss="softmax_ce", task="digits", batch_size=128,
                    train_size=256, lr=0.05, val_every=1000)
    one = Trainer(cfg, data)
    with ParallelStep(spec, "softmax_ce", workers=2) as pool:
        two = Trainer(cfg, data, parallel=pool)
        for _ in range(5):
            a, b = one.step(), two.step()
            assert b.loss == pytest.approx(a.loss, rel=1e-4)
            assert b.acc == a.acc
    assert b.loss < one.history[0].loss
    for (name, p1), (_, p2) in zip(one.net.named_params(), two.net.named_params(), strict=True):
        np.testing.assert_allclose(p2, p1, rtol=1e-3, atol=1e-5, err_msg=name)
    assert from_spec(spec).spec() == two.net.spec()

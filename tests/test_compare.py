"""Runs in lockstep: same minibatches, lesson presets, the tutorial's gradient as a trainer, limits."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.nn import tutorial as T
from cnnviz.serve.serving import check_server_cost
from cnnviz.train import compare as C
from cnnviz.train.config import preset_config
from cnnviz.train.data import load_dataset


def _cmp(specs, check_cost=check_server_cost):
    return C.Comparison(specs, load_dataset, check_cost)


def test_sigmoid_vs_relu_sees_the_same_batches_and_differs_only_in_the_activation():
    cmp = _cmp(C.lesson("sigmoid vs ReLU"))
    assert cmp.labels == ["ReLU", "sigmoid"]
    a, b = (r.trainer for r in cmp.runs)
    cmp.step(3)
    assert a.step_count == b.step_count == 3
    assert cmp.runs[0].first_batch is not None and len(cmp.runs[0].first_batch) == 32
    np.testing.assert_array_equal(cmp.runs[0].first_batch, cmp.runs[1].first_batch)
    np.testing.assert_array_equal(a.last_batch, b.last_batch)
    assert cmp.same_batches()
    rows = cmp.differences()
    assert [r["setting"] for r in rows] == ["layers"]
    assert "ReLU" in rows[0]["ReLU"] and "sigmoid" in rows[0]["sigmoid"]
    assert a.history[-1].loss != b.history[-1].loss  # really two different runs


def test_every_lesson_builds_and_steps():
    for name in C.LESSONS:
        cmp = _cmp(C.lesson(name))
        assert 2 <= len(cmp.runs) <= C.MAX_RUNS
        assert cmp.differences(), name
        cmp.step(1)
        assert all(r.trainer.step_count == 1 for r in cmp.runs), name
        assert cmp.same_batches(), name


def test_reset_repeats_the_same_first_batch_and_losses():
    cmp = _cmp(C.lesson("learning rate ×0.1 / ×1 / ×10"))
    W = [r.trainer.net.layers[0].params["W"] for r in cmp.runs]
    np.testing.assert_array_equal(W[0], W[1])  # same seed, same architecture: the same initial filters
    np.testing.assert_array_equal(W[0], W[2])
    cmp.step(2)
    first, losses = cmp.runs[0].first_batch.copy(), [r.trainer.history[0].loss for r in cmp.runs]
    cmp.reset()
    assert cmp.step_count == 0
    cmp.step(1)
    np.testing.assert_array_equal(cmp.runs[0].first_batch, first)
    assert [r.trainer.history[0].loss for r in cmp.runs] == losses


def test_tutorial_gradient_trainer_follows_the_tutorials_gradient_and_the_true_one():
    specs = C.lesson("the tutorial's gradient vs the true gradient")
    cmp = _cmp(specs)
    true_tr, tut_tr = (r.trainer for r in cmp.runs)
    assert isinstance(tut_tr, C.TutorialGradientTrainer) and tut_tr.mistakes
    assert isinstance(true_tr, C.TutorialGradientTrainer) and not true_tr.mistakes
    x, digits = tut_tr._x, tut_tr._y_digits  # the full batch (200 images)
    ref = T.compare_gradients(tut_tr.net, x, (digits > 4).astype(np.float64), lr=tut_tr.optimizer.lr)
    for tr, which in ((tut_tr, "tutorial"), (true_tr, "true")):
        tr._forward(x, tr._targets)
        tr._backward()
        for i, key in ((0, "0.W"), (3, "3.W")):  # float32 layers vs the float64 reference
            want = ref[which][key]
            np.testing.assert_allclose(tr.net.layers[i].grads["W"], want, rtol=2e-3,
                                       atol=2e-3 * np.abs(want).max())
        assert not tr.net.layers[0].grads["b"].any()  # the tutorial's network has no biases


def test_the_true_gradient_ends_lower_than_the_tutorials():
    cmp = _cmp(C.lesson("the tutorial's gradient vs the true gradient"))
    cmp.step(100)
    true_loss, tut_loss = (np.mean([h.loss for h in r.trainer.history[-10:]]) for r in cmp.runs)
    print(f"after 100 steps: true gradient {true_loss:.4f}, tutorial's gradient {tut_loss:.4f}")
    assert true_loss < tut_loss


def test_limits_same_seed_at_most_four_runs_and_the_server_cost_per_run():
    base = preset_config("classroom")
    with pytest.raises(ValueError, match="same seed"):
        _cmp([C.RunSpec("a", base), C.RunSpec("b", preset_config("classroom", seed=1))])
    with pytest.raises(ValueError, match="1 to 4 runs"):
        _cmp([C.RunSpec(str(i), preset_config("classroom", lr=0.01 * (i + 1))) for i in range(5)])
    seen = []

    def refuse_second(cfg):
        seen.append(cfg.lr)
        if len(seen) == 2:
            raise ValueError("too costly")

    with pytest.raises(ValueError, match="too costly"):
        _cmp(C.lesson("learning rate ×0.1 / ×1 / ×10"), check_cost=refuse_second)
    assert len(seen) == 2  # checked run by run, before any trainer was built


def test_pinned_run_beside_changed_copies():
    cfg = preset_config("classroom")
    specs = C.pinned(cfg, [{"lr": 0.8}, {"activation": "sigmoid"}, {"pooling": "avg", "init": "tutorial"}])
    assert [s.label for s in specs][0] == "pinned" and len(specs) == 4
    assert specs[1].config.lr == 0.8 and specs[1].config.layers == cfg.layers
    assert specs[2].config.layers[1]["type"] == "Sigmoid" and specs[2].config.preset == "custom"
    assert specs[3].config.layers[2]["type"] == "AvgPool2D" and specs[3].config.init == "tutorial"
    with pytest.raises(ValueError):
        C.pinned(cfg, [{"lr": 0.1}] * 4)


def test_a_diverging_run_stops_and_the_others_go_on():
    specs = [C.RunSpec("fine", preset_config("classroom", train_size=500)),
             C.RunSpec("lr 10 mse", preset_config("custom", train_size=500, lr=10.0, loss="mse", layers=[
                 {"type": "Conv2D", "in_channels": 1, "out_channels": 8, "kernel_size": 5},
                 {"type": "ReLU"}, {"type": "MaxPool2D", "size": 2}, {"type": "Flatten"},
                 {"type": "Dense", "in_features": 1152, "out_features": 10}]))]
    cmp = _cmp(specs)
    cmp.step(20)
    assert cmp.runs[1].stopped and "diverged" in cmp.runs[1].stopped
    assert cmp.runs[0].trainer.step_count == 20 and cmp.runs[0].stopped is None


def test_from_the_tutorials_start_only_the_tutorials_larger_step_moves():
    cmp = _cmp(C.lesson("the tutorial's gradient vs the true gradient, from the tutorial's start"))
    assert all(r.spec.config.init == "tutorial" for r in cmp.runs)
    cmp.step(100)
    true_loss, tut_loss = (np.mean([h.loss for h in r.trainer.history[-10:]]) for r in cmp.runs)
    first = cmp.runs[0].trainer.history[0].loss
    print(f"uniform start: true gradient {true_loss:.4f}, tutorial's {tut_loss:.4f} (from {first:.4f})")
    assert tut_loss < 0.8 * first and true_loss > 0.95 * first

"""Training health: hints built from runs that really fail, and none for runs that really succeed."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.train import health
from cnnviz.train.config import RunConfig, custom_layers, preset_config
from cnnviz.train.data import load_dataset
from cnnviz.train.trainer import StepRecord, Trainer, TrainingDiverged


def _train(cfg: RunConfig, steps: int, check_every: int = 5):
    """Train ``steps`` steps (a NaN/inf rollback is survived, as the app does); return (trainer, data, the
    step and kinds of the first hints seen, checking every ``check_every`` steps)."""
    data = load_dataset(cfg.task, cfg.train_size)
    tr = Trainer(cfg, data)
    first = None
    for i in range(steps):
        try:
            tr.step()
        except TrainingDiverged:
            pass
        if first is None and ((i + 1) % check_every == 0 or i == steps - 1):
            hints = health.trainer_health(tr, data.x_val)
            if hints:
                first = (tr.step_count, {h.kind for h in hints})
    return tr, data, first


def _kinds(tr, data) -> dict[str, health.Hint]:
    return {h.kind: h for h in health.trainer_health(tr, data.x_val)}


def test_learning_rate_10_is_called_too_high_within_20_steps_and_the_fix_learns():
    cfg = preset_config("classroom", lr=10.0, train_size=1000)
    tr, data, first = _train(cfg, 20)
    assert first is not None and first[0] <= 20 and "diverged" in first[1]
    hints = _kinds(tr, data)
    h = hints["diverged"]
    assert h.title == "Learning rate too high" and h.severity == "error"
    assert "jumped" in h.saw and "×" in h.saw  # the evidence, with numbers
    assert "dead" in hints  # every filter of the exploded ReLU net stopped firing
    assert health.is_failing(list(hints.values()))
    # the fix is a config change; applied, the run learns (and raises no hint)
    fixed = RunConfig.from_dict(health.apply_fix(cfg.to_dict(), h.fix))
    assert fixed.lr < cfg.lr / 10 + 1e-12
    tr2, data2, first2 = _train(fixed, 60, check_every=20)
    assert first2 is None, first2
    assert tr2.val_history[-1][2] > 0.6


def test_uniform_init_with_sigmoid_is_stuck_and_saturated_with_the_init_fix():
    cfg = preset_config("tutorial", init="tutorial")
    tr, data, _ = _train(cfg, 40)
    hints = _kinds(tr, data)
    assert {"stuck", "saturated"} <= set(hints)
    stuck = hints["stuck"]
    assert stuck.histogram is not None and max(stuck.histogram) == sum(stuck.histogram)  # one class for all
    assert stuck.fix == {"init": "default"} and hints["saturated"].fix == {"init": "default"}
    assert "100%" in hints["saturated"].saw


def test_one_by_one_sigmoid_filters_without_pooling_fail_and_are_explained():
    layers = custom_layers(filters=8, kernel=1, activation="sigmoid", pooling="none")
    cfg = preset_config("custom", layers=layers, train_size=1000)
    tr, data, _ = _train(cfg, 60)
    hints = _kinds(tr, data)
    assert "stuck" in hints and "saturated" in hints
    sat = hints["saturated"]
    assert "sigmoid after conv 1" in sat.title
    assert [s["type"] for s in sat.fix["layers"]][:2] == ["Conv2D", "ReLU"]  # the fix: use ReLU
    new = health.apply_fix(cfg.to_dict(), sat.fix)
    assert new["preset"] == "custom" and RunConfig.from_dict(new).layers[1]["type"] == "ReLU"


def test_ten_training_images_for_500_steps_overfit():
    cfg = preset_config("classroom", train_size=10, batch_size=10, lr_decay=1.0)
    tr, data, first = _train(cfg, 500, check_every=25)
    hints = _kinds(tr, data)
    assert set(hints) == {"overfitting"}, set(hints)
    h = hints["overfitting"]
    assert "100%" in h.saw and h.fix == {"train_size": 1000}
    assert not health.is_failing(list(hints.values()))


@pytest.mark.parametrize("preset,steps", [("tutorial", 150), ("classroom", 375), ("deeper", 375)])
def test_preset_defaults_raise_no_hint(preset, steps):
    # classroom/deeper: 3 epochs of 125 steps; tutorial (full batch, a step per epoch): 150 steps
    cfg = preset_config(preset)
    tr, data, first = _train(cfg, steps, check_every=25)
    assert first is None, first
    assert tr.val_history[-1][2] > (0.7 if preset == "tutorial" else 0.9)


def _records(losses, accs=None, grad=1.0):
    accs = accs if accs is not None else [0.5] * len(losses)
    return [StepRecord(i + 1, 1, float(v), float(a), 1.0, {"0.W": grad}, {})
            for i, (v, a) in enumerate(zip(losses, accs, strict=True))]


def test_a_tiny_loss_wobbling_is_not_an_explosion():
    steps = np.arange(1, 31)
    losses = np.r_[[2.3, 1.0, 0.1], np.full(27, 1e-6)]
    losses[20] = 1e-4  # ×100, but far below the first loss
    assert health.check_diverged(losses, steps, None, preset_config("classroom").to_dict()) is None
    losses[21] = 30.0
    assert health.check_diverged(losses, steps, None, preset_config("classroom").to_dict()) is not None


def test_lower_lr_divides_by_ten_or_goes_back_to_the_tested_rate():
    assert health.lower_lr({"preset": "classroom", "lr": 0.5})[1] == {"lr": 0.05}
    label, fix = health.lower_lr({"preset": "classroom", "lr": 10.0})
    assert fix == {"lr": 0.08} and "tested" in label


def test_vanishing_gradient_needs_an_unfitted_run():
    cfg = preset_config("classroom").to_dict()
    pr = health.Probe(np.array([10] * 10), ())
    flat = _records([2.3] * 40, [0.3] * 40, grad=1e-9)
    hints = health.check(flat, [(0, 2.3, 0.3)], pr, cfg, {"0.W": 5.0}, 10, 4000)
    assert [h.kind for h in hints] == ["vanishing"] and "conv 1 weights" in hints[0].saw
    fitted = _records([1e-4] * 40, [1.0] * 40, grad=1e-9)
    assert health.check(fitted, [(0, 2.3, 0.3)], pr, cfg, {"0.W": 5.0}, 10, 4000) == []


def test_nan_rollback_message_is_a_diverged_hint():
    cfg = preset_config("classroom").to_dict()
    pr = health.Probe(np.array([10] * 10), ())
    hints = health.check(_records([2.3]), [(0, 2.3, 0.1)], pr, cfg, {}, 10, 4000,
                         divergence="At step 2, the loss became nan; the weights were rolled back.")
    assert hints[0].kind == "diverged" and "nan" in hints[0].saw

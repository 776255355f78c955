"""Trainer: learning (classroom >= 95% in 5 epochs, tutorial beats chance), determinism, records, schedules,
snapshots, divergence handling and user examples."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cnnviz.train import trainer as trainer_mod
from cnnviz.train.config import RunConfig, custom_layers, preset_config
from cnnviz.train.data import Dataset, load_dataset
from cnnviz.train.trainer import Snapshot, StepRecord, Trainer, TrainingDiverged, train_epochs


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", 4000)


def _small(data: Dataset, n_train: int = 100, n_val: int = 50, task: str = "digits") -> Dataset:
    return Dataset(data.x_train[:n_train], data.y_train[:n_train], data.x_val[:n_val], data.y_val[:n_val],
                   task)


def _weights(net) -> dict[str, np.ndarray]:
    return {n: p.copy() for n, p in net.named_params()}


@pytest.mark.slow
def test_classroom_preset_reaches_95_percent_in_5_epochs(digits):
    cfg = preset_config("classroom")
    tr = Trainer(cfg, digits)
    accs = []
    t0 = time.perf_counter()
    train_epochs(tr, 5, on_epoch=lambda epoch, val: accs.append(val[2]))
    elapsed = time.perf_counter() - t0
    print(f"classroom preset: validation accuracy per epoch {accs}, {elapsed:.1f} s")
    assert tr.epoch == 5 and tr.step_count == 5 * tr.steps_per_epoch
    assert max(accs) >= 0.95
    assert accs[-1] >= 0.945


def test_tutorial_preset_lowers_its_loss_and_beats_chance():
    cfg = preset_config("tutorial")
    tr = Trainer(cfg, load_dataset("gt4", cfg.train_size))
    assert tr.batch_size == 200 and tr.n_outputs == 1
    tr.run(100)
    losses = [r.loss for r in tr.history]
    assert np.mean(losses[-10:]) < 0.8 * losses[0]
    assert tr.val_history[-1][2] > 0.65  # chance is 0.5 on the balanced validation set
    assert tr.epoch == 100  # full batch: every step is an epoch


def test_deterministic_for_a_seed(digits):
    data = _small(digits, 300)
    cfg = preset_config("classroom", train_size=300, seed=11)
    a, b = Trainer(cfg, data), Trainer(cfg, data)
    a.run(25)
    b.run(25)
    assert [r.loss for r in a.history] == [r.loss for r in b.history]
    pairs = zip(a.net.named_params(), b.net.named_params(), strict=True)
    assert all(np.array_equal(a_p, b_p) for (_, a_p), (_, b_p) in pairs)
    c = Trainer(preset_config("classroom", train_size=300, seed=12), data)
    c.run(25)
    assert [r.loss for r in c.history] != [r.loss for r in a.history]


def test_reset_starts_over(digits):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    w0 = _weights(tr.net)
    first = [r.loss for r in tr.run(5)]
    tr.reset()
    assert tr.step_count == 0 and tr.history == [] and len(tr.snapshots) == 1 and len(tr.val_history) == 1
    assert all(np.array_equal(w0[n], p) for n, p in tr.net.named_params())
    assert [r.loss for r in tr.run(5)] == first


def test_step_record_contents(digits):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    w_before = _weights(tr.net)
    rec = tr.step()
    assert isinstance(rec, StepRecord) and rec.step == 1 and rec.epoch == 1 and rec.ms > 0
    names = [n for n, _ in tr.net.named_params()]
    assert list(rec.grad_norms) == names == list(rec.update_ratios)
    for name, g in tr.net.named_grads():
        assert rec.grad_norms[name] == pytest.approx(float(np.linalg.norm(g)), rel=1e-4)
    for name, p in tr.net.named_params():
        expect = np.linalg.norm(p - w_before[name]) / (np.linalg.norm(w_before[name]) + 1e-12)
        assert rec.update_ratios[name] == pytest.approx(float(expect), rel=1e-3)
    assert 0 <= rec.acc <= 1 and np.isfinite(rec.loss)
    assert tr.history == [rec]


def test_epochs_and_lr_decay(digits):
    cfg = preset_config("classroom", train_size=100, batch_size=32, lr_decay=0.5)
    tr = Trainer(cfg, _small(digits))
    assert tr.steps_per_epoch == 4  # 32 + 32 + 32 + 4
    recs = tr.run(9)
    assert [r.epoch for r in recs] == [1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert tr.optimizer.lr == pytest.approx(cfg.lr * 0.25)
    assert tr.epochs_done == pytest.approx(2 + 32 / 100)


def test_validation_schedule(digits):
    tr = Trainer(preset_config("classroom", train_size=100, val_every=4), _small(digits))
    tr.run(10)
    assert [v[0] for v in tr.val_history] == [0, 4, 8, 10]  # start, schedule, end of run()
    step, loss, acc = tr.val_history[-1]
    loss2, acc2, proba = tr.evaluate(tr.data.x_val, tr.data.y_val)
    assert (loss, acc) == pytest.approx((loss2, acc2))
    assert proba.shape == (50, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_evaluate_and_predict_in_chunks(digits, monkeypatch):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits, n_val=200))
    full = tr.evaluate(tr.data.x_val, tr.data.y_val)
    monkeypatch.setattr(trainer_mod, "EVAL_CHUNK_BYTES", 1)  # chunks of 16 images
    chunked = tr.evaluate(tr.data.x_val, tr.data.y_val)
    assert full[:2] == pytest.approx(chunked[:2]) and np.allclose(full[2], chunked[2], atol=1e-6)
    assert np.allclose(tr.predict_proba(tr.data.x_val), full[2], atol=1e-6)


def test_snapshots_are_bounded_and_ordered(digits, monkeypatch):
    monkeypatch.setattr(trainer_mod, "SNAPSHOT_CAP", 60)
    cfg = preset_config("tutorial", train_size=20, val_every=10_000)
    tr = Trainer(cfg, _small(digits, 20, 10, "gt4"))
    weights = {0: tr.net.layers[0].params["W"].copy()}

    def keep(rec):
        weights[rec.step] = tr.net.layers[0].params["W"].copy()

    tr.run(700, callback=keep)
    steps = [s.step for s in tr.snapshots]
    assert len(steps) <= 61 and steps == sorted(steps) and steps[:51] == list(range(51)) and steps[-1] == 700
    assert len(set(steps)) == len(steps)
    for snap in tr.snapshots:
        assert isinstance(snap, Snapshot) and snap.filters.shape == (3, 1, 5, 5) == snap.grads.shape
        assert np.array_equal(snap.filters, weights[snap.step])
    assert not np.any(tr.snapshots[0].grads) and np.any(tr.snapshots[1].grads)


def test_history_is_bounded(digits, monkeypatch):
    monkeypatch.setattr(trainer_mod, "HISTORY_CAP", 50)
    tr = Trainer(preset_config("tutorial", train_size=20, val_every=10_000), _small(digits, 20, 10, "gt4"))
    tr.run(120)
    steps = [r.step for r in tr.history]
    assert len(steps) <= 51 and steps == sorted(steps) and steps[-1] == 120


def test_targets_for_each_loss(digits):
    data = _small(digits)
    mse_cfg = {"preset": "custom", "layers": custom_layers(loss="mse"), "loss": "mse", "train_size": 100}
    mse10 = Trainer(RunConfig.from_dict(mse_cfg), data)
    t = mse10.make_targets(np.array([3, 0]))
    assert t.shape == (2, 10) and t.dtype == np.float32 and t[0, 3] == 1 and t.sum() == 2
    gt4 = Trainer(preset_config("tutorial", train_size=100), _small(digits, task="gt4"))
    assert gt4.make_targets(np.array([3, 7])).tolist() == [[0.0], [1.0]]
    assert gt4.predicted_classes(np.array([[0.49], [0.51]])).tolist() == [0, 1]
    ce = Trainer(preset_config("classroom", train_size=100), data)
    assert ce.make_targets(np.array([3, 7])).tolist() == [3, 7]
    gt4_ce = Trainer(RunConfig.from_dict({"preset": "custom", "task": "gt4", "train_size": 100,
                                          "layers": custom_layers(task="gt4")}), _small(digits, task="gt4"))
    assert gt4_ce.n_outputs == 2 and gt4_ce.make_targets(np.array([3, 7])).tolist() == [0, 1]
    gt4_ce.run(3)


def test_task_of_the_config_wins_over_the_dataset(digits):
    tr = Trainer(preset_config("tutorial", train_size=100), _small(digits))  # a digits dataset, gt4 config
    assert tr.data.task == "gt4"
    assert digits.task == "digits"


# ----------------------------------------------------------------------------------------------------------
# Divergence
# ----------------------------------------------------------------------------------------------------------
def test_exploding_learning_rate_raises_and_keeps_the_last_good_weights(digits):
    cfg = RunConfig.from_dict({"preset": "classroom", "loss": "mse", "lr": 10.0, "train_size": 100})
    tr = Trainer(cfg, _small(digits))
    after = {0: _weights(tr.net)}
    with pytest.raises(TrainingDiverged, match=r"learning rate 10 .*too high"):
        tr.run(50, callback=lambda rec: after.__setitem__(rec.step, _weights(tr.net)))
    good = tr.step_count
    w = _weights(tr.net)
    assert all(np.all(np.isfinite(p)) for p in w.values())
    assert any(all(np.array_equal(w[n], ws[n]) for n in w) for s, ws in after.items() if s <= good)
    for slots in tr.optimizer.state.values():
        assert all(np.all(np.isfinite(a)) for a in slots.values())
    assert len(tr.history) == good


def test_nan_weights_after_an_update_are_rolled_back_exactly(digits):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    tr.run(3)
    w3 = _weights(tr.net)
    state = {n: {k: a.copy() for k, a in s.items()} for n, s in tr.optimizer.state.items()}
    tr.optimizer.lr = 1e38  # the next update overflows to inf
    with pytest.raises(TrainingDiverged, match="NaN/inf after the update"):
        tr.step()
    assert all(np.array_equal(w3[n], p) for n, p in tr.net.named_params())
    assert tr.step_count == 3 and len(tr.history) == 3
    for n, s in tr.optimizer.state.items():
        assert all(np.array_equal(state[n][k], a) for k, a in s.items())
    tr.optimizer.lr = tr.config.lr
    tr.step()  # training can go on from the restored state
    assert tr.step_count == 4


def test_nan_loss_restores_the_weights_before_the_last_update(digits):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    tr.run(2)
    w2 = _weights(tr.net)
    tr.step()
    tr.net.layers[4].params["W"][0, 0] = np.inf  # as if step 3's update had produced inf
    with pytest.raises(TrainingDiverged, match="at step 4: the loss became nan") as err:
        tr.step()
    assert all(np.array_equal(w2[n], p) for n, p in tr.net.named_params())
    assert all(np.all(np.isfinite(g)) for _, g in tr.net.named_grads())
    # step 3's update is undone: the counter, the history and the replay all end at step 2 again
    msg = str(err.value)
    assert "Step 3's update led there, so it was undone: the weights of step 2 were restored" in msg
    assert tr.step_count == 2
    assert [r.step for r in tr.history] == [1, 2]
    assert tr.snapshots[-1].step == 2 and np.array_equal(tr.snapshots[-1].filters, w2["0.W"])
    assert tr.val_history[-1][0] <= 2
    assert tr.step().step == 3  # and training goes on from step 2's weights


def test_a_second_divergence_does_not_undo_another_step(digits):
    """After a rollback the saved weights are the current ones: diverging again keeps them and the counter."""
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    tr.run(2)
    w2 = _weights(tr.net)
    tr.step()
    tr.net.layers[4].params["W"][0, 0] = np.inf
    with pytest.raises(TrainingDiverged):
        tr.step()
    tr.net.layers[0].params["b"][:] = np.nan  # as if the weights were broken again without an update
    with pytest.raises(TrainingDiverged, match="weights of step 2 were restored"):
        tr.step()
    assert tr.step_count == 2 and len(tr.history) == 2
    assert all(np.array_equal(w2[n], p) for n, p in tr.net.named_params())


def test_divergence_on_the_very_first_step(digits):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    tr.net.layers[0].params["b"][:] = np.nan
    with pytest.raises(TrainingDiverged, match="No update had succeeded"):
        tr.step()


# ----------------------------------------------------------------------------------------------------------
# User examples
# ----------------------------------------------------------------------------------------------------------
def test_add_examples_join_the_next_step(digits):
    data = _small(digits, 200)
    x_before = data.x_train.copy()
    tr = Trainer(preset_config("classroom", train_size=200, batch_size=32), data)
    tr.run(2)
    img = np.zeros((3, 1, 28, 28), np.float32)
    img[:, 0, 4:24, 12:16] = 1.0  # a bar
    tr.add_examples(img, np.array([7, 7, 7]))
    assert tr.n_train == 203 and tr.n_user_examples == 3
    loss_before = tr.evaluate(img, np.array([7, 7, 7]))[0]
    for _ in range(3):
        tr.step()
    assert tr.evaluate(img, np.array([7, 7, 7]))[0] < loss_before
    assert np.array_equal(data.x_train, x_before) and len(data.x_train) == 200  # the dataset is untouched
    tr.reset()
    assert tr.n_user_examples == 3  # user data survives a reset of the model


def test_add_examples_accepts_2d_images_and_full_batch(digits):
    tr = Trainer(preset_config("tutorial", train_size=100), _small(digits, task="gt4"))
    tr.add_examples(np.full((1, 28, 28), 0.5, np.float32), np.array([9]))
    assert tr.batch_size == 101
    assert tr.step().step == 1


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((2, 1, 28, 28)), np.array([1]), "labels"),
    (np.zeros((1, 1, 27, 28)), np.array([1]), "images"),
    (np.full((1, 1, 28, 28), 2.0), np.array([1]), r"\[0, 1\]"),
    (np.full((1, 1, 28, 28), np.nan), np.array([1]), "finite"),
    (np.zeros((1, 1, 28, 28)), np.array([10]), "digits"),
    (np.zeros((1, 1, 28, 28)), np.array([1.5]), "digits"),
])
def test_add_examples_rejects_bad_input(digits, images, labels, match):
    tr = Trainer(preset_config("classroom", train_size=100), _small(digits))
    with pytest.raises(ValueError, match=match):
        tr.add_examples(images, labels)
    assert tr.n_train == 100

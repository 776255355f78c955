"""RunConfig: presets, custom architectures, JSON round trip, and every kind of bad value -> ValueError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnviz.nn.network import PRESET_LAYERS, from_spec
from cnnviz.train.config import (
    LIMITS,
    RunConfig,
    count_params,
    custom_layers,
    estimate_step_bytes,
    layer_shapes,
    preset_config,
)


@pytest.mark.parametrize("name", ["tutorial", "classroom", "deeper", "custom"])
def test_presets_validate_and_round_trip_through_json(name):
    cfg = preset_config(name)
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    net = from_spec(cfg.layers, rng=0)
    assert net.n_params == count_params(cfg.layers)


def test_preset_settings():
    tut = preset_config("tutorial")
    assert tut.layers == [dict(s, **({"stride": 2} if s["type"] == "MaxPool2D" else {}))
                          for s in PRESET_LAYERS["tutorial"]]
    assert (tut.task, tut.loss, tut.batch_size, tut.train_size) == ("gt4", "mse", 0, 200)
    assert tut.optimizer == "sgd"
    cls = preset_config("classroom")
    assert (cls.task, cls.loss, cls.train_size) == ("digits", "softmax_ce", 4000)
    assert cls.effective_batch == cls.batch_size > 0
    assert tut.effective_batch == 200
    assert "full batch" in tut.describe() and "seed 0" in tut.describe()


def test_preset_overrides_are_validated():
    assert preset_config("classroom", lr=0.01, seed=7).lr == 0.01
    with pytest.raises(ValueError, match="lr"):
        preset_config("classroom", lr=100.0)


def test_from_dict_fills_missing_fields_from_the_preset():
    cfg = RunConfig.from_dict({"preset": "deeper", "lr": 0.01})
    assert cfg.layers == preset_config("deeper").layers and cfg.lr == 0.01
    assert RunConfig.from_dict({}).preset == "classroom"


def test_layer_shapes_of_presets():
    assert layer_shapes(PRESET_LAYERS["tutorial"])[-1] == (1,)
    assert layer_shapes(PRESET_LAYERS["classroom"])[2] == (8, 12, 12)
    assert layer_shapes(PRESET_LAYERS["deeper"])[-2] == (784,)


@pytest.mark.parametrize("kw", [
    dict(), dict(n_conv=3, filters=16, kernel=3, padding=1), dict(activation="tanh", pooling="avg"),
    dict(activation="sigmoid", pooling="none", kernel=9), dict(task="gt4", loss="mse"),
    dict(task="gt4", loss="bce"), dict(task="gt4", loss="softmax_ce"), dict(task="digits", loss="mse"),
    dict(stride=2, n_conv=2, kernel=3),
])
def test_custom_layers_build_valid_networks(kw):
    layers = custom_layers(**kw)
    cfg = RunConfig(preset="custom", layers=layers, task=kw.get("task", "digits"),
                    loss=kw.get("loss", "softmax_ce")).validate()
    net = from_spec(cfg.layers, rng=0, input_shape=(1, 28, 28))
    out = net.forward(np.zeros((2, 1, 28, 28), np.float32))
    k = 10 if cfg.task == "digits" else (2 if cfg.loss == "softmax_ce" else 1)
    assert out.shape == (2, k)


@pytest.mark.parametrize("kw, message", [
    (dict(filters=65), "filters"), (dict(filters=0), "filters"), (dict(kernel=10), "kernel"),
    (dict(n_conv=4), "conv layers"), (dict(n_conv=0), "conv layers"),
    (dict(activation="gelu"), "activation"),
    (dict(pooling="median"), "pooling"), (dict(padding=5), "padding"), (dict(stride=4), "stride"),
    (dict(n_conv=3, kernel=9, pooling="max"), "does not fit"), (dict(filters=8.0), "integer"),
    (dict(filters=True), "integer"), (dict(task="cats"), "task"),
])
def test_custom_layers_reject_out_of_range(kw, message):
    with pytest.raises(ValueError, match=message):
        custom_layers(**kw)


def _cls(**changes) -> dict:
    d = preset_config("classroom").to_dict()
    d.update(changes)
    return d


@pytest.mark.parametrize("d, field", [
    (_cls(lr="fast"), "lr"), (_cls(lr=[0.1]), "lr"), (_cls(lr=True), "lr"), (_cls(lr=float("nan")), "lr"),
    (_cls(lr=float("inf")), "lr"), (_cls(lr=0.0), "lr"), (_cls(lr=11.0), "lr"), (_cls(lr=1e-6), "lr"),
    (_cls(batch_size=[32]), "batch_size"), (_cls(batch_size=True), "batch_size"),
    (_cls(batch_size=32.0), "batch_size"), (_cls(batch_size=-1), "batch_size"),
    (_cls(batch_size=1025), "batch_size"), (_cls(batch_size="64"), "batch_size"),
    (_cls(train_size=4001), "train_size"), (_cls(train_size=9), "train_size"),
    (_cls(train_size=None), "train_size"),
    (_cls(seed=-1), "seed"), (_cls(seed=2**31), "seed"), (_cls(seed="0"), "seed"), (_cls(seed=1.5), "seed"),
    (_cls(momentum=1.0), "momentum"), (_cls(momentum=-0.1), "momentum"), (_cls(val_every=0), "val_every"),
    (_cls(lr_decay=0.0), "lr_decay"), (_cls(lr_decay=1.5), "lr_decay"),
    (_cls(preset="huge"), "preset"), (_cls(loss="hinge"), "loss"), (_cls(task="letters"), "task"),
    (_cls(optimizer="rmsprop"), "optimizer"), (_cls(init="zeros"), "init"), (_cls(preset=3), "preset"),
    (_cls(learning_rate=0.1), "unknown config keys"), (_cls(layers="conv"), "layers"),
    (_cls(layers=[]), "number of layers"), (_cls(layers=[{"type": "Conv3D"}]), "unknown layer type"),
    (_cls(layers=[{"type": "Flatten"}, {"type": "Dense", "in_features": 784, "out_features": 10, "bias": 1}]),
     "unknown keys"),
    (_cls(layers=[{"type": "Flatten"}, {"type": "Dense", "in_features": 783, "out_features": 10}]),
     "in_features"),
    (_cls(layers=[{"type": "Dense", "in_features": 784, "out_features": 10}]), "Flatten"),
    (_cls(layers=[{"type": "Conv2D", "in_channels": 2, "out_channels": 4, "kernel_size": 3},
                  {"type": "Flatten"}, {"type": "Dense", "in_features": 2704, "out_features": 10}]),
     "in_channels"),
    (_cls(layers=[{"type": "Conv2D", "in_channels": 1, "out_channels": 4}]), "missing"),
    (_cls(layers=[{"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": "5"}]), "integer"),
    (_cls(layers=[{"type": "Conv2D", "in_channels": 1, "out_channels": 1000, "kernel_size": 5}]),
     "out_channels"),
    (_cls(layers=[{"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 3}]),
     "flat output"),
    (_cls(layers=[{"type": "Flatten"}, {"type": "Dense", "in_features": 784, "out_features": 4096},
                  {"type": "Dense", "in_features": 4096, "out_features": 10}]), "number of parameters"),
    (_cls(layers=[{"type": "Flatten"}, {"type": "Dense", "in_features": 784, "out_features": 3}]),
     "outputs 3"),
    (_cls(layers=custom_layers(loss="mse")), "remove the final Sigmoid"),
    (_cls(loss="bce"), "Sigmoid"),
    (dict(preset="custom"), "needs 'layers'"),
    (_cls(layers=custom_layers(filters=64, kernel=9, padding=4, n_conv=2), batch_size=1024),
     "MB per training step"),
    ([1, 2], "JSON object"), ("classroom", "JSON object"),
])
def test_from_dict_rejects_bad_values_naming_the_field(d, field):
    with pytest.raises(ValueError, match=field):
        RunConfig.from_dict(d)


def test_full_batch_is_bounded():
    assert RunConfig.from_dict(_cls(batch_size=0, train_size=2000)).effective_batch == 2000
    with pytest.raises(ValueError, match="MB per training step"):
        RunConfig.from_dict(_cls(batch_size=0))
    assert RunConfig.from_dict({"preset": "tutorial", "train_size": 4000}).effective_batch == 4000
    with pytest.raises(ValueError, match="full batch"):
        RunConfig.from_dict(_cls(batch_size=0, train_size=5000), max_train_size=60000)


def test_train_size_limit_depends_on_the_data():
    d = _cls(train_size=60000)
    with pytest.raises(ValueError, match="train_size"):
        RunConfig.from_dict(d)
    assert RunConfig.from_dict(d, max_train_size=LIMITS["train_size_idx"][1]).train_size == 60000


def test_step_memory_estimate_grows_with_batch():
    layers = preset_config("classroom").layers
    assert estimate_step_bytes(layers, 64) == 64 * estimate_step_bytes(layers, 1)
    # the tutorial's full batch fits even on 4,000 images (~350 MB); the classroom net's does not (~540 MB)
    assert estimate_step_bytes(preset_config("tutorial").layers, 4000) / 2**20 < LIMITS["step_memory_mb"][1]
    assert estimate_step_bytes(layers, 4000) / 2**20 > LIMITS["step_memory_mb"][1]


def test_limits_are_documented_ranges():
    for key, (lo, hi) in LIMITS.items():
        assert lo <= hi, key
    for key in ("filters", "kernel", "conv_layers", "batch_size", "train_size", "lr", "seed"):
        assert key in LIMITS
    assert "steps_per_tick" in LIMITS

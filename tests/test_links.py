"""Links that open a configuration (cnnviz.train.links): round trips, every limit, tampered values."""

from __future__ import annotations

import pytest

from cnnviz.train import config as C
from cnnviz.train import links

PAGES = ("train", "inside", "gradients", "draw", "evaluate", "lesson")


def _open(params: dict, **kw) -> links.LinkResult:
    return links.from_params(params, pages=PAGES, n_steps=10, **kw)


@pytest.mark.parametrize("preset", ["tutorial", "classroom", "deeper"])
def test_a_preset_is_one_parameter(preset):
    cfg = C.preset_config(preset)
    assert links.to_params(cfg) == {"preset": preset}
    assert _open({"preset": preset}).config == cfg


CHANGED = [
    C.preset_config("tutorial", lr=0.01, seed=3),
    C.preset_config("classroom", optimizer="adam", lr=0.002, batch_size=64, train_size=1000, seed=7),
    C.preset_config("deeper", momentum=0.5, lr_decay=0.9, init="tutorial"),
    C.RunConfig.from_dict(
        {
            "preset": "custom",
            "task": "gt4",
            "loss": "bce",
            "lr": 0.01,
            "layers": C.custom_layers(
                n_conv=2,
                filters=4,
                kernel=3,
                activation="tanh",
                pooling="avg",
                padding=1,
                stride=1,
                task="gt4",
                loss="bce",
            ),
        }
    ),
    C.RunConfig.from_dict(
        {
            **C.preset_config("tutorial").to_dict(),
            "preset": "custom",
            "layers": C.custom_layers(
                filters=6, kernel=5, activation="sigmoid", pooling="none", task="gt4", loss="mse"
            ),
        }
    ),
]


@pytest.mark.parametrize("cfg", CHANGED, ids=lambda c: c.preset)
def test_round_trip(cfg):
    params = links.to_params(cfg, page="inside", step=4)
    assert all(isinstance(v, str) for v in params.values())
    res = _open(params)
    assert res.problems == []
    assert res.config == cfg
    assert (res.page, res.step) == ("inside", 4)


def test_only_differences_are_written():
    params = links.to_params(C.preset_config("tutorial", lr=0.01, seed=3))
    assert params == {"preset": "tutorial", "lr": "0.01", "seed": "3"}


def test_the_issue_link():
    res = _open({"preset": "tutorial", "lr": "0.01", "seed": "3", "page": "inside"})
    assert res.problems == []
    assert res.config == C.preset_config("tutorial", lr=0.01, seed=3)
    assert res.page == "inside"


def test_tampered_link_gets_messages_and_defaults():
    res = _open({"lr": "1e9", "filters": "-3", "foo": "1"})
    text = " | ".join(res.problems)
    assert len(res.problems) == 3, text
    assert "lr" in text and "1e+09" in text or "1000000000" in text
    assert "filters" in text and "-3" in text
    assert "unknown parameter 'foo'" in text
    assert res.config == C.preset_config("classroom")


# (parameter, a value just outside its limit, a value at the limit)
LIMIT_CASES = [
    ("lr", "10.5", "10"),
    ("lr", "0.000005", "0.00001"),
    ("momentum", "1", "0.999"),
    ("momentum", "-0.1", "0"),
    ("decay", "0.05", "0.1"),
    ("decay", "1.5", "1"),
    ("batch", "1025", "1024"),
    ("batch", "-1", "8"),
    ("train", "9", "10"),
    ("train", "4001", "4000"),
    ("seed", "-1", "0"),
    ("seed", str(2**31), str(2**31 - 1)),
    ("filters", "65", "64"),
    ("filters", "0", "1"),
    ("kernel", "10", "9"),
    ("kernel", "0", "1"),
    ("conv", "4", "2"),
    ("conv", "0", "1"),
    ("padding", "5", "4"),
    ("padding", "-1", "0"),
    ("stride", "4", "3"),
    ("stride", "0", "1"),
]


@pytest.mark.parametrize("param,bad,good", LIMIT_CASES)
def test_every_limit(param, bad, good):
    res = _open({"preset": "classroom", param: bad})
    assert len(res.problems) == 1 and param in res.problems[0], res.problems
    assert res.config is not None
    ok = _open({"preset": "classroom", param: good})
    assert ok.problems == [], ok.problems


@pytest.mark.parametrize(
    "params,word",
    [
        ({"lr": "nan"}, "finite"),
        ({"lr": "inf"}, "finite"),
        ({"lr": "abc"}, "number"),
        ({"seed": "3.5"}, "whole number"),
        ({"batch": "0x10"}, "whole number"),
        ({"seed": "1" * 60}, "characters"),
        ({"preset": "gpt"}, "unknown preset"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"activation": "gelu"}, "activation"),
        ({"pooling": "sum"}, "pooling"),
        ({"task": "letters"}, "task"),
        ({"page": "admin"}, "does not exist"),
        ({"step": "11"}, "does not exist"),
        ({"step": "x"}, "whole number"),
        ({"session": "abc"}, "unknown parameter"),
        ({"model": "x.npz"}, "unknown parameter"),
    ],
)
def test_tampered_values(params, word):
    res = _open(params)
    assert res.problems and word in " ".join(res.problems), res.problems
    assert res.page is None and res.step is None
    assert res.config is None or res.config == C.preset_config("classroom")


def test_values_that_do_not_fit_together_fall_back_to_the_preset():
    # full batch on 4,000 images with 64 filters of 9x9: each value is allowed, the memory is not
    res = _open({"preset": "classroom", "batch": "0", "filters": "64", "kernel": "9"})
    assert res.problems and "defaults" in res.problems[-1]
    assert res.config == C.preset_config("classroom")


def test_repeated_parameter_uses_the_last_value_with_a_message():
    res = _open({"seed": ["1", "2"]})
    assert res.config.seed == 2 and "2 times" in res.problems[0]


def test_too_many_parameters():
    res = _open({f"k{i}": "1" for i in range(60)})
    assert res.config is None and "parameters" in res.problems[0]


def test_no_settings_keeps_the_session():
    res = _open({"page": "lesson", "step": "3"})
    assert res.config is None and (res.page, res.step) == ("lesson", 3) and res.problems == []


def test_task_and_loss_together():
    res = _open({"preset": "classroom", "task": "gt4", "loss": "bce"})
    assert res.problems == []
    assert (res.config.task, res.config.loss, res.config.preset) == ("gt4", "bce", "custom")
    assert res.config.layers[-1]["type"] == "Sigmoid"


def test_a_network_a_link_cannot_describe():
    layers = [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "Conv2D", "in_channels": 4, "out_channels": 6, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": 3456, "out_features": 10},
    ]
    cfg = C.RunConfig.from_dict({"preset": "custom", "layers": layers})
    with pytest.raises(ValueError, match="cannot be written as a link"):
        links.to_params(cfg)

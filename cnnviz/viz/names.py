"""Names for people: layers, parameters, losses, tasks and optimisers as the app's text shows them.

One naming everywhere (pages, figures, captions): filters, channels and classes are numbered from 1; a
parameter is "conv 1 weights" or "dense bias", never "0.W"; internal codes (softmax_ce, gt4) never appear.
Pure: no Streamlit, no Plotly.
"""

from __future__ import annotations

LOSS_NAMES = {"softmax_ce": "softmax cross-entropy", "mse": "mean squared error",
              "bce": "binary cross-entropy"}
TASK_NAMES = {"digits": "10 digits (0–9)", "gt4": "0–4 vs 5–9"}
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD"}
INIT_NAMES = {"default": "He / Glorot", "tutorial": "uniform(0, 1)"}
ACTIVATION_NAMES = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
POOLING_NAMES = {"max": "max", "avg": "average", "none": "none"}  # short: the selectbox is narrow
PRESET_NAMES = {"tutorial": "Tutorial", "classroom": "Classroom", "deeper": "Deeper", "custom": "Custom"}
LAYER_WORDS = {"Conv2D": "conv", "Dense": "dense", "MaxPool2D": "max-pool", "AvgPool2D": "average-pool",
               "ReLU": "ReLU", "Sigmoid": "sigmoid", "Tanh": "tanh", "Flatten": "flatten"}
PARAM_WORDS = {"W": "weights", "b": "bias"}


def loss_name(code: str) -> str:
    return LOSS_NAMES.get(code, code)


def task_name(code: str) -> str:
    return TASK_NAMES.get(code, code)


def optimizer_name(code: str) -> str:
    return OPTIMIZER_NAMES.get(code, code)


def layer_label(layer_index: int, spec: list[dict]) -> str:
    """"conv 2" for the second Conv2D of ``spec`` (a layer list of dicts with "type"), "dense 1", ... The
    number is counted among layers of the same type, from 1; a type that occurs once still gets "1" for
    conv/dense (so "conv 1" always means the first conv layer)."""
    kind = spec[layer_index]["type"]
    nth = sum(s["type"] == kind for s in spec[: layer_index + 1])
    word = LAYER_WORDS.get(kind, kind.lower())
    n_same = sum(s["type"] == kind for s in spec)
    if kind in ("Conv2D", "Dense") or n_same > 1:
        return f"{word} {nth}"
    return word


def layer_param_label(layer_index: int, layer_type: str, param_name: str, spec: list[dict]) -> str:
    """A parameter for people: (0, "Conv2D", "W", spec) -> "conv 1 weights"; the output Dense's bias ->
    "dense bias" when it is the only dense layer, else "dense 2 bias"."""
    if spec[layer_index]["type"] != layer_type:
        raise ValueError(f"layer {layer_index} is a {spec[layer_index]['type']}, not a {layer_type}")
    label = layer_label(layer_index, spec)
    if layer_type == "Dense" and sum(s["type"] == "Dense" for s in spec) == 1:
        label = "dense"
    return f"{label} {PARAM_WORDS.get(param_name, param_name)}"


def param_label_from_name(name: str, spec: list[dict]) -> str:
    """The label of a parameter named as in ``Network.named_params`` ("3.W") for people ("dense weights")."""
    i, key = name.split(".", 1)
    return layer_param_label(int(i), spec[int(i)]["type"], key, spec)


def describe_config(cfg) -> str:
    """One line about a RunConfig for the app's text (no internal codes): "classroom: 10 digits (0–9),
    softmax cross-entropy, SGD lr 0.08, batch 32, 2,000 images, seed 0"."""
    batch = "full batch" if cfg.batch_size == 0 else f"batch {cfg.batch_size}"
    preset = PRESET_NAMES.get(cfg.preset, cfg.preset)
    return (f"{preset}: {task_name(cfg.task)}, {loss_name(cfg.loss)}, {optimizer_name(cfg.optimizer)} "
            f"lr {cfg.lr:g}, {batch}, {cfg.train_size:,} images, seed {cfg.seed}")

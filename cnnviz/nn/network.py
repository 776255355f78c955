"""Network: a sequence of layers, its spec format (plain dicts, JSON-able), and the presets.

A spec is a list of dicts like ``{"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 5}``:
"type" names a class in ``cnnviz.nn.layers``, the other keys are its constructor arguments.
"""

from __future__ import annotations

import numpy as np

from cnnviz.nn.layers import LAYER_TYPES, Layer, Sigmoid, as_rng
from cnnviz.nn.losses import softmax

__all__ = ["Network", "from_spec", "infer_shapes", "validate_spec", "build", "PRESET_LAYERS", "PRESET_LOSS",
           "PRESET_TASK", "INITS"]

INITS = ("default", "tutorial")

PRESET_LAYERS: dict[str, list[dict]] = {
    # The tutorial's exact network: 3 filters 5x5, sigmoid, flatten 3*24*24 = 1728, dense to 1, sigmoid.
    "tutorial": [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 5, "stride": 1, "padding": 0},
        {"type": "Sigmoid"},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": 1728, "out_features": 1},
        {"type": "Sigmoid"},
    ],
    # 8 filters 5x5, ReLU, 2x2 max-pool (8*12*12 = 1152), dense to 10 logits.
    "classroom": [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 8, "kernel_size": 5, "stride": 1, "padding": 0},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": 1152, "out_features": 10},
    ],
    # Two conv layers like ConvNetJS's MNIST demo: 28 -> 14 -> 7, 16*7*7 = 784 features.
    "deeper": [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 8, "kernel_size": 5, "stride": 1, "padding": 2},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "size": 2},
        {"type": "Conv2D", "in_channels": 8, "out_channels": 16, "kernel_size": 5, "stride": 1, "padding": 2},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": 784, "out_features": 10},
    ],
}
PRESET_LOSS = {"tutorial": "mse", "classroom": "softmax_ce", "deeper": "softmax_ce"}
PRESET_TASK = {"tutorial": "gt4", "classroom": "digits", "deeper": "digits"}

_RELU_LIKE = {"ReLU"}


class Network:
    """A sequence of layers. ``forward`` keeps every layer's output in ``outputs`` (for feature maps).

    Layer outputs are (N, C, H, W) or (N, features) arrays. Not thread-safe: forward and backward
    keep per-layer caches, so threads (app sessions) that train or take gradients need their own ``copy()``.
    """

    def __init__(self, layers: list[Layer]):
        self.layers: list[Layer] = list(layers)
        self.outputs: list[np.ndarray] = []
        self.deltas: list[np.ndarray] = []  # dE/d(output of layer i), after backward(..., keep_deltas=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) -> the last layer's output, e.g. (N, K)."""
        self.outputs = []  # let the allocator reuse the previous step's memory
        outs = []
        for layer in self.layers:
            x = layer.forward(x)
            outs.append(x)
        self.outputs = outs
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray, need_dx: bool = False,
                 keep_deltas: bool = False) -> np.ndarray | None:
        """Back-propagate dE/doutput through every layer, filling each layer's ``grads``.

        The first layer skips its input gradient (as PyTorch does for inputs that do not require it)
        unless ``need_dx`` is True; then dE/dx (N, C, H, W) is returned (saliency maps need it).
        ``keep_deltas``: also keep dE/d(output of layer i) for every i in ``self.deltas`` (the lesson
        pages show them); otherwise ``self.deltas`` is emptied.
        """
        deltas: list[np.ndarray] = [None] * len(self.layers) if keep_deltas else []  # type: ignore[list-item]
        for i in range(len(self.layers) - 1, -1, -1):
            if keep_deltas:
                deltas[i] = dout
            dout = self.layers[i].backward(dout, need_dx=need_dx or i > 0)
        self.deltas = deltas
        return dout

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K): the output itself after a final Sigmoid (K = 1 for the binary
        net: P(class 1)), else the softmax of the logits."""
        out = self.forward(x)
        if self.layers and isinstance(self.layers[-1], Sigmoid):
            return out
        return softmax(out)

    def named_params(self):
        """("0.W", array), ("0.b", array), ... : layer index . key."""
        for i, layer in enumerate(self.layers):
            for key, p in layer.params.items():
                yield f"{i}.{key}", p

    def named_grads(self):
        """("0.W", grad), ... with the same names and shapes as ``named_params``."""
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                yield f"{i}.{key}", layer.grads[key]

    def spec(self) -> list[dict]:
        """The layer specs; ``from_spec(net.spec())`` rebuilds the architecture."""
        return [layer.spec() for layer in self.layers]

    def copy(self) -> Network:
        """A new Network with the same architecture and copies of the weights and gradients."""
        net = from_spec(self.spec(), rng=0)
        for src, dst in zip(self.layers, net.layers, strict=True):
            for key, p in src.params.items():
                dst.params[key] = p.copy()
                dst.grads[key] = src.grads[key].copy()
        return net

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Replace weights from a {"0.W": array, ...} dict (names and shapes must match)."""
        own = dict(self.named_params())
        if set(params) != set(own):
            raise ValueError(f"parameter names differ: expected {sorted(own)}, got {sorted(params)}")
        for name, value in params.items():
            value = np.asarray(value)
            if value.shape != own[name].shape:
                raise ValueError(f"parameter {name} has shape {value.shape}, expected {own[name].shape}")
            i, key = name.split(".", 1)
            self.layers[int(i)].params[key] = value.astype(own[name].dtype, copy=True)

    def astype(self, dtype) -> Network:
        """Cast every parameter (and gradient) to ``dtype`` in place; returns self (tests use float64)."""
        for layer in self.layers:
            for key in layer.params:
                layer.params[key] = layer.params[key].astype(dtype)
                layer.grads[key] = layer.grads[key].astype(dtype)
        return self

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(p.size for _, p in self.named_params()))

    def __repr__(self) -> str:
        return "Network([\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + "])"


def validate_spec(layer_specs) -> list[dict]:
    """Check a spec list's form (known types, known and complete keyword arguments); ValueError otherwise.

    Returns a normalised copy (plain dicts with "type" first).
    """
    if not isinstance(layer_specs, (list, tuple)) or not layer_specs:
        raise ValueError("a network spec must be a non-empty list of layer dicts")
    out = []
    for pos, spec in enumerate(layer_specs):
        if not isinstance(spec, dict):
            raise ValueError(f"layer {pos}: expected a dict, got {type(spec).__name__}")
        kind = spec.get("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"layer {pos}: unknown layer type {kind!r}; "
                             f"expected one of {sorted(LAYER_TYPES)}")
        names, required = LAYER_TYPES[kind].spec_args()
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        unknown = set(kwargs) - names
        if unknown:
            raise ValueError(f"layer {pos} ({kind}): unknown argument(s) {sorted(unknown)}; "
                             f"allowed: {sorted(names)}")
        missing = required - set(kwargs)
        if missing:
            raise ValueError(f"layer {pos} ({kind}): missing argument(s) {sorted(missing)}")
        for k, v in kwargs.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                raise ValueError(f"layer {pos} ({kind}): {k} must be an integer, got {v!r}")
        out.append({"type": kind, **kwargs})
    return out


def _build_layers(specs: list[dict], rng, init: str | None) -> list[Layer]:
    """Layers from validated specs; weights drawn from ``rng`` in layer order (init None: no weights)."""
    if init is not None and init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    rng = as_rng(rng)
    layers = []
    for pos, spec in enumerate(specs):
        if init is None or init == "tutorial":
            scheme = init
        else:
            # He for a layer followed by ReLU, Glorot otherwise (sigmoid, tanh, logits).
            nxt = specs[pos + 1]["type"] if pos + 1 < len(specs) else None
            scheme = "he" if nxt in _RELU_LIKE else "glorot"
        try:
            layers.append(LAYER_TYPES[spec["type"]].from_spec(spec, rng=rng, init=scheme))
        except ValueError as exc:
            raise ValueError(f"layer {pos} ({spec['type']}): {exc}") from None
    return layers


def infer_shapes(layer_specs, input_shape=(1, 28, 28)) -> list[tuple]:
    """Per-sample output shape of every layer for a per-sample ``input_shape`` (C, H, W).

    Raises ValueError naming the first layer whose input does not fit (e.g. a Dense whose in_features is
    not the flattened size, a kernel larger than its input, a channel mismatch).
    """
    specs = validate_spec(layer_specs)
    layers = _build_shape_only(specs)
    shapes = []
    shape = tuple(int(s) for s in input_shape)
    for pos, layer in enumerate(layers):
        try:
            shape = layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"layer {pos} ({specs[pos]['type']}): {exc}") from None
        shapes.append(shape)
    return shapes


def _build_shape_only(specs: list[dict]) -> list[Layer]:
    """Layers for shape checks only: hyperparameters validated, no weights allocated."""
    return _build_layers(specs, rng=None, init=None)


def from_spec(layer_specs, rng=None, init: str = "default", input_shape=None) -> Network:
    """Build a Network from layer specs.

    rng: Generator, int seed or None (seed 0). init: "default" (He before ReLU, Glorot otherwise, zero
    biases) or "tutorial" (the tutorial's uniform(0, 1) weights, zero biases). If ``input_shape`` (C, H, W)
    is given, the layers' shapes are checked to fit together (ValueError otherwise).
    """
    specs = validate_spec(layer_specs)
    if input_shape is not None:
        infer_shapes(specs, input_shape)
    return Network(_build_layers(specs, rng, init))


def build(name: str, rng=None, init: str = "default") -> Network:
    """A preset network: "tutorial", "classroom" or "deeper" (see ``PRESET_LAYERS``)."""
    if name not in PRESET_LAYERS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESET_LAYERS)}")
    return from_spec(PRESET_LAYERS[name], rng=rng, init=init, input_shape=(1, 28, 28))

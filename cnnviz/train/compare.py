"""Runs side by side: up to four runs trained in lockstep on the same minibatches from the same seed.

A ``Comparison`` holds up to ``MAX_RUNS`` ``RunSpec``s (a label, a ``RunConfig`` and which gradient to
follow) and one Trainer per run. ``step()`` advances every run by one step. All runs share the seed and the
training-set size, so the same architecture starts from the same weights and every run sees the same
minibatches in the same order (checked after every step: ``same_batches``); any difference between the
curves then comes from the settings that differ (``differences``).

Lesson presets (``LESSONS``) build the classic comparisons: sigmoid vs ReLU, MSE vs cross-entropy, the
tutorial's uniform(0, 1) start vs Glorot's, learning rate ×0.1 / ×1 / ×10, max vs average pooling, and the
tutorial's own gradient vs the true one (``TutorialGradientTrainer``: the tutorial's exact network, trained
with the backward pass the tutorial wrote, mistakes and all, beside the true gradient of the same forward
pass). ``pinned`` builds a comparison from the session's current config plus changed copies of it.

No Streamlit here; the Compare page (cnnviz/ui/compare.py) shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnviz.nn import tutorial as T
from cnnviz.train import health
from cnnviz.train.config import RunConfig, custom_layers, output_layers, preset_config
from cnnviz.train.data import Dataset
from cnnviz.train.trainer import Trainer, TrainingDiverged

MAX_RUNS = 4
GRADIENTS = {"true": "true gradient", "tutorial": "the tutorial's gradient"}
SHARED_FIELDS = ("seed", "train_size")  # equal in every run: same start, same minibatches

# Field names for people, in the differences table
FIELD_LABELS = {
    "preset": "preset", "task": "task", "loss": "loss", "optimizer": "optimiser", "lr": "learning rate",
    "momentum": "momentum", "batch_size": "batch size", "train_size": "training images", "seed": "seed",
    "init": "initial weights", "val_every": "validate every", "lr_decay": "learning-rate decay per epoch",
    "layers": "layers", "gradient": "gradient",
}
VALUE_LABELS = {
    "loss": {"softmax_ce": "softmax cross-entropy", "mse": "mean squared error",
             "bce": "binary cross-entropy"},
    "task": {"digits": "10 digits", "gt4": "0–4 vs 5–9"},
    "init": {"default": "He / Glorot", "tutorial": "uniform(0, 1)"},
    "optimizer": {"sgd": "SGD", "adam": "Adam"},
    "gradient": GRADIENTS,
}


@dataclass
class RunSpec:
    """One run of a comparison: its label (shown in every legend), config, and gradient ("true", or
    "tutorial": the tutorial's own backward pass; only for the tutorial's network). ``tutorial_forward``:
    train the tutorial's exact forward pass (no biases, dense output standardised over the batch), which
    the tutorial's gradient implies; its true-gradient twin sets it too, so that only the backward differs.
    """

    label: str
    config: RunConfig
    gradient: str = "true"
    tutorial_forward: bool = False

    def to_dict(self) -> dict:
        return {"label": self.label, "gradient": self.gradient, **self.config.to_dict()}


# ----------------------------------------------------------------------------------------------------------
# The tutorial's network trained with the tutorial's gradient (or the true one)
# ----------------------------------------------------------------------------------------------------------
class TutorialGradientTrainer(Trainer):
    """The tutorial's exact network: conv (3 filters 5×5, no bias) → sigmoid → flatten → dense (no bias) →
    the dense output standardised over the batch, z -> (z - mean) / std → sigmoid, with E = (y - O)² / 2.

    ``mistakes=True`` follows the gradient the tutorial's code computes (``cnnviz.nn.tutorial.
    tutorial_gradients`` with no fixes: its backward pass skips the standardisation, averages before the
    filter gradient, mixes filters with np.resize, uses the updated dense weights and sums the dense
    gradient over the images); ``mistakes=False`` follows the true gradient of the same forward pass. The
    biases of the cnnviz layers stay 0 (the tutorial has none). Validation standardises over the validation
    images, as the tutorial's forward pass would.
    """

    def __init__(self, config: RunConfig, data: Dataset, mistakes: bool = True):
        if [s["type"] for s in config.layers] != ["Conv2D", "Sigmoid", "Flatten", "Dense", "Sigmoid"] or \
                config.loss != "mse" or config.task != "gt4" or config.layers[0]["kernel_size"] != T.KSIZE \
                or config.layers[0]["in_channels"] != 1:
            raise ValueError("the tutorial's gradient exists only for the tutorial's network "
                             "(conv 5×5 → sigmoid → dense → sigmoid, squared error, 0–4 vs 5–9)")
        self.mistakes = mistakes
        super().__init__(config, data)

    def _z(self, x: np.ndarray) -> np.ndarray:
        """The raw dense output z (N, 1) of images x (N, 1, 28, 28): conv → sigmoid → flatten → dense.
        Keeps the sigmoid's output A (N, F, Ho, Wo) for the tutorial's backward pass."""
        h = x
        for i, layer in enumerate(self.net.layers[:4]):
            h = layer.forward(h)
            if i == 1:
                self._A = h  # (N, F, Ho, Wo)
        return h  # (N, 1)

    def _tutorial_grads(self) -> tuple[np.ndarray, np.ndarray]:
        """The gradient the tutorial's code computes (``tutorial.tutorial_gradients`` with no fixes),
        in cnnviz's layout, from this batch's forward pass: (conv dW (F, 1, KH, KW), dense dW (F*Ho*Wo, 1)).

        The same arithmetic, rearranged: the tutorial's filter gradient correlates the patches' mean over the
        images, i.e. the patches of the mean image, with the image-averaged error, so only the mean image is
        needed (the tutorial's loops are in ``tutorial_backward``; tests check the two agree).
        """
        conv, dense = self.net.layers[0], self.net.layers[3]
        A = self._A.astype(np.float64)  # (N, F, Ho, Wo)
        N, F, Ho, Wo = A.shape
        KH, KW = conv.params["W"].shape[2:]
        A_flat = A.reshape(N, F * Ho * Wo)  # (N, F*Ho*Wo), cnnviz's (filter, row, col) order
        O = self._out.astype(np.float64)  # (N, 1)
        y = np.asarray(self._y_batch, dtype=np.float64).reshape(N, 1)
        delta = -(y - O) * O * (1 - O)  # (N, 1): dE_i/dz_hat, the standardisation skipped
        dWd = A_flat.T @ delta  # (F*Ho*Wo, 1): summed over the images
        w_back = dense.params["W"].astype(np.float64) - self.optimizer.lr * dWd  # the already-updated wo
        g = ((delta @ w_back.T) * A_flat * (1 - A_flat)).mean(axis=0)  # (F*Ho*Wo,): averaged first
        # np.resize of the tutorial's (filter, col, row) vector to (positions, filters), position-major
        v = g.reshape(F, Ho, Wo).transpose(0, 2, 1).reshape(-1)  # (F*Wo*Ho,) the tutorial's order
        maps = v.reshape(Wo * Ho, F)  # (positions, F): row p = tutorial position (col, row) = divmod(p, Ho)
        E = maps.reshape(Wo, Ho, F).transpose(2, 1, 0)  # (F, Ho, Wo): each filter's (mixed) error map
        mean_img = self._x_batch[:, 0].astype(np.float64).mean(axis=0)  # (H, W)
        win = sliding_window_view(mean_img, (Ho, Wo))  # (KH, KW, Ho, Wo) view
        dW = np.einsum("rcij,fij->frc", win[:KH, :KW], E)[:, None]  # (F, 1, KH, KW)
        return dW, dWd

    def _forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        self._x_batch, self._y_batch = x, y
        z = self._z(x)  # (B, 1)
        self._sd = float(z.std()) or 1e-12
        self._z_hat = (z - z.mean()) / self._sd  # the tutorial's standardisation over the batch
        out = self.net.layers[4].forward(self._z_hat)  # (B, 1)
        self._out = out
        return self.loss_fn.forward(out, y), out

    def _backward(self) -> None:
        conv, dense = self.net.layers[0], self.net.layers[3]
        if self.mistakes:
            gW, gWd = self._tutorial_grads()  # (3, 1, 5, 5), (1728, 1)
            conv.grads["W"] = gW.astype(conv.params["W"].dtype)
            dense.grads["W"] = gWd.astype(dense.params["W"].dtype)
        else:
            d = self.net.layers[4].backward(self.loss_fn.backward())  # dE/dz_hat (B, 1)
            d = T._standardise_backward(d, self._z_hat, self._sd)  # dE/dz (B, 1)
            for i in range(3, -1, -1):
                d = self.net.layers[i].backward(d, need_dx=i > 0)
        conv.grads["b"] = np.zeros_like(conv.params["b"])  # the tutorial's network has no biases
        dense.grads["b"] = np.zeros_like(dense.params["b"])

    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, float, np.ndarray]:
        """Loss, accuracy and P(digit > 4) (N, 1), standardising the dense output over all N images."""
        if len(x) == 0:
            raise ValueError("evaluate needs at least one image")
        chunk = self._eval_chunk()
        z = np.concatenate([self._z(x[s:s + chunk]) for s in range(0, len(x), chunk)])  # (N, 1)
        sd = float(z.std()) or 1e-12
        out = 1.0 / (1.0 + np.exp(-(z - z.mean()) / sd))  # (N, 1)
        targets = self.make_targets(labels)  # (N, 1)
        loss = float(np.mean(np.sum(np.square(targets - out), axis=1) / 2))
        acc = float((self.predicted_classes(out) == (np.asarray(labels) > 4)).mean())
        return loss, acc, out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.evaluate(x, np.zeros(len(x), dtype=np.int64))[2]


def make_trainer(spec: RunSpec, data: Dataset) -> Trainer:
    """The trainer a run needs: a plain Trainer, or the tutorial-gradient one (both gradients of the
    tutorial's network use its forward pass, so that only the backward pass differs)."""
    if spec.gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {spec.gradient!r}: choose one of {', '.join(GRADIENTS)}")
    if spec.gradient == "tutorial" or spec.tutorial_forward:
        return TutorialGradientTrainer(spec.config, data, mistakes=spec.gradient == "tutorial")
    return Trainer(spec.config, data)


# ----------------------------------------------------------------------------------------------------------
# The comparison
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """A run of a comparison: its spec, trainer, and the message if it diverged (it then stops)."""

    spec: RunSpec
    trainer: Trainer
    stopped: str | None = None
    first_batch: np.ndarray | None = field(default=None, repr=False)


class Comparison:
    """Up to MAX_RUNS runs trained in lockstep.

    ``data_for(task, train_size) -> Dataset`` supplies the (shared, read-only) data. ``check_cost(config)``
    (e.g. ``cnnviz.serve.serving.check_server_cost``) is called for every run before anything is built, so a
    comparison of four runs is refused if any one run would be refused on the Train page.
    """

    def __init__(self, specs: list[RunSpec], data_for: Callable[[str, int], Dataset],
                 check_cost: Callable[[RunConfig], object] | None = None, name: str = ""):
        if not 1 <= len(specs) <= MAX_RUNS:
            raise ValueError(f"a comparison has 1 to {MAX_RUNS} runs, got {len(specs)}")
        for f in SHARED_FIELDS:
            values = {getattr(s.config, f) for s in specs}
            if len(values) > 1:
                raise ValueError(f"every run of a comparison needs the same {FIELD_LABELS[f]} (so that they "
                                 f"see the same images in the same order), got {sorted(values)}")
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"run labels must differ, got {labels}")
        for s in specs:
            s.config.validate(max_train_size=max(s.config.train_size, 10))
            if check_cost is not None:
                check_cost(s.config)
        self.name = name
        self.runs = [Run(s, make_trainer(s, data_for(s.config.task, s.config.train_size))) for s in specs]

    @property
    def step_count(self) -> int:
        return max(r.trainer.step_count for r in self.runs)

    @property
    def labels(self) -> list[str]:
        return [r.spec.label for r in self.runs]

    def step(self, n: int = 1) -> int:
        """``n`` lockstep steps: every run that has not diverged takes one step, in order. Returns the steps
        done (0 when every run has stopped). A run that diverges keeps its last good weights and stops,
        with the trainer's message in ``run.stopped``."""
        done = 0
        for _ in range(int(n)):
            active = [r for r in self.runs if r.stopped is None]
            if not active:
                break
            for r in active:
                try:
                    r.trainer.step()
                except TrainingDiverged as e:
                    r.stopped = str(e)
                    continue
                if r.trainer.step_count == 1:
                    r.first_batch = (np.arange(r.trainer.n_train) if r.trainer.last_batch is None
                                     else r.trainer.last_batch.copy())
            done += 1
        return done

    def validate_now(self) -> None:
        for r in self.runs:
            r.trainer.validate_now()

    def reset(self) -> None:
        """Every run back to step 0 (same weights from the seed, same batch order)."""
        for r in self.runs:
            r.trainer.reset()
            r.stopped, r.first_batch = None, None

    def same_batches(self) -> bool:
        """True when every run's first minibatch (and its latest one) were the same images."""
        firsts = [r.first_batch for r in self.runs if r.first_batch is not None]
        lasts = [r.trainer.last_batch for r in self.runs if r.trainer.step_count and r.stopped is None]
        same = all(np.array_equal(firsts[0], f) for f in firsts[1:]) if firsts else True
        if lasts and all(b is not None for b in lasts):
            same = same and all(np.array_equal(lasts[0], b) for b in lasts[1:])
        return same

    def differences(self) -> list[dict]:
        """The config fields that differ between the runs: [{"setting": name, run label: value, ...}]."""
        return differences([r.spec for r in self.runs])


def _describe_layers(layers: list[dict]) -> str:
    """A short architecture text: "conv 8×5×5 → ReLU → max-pool 2 → dense 10"."""
    parts = []
    for s in layers:
        t = s["type"]
        if t == "Conv2D":
            extra = (f" pad {s['padding']}" if s.get("padding") else "") + (
                f" stride {s['stride']}" if s.get("stride", 1) != 1 else "")
            parts.append(f"conv {s['out_channels']}×{s['kernel_size']}×{s['kernel_size']}{extra}")
        elif t in ("MaxPool2D", "AvgPool2D"):
            parts.append(f"{'max' if t == 'MaxPool2D' else 'average'}-pool {s['size']}")
        elif t == "Dense":
            parts.append(f"dense {s['out_features']}")
        elif t != "Flatten":
            parts.append({"ReLU": "ReLU", "Sigmoid": "sigmoid", "Tanh": "tanh"}[t])
    return " → ".join(parts)


def _value(field_name: str, v) -> str:
    if field_name == "layers":
        return _describe_layers(v)
    if field_name == "batch_size" and v == 0:
        return "full batch"
    if isinstance(v, float):
        return f"{v:g}"
    return VALUE_LABELS.get(field_name, {}).get(v, str(v))


def differences(specs: list[RunSpec]) -> list[dict]:
    """Rows {"setting": label, <run label>: value text, ...} for every field on which the runs differ."""
    dicts = [s.to_dict() for s in specs]
    rows = []
    for key in ("gradient", "layers", "loss", "init", "lr", "optimizer", "momentum", "batch_size", "lr_decay",
                "task", "train_size", "seed", "val_every"):
        values = [d.get(key) for d in dicts]
        if any(v != values[0] for v in values[1:]):
            row = {"setting": FIELD_LABELS[key]}
            row.update({s.label: _value(key, v) for s, v in zip(specs, values, strict=True)})
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------
# Lessons
# ----------------------------------------------------------------------------------------------------------
def _classroom(**kw) -> RunConfig:
    return preset_config("classroom", **kw)


def _custom(activation: str = "relu", pooling: str = "max", loss: str = "softmax_ce", **kw) -> RunConfig:
    layers = custom_layers(activation=activation, pooling=pooling, loss=loss)
    return preset_config("custom", layers=layers, loss=loss, **kw)


def _sigmoid_vs_relu() -> list[RunSpec]:
    return [RunSpec("ReLU", _classroom()), RunSpec("sigmoid", _custom(activation="sigmoid"))]


def _mse_vs_ce() -> list[RunSpec]:
    base = _classroom()
    body = [s for s in base.layers if s["type"] != "Dense"]
    mse_layers = body + output_layers(1152, "digits", "mse")
    return [RunSpec("cross-entropy", base),
            RunSpec("squared error", preset_config("custom", layers=mse_layers, loss="mse"))]


def _init() -> list[RunSpec]:
    return [RunSpec("Glorot", preset_config("tutorial")),
            RunSpec("uniform(0, 1)", preset_config("tutorial", init="tutorial"))]


def _learning_rates() -> list[RunSpec]:
    lr = _classroom().lr
    return [RunSpec(f"lr {lr * f:g}", _classroom(lr=lr * f)) for f in (0.1, 1.0, 10.0)]


def _pooling() -> list[RunSpec]:
    return [RunSpec("max-pool", _classroom()), RunSpec("average-pool", _custom(pooling="avg"))]


# Both runs of this lesson take plain gradient-descent steps on the tutorial's 200 images in one batch, from
# the same start. Measured (seed 0, 100 steps): from Glorot's weights at lr 0.05 the tutorial's gradient drops
# the loss faster at first (its dense gradient is summed over the 200 images: a 200x larger step) and then
# climbs back (0.116 at step 100, validation 65%) while the true gradient keeps descending (0.056, 75%). From
# the tutorial's own uniform(0, 1) start the true gradient hardly moves in 100 steps (loss 0.147, validation
# 41%: the saturated sigmoids pass almost nothing back at this rate) and the tutorial's larger step learns
# (0.071, 80%): the second lesson shows that.
TUTORIAL_GRADIENT_SETTINGS = {"lr": 0.05, "momentum": 0.0}


def _tutorial_gradient(init: str = "default") -> list[RunSpec]:
    cfg = preset_config("tutorial", init=init, **TUTORIAL_GRADIENT_SETTINGS)
    return [RunSpec("true gradient", cfg, "true", True),
            RunSpec("tutorial's gradient", cfg, "tutorial", True)]


LESSONS: dict[str, tuple[Callable[[], list[RunSpec]], str]] = {
    "sigmoid vs ReLU": (_sigmoid_vs_relu,
                        "The classroom network with ReLU and with sigmoid after its filters: which learns "
                        "faster, and why (look at the gradient norms)?"),
    "MSE vs cross-entropy": (_mse_vs_ce,
                             "Ten outputs trained with cross-entropy, or with the tutorial's squared error "
                             "on sigmoid outputs."),
    "tutorial init vs Glorot": (_init,
                                "The tutorial's network from uniform(0, 1) weights (the tutorial's) and from "
                                "Glorot's scaled weights."),
    "learning rate ×0.1 / ×1 / ×10": (_learning_rates,
                                      "The classroom network at a tenth, once and ten times its tested "
                                      "learning rate."),
    "max vs average pooling": (_pooling, "The classroom network with 2×2 max-pooling or average-pooling."),
    "the tutorial's gradient vs the true gradient": (
        _tutorial_gradient,
        "The tutorial's network trained with the gradient its code computes (its backward pass has "
        "mistakes) beside the true gradient of the same network, from the same Glorot start, with plain "
        "gradient descent (lr 0.05) on its 200 images: which learns, and which keeps learning?"),
    "the tutorial's gradient vs the true gradient, from the tutorial's start": (
        lambda: _tutorial_gradient("tutorial"),
        "The same two runs from the tutorial's own uniform(0, 1) weights: which one moves at all, and why "
        "(compare the gradient norms: the tutorial sums its dense gradient over the 200 images)?"),
}


def lesson(name: str) -> list[RunSpec]:
    """The run specs of a lesson preset (a fresh copy)."""
    if name not in LESSONS:
        raise ValueError(f"unknown lesson {name!r}: choose one of {', '.join(LESSONS)}")
    return LESSONS[name][0]()


def variant(config: RunConfig, changes: dict) -> RunConfig:
    """A copy of ``config`` with some settings changed: lr, momentum, optimizer, loss, init, batch_size,
    lr_decay, and the architecture keys activation / pooling (which rebuild a custom network with the same
    first-layer filters and kernel). Validated (ValueError names the field)."""
    d = config.to_dict()
    arch = {k: changes[k] for k in ("activation", "pooling") if k in changes}
    plain = {k: v for k, v in changes.items() if k not in arch}
    d.update(plain)
    if arch or "loss" in plain:
        first = next((s for s in d["layers"] if s["type"] == "Conv2D"), None)
        n_conv = sum(s["type"] == "Conv2D" for s in d["layers"])
        acts = [s["type"] for s in d["layers"][:-1] if s["type"] in ("ReLU", "Sigmoid", "Tanh")]
        pools = [s["type"] for s in d["layers"] if s["type"].endswith("Pool2D")]
        current = {
            "activation": {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}.get(acts[0], "relu")
            if acts else "relu",
            "pooling": ("max" if pools[0] == "MaxPool2D" else "avg") if pools else "none",
        }
        current.update(arch)
        if first is None:
            raise ValueError("this network has no conv layer to change")
        d["layers"] = custom_layers(n_conv=n_conv, filters=first["out_channels"], kernel=first["kernel_size"],
                                    padding=first["padding"], stride=first["stride"], task=d["task"],
                                    loss=d["loss"], **current)
        if d["layers"] != config.layers:
            d["preset"] = "custom"
    return RunConfig.from_dict(d, max_train_size=max(config.train_size, 10))


def pinned(config: RunConfig, changed: list[dict], labels: list[str] | None = None) -> list[RunSpec]:
    """The session's current run ("pinned") plus one run per dict of changed settings (``variant``)."""
    if len(changed) + 1 > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS - 1} changed runs beside the pinned one")
    limit = max(config.train_size, 10)
    specs = [RunSpec("pinned", RunConfig.from_dict(config.to_dict(), max_train_size=limit))]
    for i, ch in enumerate(changed):
        label = labels[i] if labels else ", ".join(f"{FIELD_LABELS.get(k, k)} {_value(k, v)}"
                                                  for k, v in ch.items()) or f"run {i + 2}"
        specs.append(RunSpec(label, variant(config, ch)))
    return specs


# ----------------------------------------------------------------------------------------------------------
# What the Compare page shows, as data (the page only lays it out)
# ----------------------------------------------------------------------------------------------------------
_ACT_CODES = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def current_arch(config: RunConfig) -> dict:
    """The run's activation ("relu", "sigmoid", "tanh") and pooling ("max", "avg", "none"), as the page's
    pickers name them."""
    acts = [s["type"] for s in config.layers[:-1] if s["type"] in _ACT_CODES]
    pools = [s["type"] for s in config.layers if s["type"].endswith("Pool2D")]
    return {"activation": _ACT_CODES.get(acts[0] if acts else "", "relu"),
            "pooling": ("max" if pools[0] == "MaxPool2D" else "avg") if pools else "none"}


def pin_changes(config: RunConfig, lr, activation, pooling, init) -> dict:
    """The chosen settings that differ from the pinned run's ``config`` (None or "": not chosen)."""
    out = {}
    if lr is not None and float(lr) != config.lr:
        out["lr"] = float(lr)
    arch = current_arch(config)
    for name, v in (("activation", activation), ("pooling", pooling)):
        if v and v != arch[name]:
            out[name] = v
    if init and init != config.init:
        out["init"] = init
    return out


def pin_specs(config: RunConfig, changes: dict, previous: list[RunSpec] | None) -> list[RunSpec]:
    """The runs of a pinned comparison: ``config`` beside a copy with ``changes``, or ``previous`` runs plus
    one more such copy. Raises ValueError past MAX_RUNS or for a run already there."""
    if not previous:
        return pinned(config, [changes])
    if len(previous) >= MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs")
    new = pinned(config, [changes])[1]
    if new.label in [s.label for s in previous]:
        raise ValueError(f"a run with {new.label} is already there")
    return previous + [new]


def curve_series(cmp: Comparison) -> list[dict]:
    """Each run's training and validation curves: label, steps, loss, acc, val_steps, val_loss, val_acc."""
    runs = []
    for r in cmp.runs:
        h = r.trainer.history
        v = np.asarray(r.trainer.val_history, dtype=np.float64).reshape(-1, 3)  # (n_val, step/loss/acc)
        runs.append({"label": r.spec.label, "steps": [x.step for x in h], "loss": [x.loss for x in h],
                     "acc": [x.acc for x in h], "val_steps": v[:, 0], "val_loss": v[:, 1],
                     "val_acc": v[:, 2]})
    return runs


def first_filters(cmp: Comparison) -> list[tuple[str, np.ndarray | None]]:
    """Each run's label and a copy of its first conv layer's weights (F, C, KH, KW) (None: no conv layer)."""
    items = []
    for r in cmp.runs:
        W = next((lay.params["W"] for lay in r.trainer.net.layers if type(lay).__name__ == "Conv2D"), None)
        items.append((r.spec.label, None if W is None else W.copy()))
    return items


def grad_norm_series(cmp: Comparison) -> list[dict]:
    """Each run's weight-gradient norms per step: label, steps, and {layer name for people: norms}."""
    runs = []
    for r in cmp.runs:
        h, specs = r.trainer.history, r.trainer.config.layers
        keys = [k for k in (h[-1].grad_norms if h else {}) if k.endswith(".W")]
        runs.append({"label": r.spec.label, "steps": [x.step for x in h],
                     "series": {health.param_name(specs, k): [x.grad_norms.get(k, np.nan) for x in h]
                                for k in keys}})
    return runs


def batches_note(cmp: Comparison) -> str:
    """One sentence on the minibatches the runs saw."""
    if cmp.step_count == 0:
        return ("Every run starts from the same seed: the same minibatches in the same order (and, for "
                "the same architecture, the same initial weights).")
    if cmp.same_batches():
        first = cmp.runs[0].first_batch
        n = len(first) if first is not None else 0
        return (f"✓ Same images for every run: the same {n:,} images in step 1 and the same minibatch in "
                "every step since; only the settings in the table differ.")
    return "The runs saw different minibatches (their batch sizes differ)."


def run_health(cmp: Comparison, nets: list, x_val: np.ndarray) -> list[list[health.Hint]]:
    """Each run's health hints, from private copies ``nets`` of its networks and validation images x_val
    (N, 1, 28, 28); none for a run not yet started."""
    out = []
    for r, net in zip(cmp.runs, nets, strict=True):
        if r.trainer.step_count == 0 and r.stopped is None:
            out.append([])
            continue
        out.append(health.trainer_health(r.trainer, x_val, net=net)
                   if not isinstance(r.trainer, TutorialGradientTrainer) else
                   [h for h in health.check(r.trainer.history, r.trainer.val_history,
                                            health.Probe(np.zeros(2, dtype=np.int64), ()),
                                            r.trainer.config.to_dict(), {}, 2, r.trainer.n_train,
                                            divergence=r.stopped)])
    return out

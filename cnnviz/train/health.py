"""Training health: pure checks that say what is wrong with a run, with the evidence and a fix.

Every check reads the trainer's history (``StepRecord``s, validation points) and a ``Probe``: one forward
pass of the network on a fixed batch of validation images, which shows the predicted classes and, for every
hidden activation, how many units never fire (ReLU) or sit in the flat tails (sigmoid, tanh). Nothing here
imports Streamlit; the Train and Compare pages show the ``Hint``s.

A hint says what it saw (numbers), why that matters (one sentence) and offers a fix as a change of config
fields (``Hint.fix``; ``apply_fix`` turns it into a new config dict). The checks:

- diverged: the loss became NaN/inf (the trainer rolled back) or jumped ×10 within a few steps;
- stuck: after ``STUCK_STEPS`` steps the batch accuracy is at chance with a flat loss, or nearly every probe
  image gets one class (the histogram of predictions comes with the hint);
- dead ReLUs: most filters/units of a layer never active on the probe batch;
- saturated sigmoid/tanh: most pre-activations beyond |z| > 5, where the slope is below 0.7 %;
- vanishing gradients: a layer's gradient norm below 1e-6 of its weights' norm while the run is not fitted;
- overfitting: validation loss rising for ``RISING_VALS`` validations while the training loss falls, or a
  train–validation accuracy gap above ``GAP``.

Thresholds were set on runs that really fail and really succeed (tests/test_health.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

JUMP = 10.0  # a loss this many times a recent one counts as an explosion ...
JUMP_WINDOW = 5  # ... when it happens within this many steps
STUCK_STEPS = 30  # a run is only called stuck after this many steps
ONE_CLASS = 0.95  # share of probe images given the same class that counts as "one class for everything"
CHANCE_MARGIN = 0.05  # batch accuracy within this of chance counts as "at chance"
FLAT = 0.03  # relative change of the mean loss between the two halves of the window that counts as flat
DEAD_SHARE = 0.5  # share of a layer's filters/units never active that raises the dead-ReLU hint
SAT_Z = 5.0  # |z| beyond which a sigmoid's slope is < 0.0067 (and tanh's < 0.00018)
SAT_SHARE = 0.5  # share of saturated pre-activations that raises the hint
VANISH = 1e-6  # gradient norm / weight norm below this: the layer does not move any more
FITTED_ACC = 0.95  # a run whose recent batch accuracy is above this has small gradients for a good reason
RISING_VALS = 3  # validation points in a row with a rising validation loss
GAP = 0.15  # train (recent batches) minus validation accuracy that counts as overfitting
PROBE_IMAGES = 200


@dataclass(frozen=True)
class LayerProbe:
    """One hidden activation layer on the probe batch.

    index: position in the network; kind: "ReLU" | "Sigmoid" | "Tanh"; name: for people ("conv 1");
    units: filters (conv) or units (dense); dead: share of units never > 0 on any probe image (ReLU);
    saturated: share of pre-activation values with |z| > SAT_Z (sigmoid, tanh); output: the network's last
    layer (its saturation only matters for a run that does not learn).
    """

    index: int
    kind: str
    name: str
    units: int
    dead: float
    saturated: float
    output: bool = False


@dataclass(frozen=True)
class Probe:
    """A forward pass on the probe batch: counts of predicted classes (K,) and the activation layers."""

    predictions: np.ndarray
    layers: tuple[LayerProbe, ...]


@dataclass(frozen=True)
class Hint:
    """One diagnosis: ``kind`` ("diverged", "stuck", "dead", "saturated", "vanishing", "overfitting"),
    a title, what it saw (numbers), why it matters (one sentence), the fix (config field changes, {} for
    "stop here") with its button label, and for a stuck run the histogram of predicted classes (K,)."""

    kind: str
    title: str
    saw: str
    why: str
    fix_label: str
    fix: dict = field(default_factory=dict)
    severity: str = "warning"  # "error": the run is not learning at all
    histogram: tuple[int, ...] | None = None


# ----------------------------------------------------------------------------------------------------------
# Names for people
# ----------------------------------------------------------------------------------------------------------
def layer_names(specs: list[dict]) -> list[str]:
    """A name per layer of a spec list: "conv 1", "conv 2", "dense" (or "dense 1", "dense 2"), "ReLU"..."""
    n_dense = sum(s["type"] == "Dense" for s in specs)
    seen: dict[str, int] = {}
    names = []
    for s in specs:
        kind = s["type"]
        seen[kind] = seen.get(kind, 0) + 1
        if kind == "Conv2D":
            names.append(f"conv {seen[kind]}")
        elif kind == "Dense":
            names.append("dense" if n_dense == 1 else f"dense {seen[kind]}")
        else:
            names.append(kind)
    return names


def param_name(specs: list[dict], key: str) -> str:
    """"0.W" -> "conv 1 weights", "4.b" -> "dense bias"."""
    i, what = key.split(".", 1)
    return f"{layer_names(specs)[int(i)]} {'weights' if what == 'W' else 'bias'}"


# ----------------------------------------------------------------------------------------------------------
# Probe
# ----------------------------------------------------------------------------------------------------------
def probe(net, x: np.ndarray, n_classes: int) -> Probe:
    """Run ``net`` on probe images x (N, 1, 28, 28) and measure every activation layer.

    n_classes: K (2 for a one-output binary net, whose output is thresholded at 0.5). Does not touch the
    weights or gradients (a forward pass only; the layers' caches are overwritten).
    """
    out = net.forward(x)  # (N, K_out)
    pred = (out[:, 0] > 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(axis=1)  # (N,)
    counts = np.bincount(pred, minlength=n_classes)[:max(n_classes, 1)]
    specs = net.spec()
    names = layer_names(specs)
    layers = []
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        kind = type(layer).__name__
        if kind not in ("ReLU", "Sigmoid", "Tanh") or i == 0:
            continue
        z = net.outputs[i - 1]  # the pre-activation: (N, C, H, W) or (N, D)
        n = z.shape[0]
        prev = next((names[j] for j in range(i - 1, -1, -1) if specs[j]["type"] in ("Conv2D", "Dense")),
                    names[i - 1])
        if kind == "ReLU":
            if z.ndim == 4:
                active = (z > 0).any(axis=(0, 2, 3))  # (C,): a filter fires somewhere on some image
            else:
                active = (z.reshape(n, -1) > 0).any(axis=0)  # (D,)
            dead, sat, units = float(1.0 - active.mean()), 0.0, int(active.size)
        else:
            flat = np.abs(z.reshape(-1))
            dead, sat, units = 0.0, float((flat > SAT_Z).mean()), int(z.shape[1])
        layers.append(LayerProbe(i, kind, prev, units, dead, sat, output=i == last))
    return Probe(counts.astype(np.int64), tuple(layers))


# ----------------------------------------------------------------------------------------------------------
# Fixes
# ----------------------------------------------------------------------------------------------------------
def tested_lr(config: dict) -> float:
    """The learning rate the preset was tested with (classroom's for a custom network)."""
    from cnnviz.train.config import preset_config

    preset = config.get("preset", "classroom")
    return float(preset_config(preset if preset in ("tutorial", "classroom", "deeper") else "classroom").lr)


def lower_lr(config: dict) -> tuple[str, dict]:
    """lr ÷ 10, but never above the preset's tested rate when that is lower: with momentum 0.9 an lr of 1
    still stalls the classroom net at 10 % (measured), so ÷10 from 10 alone would not make it learn."""
    lr = float(config["lr"])
    new = lr / 10
    tested = tested_lr(config)
    if new > tested:
        return (f"Lower the learning rate to {tested:g} (the preset's tested rate; ÷10 = {new:g} is still "
                "too high)"), {"lr": tested}
    new = float(f"{max(new, 1e-5):.3g}")
    return f"Lower the learning rate ÷10, to {new:g}", {"lr": new}


def relu_layers(layers: list[dict]) -> list[dict]:
    """The same layers with every hidden Sigmoid/Tanh replaced by ReLU (an output Sigmoid stays)."""
    out = [dict(s) for s in layers]
    for i, s in enumerate(out[:-1]):
        if s["type"] in ("Sigmoid", "Tanh"):
            out[i] = {"type": "ReLU"}
    return out


def apply_fix(config: dict, fix: dict) -> dict:
    """A new config dict: ``config`` with the fix's fields changed. A fix that changes the layers makes the
    run a custom one (it is no longer the preset's network)."""
    new = {**config, **{k: (list(v) if isinstance(v, list) else v) for k, v in fix.items()}}
    if "layers" in fix and fix["layers"] != config.get("layers"):
        new["preset"] = "custom"
    return new


# ----------------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------------
def check_diverged(losses: np.ndarray, steps: np.ndarray, divergence: str | None,
                   config: dict) -> Hint | None:
    """NaN/inf (``divergence``: the trainer's message, it rolled the weights back) or a loss ×JUMP within
    JUMP_WINDOW steps (and above the first step's loss, so that a tiny loss wobbling is not an explosion)."""
    label, fix = lower_lr(config)
    why = ("Each update overshoots the valley of the loss, so the weights fly off instead of settling: "
           "smaller steps fix it.")
    if divergence:
        return Hint("diverged", "Learning rate too high", f"{divergence}", why, label, fix, "error")
    n = len(losses)
    if n < 2:
        return None
    for k in range(1, n):
        recent = losses[max(0, k - JUMP_WINDOW):k].min()
        if losses[k] >= JUMP * recent and losses[k] > losses[0]:
            good = int(steps[k - 1])
            return Hint("diverged", "Learning rate too high",
                        f"The loss jumped from {recent:.3g} to {losses[k]:.3g} "
                        f"(×{losses[k] / recent:.0f}) at step {int(steps[k])}; last good step: {good}.",
                        why, label, fix, "error")
    return None


def check_stuck(losses: np.ndarray, accs: np.ndarray, pr: Probe, n_classes: int) -> tuple[str, bool] | None:
    """(evidence, one class) when the run is stuck, else None (needs STUCK_STEPS steps)."""
    if len(losses) < STUCK_STEPS:
        return None
    total = int(pr.predictions.sum())
    top = int(pr.predictions.argmax()) if total else 0
    share = pr.predictions[top] / total if total else 0.0
    chance = 1.0 / n_classes
    window_l, window_a = losses[-STUCK_STEPS:], accs[-STUCK_STEPS:]
    half = STUCK_STEPS // 2
    a, b = float(window_l[:half].mean()), float(window_l[half:].mean())
    flat = abs(a - b) <= FLAT * max(abs(a), 1e-12)
    acc = float(window_a.mean())
    if share >= ONE_CLASS:
        return (f"{share:.0%} of {total} validation images are classified as {_class_name(top, n_classes)}; "
                f"batch accuracy over the last {STUCK_STEPS} steps {acc:.0%}.", True)
    if acc <= chance + CHANCE_MARGIN and flat:
        return (f"Batch accuracy {acc:.0%} over the last {STUCK_STEPS} steps (chance: {chance:.0%}) and "
                f"the loss flat at {b:.3g}.", False)
    return None


def _class_name(k: int, n_classes: int) -> str:
    if n_classes == 10:
        return f"the digit {k}"
    return "digits 5–9" if k == 1 else "digits 0–4"


def check_overfitting(steps: np.ndarray, losses: np.ndarray, accs: np.ndarray, val: np.ndarray,
                      config: dict, n_train: int) -> Hint | None:
    """Validation loss rising RISING_VALS times in a row while the training loss falls, or a train–validation
    accuracy gap > GAP. val (m, 3): step, loss, accuracy."""
    if len(val) < RISING_VALS + 1 or len(losses) < 10:
        return None
    v_loss, v_acc = val[:, 1], val[:, 2]
    tail = v_loss[-(RISING_VALS + 1):]
    rising = bool(np.all(np.diff(tail) > 0)) and tail[-1] > 1.05 * tail[0]
    if rising:  # did the training loss fall over the same stretch?
        s0 = val[-(RISING_VALS + 1), 0]
        before = losses[steps <= s0][-10:]
        after = losses[-10:]
        rising = before.size > 0 and float(after.mean()) < float(before.mean())
    train_acc = float(accs[-20:].mean())
    gap = train_acc - float(v_acc[-1])
    if not rising and gap <= GAP:
        return None
    best = int(np.argmin(v_loss))
    saw = []
    if rising:
        saw.append(f"The validation loss rose {RISING_VALS} times in a row ({tail[0]:.3g} → {tail[-1]:.3g}) "
                   "while the training loss fell.")
    if gap > GAP:
        saw.append(f"Training batches are {train_acc:.0%} right, the validation images {v_acc[-1]:.0%}.")
    saw.append(f"The best validation loss was {v_loss[best]:.3g} at step {int(val[best, 0])}.")
    more = min(4000, max(1000, 10 * n_train))
    fix = {"train_size": more} if more > config.get("train_size", more) else {}
    label = f"Train on {more:,} images" if fix else "Stop here"
    return Hint("overfitting", "Overfitting: it learns the training images by heart", " ".join(saw),
                "Beyond this point the network memorises its training images instead of learning what "
                "digits look like, so new images get worse: more images, or stop here.", label, fix)


def _dead_hint(pr: Probe, config: dict, trained: bool) -> Hint | None:
    """Dead ReLUs: the first layer whose filters mostly never fire on the probe batch."""
    for lp in pr.layers:
        if lp.kind == "ReLU" and lp.dead >= DEAD_SHARE and trained:
            label, fix = lower_lr(config)
            init = config.get("init") == "tutorial"
            if init:
                label, fix = "Use He/Glorot initial weights", {"init": "default"}
            return Hint(
                "dead", f"Dead ReLUs after {lp.name}",
                f"{lp.dead:.0%} of the {lp.units} {'filters' if 'conv' in lp.name else 'units'} after "
                f"{lp.name} never fire on {PROBE_IMAGES} validation images.",
                "A ReLU that never fires passes no gradient, so its weights never change again: those "
                "filters are lost for good.", label, fix, "error" if lp.dead >= 0.99 else "warning")
    return None


def _saturated_hint(pr: Probe, config: dict, not_fitted: bool) -> Hint | None:
    """Saturated sigmoid/tanh: the first layer whose inputs mostly sit where its slope is flat."""
    specs = config["layers"]
    for lp in pr.layers:
        if lp.kind in ("Sigmoid", "Tanh") and lp.saturated >= SAT_SHARE and (not lp.output or not_fitted):
            where = "at the output" if lp.output else f"after {lp.name}"
            if config.get("init") == "tutorial":
                label, fix = "Use He/Glorot initial weights", {"init": "default"}
            elif not lp.output:
                label, fix = "Use ReLU", {"layers": relu_layers(specs)}
            else:
                label, fix = lower_lr(config)
            return Hint(
                "saturated", f"Saturated {lp.kind.lower()} {where}",
                f"{lp.saturated:.0%} of the values entering the {lp.kind.lower()} {where} have |z| > "
                f"{SAT_Z:g} on {PROBE_IMAGES} validation images.",
                f"There the {lp.kind.lower()} is flat (slope below 0.007), so almost no gradient flows back "
                "and the weights before it stop learning.", label, fix, "warning")
    return None


def _vanishing_hint(history: list, weight_norms: dict[str, float], config: dict) -> Hint | None:
    """Vanishing gradients: the layer whose recent gradient is smallest against its weights, if tiny."""
    specs = config["layers"]
    ratios = {}
    for key, wn in weight_norms.items():
        if not key.endswith(".W") or wn <= 0:
            continue
        g = np.array([r.grad_norms.get(key, np.nan) for r in history[-10:]], dtype=np.float64)
        ratios[key] = float(np.nanmedian(g)) / wn if np.isfinite(g).any() else math.inf
    low = {k: r for k, r in ratios.items() if r < VANISH}
    if low:
        key = min(low, key=low.get)
        acts = {s["type"] for s in specs[:-1]}
        if config.get("init") == "tutorial":
            label, fix = "Use He/Glorot initial weights", {"init": "default"}
        elif acts & {"Sigmoid", "Tanh"}:
            label, fix = "Use ReLU", {"layers": relu_layers(specs)}
        else:
            label, fix = lower_lr(config)
        return Hint(
            "vanishing", "Vanishing gradients",
            f"The gradient of the {param_name(specs, key)} is {low[key]:.1e} × their size (median of the "
            f"last 10 steps); below {VANISH:g} a layer no longer moves.",
            "With no gradient the layer cannot learn, however long you train.", label, fix, "warning")
    return None


def check(history: list, val_history: list, pr: Probe, config: dict, weight_norms: dict[str, float],
          n_classes: int, n_train: int, divergence: str | None = None) -> list[Hint]:
    """Every check on one run; hints in order of importance (at most one of each kind).

    history: StepRecords (step, loss, acc, grad_norms); val_history: (step, val_loss, val_acc) tuples;
    pr: ``probe`` of the current weights; config: the run's config dict (``RunConfig.to_dict()``);
    weight_norms: {"0.W": ‖W‖, ...}; divergence: the trainer's message if it rolled back a NaN/inf step.
    """
    steps = np.fromiter((r.step for r in history), dtype=np.int64, count=len(history))
    losses = np.fromiter((r.loss for r in history), dtype=np.float64, count=len(history))
    accs = np.fromiter((r.acc for r in history), dtype=np.float64, count=len(history))
    val = np.asarray(val_history, dtype=np.float64).reshape(-1, 3)  # (m, 3)
    hints: list[Hint] = []
    diverged = check_diverged(losses, steps, divergence, config)
    if diverged:
        hints.append(diverged)
    recent_acc = float(accs[-20:].mean()) if len(accs) else 0.0
    not_fitted = len(accs) >= 10 and recent_acc < FITTED_ACC

    causes = [h for h in (_dead_hint(pr, config, bool(history)),
                          _saturated_hint(pr, config, not_fitted)) if h]
    if not causes and not_fitted and history:
        vanishing = _vanishing_hint(history, weight_norms, config)
        causes += [vanishing] if vanishing else []

    stuck = check_stuck(losses, accs, pr, n_classes)
    if stuck:
        evidence, one = stuck
        src = diverged or (causes[0] if causes else None)
        if src is not None:
            label, fix = src.fix_label, src.fix
            because = f" Cause: {src.title[0].lower() + src.title[1:]}."
        else:
            label, fix = lower_lr(config)
            because = ""
        hints.append(Hint(
            "stuck", "Stuck: it does not learn" if not one else "Stuck: one class for everything",
            evidence + because,
            "The loss no longer changes, so more steps will not help: change the setting that stopped it.",
            label, fix, "error", tuple(int(c) for c in pr.predictions)))
    hints.extend(causes)
    over = check_overfitting(steps, losses, accs, val, config, n_train)
    if over and not stuck and not diverged:
        hints.append(over)
    return hints


def is_failing(hints: list[Hint]) -> bool:
    """True when a hint says the run is not learning (diverged or stuck): no success message then."""
    return any(h.kind in ("diverged", "stuck") for h in hints)


def trainer_health(trainer, x_probe: np.ndarray, net=None) -> list[Hint]:
    """``check`` for a Trainer (its history, config and current weights) on probe images (N, 1, 28, 28).

    ``net``: the network to probe (default the trainer's own, whose forward caches the probe overwrites;
    pass ``trainer.net.copy()`` when another thread may be between its forward and backward).
    """
    net = trainer.net if net is None else net
    n_classes = 10 if trainer.config.task == "digits" else 2
    pr = probe(net, x_probe[:PROBE_IMAGES], n_classes)
    norms = {k: float(np.linalg.norm(p)) for k, p in net.named_params()}
    div = getattr(trainer, "last_divergence", None)
    return check(trainer.history, trainer.val_history, pr, trainer.config.to_dict(), norms, n_classes,
                 trainer.n_train, divergence=div)

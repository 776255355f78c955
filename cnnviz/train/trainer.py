"""Trainer: one minibatch per ``step()``, with everything a viewer needs to watch the network learn.

Each step returns a ``StepRecord`` (loss, batch accuracy, time, per-parameter gradient norm and
update/parameter ratio); the trainer keeps the history, validates on a schedule, and snapshots the first
conv layer's filters and their gradients on a schedule whose memory stays bounded. A run is deterministic
for its config's seed. If the loss or the weights become NaN/inf, the last good weights and optimiser state
are restored and ``TrainingDiverged`` is raised, naming the learning rate. (A loss that explodes to a
million times its first value counts too: ReLU networks often blow up to 1e20 without ever reaching inf.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from cnnviz.nn.head import Head
from cnnviz.nn.layers import Conv2D
from cnnviz.nn.losses import get_loss
from cnnviz.nn.network import Network, from_spec
from cnnviz.nn.optim import make_optimizer
from cnnviz.train.config import INPUT_SHAPE, RunConfig, estimate_step_bytes
from cnnviz.train.data import Dataset

EVAL_CHUNK_BYTES = 16 * 2**20  # evaluation runs in chunks that need at most about this much memory
SNAPSHOT_DENSE_STEPS = 50  # a filter snapshot after every one of the first 50 steps ...
SNAPSHOT_CAP = 300  # ... then spaced, thinned (and the spacing doubled) whenever more than this are kept
HISTORY_CAP = 20_000  # older step records are thinned by 2 beyond this, so memory stays bounded
MAX_USER_EXAMPLES = 500
EXPLODE_FACTOR = 1e6  # a loss this many times its first value (or 1) counts as diverged, like NaN/inf


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN/inf; the last good weights were restored."""


@dataclass(slots=True)
class StepRecord:
    """What one training step did.

    step: 1-based step number; epoch: 1-based epoch the step belongs to; loss: mean batch loss before the
    update; acc: batch accuracy before the update; ms: wall time of forward, backward and update;
    grad_norms / update_ratios: per parameter ("0.W", ...) ‖∇‖ and ‖ΔW‖ / ‖W‖.
    """

    step: int
    epoch: int
    loss: float
    acc: float
    ms: float
    grad_norms: dict[str, float] = field(default_factory=dict)
    update_ratios: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    """The first conv layer after ``step`` updates: filters (F, C, KH, KW) and the gradient that the step
    computed (zeros at step 0), both copies. Kept after every one of the first 50 steps, then spaced
    (spacing doubled whenever more than SNAPSHOT_CAP are kept), plus always the latest step."""

    step: int
    filters: np.ndarray
    grads: np.ndarray


def _norm(a: np.ndarray) -> float:
    """Euclidean norm of any array (inf/nan propagate, and so does overflow)."""
    flat = a.reshape(-1)  # (size,)
    return math.sqrt(float(np.dot(flat, flat))) if flat.size else 0.0


class Trainer:
    """Trains ``from_spec(config.layers)`` on ``data`` with the config's loss, optimiser and schedule.

    The Dataset is never modified (it may be shared between sessions); user examples added with
    ``add_examples`` live in this trainer only. With ``parallel`` (a ``cnnviz.perf.parallel.ParallelStep`` for
    the config's layers and loss) each step's forward and backward are split over its processes.
    """

    def __init__(self, config: RunConfig, data: Dataset, net: Network | None = None, parallel=None):
        config.validate(max_train_size=max(config.train_size, data.n_train))
        if data.task != config.task:
            data = Dataset(data.x_train, data.y_train, data.x_val, data.y_val, config.task, data.source)
        self.config = config
        self.data = data
        self._extra_x = np.zeros((0, *INPUT_SHAPE), dtype=np.float32)  # (n, 1, 28, 28)
        self._extra_y = np.zeros(0, dtype=np.int64)
        self._initial_net = net.copy() if net is not None else None
        self.parallel = parallel
        self.reset()

    # ------------------------------------------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to step 0: fresh weights from the seed (or the net given at construction), fresh optimiser,
        empty history and snapshots. User examples added with ``add_examples`` are kept."""
        cfg = self.config
        init_rng, self._order_rng = np.random.default_rng(cfg.seed).spawn(2)
        if self._initial_net is not None:
            self.net = self._initial_net.copy()
        else:
            self.net = from_spec(cfg.layers, rng=init_rng, init=cfg.init, input_shape=INPUT_SHAPE)
        kw = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
        self.optimizer = make_optimizer(cfg.optimizer, cfg.lr, **kw)
        self.loss_fn = get_loss(cfg.loss)
        self.n_outputs = int(self.net.layers[-1].spec().get("out_features", 0)) or self._probe_outputs()
        self.head = Head(cfg.task, cfg.loss, self.n_outputs, type(self.net.layers[-1]).__name__ == "Sigmoid")
        self.history: list[StepRecord] = []
        self.val_history: list[tuple[int, float, float]] = []
        self.snapshots: list[Snapshot] = []
        self.step_count = 0
        self.epoch = 1
        self._snap_every = 5
        self._tail = False  # is the last snapshot an unscheduled "latest step" one?
        convs = [i for i, layer in enumerate(self.net.layers) if isinstance(layer, Conv2D)]
        self._conv_index = convs[0] if convs else None
        self._prev: dict[str, np.ndarray] = {}  # weights before the latest good update (divergence restore)
        self._diff: dict[str, np.ndarray] = {}  # scratch for ΔW
        self._prev_opt: tuple[int, dict[str, dict[str, np.ndarray]]] | None = None
        self._has_prev = False
        self._rolled_back = False  # True after a divergence restored the saved weights (nothing left to undo)
        self._explode_at: float | None = None
        self.last_batch: np.ndarray | None = None  # indices of the latest step's minibatch (None: full batch)
        self.last_divergence: str | None = None  # what the latest NaN/inf rollback saw (training health)
        self._rebuild_train_set()
        self._order = self._order_rng.permutation(self.n_train)
        self._pos = 0
        self._snapshot()
        self._validate()

    def _probe_outputs(self) -> int:
        return int(self.net.forward(np.zeros((1, *INPUT_SHAPE), dtype=np.float32)).shape[1])

    def _rebuild_train_set(self, x_base: np.ndarray | None = None) -> None:
        """Training arrays = the dataset's plus this session's user examples (a new array, never in place)."""
        x_base = self.data.x_train if x_base is None else x_base
        if len(self._extra_x):
            self._x = np.concatenate([x_base, self._extra_x])  # (N + n, 1, 28, 28)
            labels = np.concatenate([self.data.y_train, self._extra_y])
        else:
            self._x, labels = x_base, self.data.y_train
        self._y_digits = np.asarray(labels, dtype=np.int64)
        self._targets = self.make_targets(self._y_digits)

    @property
    def n_train(self) -> int:
        """Training images including user examples."""
        return len(self._x)

    @property
    def batch_size(self) -> int:
        """Images per step (the whole training set for full batch)."""
        return self.n_train if self.config.batch_size == 0 else min(self.config.batch_size, self.n_train)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    @property
    def epochs_done(self) -> float:
        """Passes over the training set so far, fractional (e.g. 2.4)."""
        return (self.epoch - 1) + self._pos / self.n_train

    @property
    def last_val(self) -> tuple[int, float, float] | None:
        """The latest (step, val_loss, val_acc), or None."""
        return self.val_history[-1] if self.val_history else None

    # ------------------------------------------------------------------------------------------------------
    # Targets and metrics
    # ------------------------------------------------------------------------------------------------------
    def make_targets(self, digits: np.ndarray) -> np.ndarray:
        """Loss targets from digit labels (see ``Head.targets``)."""
        return self.head.targets(digits)

    def predicted_classes(self, out: np.ndarray) -> np.ndarray:
        """Class per row of a network output (N, K) (see ``Head.predicted``)."""
        return self.head.predicted(out)

    def _eval_chunk(self) -> int:
        per_image = max(1, estimate_step_bytes(self.net.spec(), 1) // 2)
        return max(16, EVAL_CHUNK_BYTES // per_image)

    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, float, np.ndarray]:
        """Loss, accuracy and probabilities (N, K) on images x (N, 1, 28, 28) with digit labels (N,).

        Runs in chunks so memory stays bounded; does not touch gradients, weights or the history.
        """
        n = len(x)
        if n == 0:
            raise ValueError("evaluate needs at least one image")
        targets, classes = self.make_targets(labels), self.head.classes(labels)
        chunk, loss_fn = self._eval_chunk(), get_loss(self.config.loss)
        total, correct, probas = 0.0, 0, []
        for s in range(0, n, chunk):
            out = self.net.forward(x[s:s + chunk])  # (n_chunk, K)
            total += loss_fn.forward(out, targets[s:s + chunk]) * len(out)
            correct += int((self.predicted_classes(out) == classes[s:s + chunk]).sum())
            probas.append(self.head.proba(out))
        return total / n, correct / n, np.concatenate(probas)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, K) for images x (N, 1, 28, 28), in chunks."""
        chunk = self._eval_chunk()
        parts = [self.head.proba(self.net.forward(x[s:s + chunk])) for s in range(0, len(x), chunk)]
        return np.concatenate(parts)

    def _validate(self) -> None:
        loss, acc, _ = self.evaluate(self.data.x_val, self.data.y_val)
        self.val_history.append((self.step_count, loss, acc))

    # ------------------------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------------------------
    def _next_batch(self) -> np.ndarray | None:
        """Indices of the next minibatch (None = the whole training set in stored order, full batch)."""
        if self.config.batch_size == 0:
            self._pos = self.n_train
            return None
        if self._pos >= self.n_train:
            self._order = self._order_rng.permutation(self.n_train)
            self._pos = 0
            self._new_epoch()
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += len(idx)
        return idx

    def _new_epoch(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.config.lr * self.config.lr_decay ** (self.epoch - 1)

    def step(self) -> StepRecord:
        """One forward, backward and update on the next minibatch (or the full batch); returns its record.

        Raises TrainingDiverged (weights and optimiser restored to the last good step) on NaN/inf.
        """
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below, not warned about
            return self._step()

    def _step(self) -> StepRecord:
        if self.config.batch_size == 0 and self._pos >= self.n_train and self.step_count > 0:
            self._new_epoch()
        t0 = time.perf_counter()
        idx = self._next_batch()
        x = self._x if idx is None else self._x[idx]  # (B, 1, 28, 28)
        y = self._targets if idx is None else self._targets[idx]
        self.last_batch = idx
        loss, out = self._forward(x, y)
        if not math.isfinite(loss):
            self._diverged(f"the loss became {loss}", before_update=True)
        if self._explode_at is None:
            self._explode_at = max(loss, 1.0) * EXPLODE_FACTOR
        elif loss > self._explode_at:
            self._diverged(f"the loss exploded to {loss:.3g}", before_update=True)
        self._backward()
        grad_norms = {name: _norm(g) for name, g in self.net.named_grads()}
        if not all(map(math.isfinite, grad_norms.values())):
            self._diverged("the gradients became NaN/inf", before_update=True)
        classes = self.head.classes(self._y_digits if idx is None else self._y_digits[idx])
        acc = float((self.predicted_classes(out) == classes).mean())
        self._save_good()
        self.optimizer.step(self.net)
        ratios = {}
        for name, p in self.net.named_params():
            d = np.subtract(p, self._prev[name], out=self._diff[name])
            ratios[name] = _norm(d) / (_norm(self._prev[name]) + 1e-12)
        if not all(map(math.isfinite, ratios.values())):
            self._diverged("the weights became NaN/inf after the update", before_update=False)
        self.step_count += 1
        rec = StepRecord(self.step_count, self.epoch, loss, acc, (time.perf_counter() - t0) * 1e3,
                         grad_norms, ratios)
        self.history.append(rec)
        if len(self.history) > HISTORY_CAP:
            half = len(self.history) // 2
            self.history = self.history[:half:2] + self.history[half:]
        self._maybe_snapshot()
        if self.step_count % self.config.val_every == 0:
            self._validate()
        return rec

    def _forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """(mean loss, output (B, K)) of one batch x (B, 1, 28, 28); a subclass may train another way (the
        Compare page's tutorial-gradient runs). With ``parallel`` this does the backward pass too."""
        if self.parallel is not None:  # forward and backward, split over processes
            return self.parallel.step(self.net, self.loss_fn, x, y)
        out = self.net.forward(x)  # (B, K)
        return self.loss_fn.forward(out, y), out

    def _backward(self) -> None:
        """Fill every layer's ``grads`` for the batch of the latest ``_forward``."""
        if self.parallel is None:
            self.net.backward(self.loss_fn.backward())

    def run(self, n_steps: int, callback=None) -> list[StepRecord]:
        """``n_steps`` steps, ``callback(record)`` after each; validates at the end. Returns the records."""
        records = []
        for _ in range(int(n_steps)):
            rec = self.step()
            records.append(rec)
            if callback is not None:
                callback(rec)
        if records and self.val_history[-1][0] != self.step_count:
            self._validate()
        return records

    def validate_now(self) -> tuple[int, float, float]:
        """Evaluate on the validation set now (unless already done at this step); returns the entry."""
        if not self.val_history or self.val_history[-1][0] != self.step_count:
            self._validate()
        return self.val_history[-1]

    # ------------------------------------------------------------------------------------------------------
    # Divergence: keep the last good weights and optimiser state
    # ------------------------------------------------------------------------------------------------------
    def _save_good(self) -> None:
        """Copy the weights (whose loss was finite) and the optimiser state into reusable buffers."""
        for name, p in self.net.named_params():
            buf = self._prev.get(name)
            if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
                self._prev[name] = buf = np.empty_like(p)
                self._diff[name] = np.empty_like(p)
            np.copyto(buf, p)
        saved = self._prev_opt[1] if self._prev_opt is not None else {}
        state = {}
        for name, slots in self.optimizer.state.items():
            state[name] = {}
            for key, arr in slots.items():
                buf = saved.get(name, {}).get(key)
                if buf is None or buf.shape != arr.shape or buf.dtype != arr.dtype:
                    buf = np.empty_like(arr)
                np.copyto(buf, arr)
                state[name][key] = buf
        self._prev_opt = (self.optimizer.t, state)
        self._has_prev = True
        self._rolled_back = False

    def _diverged(self, what: str, before_update: bool) -> None:
        """Restore the last weights whose loss was finite (and the optimiser state then) and raise."""
        at = self.step_count + 1
        restored = "No update had succeeded yet; the weights are unchanged"
        if self._has_prev:
            for name, p in self.net.named_params():
                np.copyto(p, self._prev[name])
            t, state = self._prev_opt
            self.optimizer.t = t
            self.optimizer.state = {n: {k: a.copy() for k, a in s.items()} for n, s in state.items()}
            restored = f"The weights of step {self.step_count} were restored"
            if before_update and not self._rolled_back:  # the latest update led here: undo it, so that
                self._forget_last_step()  # the step counter matches the weights
                restored = (f"Step {at - 1}'s update led there, so it was undone: the weights of step "
                            f"{self.step_count} were restored")
            self._rolled_back = True  # the saved weights are now the current ones
        for layer in self.net.layers:
            for key, g in layer.grads.items():
                if not np.all(np.isfinite(g)):
                    layer.grads[key] = np.zeros_like(g)
        cfg = self.config
        self.last_divergence = f"At step {at}, {what}; the weights were rolled back."
        raise TrainingDiverged(
            f"Training diverged at step {at}: {what}. The learning rate {cfg.lr:g} "
            f"({cfg.optimizer}) is probably too high: lower it (e.g. to {cfg.lr / 10:g}) and reset. "
            f"{restored}.")

    def _forget_last_step(self) -> None:
        """Undo the bookkeeping of the latest step (its update was rolled back): the step counter, its history
        record, validation point and filter snapshot. The latest step keeps a snapshot (with a zero gradient
        if none was recorded for it: its true gradient is not kept)."""
        k = self.step_count
        self.step_count = k - 1
        while self.history and self.history[-1].step >= k:
            self.history.pop()
        while len(self.val_history) > 1 and self.val_history[-1][0] >= k:
            self.val_history.pop()
        while len(self.snapshots) > 1 and self.snapshots[-1].step >= k:
            self.snapshots.pop()
        self._tail = False
        if self.snapshots[-1].step != self.step_count and self._conv_index is not None:
            W = self.net.layers[self._conv_index].params["W"]
            self.snapshots.append(Snapshot(self.step_count, W.copy(), np.zeros_like(W)))
            self._tail = True  # unscheduled: the next step replaces it

    # ------------------------------------------------------------------------------------------------------
    # Snapshots of the first conv layer
    # ------------------------------------------------------------------------------------------------------
    def _snapshot(self) -> None:
        if self._conv_index is None:
            return
        layer = self.net.layers[self._conv_index]
        grads = layer.grads["W"].copy() if self.step_count else np.zeros_like(layer.params["W"])
        self.snapshots.append(Snapshot(self.step_count, layer.params["W"].copy(), grads))

    def _maybe_snapshot(self) -> None:
        """Every step for the first SNAPSHOT_DENSE_STEPS, then every ``_snap_every`` steps; the latest step is
        always the last snapshot (an unscheduled one is replaced at the next step)."""
        s = self.step_count
        if self._tail:
            self.snapshots.pop()
        self._snapshot()
        self._tail = not (s <= SNAPSHOT_DENSE_STEPS or s % self._snap_every == 0)
        if len(self.snapshots) > SNAPSHOT_CAP:
            self._snap_every *= 2
            self.snapshots = [sn for sn in self.snapshots
                              if sn.step <= SNAPSHOT_DENSE_STEPS or sn.step % self._snap_every == 0
                              or sn is self.snapshots[-1]]

    # ------------------------------------------------------------------------------------------------------
    # User examples
    # ------------------------------------------------------------------------------------------------------
    def add_examples(self, images: np.ndarray, labels) -> None:
        """Add user images (n, 1, 28, 28) float32 in [0, 1] (or (n, 28, 28)) with digit labels (n,) to the
        training set. They are trained on in the very next step, then take part in every epoch."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]  # (n, 1, 28, 28)
        if x.ndim != 4 or x.shape[1:] != INPUT_SHAPE:
            raise ValueError(f"images must be (n, 1, 28, 28), got {x.shape}")
        if not np.all(np.isfinite(x)) or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise ValueError("images must be finite values in [0, 1]")
        y = np.asarray(labels)
        if y.ndim == 0:
            y = y[None]
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or (len(y) and not
                                                                             (0 <= y.min() <= y.max() <= 9)):
            raise ValueError(f"labels must be {len(x)} digits 0-9, got {labels!r}")
        if len(self._extra_x) + len(x) > MAX_USER_EXAMPLES:
            raise ValueError(f"at most {MAX_USER_EXAMPLES} user examples per session")
        n_before = self.n_train
        self._extra_x = np.concatenate([self._extra_x, x])
        self._extra_y = np.concatenate([self._extra_y, y.astype(np.int64)])
        self._rebuild_train_set()
        new = np.arange(n_before, self.n_train)
        if self.config.batch_size:
            # put the new images at the front of what remains of this epoch: the next step sees them
            self._order = np.concatenate([self._order[:self._pos], new, self._order[self._pos:]])

    def replace_train_images(self, x: np.ndarray) -> None:
        """Train on ``x`` (N, 1, 28, 28) instead of the dataset's images, same labels and order (e.g. an
        augmented copy per epoch). The dataset itself is not modified."""
        if x.shape != self.data.x_train.shape:
            raise ValueError(f"replacement images must be {self.data.x_train.shape}, got {x.shape}")
        self._rebuild_train_set(np.asarray(x, dtype=np.float32))

    @property
    def n_user_examples(self) -> int:
        return len(self._extra_x)


def train_epochs(trainer: Trainer, epochs: int, on_step=None, on_epoch=None) -> tuple[int, float, float]:
    """Train whole epochs (``epochs × steps_per_epoch`` steps), validating after each one.

    ``on_step(record, steps_done)`` after every step, ``on_epoch(epoch, (step, val_loss, val_acc))`` after
    every epoch. Returns the final (step, val_loss, val_acc). TrainingDiverged propagates.
    """
    done = 0
    for epoch in range(1, int(epochs) + 1):
        for _ in range(trainer.steps_per_epoch):
            rec = trainer.step()
            done += 1
            if on_step is not None:
                on_step(rec, done)
        val = trainer.validate_now()
        if on_epoch is not None:
            on_epoch(epoch, val)
    return trainer.validate_now()

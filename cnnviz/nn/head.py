"""What a network's outputs mean: class names, probabilities, loss targets, predicted classes, confusion.

One ``Head`` per (task, loss, output layer) answers every question the trainer, the command line, the
explanations and the pages ask about the last layer, so that the rules live in one place:

- task "digits": 10 classes named "0" … "9"; task "gt4" (the tutorial's): 2 classes, "0–4" and "5–9";
- a final Sigmoid (the mse and bce losses) gives probabilities as they are; logits go through softmax;
  one sigmoid output p (the tutorial's single output neuron) means P("5–9") = p and P("0–4") = 1 - p;
- loss targets: class indices (N,) for softmax cross-entropy, (N, 1) floats for one output, else one-hot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnviz.nn.losses import softmax

__all__ = ["Head", "TASK_CLASS_NAMES", "task_classes"]

TASK_CLASS_NAMES = {"digits": tuple(str(d) for d in range(10)), "gt4": ("0–4", "5–9")}


def task_classes(labels: np.ndarray, task: str) -> np.ndarray:
    """Class index per image, int64 (N,): the digit for "digits", 1 if digit > 4 for "gt4"."""
    if task not in TASK_CLASS_NAMES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_CLASS_NAMES)}")
    labels = np.asarray(labels).astype(np.int64)
    return labels if task == "digits" else (labels > 4).astype(np.int64)


@dataclass(frozen=True)
class Head:
    """The meaning of a network's last output (N, n_outputs) for ``task`` and ``loss``.

    ``sigmoid``: the last layer is a Sigmoid (its outputs are probabilities already).
    """

    task: str
    loss: str | None  # only the loss targets need it
    n_outputs: int
    sigmoid: bool

    @classmethod
    def for_network(cls, net, task: str, loss: str | None = None) -> Head:
        """The head of a built Network (its last layer decides sigmoid; its last Dense the output count)."""
        last = net.layers[-1]
        sigmoid = type(last).__name__ == "Sigmoid"
        dense = [layer for layer in net.layers if type(layer).__name__ == "Dense"]
        n_out = dense[-1].out_features if dense else len(TASK_CLASS_NAMES[task])
        return cls(task, loss, int(n_out), sigmoid)

    @classmethod
    def for_config(cls, config) -> Head:
        """The head of a RunConfig (its layer specs, task and loss)."""
        dense = [s for s in config.layers if s["type"] == "Dense"]
        n_out = dense[-1]["out_features"] if dense else len(TASK_CLASS_NAMES[config.task])
        return cls(config.task, config.loss, int(n_out), config.layers[-1]["type"] == "Sigmoid")

    @property
    def class_names(self) -> list[str]:
        """Names of the task's classes, in class-index order."""
        return list(TASK_CLASS_NAMES[self.task])

    @property
    def n_classes(self) -> int:
        return len(TASK_CLASS_NAMES[self.task])

    def classes(self, labels: np.ndarray) -> np.ndarray:
        """Digit labels (N,) -> class indices (N,) int64."""
        return task_classes(labels, self.task)

    def targets(self, labels: np.ndarray) -> np.ndarray:
        """Loss targets from digit labels: int classes (N,) for softmax cross-entropy; float32 (N, 1) with
        1 for the second class for one output; float32 one-hot (N, n_outputs) otherwise."""
        if self.loss is None:
            raise ValueError("loss targets need the loss: build the Head with one")
        classes = self.classes(labels)  # (N,)
        if self.loss == "softmax_ce":
            return classes
        if self.n_outputs == 1:
            return classes.astype(np.float32)[:, None]  # (N, 1)
        onehot = np.zeros((len(classes), self.n_outputs), dtype=np.float32)  # (N, K)
        onehot[np.arange(len(classes)), classes] = 1.0
        return onehot

    def proba(self, out: np.ndarray) -> np.ndarray:
        """The network's probabilities (N, n_outputs) from its last output: sigmoid outputs (or a single
        output) as they are, logits through softmax. One column for the single-output binary net."""
        if self.sigmoid or out.shape[1] == 1:
            return np.array(out, copy=True)
        return softmax(out)

    def class_proba(self, out: np.ndarray) -> np.ndarray:
        """Probabilities over the task's classes (N, n_classes) from the last output."""
        return self.expand(self.proba(out))

    @staticmethod
    def expand(proba: np.ndarray) -> np.ndarray:
        """(N, K) probabilities -> (N, classes): one sigmoid output p becomes (1 - p, p)."""
        if proba.shape[1] == 1:
            return np.concatenate([1.0 - proba, proba], axis=1)  # (N, 2)
        return proba

    @staticmethod
    def predicted(out: np.ndarray) -> np.ndarray:
        """Class per row of an output or probabilities (N, K): threshold 0.5 for one output, else argmax."""
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        return out.argmax(axis=1)

    def confusion(self, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Counts (n_classes, n_classes): rows = true class, columns = predicted class."""
        k = self.n_classes
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (np.asarray(true), np.asarray(pred)), 1)
        return cm

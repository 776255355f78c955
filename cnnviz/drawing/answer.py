"""The Draw page's answer for one 28×28 digit, without Streamlit: probabilities, the maps that explain them,
the first conv layer's feature maps, the probability of a chosen label, and the words that describe the model.

Every function takes the network to run; it must be the caller's own copy (a forward pass overwrites the
layers' caches; the weights are never changed here).
"""

from __future__ import annotations

import numpy as np

from cnnviz.nn.head import Head
from cnnviz.viz.explain import occlusion, saliency
from cnnviz.viz.names import describe_config

BINARY_NAMES = ["0–4", "5–9"]


def first_conv_maps(net, x: np.ndarray) -> tuple[np.ndarray, str] | None:
    """The first conv layer's feature maps (F, H, W) for x (1, 1, 28, 28), after its activation if one
    follows, and a description; None if the network has no conv layer."""
    net.forward(x)
    for i, layer in enumerate(net.layers):
        if type(layer).__name__ == "Conv2D":
            nxt = net.layers[i + 1] if i + 1 < len(net.layers) else None
            if nxt is not None and type(nxt).__name__ in ("ReLU", "Sigmoid", "Tanh"):
                return net.outputs[i + 1][0], f"after {type(nxt).__name__}"
            return net.outputs[i][0], "before any activation"
    return None


def predict(net, image: np.ndarray, task: str = "digits") -> dict:
    """The answer for one (28, 28) image: probabilities (K,), class names and the top class. ``net`` must be
    this session's own copy (its layer caches are overwritten; its weights are not)."""
    x = np.asarray(image, dtype=np.float32)[None, None]  # (1, 1, 28, 28)
    head = Head.for_network(net, task)
    proba = head.expand(np.asarray(net.predict_proba(x), dtype=np.float64))[0]  # (classes,)
    return {"proba": proba, "names": head.class_names, "top": int(np.argmax(proba))}


def explain(net, image: np.ndarray, top: int) -> dict:
    """Why: saliency (28, 28) and occlusion (28, 28) maps of class ``top`` and the first conv layer's maps."""
    x = np.asarray(image, dtype=np.float32)[None, None]  # (1, 1, 28, 28)
    return {
        "fmaps": first_conv_maps(net, x),
        "saliency": saliency(net, x, top),  # (28, 28)
        "occlusion": occlusion(net, x, top, size=4, stride=2),  # (28, 28)
    }


def label_proba(net, image: np.ndarray, label: int) -> tuple[float, str]:
    """``net``'s probability of ``label`` (or of its half, 0–4 / 5–9, for a binary model)."""
    p = Head.expand(np.asarray(net.predict_proba(np.asarray(image, dtype=np.float32)[None, None])))[0]  # (K,)
    if len(p) == 10:
        return float(p[label]), str(label)
    return float(p[int(label > 4)]), BINARY_NAMES[int(label > 4)]


def session_model_label(step_count: int, last_val: tuple | None) -> str:
    """The model picker's label of the session's model: its step and, if measured at that step, its
    validation accuracy (``last_val`` is (step, loss, accuracy))."""
    if step_count == 0:
        return "This session's model (untrained)"
    label = f"This session's model (step {step_count:,}"
    return label + (f", {last_val[2]:.1%} val.)" if last_val and last_val[0] == step_count else ")")


def pretrained_description(taught_steps: int, val_acc: float | None) -> str:
    """One line on the shipped draw model (and on this session's fine-tuning of it, if any)."""
    desc = ("Pretrained draw model: two conv layers, trained on 4,000 MNIST digits, digits typeset in 28 "
            "fonts and drawings that are not digits, with random shifts, rotations, scalings and "
            "thicker/thinner strokes")
    if taught_steps:
        desc = (f"This session's copy of the pretrained draw model, fine-tuned {taught_steps} steps on your "
                "digits. " + desc)
    return desc + (f"; {val_acc:.1%} on the 1,000 validation digits." if val_acc else ".")


def session_description(cfg) -> str:
    """One line on the session's model, from its config."""
    desc = f"This session's model: {describe_config(cfg)}"
    if cfg.task == "gt4":
        desc += " — it only answers “0–4 or 5–9”, as in the tutorial."
    return desc


def inside_note(pretrained: bool, step_count: int, cfg) -> str:
    """The note the Inside page shows when opened from the Draw page: which model it shows."""
    if pretrained:
        return (f"Inside shows this session's model (step {step_count:,}, "
                f"{describe_config(cfg)}), not the pretrained draw model that answered on "
                "the Draw page: its answer for your digit may differ.")
    return f"Inside shows this session's model (step {step_count:,}), as on the Draw page."


def user_digit_arrays(user_digits: list) -> tuple[np.ndarray, np.ndarray]:
    """The user's (image, label) pairs as x (n, 1, 28, 28) float32 and y (n,) int64."""
    x = np.stack([np.asarray(im, dtype=np.float32) for im, _ in user_digits])[:, None]  # (n, 1, 28, 28)
    y = np.array([int(lab) for _, lab in user_digits], dtype=np.int64)
    return x, y


def find_duplicate(user_digits: list, image: np.ndarray) -> int | None:
    """The label of the user's digit identical to ``image`` (28, 28), or None if there is none."""
    image = np.asarray(image, dtype=np.float32)
    for old, old_label in user_digits:
        if np.array_equal(np.asarray(old, dtype=np.float32), image):
            return old_label
    return None

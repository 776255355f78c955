"""The guided lesson: the tutorial's path through a CNN in ten steps, each with its text, one question for
the class and an answer computed from the live model.

Pure NumPy on top of the core (``Network``, losses, ``Trainer`` data): no Streamlit, no Plotly. Every
function works on a COPY of the session's network, so nothing here changes the model's weights or the
gradients the Gradients page shows (step 9, training, is done by the page through the session's trainer).
Each ``step_*`` returns a ``Step``: its sentences, the question, the answer, the arrays its figure needs and
the answer's numbers (the tests check that they follow the model: another seed gives other numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnviz.nn.head import TASK_CLASS_NAMES
from cnnviz.nn.losses import get_loss, softmax
from cnnviz.nn.network import from_spec
from cnnviz.train.config import INPUT_SHAPE
from cnnviz.train.data import task_targets
from cnnviz.viz.explain import conv_step_through

# The tutorial's worked example: a 3×3 image and a 2×2 filter give the 2×2 output [[9, 32], [14, 26]].
TUTORIAL_IMAGE = np.array([[1, 7, 2], [11, 1, 23], [2, 2, 2]], dtype=np.float32)
TUTORIAL_FILTER = np.array([[1, 1], [0, 1]], dtype=np.float32)

TITLES = (
    "A digit is 28 × 28 numbers",
    "One convolution, by hand",
    "Feature maps: what each filter sees",
    "The sigmoid, and what saturation does",
    "The dense layer and the output",
    "The error E",
    "The chain rule, back to one filter weight",
    "One update: the filter before and after",
    "Training: watch the filters change",
    "A better network",
)
N_STEPS = len(TITLES)
SATURATED_SLOPE = 0.01  # σ'(z) below this (|z| > 4.6): the sigmoid is flat and passes almost no gradient
ACT_NAMES = {"Sigmoid": "sigmoid", "ReLU": "ReLU", "Tanh": "tanh"}


@dataclass
class Step:
    """One lesson step: ``number`` (1-based), ``title``, ``text`` (2–3 sentences), ``question``, ``answer``
    (computed), ``data`` (arrays and values for its figure) and ``numbers`` (the answer's numbers)."""

    number: int
    title: str
    text: list[str]
    question: str
    answer: str
    data: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)


@dataclass
class Lesson:
    """What every step works on: a copy of the network, its config's task and loss, the validation data and
    the lesson's digit (validation image ``index``: ``image`` (28, 28), ``label``)."""

    net: object
    task: str
    loss: str
    lr: float
    x_val: np.ndarray
    y_val: np.ndarray
    index: int
    seed: int = 0

    @property
    def image(self) -> np.ndarray:
        return np.asarray(self.x_val[self.index, 0], dtype=np.float32)  # (28, 28)

    @property
    def label(self) -> int:
        return int(self.y_val[self.index])

    @property
    def conv_index(self) -> int | None:
        return next((i for i, layer in enumerate(self.net.layers) if type(layer).__name__ == "Conv2D"), None)


def default_index(y_val: np.ndarray, seed: int) -> int:
    """The lesson's digit for a seed: a validation image chosen by ``seed`` (so a class with the same seed
    sees the same digit)."""
    return int(np.random.default_rng(seed).integers(len(y_val)))


def make_lesson(trainer, index: int | None = None) -> Lesson:
    """A Lesson on a copy of ``trainer``'s network (the trainer is only read)."""
    cfg, data = trainer.config, trainer.data
    idx = default_index(data.y_val, cfg.seed) if index is None else int(index) % len(data.y_val)
    return Lesson(
        net=trainer.net.copy(),
        task=cfg.task,
        loss=cfg.loss,
        lr=float(cfg.lr),
        x_val=data.x_val,
        y_val=data.y_val,
        index=idx,
        seed=cfg.seed,
    )


def class_proba(out: np.ndarray, net) -> np.ndarray:
    """Probabilities over the task's classes (N, K') from the last output (N, K): one sigmoid output p
    becomes [1 − p, p]; other sigmoid outputs are shown as they are; logits go through softmax."""
    out = np.asarray(out, dtype=np.float64)
    if type(net.layers[-1]).__name__ == "Sigmoid":
        return np.concatenate([1.0 - out, out], axis=1) if out.shape[1] == 1 else out
    return softmax(out)


def _target(lesson: Lesson, n_out: int) -> np.ndarray:
    """The loss target for the lesson's digit, shaped as the trainer feeds it (see Trainer.make_targets)."""
    cls = task_targets(np.array([lesson.label]), lesson.task)  # (1,) int64
    if lesson.loss == "softmax_ce":
        return cls
    if n_out == 1:
        return cls.astype(np.float32)[:, None]  # (1, 1)
    onehot = np.zeros((1, n_out), dtype=np.float32)  # (1, K)
    onehot[0, cls[0]] = 1.0
    return onehot


def forward_backward(net, lesson: Lesson) -> dict:
    """Forward and backward the lesson's digit through ``net`` (a copy: its ``grads`` are overwritten).

    Returns {"outputs": every layer's output, "out" (1, K), "E": the error, "target"}.
    """
    x = lesson.image[None, None]  # (1, 1, 28, 28)
    out = net.forward(x)
    outputs = list(net.outputs)
    lossf = get_loss(lesson.loss)
    target = _target(lesson, out.shape[1])
    E = float(lossf.forward(out, target))
    net.backward(lossf.backward())
    return {"outputs": outputs, "out": out, "E": E, "target": target}


def _fmt(v: float, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` significant digits, a proper minus sign."""
    return f"{float(v):.{digits}g}".replace("-", "−")


def _pct(v: float) -> str:
    return f"{100 * float(v):.1f}%"


def _act_name(lesson: Lesson) -> str:
    c = lesson.conv_index
    if c is None or c + 1 >= len(lesson.net.layers):
        return "activation"
    return ACT_NAMES.get(type(lesson.net.layers[c + 1]).__name__, "activation")


def _conv_maps(lesson: Lesson, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First conv layer's output z and its activation a for images x (N, 1, 28, 28): (N, F, Ho, Wo) each."""
    c = lesson.conv_index
    net = lesson.net
    net.forward(x)
    z = np.asarray(net.outputs[c])
    a = np.asarray(net.outputs[c + 1]) if c + 1 < len(net.layers) else z
    return z, a


# ----------------------------------------------------------------------------------------------------------
# The ten steps
# ----------------------------------------------------------------------------------------------------------
def step_pixels(lesson: Lesson) -> Step:
    """1. The digit as numbers: how many carry ink, the brightest one and where."""
    img = lesson.image  # (28, 28)
    ink = int(np.count_nonzero(img))
    r, c = (int(t) for t in np.unravel_index(np.argmax(img), img.shape))
    rows, cols = np.nonzero(img > 0)
    box = (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) if ink else (0, 27, 0, 27)
    text = [
        "A network never sees a picture: it gets a grid of 28 × 28 = 784 numbers, one per pixel.",
        "0 is the black background and 1 is full ink; the values in between are the soft edges of the pen.",
        f"This is validation image {lesson.index}, a handwritten {lesson.label}. Hover over the picture to "
        "read any pixel, or look at the numbers beside it.",
    ]
    answer = (
        f"{ink} of the 784 numbers are not zero ({_pct(ink / 784)} of the image); the other "
        f"{784 - ink} are background. The brightest is {_fmt(img[r, c])} at row {r}, column {c} "
        "(counted from 0 at the top left)."
    )
    return Step(
        1,
        TITLES[0],
        text,
        "How many of the 784 numbers carry ink (are not 0), and where is the brightest pixel?",
        answer,
        data={"image": img, "box": box},
        numbers={"ink": ink, "max": float(img[r, c]), "at": (r, c)},
    )


def step_convolution(lesson: Lesson) -> Step:
    """2. The tutorial's 3×3 image and 2×2 filter by hand, then filter 1 on the real digit."""
    steps = conv_step_through(TUTORIAL_IMAGE, TUTORIAL_FILTER)
    values = [int(round(s["value"])) for s in steps]
    first = steps[0]
    terms = " + ".join(
        f"{int(p)}·{int(k)}" for p, k in zip(first["patch"].ravel(), TUTORIAL_FILTER.ravel(), strict=True)
    )
    c = lesson.conv_index
    data: dict = {
        "tutorial_image": TUTORIAL_IMAGE,
        "tutorial_filter": TUTORIAL_FILTER,
        "tutorial_steps": steps,
    }
    numbers: dict = {"tutorial": values}
    real = ""
    if c is not None:
        conv = lesson.net.layers[c]
        sp = conv.spec()
        W = np.asarray(conv.params["W"], dtype=np.float32)  # (F, C, KH, KW)
        p = int(sp["padding"])
        img = np.pad(lesson.image, p) if p else lesson.image  # (28 + 2p, 28 + 2p)
        rsteps = conv_step_through(img, W[0, 0], stride=int(sp["stride"]))
        vals = np.array([s["value"] for s in rsteps])  # (P,)
        best = int(np.argmax(vals))
        data.update(image=img, kernel=W[0, 0], steps=rsteps, best=best)
        b = rsteps[best]
        numbers.update(best_value=float(vals[best]), best_at=(b["row"], b["col"]))
        real = (
            f" On the digit, filter 1 ({W.shape[2]}×{W.shape[3]}, its live weights) gives its largest value "
            f"{_fmt(vals[best])} at the window whose top-left corner is row {b['row']}, column {b['col']}."
        )
    text = [
        "A convolution slides a small grid of weights, the filter, over the image. At each place it "
        "multiplies "
        "the pixels under it by the weights and adds them up: one number per place.",
        "First the tutorial's example by hand: a 3 × 3 image and a 2 × 2 filter give 4 places, so 4 numbers.",
        "Then the same on the real digit with the network's own filter 1: move the window with the slider.",
    ]
    answer = f"{', '.join(map(str, values))} (reading order). The first window: {terms} = {values[0]}." + real
    return Step(
        2,
        TITLES[1],
        text,
        "What four numbers does the 2 × 2 filter give on the 3 × 3 image? And on the "
        "digit, where does filter 1 give its largest value?",
        answer,
        data=data,
        numbers=numbers,
    )


def _digits(lesson: Lesson, digit: int, limit: int = 100) -> np.ndarray:
    idx = np.nonzero(lesson.y_val == digit)[0][:limit]
    return lesson.x_val[idx]  # (n, 1, 28, 28)


def stroke_activation(lesson: Lesson, x: np.ndarray) -> np.ndarray:
    """Each first-layer filter's mean activation where its window is centred on a stroke: (F,).

    x: (n, 1, 28, 28). A window counts when the input pixel under its centre is ink (> 0.5), so the mean
    says how strongly the filter answers the strokes themselves, not the empty background around them.
    """
    _, a = _conv_maps(lesson, x)  # (n, F, Ho, Wo)
    sp = lesson.net.layers[lesson.conv_index].spec()
    k, st, p = int(sp["kernel_size"]), int(sp["stride"]), int(sp["padding"])
    Ho, Wo = a.shape[2:]
    rows = np.arange(Ho) * st + k // 2 - p  # (Ho,) input row under each window's centre
    cols = np.arange(Wo) * st + k // 2 - p  # (Wo,)
    H, W = x.shape[2:]
    inside = ((rows >= 0) & (rows < H))[:, None] & ((cols >= 0) & (cols < W))[None, :]  # (Ho, Wo)
    centre = x[:, 0][:, np.clip(rows, 0, H - 1)][:, :, np.clip(cols, 0, W - 1)]  # (n, Ho, Wo)
    mask = (centre > 0.5) & inside[None]  # (n, Ho, Wo)
    return (a * mask[:, None]).sum(axis=(0, 2, 3)) / max(int(mask.sum()), 1)  # (F,)


def step_feature_maps(lesson: Lesson) -> Step:
    """3. The feature maps of this digit; which filter answers vertical strokes (the 1s) more than round ones
    (the 0s), measured on the strokes of 100 validation images of each."""
    c = lesson.conv_index
    _, a = _conv_maps(lesson, lesson.image[None, None])
    F = a.shape[1]
    W = np.asarray(lesson.net.layers[c].params["W"])  # (F, C, KH, KW)
    ones, zeros = _digits(lesson, 1), _digits(lesson, 0)
    m1 = stroke_activation(lesson, ones)  # (F,)
    m0 = stroke_activation(lesson, zeros)  # (F,)
    gain = m1 - m0  # (F,)
    k = int(np.argmax(gain))
    act = _act_name(lesson)
    text = [
        f"Each of the {F} filters of the first layer slides over the whole digit and makes its own map: "
        f"bright where the pattern it has learned is present. After the {act}, these are the feature maps.",
        "Compare the maps: different filters pick out different strokes and edges of the same digit.",
    ]
    rest = ", ".join(f"filter {i + 1}: {gain[i]:+.3f}".replace("-", "−") for i in range(min(F, 8)) if i != k)
    verdict = (f"{gain[k]:.3f} more on vertical strokes, the most of all filters" if gain[k] > 0 else
               "no filter prefers vertical strokes yet (train the network and ask again); this one comes "
               "closest")
    answer = (
        f"Filter {k + 1}. On the strokes of {len(ones)} validation 1s (vertical) its mean activation is "
        f"{m1[k]:.3f}, on the strokes of {len(zeros)} 0s (round) {m0[k]:.3f}: {verdict} (vertical minus "
        f"round for the others: {rest})."
    )
    return Step(
        3,
        TITLES[2],
        text,
        f"Which of the {F} filters responds most to vertical strokes, like the digit 1, compared with "
        "round ones like the 0?",
        answer,
        data={"maps": a[0], "filters": W, "act": act},
        numbers={"filter": k + 1, "on_ones": m1.tolist(), "on_zeros": m0.tolist()},
    )


def _saturated(z: np.ndarray) -> float:
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    return float(np.mean(s * (1 - s) < SATURATED_SLOPE))


def step_sigmoid(lesson: Lesson, layers: list | None = None) -> Step:
    """4. σ(z) and its slope σ'(z) = σ(1 − σ), with this digit's conv values; saturation with the tutorial's
    uniform(0, 1) initial weights (built with ``init="tutorial"`` from ``layers``, the config's spec)."""
    z, _ = _conv_maps(lesson, lesson.image[None, None])
    z = z[0].ravel()  # (F·Ho·Wo,)
    frac = _saturated(z)
    numbers = {"saturated": frac, "z_min": float(z.min()), "z_max": float(z.max())}
    tut_txt = ""
    z_tut = None
    if layers is not None:
        rng = np.random.default_rng(lesson.seed)
        tut = from_spec(layers, rng=rng, init="tutorial", input_shape=INPUT_SHAPE)
        c = lesson.conv_index
        tut.forward(lesson.image[None, None])
        z_tut = np.asarray(tut.outputs[c][0]).ravel()  # (F·Ho·Wo,)
        numbers["saturated_tutorial_init"] = _saturated(z_tut)
        tut_txt = (
            f" With the tutorial's uniform(0, 1) initial weights (seed {lesson.seed}) z would reach "
            f"{_fmt(z_tut.max())} and {_pct(numbers['saturated_tutorial_init'])} would be saturated: "
            "almost no gradient gets back to the filters, which is why this app starts from smaller "
            "weights."
        )
    act = _act_name(lesson)
    text = [
        "The sigmoid σ(z) = 1 / (1 + e^(−z)) squashes any number into (0, 1). Its slope σ'(z) = σ(1 − σ) is "
        "at most 0.25, at z = 0.",
        "Far from 0 the curve is flat (saturated): the slope is almost 0, so the chain rule multiplies the "
        "error by almost 0 and the weights before it stop learning.",
        "The bars are this digit's convolution values z."
        + (
            f" This network uses {act} after its first layer; the sigmoid is the tutorial's."
            if act != "sigmoid"
            else ""
        ),
    ]
    answer = (
        f"{_pct(frac)} of this digit's {z.size} convolution values have a slope below {SATURATED_SLOPE} "
        f"(|z| > 4.6); z runs from {_fmt(z.min())} to {_fmt(z.max())}." + tut_txt
    )
    return Step(
        4,
        TITLES[3],
        text,
        "What share of this digit's convolution values land where the sigmoid is flat?",
        answer,
        data={"z": z, "z_tutorial_init": z_tut, "act": act},
        numbers=numbers,
    )


def step_output(lesson: Lesson) -> Step:
    """5. Flatten → dense → output: the probabilities, and the feature that pushed the answer most."""
    net = lesson.net
    out = net.forward(lesson.image[None, None])  # (1, K)
    outputs = list(net.outputs)
    proba = class_proba(out, net)[0]  # (K',)
    names = list(TASK_CLASS_NAMES[lesson.task])
    true = int(task_targets(np.array([lesson.label]), lesson.task)[0])
    top = int(np.argmax(proba))
    d = next(i for i in range(len(net.layers) - 1, -1, -1) if type(net.layers[i]).__name__ == "Dense")
    v = np.asarray(outputs[d - 1][0], dtype=np.float64).ravel()  # (D,) the dense layer's input
    Wd = np.asarray(net.layers[d].params["W"], dtype=np.float64)  # (D, K)
    col = 0 if Wd.shape[1] == 1 else top
    contrib = Wd[:, col] * v  # (D,)
    m = int(np.argmax(np.abs(contrib)))
    where = ""
    flat = outputs[d - 2][0] if d >= 2 and np.asarray(outputs[d - 2]).ndim == 4 else None
    if flat is not None:
        F, H, Wi = np.asarray(flat).shape
        k, i, j = np.unravel_index(m, (F, H, Wi))
        where = f" (map {k + 1}, row {i}, column {j})"
    verdict = "right" if top == true else "wrong"
    text = [
        f"The feature maps are laid end to end as one list of {v.size} numbers. The dense layer multiplies "
        "each by its own weight and adds them up (plus a bias): Z = Σ Wₘ Aₘ + b.",
        (
            "A last sigmoid turns Z into the output O, the probability that the digit is 5–9."
            if out.shape[1] == 1
            else "One such sum per class; softmax turns them into probabilities that add up to 1."
        ),
    ]
    answer = (
        f"It says {names[top]} with {_pct(proba[top])}; the digit is a {lesson.label} (class {names[true]}), "
        f"so it is {verdict}. The input that pushed this answer most is number {m + 1} of {v.size}{where}: "
        f"weight {_fmt(Wd[m, col])} × activation {_fmt(v[m])} = {_fmt(contrib[m])}."
    )
    return Step(
        5,
        TITLES[4],
        text,
        "What does the network answer for this digit, and how sure is it?",
        answer,
        data={"proba": proba, "names": names, "true": true, "vector": v},
        numbers={"proba": proba.tolist(), "top": top, "feature": m, "contribution": float(contrib[m])},
    )


def step_error(lesson: Lesson) -> Step:
    """6. The error for this digit, and what it would be at 90% sure of the right class."""
    fb = forward_backward(lesson.net.copy(), lesson)
    out = fb["out"]
    proba = class_proba(out, lesson.net)[0]
    true = int(task_targets(np.array([lesson.label]), lesson.task)[0])
    E = fb["E"]
    if lesson.loss == "mse" and out.shape[1] == 1:
        y, o = float(fb["target"][0, 0]), float(out[0, 0])
        o90 = 0.9 if y == 1 else 0.1
        E90 = (y - o90) ** 2 / 2
        formula = f"E = (y − O)² / 2 = ({_fmt(y)} − {_fmt(o, 4)})² / 2 = {_fmt(E, 4)}"
        text = [
            "The tutorial measures how wrong the output is with E = (y − O)² / 2: y is the right answer (1 "
            "for 5–9, 0 for 0–4) and O the output.",
            "E is 0 when O = y and grows with the square of the "
            "miss; training is nothing but making E small on the training images.",
        ]
        curve = "mse"
    elif lesson.loss == "mse":
        y = float(fb["target"][0, true])
        o = float(out[0, true])
        E90 = (1 - 0.9) ** 2 / 2 + float(np.sum(np.delete(out[0], true) ** 2)) / 2
        o90 = 0.9
        formula = f"E = Σₖ (yₖ − Oₖ)² / 2 = {_fmt(E, 4)}"
        text = [
            "The error E = Σ (y − O)² / 2 adds up the squared miss of every output; y is 1 for the right "
            "class and 0 for the others.",
            "Training makes E small on the training images.",
        ]
        curve = "mse"
    else:
        y, o = 1.0, float(proba[true])
        o90 = 0.9
        E90 = float(-np.log(0.9))
        formula = f"E = −log p(right class) = −log {_fmt(o, 4)} = {_fmt(E, 4)}"
        text = [
            "The tutorial's error is E = (y − O)² / 2. This network uses cross-entropy instead: "
            "E = −log p, where p is the probability it gives the right class.",
            "E is 0 when p = 1 and grows without limit as p goes to 0: a confident mistake costs a lot.",
        ]
        curve = "ce" if lesson.loss == "softmax_ce" else "bce"
    answer = (
        f"{formula}. At 90% sure of the right answer it would be {_fmt(E90, 4)}, "
        f"{'smaller' if E90 < E else 'larger'} by {_fmt(abs(E - E90), 3)}."
    )
    return Step(
        6,
        TITLES[5],
        text,
        "What is the error E on this digit, and what would it be if the network "
        "were 90% sure of the right answer?",
        answer,
        data={"y": y, "o": o, "E": E, "curve": curve, "o90": o90},
        numbers={"E": E, "E90": E90, "O": o},
    )


def step_chain_rule(lesson: Lesson) -> Step:
    """7. ∂E/∂f for every weight of the first conv layer (this digit); the largest one and its sign."""
    net = lesson.net.copy()
    fb = forward_backward(net, lesson)
    c = lesson.conv_index
    dW = np.asarray(net.layers[c].grads["W"], dtype=np.float64)  # (F, C, KH, KW)
    k, ch, u, v = (int(t) for t in np.unravel_index(np.argmax(np.abs(dW)), dW.shape))
    g = float(dW[k, ch, u, v])
    w = float(net.layers[c].params["W"][k, ch, u, v])
    direction = "lowers" if g > 0 else "raises"
    text = [
        "To learn, each weight needs ∂E/∂f: how much E changes when that weight moves a little. The chain "
        "rule multiplies the local slopes along the way back: E → output → dense layer → activations → "
        f"the {_act_name(lesson)}'s slope → z → the filter weight.",
        "The heatmaps give ∂E/∂f for every weight of every filter, for this one digit; the equations follow "
        "one weight with this digit's numbers.",
    ]
    answer = (
        f"Filter {k + 1}, row {u}, column {v} (counted from 0): ∂E/∂f = {_fmt(g, 4)} (the weight is "
        f"{_fmt(w, 4)}). The "
        f"gradient is {'positive' if g > 0 else 'negative'}, so the update f − η·∂E/∂f {direction} it."
    )
    return Step(
        7,
        TITLES[6],
        text,
        "Which filter weight has the largest gradient on this digit, and will the "
        "update raise it or lower it?",
        answer,
        data={"dW": dW, "E": fb["E"], "sample": fb},
        numbers={"filter": k + 1, "at": (u, v), "grad": g, "weight": w},
    )


def step_update(lesson: Lesson) -> Step:
    """8. One plain gradient-descent update f ← f − η ∂E/∂f on this digit: filters before and after, E."""
    net = lesson.net.copy()
    fb = forward_backward(net, lesson)
    E0 = fb["E"]
    c = lesson.conv_index
    before = np.array(net.layers[c].params["W"], dtype=np.float32)  # (F, C, KH, KW)
    for layer in net.layers:  # every parameter, as the tutorial's loop does
        for name, p in layer.params.items():
            p -= np.float32(lesson.lr) * layer.grads[name]
    after = np.array(net.layers[c].params["W"], dtype=np.float32)  # (F, C, KH, KW)
    # in float64: after a large step float32 rounds the right class's probability to exactly 1 and E to 0
    out1 = net.forward(lesson.image[None, None]).astype(np.float64)  # (1, K)
    E1 = float(get_loss(lesson.loss).forward(out1, fb["target"]))
    delta = np.abs(after - before)  # (F, C, KH, KW)
    k, ch, u, v = (int(t) for t in np.unravel_index(np.argmax(delta), delta.shape))
    text = [
        "The update moves every weight a small step against its gradient: f ← f − η · ∂E/∂f, with the "
        "learning "
        f"rate η = {_fmt(lesson.lr)}. Here it is done once, on this digit alone, as in the tutorial's loop.",
        "The rows: the filters before the update, after it, and the change (on its own colour scale, because "
        "it is small).",
    ]
    e1 = "almost 0 (below 0.0001)" if E1 < 1e-4 else _fmt(E1, 5)
    answer = (
        f"E goes from {_fmt(E0, 5)} to {e1} ({'lower' if E1 < E0 else 'not lower'}). The largest "
        f"change is filter {k + 1}, row {u}, column {v} (counted from 0): {_fmt(before[k, ch, u, v], 4)} → "
        f"{_fmt(after[k, ch, u, v], 4)}."
    )
    if E1 < 0.1 * E0:
        answer += (" One step on one digit nearly erased its error: the step fits this digit alone, and may "
                   "undo what other digits taught. That is why training averages the gradient over a batch "
                   "of images (step 9).")
    return Step(
        8,
        TITLES[7],
        text,
        "After one update on this digit, is its error lower? By how much?",
        answer,
        data={"before": before, "after": after},
        numbers={"E_before": E0, "E_after": E1, "filter": k + 1, "change": float(delta[k, ch, u, v])},
    )


def step_training(lesson: Lesson, trainer) -> Step:
    """9. The session's training so far: the filters now against step 0, the loss, which filter moved most."""
    W0 = np.asarray(trainer.snapshots[0].filters, dtype=np.float32)  # (F, C, KH, KW)
    W = np.asarray(lesson.net.layers[lesson.conv_index].params["W"], dtype=np.float32)  # (F, C, KH, KW)
    moved = np.abs(W - W0).mean(axis=(1, 2, 3))  # (F,)
    k = int(np.argmax(moved))
    n = int(trainer.step_count)
    val = trainer.val_history
    batch = "all of them at once" if trainer.config.batch_size == 0 else f"{trainer.batch_size} at a time"
    text = [
        f"Training repeats steps 6 to 8 on batches of training images ({batch}) again and again. "
        "Press a button and watch the filters: they start random and turn into stroke and "
        "edge detectors.",
        "Right: each weight's change since step 0.",
    ]
    if n == 0:
        answer = (
            f"No training yet (step 0): validation accuracy {_pct(val[-1][2])}, validation loss "
            f"{_fmt(val[-1][1], 4)}. Press Train, then reveal again."
        )
    else:
        first = val[0]
        last = val[-1]
        answer = (
            f"After {n} steps filter {k + 1} has changed most (mean |change| {_fmt(moved[k], 3)} per "
            f"weight). Validation accuracy {_pct(first[2])} at step {first[0]} → {_pct(last[2])} at step "
            f"{last[0]}; loss {_fmt(first[1], 4)} → {_fmt(last[1], 4)}."
        )
    return Step(
        9,
        TITLES[8],
        text,
        "Train a few steps. Which filter has changed most, and how did the accuracy move?",
        answer,
        data={"W": W, "W0": W0, "step": n},
        numbers={"step": n, "filter": k + 1, "moved": moved.tolist(), "val": [float(t[2]) for t in val]},
    )


def accuracy(net, x: np.ndarray, digits: np.ndarray, task: str) -> float:
    """Share of images x (N, 1, 28, 28) whose predicted class is right for ``task`` (labels: digits (N,))."""
    true = task_targets(np.asarray(digits), task)  # (N,)
    hits = 0
    for s in range(0, len(x), 250):  # chunks: bounded memory on a shared server
        p = class_proba(net.forward(x[s : s + 250]), net)  # (n, K')
        hits += int(np.sum(np.argmax(p, axis=1) == true[s : s + 250]))
    return hits / max(len(x), 1)


def step_better(
    lesson: Lesson, preset: str, step_count: int, others: dict, val_loss: float | None = None
) -> Step:
    """10. The session's model against the shipped ones: ``others`` maps a name to (network, task, x, digits)
    (e.g. the pretrained tutorial and classroom networks on their tasks' validation images)."""
    acc = accuracy(lesson.net, lesson.x_val, lesson.y_val, lesson.task)
    rows = [(f"your model ({preset}, step {step_count})", lesson.task, acc)]
    for name, (net, task, x, y) in others.items():
        rows.append((name, task, accuracy(net, x, y, task)))
    task_txt = {"gt4": "0–4 vs 5–9 (chance 50%)", "digits": "all 10 digits (chance 10%)"}
    text = [
        "The tutorial's network is one layer of 3 filters with sigmoids and the squared error, on a two-way "
        "question. Better networks use ReLU (no saturation for positive z), pooling, more filters and "
        "cross-entropy, and answer the harder ten-way question.",
        "Compare them on the same validation images, then open Compare or Train to try a change yourself.",
    ]
    answer = " ".join(f"{name}: {_pct(a)} on {task_txt[t]}." for name, t, a in rows)
    if val_loss is not None:
        answer += f" (Your model's validation loss: {_fmt(val_loss, 4)}.)"
    return Step(
        10,
        TITLES[9],
        text,
        "How much better does a network with ReLU, pooling and more filters do than the tutorial's?",
        answer,
        data={"rows": rows},
        numbers={"accuracy": [a for _, _, a in rows]},
    )


def compute_step(number: int, lesson: Lesson, trainer, others) -> Step:
    """Lesson step ``number`` (1..N_STEPS) for ``lesson`` on the session's ``trainer``; ``others()`` gives
    the other trained networks step 10 compares with (called for step 10 only: it may load files)."""
    cfg = trainer.config
    if number == 1:
        return step_pixels(lesson)
    if number == 2:
        return step_convolution(lesson)
    if number == 3:
        return step_feature_maps(lesson)
    if number == 4:
        return step_sigmoid(lesson, cfg.layers)
    if number == 5:
        return step_output(lesson)
    if number == 6:
        return step_error(lesson)
    if number == 7:
        return step_chain_rule(lesson)
    if number == 8:
        return step_update(lesson)
    if number == 9:
        return step_training(lesson, trainer)
    val = trainer.val_history[-1][1] if trainer.val_history else None
    return step_better(lesson, cfg.preset, trainer.step_count, others(), val)

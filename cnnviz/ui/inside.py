"""Inside page: one image's path through the network, a convolution step-through, and the equations of the
forward and backward pass written with this sample's live numbers.

The pure helpers (``class_names``, ``loss_target``, ``sample_pass``, ``stages``, ``tutorial_equations``,
``general_equations``, ``step_example``) take arrays and networks and return plain data, so the tests can
check them without a browser. ``render()`` only wires widgets to them and to ``cnnviz.viz.figures``. The page
works on a copy of the session's network, so nothing here changes the model's weights or the gradients
that the Gradients page shows.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st
from numpy.lib.stride_tricks import sliding_window_view

from cnnviz.nn.losses import get_loss, softmax
from cnnviz.ui import common, state
from cnnviz.viz import figures
from cnnviz.viz.explain import conv_step_through

# The tutorial's worked example: a 3x3 image and a 2x2 filter give the 2x2 output [[9, 32], [14, 26]].
TUTORIAL_IMAGE = np.array([[1, 7, 2], [11, 1, 23], [2, 2, 2]], dtype=np.float32)
TUTORIAL_FILTER = np.array([[1, 1], [0, 1]], dtype=np.float32)

ACTIVATIONS = {"Sigmoid": r"\sigma", "ReLU": r"\operatorname{ReLU}", "Tanh": r"\tanh"}
POOLS = {"MaxPool2D": "max", "AvgPool2D": "average"}


# ----------------------------------------------------------------------------------------------------------
# Pure helpers (no Streamlit)
# ----------------------------------------------------------------------------------------------------------
def class_names(task: str, n_out: int) -> list[str]:
    """Names of the classes the probabilities refer to: digits, or the tutorial's "0–4" / "5–9"."""
    if task == "gt4" or n_out in (1, 2):
        return ["0–4", "5–9"]
    return [str(k) for k in range(n_out)]


def class_index(label: int, task: str) -> int:
    """The class a digit label belongs to for the task (the digit, or 1 when digit > 4 for "gt4")."""
    return int(label) if task == "digits" else int(label > 4)


def class_proba(out: np.ndarray, net) -> np.ndarray:
    """Probabilities over the task's classes from the network's last output (1, K): a single sigmoid output
    p becomes [1 - p, p]; a final Sigmoid on K > 1 outputs is shown as is; logits go through softmax."""
    out = np.asarray(out, dtype=np.float64)
    if type(net.layers[-1]).__name__ == "Sigmoid":
        p = out[0]
        return np.array([1.0 - p[0], p[0]]) if p.size == 1 else p
    return softmax(out)[0]


def loss_target(label: int, task: str, loss: str, n_out: int) -> np.ndarray:
    """The training target for one image, shaped as the trainer feeds the loss: int (1,) for softmax
    cross-entropy; a float (1, 1) for a single sigmoid output; a float one-hot (1, K) otherwise."""
    cls = class_index(label, task)
    if loss == "softmax_ce":
        return np.array([cls], dtype=np.int64)
    if n_out == 1:
        return np.array([[float(cls)]], dtype=np.float32)
    t = np.zeros((1, n_out), dtype=np.float32)
    t[0, cls] = 1.0
    return t


def sample_pass(net, x: np.ndarray, label: int, task: str, loss: str) -> dict:
    """Forward and backward one image through a COPY of ``net`` (the session's model is left untouched).

    x: (1, 1, H, W). Returns {"net": the copy (its ``grads`` now hold this sample's gradients), "outputs":
    every layer's output, "deltas": dE/d(output of layer i) for every i, "loss": E, "target", "out"}.
    """
    net = net.copy()
    out = net.forward(x)
    outputs = list(net.outputs)
    n_out = out.shape[1]
    lossf = get_loss(loss)
    target = loss_target(label, task, loss, n_out)
    E = lossf.forward(out, target)
    d = lossf.backward()
    deltas: list[np.ndarray] = [None] * len(net.layers)  # type: ignore[list-item]
    for i in range(len(net.layers) - 1, -1, -1):
        deltas[i] = d
        d = net.layers[i].backward(d, need_dx=i > 0)
    return {"net": net, "outputs": outputs, "deltas": deltas, "loss": float(E), "target": target, "out": out}


def stages(net, outputs: list[np.ndarray]) -> list[dict]:
    """What to show for each layer, in the order the data flows (one image: outputs[i] is (1, ...)).

    Each stage: {"index", "type", "title", "note", "data" (array for one image), "kind" ("maps" | "vector" |
    "scores"), "colour" ("diverging" | "sequential"), "filters" (Conv2D only: W (F, C, KH, KW))}.
    """
    out = []
    n_conv = 0
    for i, (layer, y) in enumerate(zip(net.layers, outputs, strict=True)):
        name = type(layer).__name__
        sp = layer.spec()
        y0 = np.asarray(y[0])
        st_ = {"index": i, "type": name, "data": y0, "kind": "maps" if y0.ndim == 3 else "scores",
               "colour": "sequential", "shape": tuple(y0.shape)}
        shape_txt = " × ".join(str(s) for s in y0.shape)
        if name == "Conv2D":
            n_conv += 1
            st_.update(
                title=(f"Convolution {n_conv}: {sp['out_channels']} filters "
                       f"{sp['kernel_size']}×{sp['kernel_size']}"),
                note=(f"Each filter slides over its input (stride {sp['stride']}, padding {sp['padding']}); "
                      f"z = x ∗ f + b gives one feature map per filter: {shape_txt}. Before the activation "
                      "the values can be negative (blue)."),
                colour="diverging", filters=np.asarray(layer.params["W"]), bias=np.asarray(layer.params["b"]),
                conv_number=n_conv)
        elif name in ACTIVATIONS and y0.ndim == 3:
            what = {"Sigmoid": "σ(z) = 1 / (1 + e^(−z)) squashes every value into (0, 1)",
                    "ReLU": "ReLU(z) = max(0, z) keeps the positive values and zeroes the rest",
                    "Tanh": "tanh(z) squashes every value into (−1, 1)"}[name]
            st_.update(title=f"After the activation ({name})", note=f"A = {what}: {shape_txt}.")
        elif name in POOLS:
            size = sp.get("size", 2)
            st_.update(title=f"After {POOLS[name]}-pooling {size}×{size}",
                       note=f"Each {size}×{size} window becomes its {POOLS[name]} value: {shape_txt}.")
        elif name == "Flatten":
            st_.update(kind="vector", title="Flattened",
                       note=(f"The maps laid end to end (C order) as one vector of {y0.size} numbers, "
                             "the input of the dense layer."))
        elif name == "Dense":
            st_.update(title="Dense layer", note=(f"Z = Wᵀv + b: {sp['in_features']} inputs → "
                                                  f"{sp['out_features']} output(s)."))
        elif name in ACTIVATIONS:
            st_.update(title=f"Output activation ({name})", note="O = σ(Z), the predicted probability.")
        else:
            st_.update(title=name, note=shape_txt)
        out.append(st_)
    return out


def _f(v: float, digits: int = 4) -> str:
    """A number for LaTeX: 4 significant digits, scientific notation written as × 10^k."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    s = f"{v:.{digits}g}"
    if "e" in s:
        m, e = s.split("e")
        return rf"{m} \times 10^{{{int(e)}}}"
    return s


def is_tutorial_net(net, loss: str) -> bool:
    """The tutorial's network shape: Conv2D (stride 1, no padding, one input channel) → Sigmoid → Flatten →
    Dense(…, 1) → Sigmoid, trained with MSE or BCE."""
    types = [type(layer).__name__ for layer in net.layers]
    if types != ["Conv2D", "Sigmoid", "Flatten", "Dense", "Sigmoid"] or loss not in ("mse", "bce"):
        return False
    sp = net.layers[0].spec()
    return (sp["stride"] == 1 and sp["padding"] == 0 and sp["in_channels"] == 1
            and net.layers[3].params["W"].shape[1] == 1)


def _d(sym: str, num: str = "E") -> str:
    """LaTeX for the partial derivative ∂num/∂sym."""
    return rf"\frac{{\partial {num}}}{{\partial {sym}}}"


def _t(v: float, digits: int = 4) -> str:
    """A number for plain text: 4 significant digits, powers of ten as ×10⁻⁷."""
    s = f"{float(v):.{digits}g}"
    if "e" in s:
        m, e = s.split("e")
        sup = str(int(e)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return f"{m}×10{sup}"
    return s.replace("-", "−")


def tutorial_equations(sp: dict, x: np.ndarray, label: int, loss: str) -> dict:
    """The tutorial's forward and backward equations with this sample's numbers (one image, N = 1).

    ``sp`` is ``sample_pass`` on a tutorial-shaped net, ``x`` the image (H, W). The chain rule is followed for
    one feature m = (k, i, j): the one with the largest |dE/dZ1| among windows that cover some ink. Every
    number is read from the same forward and backward pass that trains the model (the tests check them
    against the layers' ``grads``). Returns {"forward": [(latex, note)], "backward": [(latex, note)],
    "m": (k, i, j), "numbers": {...}}.
    """
    net = sp["net"]
    conv, dense = net.layers[0], net.layers[3]
    Z1, A, _, Z2, O = (np.asarray(o[0], dtype=np.float64) for o in sp["outputs"])  # (F, Ho, Wo) ... (1,)
    dZ1 = np.asarray(sp["deltas"][0][0], dtype=np.float64)  # (F, Ho, Wo)
    F, Ho, Wo = Z1.shape
    KH, KW = conv.params["W"].shape[2:]
    ink = sliding_window_view(np.asarray(x, dtype=np.float64), (KH, KW)).sum(axis=(2, 3)) > 0  # (Ho, Wo)
    score = np.abs(dZ1) * (ink[None] if ink.any() else 1.0)  # (F, Ho, Wo)
    k, i, j = (int(t) for t in np.unravel_index(np.argmax(score), score.shape))
    m = (k * Ho + i) * Wo + j  # index in the flattened vector (C order)
    W = np.asarray(dense.params["W"], dtype=np.float64)[:, 0]  # (D,)
    b2, b1 = float(dense.params["b"][0]), float(conv.params["b"][k])
    y = float(np.asarray(sp["target"]).ravel()[0])
    o, z2, z1 = float(O[0]), float(Z2[0]), float(Z1[k, i, j])
    dE_dO = float(sp["deltas"][4][0, 0])
    dO_dZ2 = o * (1 - o)
    delta2 = float(sp["deltas"][3][0, 0])
    a_m = float(A.ravel()[m])
    dW_m = float(dense.grads["W"][m, 0])
    db = float(dense.grads["b"][0])
    dA_m = float(sp["deltas"][1][0].ravel()[m])
    dZ1_m = float(dZ1[k, i, j])
    df = np.asarray(conv.grads["W"][k, 0], dtype=np.float64)  # (KH, KW)
    u, v = (int(t) for t in np.unravel_index(np.argmax(np.abs(df)), df.shape))
    E, K = sp["loss"], k + 1
    fwd = [
        (rf"Z_1[{K},{i},{j}] = \sum_{{u,v}} x_{{{i}+u,\,{j}+v}}\, f_{{{K},u,v}} + b_{{{K}}} = {_f(z1)}",
         f"Filter {K} on the {KH}×{KW} window whose top-left pixel is row {i}, column {j} (bias b{K} = "
         f"{_t(b1)})."),
        (rf"A[{K},{i},{j}] = \sigma(Z_1) = \frac{{1}}{{1 + e^{{-({_f(z1)})}}}} = {_f(a_m)}",
         "The sigmoid squashes it into (0, 1)."),
        (rf"Z_2 = W^{{T}} A + b = \sum_{{m=1}}^{{{W.size}}} W_m A_m + b = {_f(z2)}",
         f"All {W.size} activations, flattened, weighted and summed (b = {_t(b2)})."),
        (rf"O = \sigma(Z_2) = {_f(o)}", f"The predicted probability that the digit is 5–9: {o:.1%}."),
    ]
    because = f"Target y = {int(y)} because the digit is {int(label)}."
    if loss == "mse":
        fwd.append((rf"E = \tfrac{{1}}{{2}}(y - O)^2 = \tfrac{{1}}{{2}}({_f(y)} - {_f(o)})^2 = {_f(E)}",
                    because))
        bwd = [(rf"{_d('O')} = O - y = {_f(dE_dO)}", "How the error changes with the output.")]
    else:
        fwd.append((rf"E = -[y \log O + (1-y)\log(1-O)] = {_f(E)}", because))
        bwd = [(rf"{_d('O')} = \frac{{O - y}}{{O(1-O)}} = {_f(dE_dO)}",
                "How the error changes with the output.")]
    bwd += [
        (rf"{_d('Z_2', 'O')} = O(1 - O) = {_f(dO_dZ2)}", "The sigmoid's slope: at most 0.25, tiny when O is "
                                                         "near 0 or 1."),
        (rf"\delta_2 = {_d('Z_2')} = {_d('O')}\,{_d('Z_2', 'O')} = {_f(delta2)}",
         "Chain rule: the error signal at the dense output."),
        (rf"{_d('W_m')} = \delta_2\, A_m = {_f(delta2)} \times {_f(a_m)} = {_f(dW_m)}",
         f"For feature m = (filter {K}, row {i}, column {j}); the bias gets ∂E/∂b = δ₂ = {_t(db)}."),
        (rf"{_d('A_m')} = \delta_2\, W_m = {_f(delta2)} \times ({_f(W[m])}) = {_f(dA_m)}",
         "The error sent back to that activation through its weight."),
        (rf"{_d('Z_{1,m}')} = {_d('A_m')}\, A_m(1 - A_m) = {_f(dZ1_m)}",
         f"Through the first sigmoid (slope A(1 − A) = {_t(a_m * (1 - a_m))})."),
        (rf"{_d(f'f_{{{K},u,v}}')} = \sum_{{i,j}} {_d(f'Z_1[{K},i,j]')}\; x_{{i+u,\,j+v}}",
         f"Every window of the image weighted by its error: for (u, v) = ({u}, {v}) this is {_t(df[u, v])}, "
         f"the largest entry of filter {K}'s gradient."),
    ]
    numbers = {"Z1": z1, "A": a_m, "Z2": z2, "O": o, "E": E, "y": y, "dE_dO": dE_dO, "dO_dZ2": dO_dZ2,
               "delta2": delta2, "dW_m": dW_m, "db": db, "dA_m": dA_m, "dZ1_m": dZ1_m, "df": float(df[u, v]),
               "W_m": float(W[m]), "m": m, "uv": (u, v)}
    return {"forward": fwd, "backward": bwd, "m": (k, i, j), "numbers": numbers}


def _n(a) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64)))


def _shape_tex(a: np.ndarray) -> str:
    return r"\mathbb{R}^{" + r" \times ".join(str(s) for s in a.shape) + "}"


def general_equations(sp: dict, loss: str) -> dict:
    """The forward and backward pass of any cnnviz network, layer by layer, with this sample's numbers.

    Symbols: h₀ = x and hₗ the output of layer l (1-based). Each entry is (latex, note): the layer's equation
    and a sentence with a live number (a norm, the share of active units, the mean derivative factor).
    Returns {"forward": [...], "backward": [...]} (backward from the loss to the input).
    """
    net = sp["net"]
    outputs, deltas = sp["outputs"], sp["deltas"]
    fwd, bwd = [], []
    prev = "x"
    for li, (layer, y, d) in enumerate(zip(net.layers, outputs, deltas, strict=True), start=1):
        name = type(layer).__name__
        y0, d0 = np.asarray(y[0], dtype=np.float64), np.asarray(d[0], dtype=np.float64)
        h = f"h_{{{li}}}"
        shape = _shape_tex(y0)
        dh, dprev = _d(h), _d(prev)
        arriving = f"‖∂E/∂h{li}‖ = {_t(_n(d0), 3)} arrives here."
        if name == "Conv2D":
            fwd.append((rf"{h} = {prev} \ast f^{{({li})}} + b^{{({li})}} \in {shape}",
                        f"Convolution; the largest |value| is {_t(np.abs(y0).max(), 3)}."))
            bwd.append((rf"{_d(f'f^{{({li})}}')} = {prev} \star {dh}",
                        f"{arriving} Filter gradient: each window of the input weighted by the error map, "
                        f"‖∂E/∂f‖ = {_t(_n(layer.grads['W']), 3)}."))
        elif name == "ReLU":
            active = float((y0 > 0).mean())
            fwd.append((rf"{h} = \max(0, {prev}) \in {shape}",
                        f"{active:.0%} of the units are active (> 0)."))
            bwd.append((rf"{dprev} = {dh} \odot \mathbb{{1}}[{prev} > 0]",
                        f"{arriving} It passes only through the {active:.0%} active units."))
        elif name in ACTIVATIONS:
            deriv = y0 * (1 - y0) if name == "Sigmoid" else 1 - y0**2
            dtex = rf"{h}(1 - {h})" if name == "Sigmoid" else rf"(1 - {h}^2)"
            fwd.append((rf"{h} = {ACTIVATIONS[name]}({prev}) \in {shape}", f"{name} activation."))
            bwd.append((rf"{dprev} = {dh} \odot {dtex}",
                        f"{arriving} Scaled by the slope: mean {_t(deriv.mean(), 3)}, "
                        f"max {_t(deriv.max(), 3)}"
                        + (" (at most 0.25 for a sigmoid: gradients shrink)." if name == "Sigmoid" else ".")))
        elif name in POOLS:
            size = layer.spec().get("size", 2)
            op = rf"\operatorname{{{POOLS[name][:3]}pool}}_{{{size}\times{size}}}"
            fwd.append((rf"{h} = {op}({prev}) \in {shape}",
                        f"{POOLS[name].capitalize()} of each {size}×{size} window."))
            how = ("goes to the maximum of its window, 0 elsewhere" if name == "MaxPool2D"
                   else f"is shared equally by the {size * size} pixels of its window")
            bwd.append((rf"{dprev} \leftarrow {dh}", f"{arriving} Each value {how}."))
        elif name == "Flatten":
            fwd.append((rf"{h} = \operatorname{{vec}}({prev}) \in {shape}", "The maps laid end to end."))
            bwd.append((rf"{dprev} = \operatorname{{reshape}}\left({dh}\right)",
                        f"{arriving} Back to map shape."))
        elif name == "Dense":
            fwd.append((rf"{h} = W^{{({li})T}} {prev} + b^{{({li})}} \in {shape}", "Dense layer."))
            bwd.append((rf"{_d(f'W^{{({li})}}')} = {prev}\left({dh}\right)^{{T}},\quad "
                        rf"{dprev} = W^{{({li})}} {dh}",
                        f"{arriving} Weight gradient ‖∂E/∂W‖ = {_t(_n(layer.grads['W']), 3)}."))
        else:
            fwd.append((rf"{h} = \text{{{name}}}({prev})", ""))
            bwd.append((rf"{dprev} = \text{{{name} backward}}", arriving))
        prev = h
    last = f"h_{{{len(net.layers)}}}"
    E = sp["loss"]
    out = np.asarray(sp["out"][0], dtype=np.float64)
    dlast = _d(last)
    if loss == "softmax_ce":
        cls = int(np.asarray(sp["target"]).ravel()[0])
        p = softmax(out[None])[0]
        fwd.append((rf"p = \operatorname{{softmax}}({last}),\quad E = -\log p_{{{cls}}} = {_f(E)}",
                    f"The true class {cls} gets probability {p[cls]:.1%}."))
        vec = ", ".join(f"{v:+.2f}" for v in p - np.eye(out.size)[cls])
        head = (rf"{dlast} = p - \operatorname{{onehot}}({cls})", f"= ({vec}): push the true class up, the "
                                                                   "others down.")
    elif loss == "mse":
        fwd.append((rf"E = \tfrac{{1}}{{2}}\sum_k (y_k - {last}[k])^2 = {_f(E)}", "Squared error."))
        head = (rf"{dlast} = {last} - y", f"‖∂E/∂h‖ = {_t(_n(deltas[-1]), 3)}.")
    else:
        fwd.append((rf"E = -\sum_k [y_k \log {last}[k] + (1 - y_k)\log(1 - {last}[k])] = {_f(E)}",
                    "Binary cross-entropy."))
        head = (rf"{dlast} = \frac{{{last} - y}}{{{last}(1 - {last})}}",
                f"‖∂E/∂h‖ = {_t(_n(deltas[-1]), 3)}.")
    return {"forward": fwd, "backward": [head] + bwd[::-1]}


def step_example(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: int = 0) -> tuple:
    """(padded image (H', W'), kernel, steps) for the step-through: ``conv_step_through`` on the image
    zero-padded by ``padding`` (so the windows are exactly the conv layer's)."""
    image = np.asarray(image, dtype=np.float32)
    if padding:
        image = np.pad(image, padding)  # (H + 2p, W + 2p)
    return image, np.asarray(kernel, dtype=np.float32), conv_step_through(image, kernel, stride=stride)


def sum_latex(step: dict, kernel: np.ndarray, max_terms: int = 9) -> str:
    """The window's sum written out term by term for small windows (1·1 + 7·1 + 11·0 + 1·1 = 9), or as
    a Σ for large ones."""
    patch = np.asarray(step["patch"]).ravel()
    kern = np.asarray(kernel).ravel()
    if patch.size > max_terms:
        return (rf"\sum_{{u,v}} \text{{patch}}_{{u,v}}\, f_{{u,v}} = {_f(step['value'])}"
                rf"\quad\text{{(output row {step['row']}, column {step['col']})}}")
    terms = " + ".join(rf"{_f(p)}\cdot{_f(k)}" for p, k in zip(patch, kern, strict=True))
    return terms + rf" = {_f(step['value'])}"


# ----------------------------------------------------------------------------------------------------------
# Page
# ----------------------------------------------------------------------------------------------------------
def _pick_image(trainer) -> tuple[np.ndarray, int | None, str, object]:
    """Widgets to choose the image: returns (image (28, 28) float32, digit label or None, description, a
    placeholder beside the picker for the network's verdict)."""
    data = trainer.data
    n_val = len(data.x_val)
    ui = state.app().ui
    drawing = state.app().draw.drawing
    sources = ["Validation image"] + (["Your drawing"] if drawing is not None else [])
    if ui.inside_source not in sources:
        ui.inside_source = sources[0]
    src = sources[0]
    if len(sources) > 1:
        src = st.radio("Image", sources, horizontal=True, **state.bind("ui.inside_source", "inside_source"))
    cols = st.columns([2, 1.3, 3], vertical_alignment="bottom")
    if src == "Your drawing":
        cols[0].caption("Showing the digit from the Draw page (it has no true label).")
        return np.asarray(drawing, dtype=np.float32), None, "your drawing", cols[2].empty()
    if cols[1].button("Random", key="inside_random", help="Pick a random validation image",
                      icon=":material/shuffle:", width="stretch"):
        rng = state.app().caches.setdefault("inside_rng", np.random.default_rng(trainer.config.seed))
        ui.inside_index = int(rng.integers(n_val))
    ui.inside_index = min(max(int(ui.inside_index), 0), n_val - 1)
    idx = cols[0].number_input(f"Validation image (0–{n_val - 1})", min_value=0, max_value=n_val - 1, step=1,
                               **state.bind("ui.inside_index", "inside_index", convert=int))
    label = int(data.y_val[idx])
    desc = f"validation image {idx} (a {label})"
    return np.asarray(data.x_val[idx, 0], dtype=np.float32), label, desc, cols[2].empty()


def _stage_row(stage: dict, key: str, scale: float) -> None:
    """One stage of the data flow: a caption on the left, its figure(s) on the right (a conv layer shows
    its filters above its feature maps)."""
    left, right = st.columns([1, 3.2])
    left.markdown(f"**{stage['title']}**")
    left.caption(stage["note"])
    with right:
        if stage["type"] == "Conv2D":
            with left:
                fig = _filters_figure(stage, scale)
            common.plot(fig, key=f"{key}_filters")
        maps = stage["data"]
        cols = _grid_cols(maps.shape[0])
        fig = figures.map_grid(maps, stage["title"] + f" — {maps.shape[0]} maps of "
                               f"{maps.shape[1]}×{maps.shape[2]}", kind=stage["colour"],
                               labels=[f"map {c + 1}" for c in range(maps.shape[0])], cols=cols,
                               panel_px=_panel_px(cols), scale=scale,
                               colorbar_title="z" if stage["colour"] == "diverging" else "activation")
        common.plot(fig, key=key)


def _grid_cols(n: int) -> int:
    """Columns for a grid of n feature maps beside the captions: 3 → 3, 8 → 4 (two rows), 16 → 8."""
    return n if n <= 4 else (4 if n <= 8 else 8)


def _panel_px(cols: int) -> int:
    """Panel size for a grid with ``cols`` columns in the page's right-hand column (~560 px wide at 1280)."""
    return int(min(170, max(56, 470 / cols)))


def _filters_figure(stage: dict, scale: float) -> tuple:
    """The conv layer's filters as a grid (one input channel at a time when the layer has several)."""
    W = stage["filters"]  # (F, C, KH, KW)
    F, C = W.shape[:2]
    c = 0
    if C > 1:
        c = st.selectbox("Filters: input channel shown", list(range(C)),
                         format_func=lambda i: f"channel {i + 1} of {C}", key=f"inside_chan_{stage['index']}",
                         help="A filter of this layer has one 5×5 slice per input map; pick which to show")
    cols = _grid_cols(F)
    title = (f"Filters of convolution {stage['conv_number']}" + (f", input channel {c + 1}" if C > 1 else "")
             + f" — {F} × {W.shape[2]}×{W.shape[3]} (same colour range)")
    return figures.map_grid(W[:, c], title, kind="diverging", labels=[f"filter {k + 1}" for k in range(F)],
                            cols=cols, panel_px=_panel_px(cols), colorbar_title="weight", scale=scale)


def _flow_section(net, image: np.ndarray, label: int | None, task: str, desc: str, scale: float,
                  verdict_slot) -> None:
    """Input → filters → maps before/after the activation → pooled → flattened → output probabilities."""
    x = image[None, None]  # (1, 1, 28, 28)
    work = net.copy()
    out = work.forward(x)
    outputs = list(work.outputs)
    sts = stages(work, outputs)
    proba = class_proba(out, work)
    top = int(np.argmax(proba))
    names = class_names(task, out.shape[1])
    true_cls = None if label is None else class_index(label, task)
    mark = "" if true_cls is None else (" ✓" if top == true_cls else " ✗")
    truth = "" if label is None else f"True digit **{label}** · "
    verdict_slot.markdown(f"{truth}the network says **{names[top]}** ({proba[top]:.0%}){mark}")

    left, right = st.columns([1, 3.2])
    left.markdown("**Input**")
    left.caption(f"{desc}: 28 × 28 grey values in [0, 1], the network's only input.")
    with right:
        fig = figures.map_grid(image, f"Input — {desc}", kind="image", labels=["input"], cols=1,
                               panel_px=150, colorbar_title="grey", scale=scale)
        common.plot(fig, key="inside_input")
    for s in sts:
        key = f"inside_stage_{s['index']}"
        if s["type"] == "Conv2D":
            st.markdown("↓")
            _stage_row(s, key, scale)
        elif s["kind"] == "maps":
            st.markdown("↓")
            _stage_row(s, key, scale)
        elif s["kind"] == "vector":
            st.markdown("↓")
            left, right = st.columns([1, 3.2])
            left.markdown(f"**{s['title']}**")
            left.caption(s["note"])
            prev = outputs[s["index"] - 1][0] if s["index"] > 0 else image[None]
            n_seg = prev.shape[0] if np.ndim(prev) == 3 else 1
            with right:
                fig = figures.flat_vector_figure(s["data"], n_seg,
                                                 f"Flattened vector v ({s['data'].size} values)", scale=scale)
                common.plot(fig, key=key)
        elif s["type"] == "Dense":
            vals = ", ".join(f"{v:.3g}" for v in s["data"].ravel()[:10])
            st.markdown("↓")
            left, right = st.columns([1, 3.2])
            left.markdown(f"**{s['title']}**")
            left.caption(s["note"])
            right.markdown(f"Z = [{vals}]" if s["data"].size > 1 else f"Z₂ = {vals}")
    st.markdown("↓")
    left, right = st.columns([1, 3.2])
    left.markdown("**Output probabilities**")
    verdict = f"The network says **{names[top]}** ({proba[top]:.0%})"
    if true_cls is not None:
        verdict += " — correct." if top == true_cls else f" — wrong: the true class is {names[true_cls]}."
    left.caption(("σ(Z₂) is the probability of 5–9; 1 − σ(Z₂) that of 0–4. " if len(proba) == 2
                  and type(work.layers[-1]).__name__ == "Sigmoid" else "softmax(Z) over the classes. ")
                 + verdict.replace("**", ""))
    with right:
        fig = figures.probability_figure(proba, names, "Output probabilities (top class highlighted)",
                                         true_index=true_cls, scale=scale)
        common.plot(fig, key="inside_proba")


def _step_through_section(net, image: np.ndarray, scale: float) -> None:
    """The convolution step-through: the window moves, patch ⊙ filter = value, with play/pause."""
    conv = next((layer for layer in net.layers if type(layer).__name__ == "Conv2D"), None)
    options = ["Tutorial example: 3×3 image, 2×2 filter"]
    if conv is not None:
        options.append("This image with a learned filter")
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    choice = c1.radio("Example", options, horizontal=True, key="inside_step_example")
    if choice == options[0]:
        img, kern, steps = step_example(TUTORIAL_IMAGE, TUTORIAL_FILTER)
        skey, numbers = "inside_step_tut", True
    else:
        W = np.asarray(conv.params["W"])  # (F, C, KH, KW)
        k = c2.selectbox("Filter", list(range(W.shape[0])), format_func=lambda i: f"filter {i + 1}",
                         key="inside_step_filter")
        sp = conv.spec()
        img, kern, steps = step_example(image, W[k, 0], stride=sp["stride"], padding=sp["padding"])
        skey, numbers = "inside_step_real", None
        if skey not in st.session_state:  # start mid-image, where there is ink, rather than in a blank corner
            w_out = steps[-1]["col"] + 1
            st.session_state[skey] = (len(steps) // w_out // 2) * w_out + w_out // 3 + 1
    n = len(steps)
    play_key = "inside_step_play"
    playing = bool(st.session_state.get(play_key, False))

    @st.fragment(run_every=0.6 if playing else None)
    def _view() -> None:
        current = int(st.session_state.get(skey, 1))
        if st.session_state.get(play_key, False):
            current = current % n + max(1, n // 48)  # a full pass in about 48 ticks, then start again
            current = min(current, n)
        st.session_state[skey] = min(max(current, 1), n)
        b1, b2 = st.columns([1, 6], vertical_alignment="bottom")
        label = "⏸ Pause" if st.session_state.get(play_key, False) else "▶ Play"
        if b1.button(label, key="inside_step_playbtn", width="stretch"):
            st.session_state[play_key] = not st.session_state.get(play_key, False)
            st.rerun()
        pos = b2.slider("Window position", 1, n, key=skey, help="Move the window over the image")
        s = steps[pos - 1]
        fig = figures.conv_step_figure(img, kern, steps, pos - 1, numbers=numbers, scale=scale)
        common.plot(fig, key="inside_step_fig")
        st.latex(sum_latex(s, kern))
        if numbers:
            vals = [f"{t['value']:g}" for t in steps]
            w_out = steps[-1]["col"] + 1
            grid = "; ".join(", ".join(vals[r:r + w_out]) for r in range(0, n, w_out))
            st.caption(f"All {n} positions, in reading order: {', '.join(vals)} — the output map "
                       f"[{grid}] (rows separated by ;).")
        else:
            st.caption("Hover over a cell to read its value. The output map fills up as the window moves; "
                       "it is the feature map (before bias and activation) of the chosen filter.")

    _view()


def _equations_section(net, image: np.ndarray, label: int | None, config) -> None:
    """Forward and backward equations with this sample's numbers."""
    if label is None:
        st.info("Your drawing has no true label, so there is no error E to back-propagate. The equations use "
                "the class the network predicts as the target.")
        work = net.copy()
        out = work.forward(image[None, None])
        cls = int(np.argmax(class_proba(out, work)))
        label = cls if config.task == "digits" else (7 if cls == 1 else 2)  # a digit of the predicted class
    sp = sample_pass(net, image[None, None], label, config.task, config.loss)
    if is_tutorial_net(sp["net"], config.loss):
        eq = tutorial_equations(sp, image, label, config.loss)
        k, i, j = eq["m"]
        st.caption(f"The tutorial's network, this image (digit {label}). The chain rule is followed for one "
                   f"feature m = (filter {k + 1}, row {i}, column {j}), the one with the largest ∂E/∂Z₁.")
    else:
        eq = general_equations(sp, config.loss)
        st.caption("Every layer of this network (h₀ = x, hₗ = output of layer l) for this image "
                   f"(digit {label}). "
                   "The backward pass runs from the loss to the input; the notes give the size of the error "
                   "signal arriving at each layer.")
    for title, rows in (("Forward pass", eq["forward"]), ("Backward pass (chain rule, from the error back "
                                                          "to the filters)", eq["backward"])):
        st.markdown(f"**{title}**")
        for tex, note in rows:
            a, b = st.columns([3, 2], vertical_alignment="center")
            a.latex(tex)
            b.markdown(note)


def render() -> None:
    """Draw the Inside page for the session's model."""
    st.header("Inside the network")
    common.show_error()  # messages, and which model this page shows after a switch from Draw
    trainer = state.get_trainer()
    scale = common.scale()
    net, config = trainer.net, trainer.config
    image, label, desc, verdict_slot = _pick_image(trainer)
    flow, stepper, eqs = st.tabs(["Forward pass", "Convolution step-through", "Equations with live numbers"])
    with flow:
        _flow_section(net, image, label, config.task, desc, scale, verdict_slot)
    with stepper:
        _step_through_section(net, image, scale)
    with eqs:
        _equations_section(net, image, label, config)

"""The lesson math behind the Inside and Gradients pages: pure NumPy, no Streamlit, no Plotly.

One image's forward and backward pass with every layer's output and delta (``sample_pass``), what to show
for each layer (``stages``), the equations of both passes written with this sample's numbers
(``tutorial_equations`` for the tutorial's network, ``general_equations`` for any other), the convolution
step-through (``step_example``, ``sum_latex``), and the Gradients page's names, shapes and series
(``param_label``, ``dense_input_shape``, ``history_series``, ``tutorial_comparison``, ``last_update``).
The pages only lay these out; the tests check them without a browser.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnviz.nn.head import Head, task_classes
from cnnviz.nn.losses import get_loss, softmax
from cnnviz.nn.network import infer_shapes
from cnnviz.viz.explain import conv_step_through
from cnnviz.viz.names import param_label_from_name

# The tutorial's worked example: a 3x3 image and a 2x2 filter give the 2x2 output [[9, 32], [14, 26]].
TUTORIAL_IMAGE = np.array([[1, 7, 2], [11, 1, 23], [2, 2, 2]], dtype=np.float32)
TUTORIAL_FILTER = np.array([[1, 1], [0, 1]], dtype=np.float32)

ACTIVATIONS = {"Sigmoid": r"\sigma", "ReLU": r"\operatorname{ReLU}", "Tanh": r"\tanh"}
POOLS = {"MaxPool2D": "max", "AvgPool2D": "average"}


# ----------------------------------------------------------------------------------------------------------
# Pure helpers (no Streamlit)
# ----------------------------------------------------------------------------------------------------------
def class_index(label: int, task: str) -> int:
    """The class a digit label belongs to for the task (the digit, or 1 when digit > 4 for "gt4")."""
    return int(task_classes(np.array([label]), task)[0])


def class_proba(out: np.ndarray, net, task: str = "digits", loss: str = "softmax_ce") -> np.ndarray:
    """Probabilities (K,) over the task's classes from the network's last output (1, K) (``Head``)."""
    head = Head.for_network(net, task, loss)
    return head.class_proba(np.asarray(out, dtype=np.float64))[0]


def loss_target(label: int, task: str, loss: str, n_out: int) -> np.ndarray:
    """The training target for one image, shaped as the trainer feeds the loss (``Head.targets``): int
    (1,) for softmax cross-entropy; a float (1, 1) for a single sigmoid output; a float one-hot (1, K)
    otherwise."""
    return Head(task, loss, n_out, loss != "softmax_ce").targets(np.array([label]))


def sample_pass(net, x: np.ndarray, label: int, task: str, loss: str) -> dict:
    """Forward and backward one image through a COPY of ``net`` (the session's model is left untouched).

    x: (1, 1, H, W). Returns {"net": the copy (its ``grads`` now hold this sample's gradients), "outputs":
    every layer's output, "deltas": dE/d(output of layer i) for every i, "loss": E, "target", "out"}.
    """
    net = net.copy()
    out = net.forward(x)
    outputs = list(net.outputs)
    target = loss_target(label, task, loss, out.shape[1])
    lossf = get_loss(loss)
    E = lossf.forward(out, target)
    net.backward(lossf.backward(), keep_deltas=True)
    return {"net": net, "outputs": outputs, "deltas": net.deltas, "loss": float(E), "target": target,
            "out": out}


def sigmoid_inputs(net, x: np.ndarray, outputs: list[np.ndarray]) -> np.ndarray:
    """Every value entering a Sigmoid layer of ``net`` in a forward pass already run: ``x`` (N, C, H, W) its
    input, ``outputs[i]`` layer i's output. Returns float32 (M,) (empty without a sigmoid); the same values as
    ``activations.sigmoid_preactivations`` without a second forward pass."""
    ins = [np.asarray(x, dtype=np.float32), *outputs]  # ins[i] is the input of layer i
    zs = [np.asarray(ins[i]).ravel() for i, layer in enumerate(net.layers)
          if type(layer).__name__ == "Sigmoid"]
    return np.concatenate(zs).astype(np.float32) if zs else np.zeros(0, dtype=np.float32)


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
    E, K, i1, j1 = sp["loss"], k + 1, i + 1, j + 1  # filters, rows and columns counted from 1 in the text
    fwd = [
        (rf"Z_1[{K},{i1},{j1}] = \sum_{{u,v}} x_{{{i1}+u-1,\,{j1}+v-1}}\, f_{{{K},u,v}} + b_{{{K}}} "
         rf"= {_f(z1)}",
         f"Filter {K} on the {KH}×{KW} window whose top-left pixel is row {i1}, column {j1} (bias b{K} = "
         f"{_t(b1)})."),
        (rf"A[{K},{i1},{j1}] = \sigma(Z_1) = \frac{{1}}{{1 + e^{{-({_f(z1)})}}}} = {_f(a_m)}",
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
         f"For feature m = (filter {K}, row {i1}, column {j1}); the bias gets ∂E/∂b = δ₂ = {_t(db)}."),
        (rf"{_d('A_m')} = \delta_2\, W_m = {_f(delta2)} \times ({_f(W[m])}) = {_f(dA_m)}",
         "The error sent back to that activation through its weight."),
        (rf"{_d('Z_{1,m}')} = {_d('A_m')}\, A_m(1 - A_m) = {_f(dZ1_m)}",
         f"Through the first sigmoid (slope A(1 − A) = {_t(a_m * (1 - a_m))})."),
        (rf"{_d(f'f_{{{K},u,v}}')} = \sum_{{i,j}} {_d(f'Z_1[{K},i,j]')}\; x_{{i+u-1,\,j+v-1}}",
         f"Every window of the image weighted by its error: for (u, v) = ({u + 1}, {v + 1}) this is "
         f"{_t(df[u, v])}, "
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
                rf"\quad\text{{(output row {step['row'] + 1}, column {step['col'] + 1})}}")
    terms = " + ".join(rf"{_f(p)}\cdot{_f(k)}" for p, k in zip(patch, kern, strict=True))
    return terms + rf" = {_f(step['value'])}"


LAYER_WORDS = {"Conv2D": "conv", "Dense": "dense"}
RATIO_GUIDE = 1e-3  # a common rule of thumb: each step changes a weight by about 0.1 % of its size


# ----------------------------------------------------------------------------------------------------------
# Gradients page: names, shapes and series
# ----------------------------------------------------------------------------------------------------------
def param_label(net, name: str) -> str:
    """A parameter such as "0.W" for people: "conv 1 weights", "dense bias" (``names.layer_param_label``)."""
    return param_label_from_name(name, net.spec())


def dense_input_shape(net, dense_index: int) -> tuple[int, ...]:
    """The shape (C, H, W) of the feature maps that were flattened into the Dense layer at ``dense_index``,
    or (D,) when its input is not a flattened stack of maps."""
    shapes = infer_shapes(net.spec(), (1, 28, 28))
    j = dense_index - 1
    if j >= 0 and type(net.layers[j]).__name__ == "Flatten":
        before = shapes[j - 1] if j >= 1 else (1, 28, 28)
        if len(before) == 3:
            return tuple(int(s) for s in before)
    return (int(net.layers[dense_index].params["W"].shape[0]),)


def history_series(history: list, field: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(steps (S,), {param name: values (S,)}) of ``grad_norms`` or ``update_ratios`` from StepRecords."""
    steps = np.array([r.step for r in history], dtype=np.int64)
    names = list(getattr(history[-1], field)) if history else []
    series = {n: np.array([getattr(r, field).get(n, np.nan) for r in history], dtype=np.float64)
              for n in names}
    return steps, series


def tutorial_comparison(net, x: np.ndarray, digits: np.ndarray) -> dict:
    """The tutorial's gradient vs the true one at the current weights on the training images.

    x (N, 1, 28, 28) in [0, 1], digits (N,). Adds "diff" (tutorial − true filter gradient (3, 1, 5, 5)) to
    ``cnnviz.nn.tutorial.compare_gradients``'s result.
    """
    from cnnviz.nn.tutorial import compare_gradients

    targets = (np.asarray(digits) > 4).astype(np.float64)  # the tutorial's task: 1 when digit > 4
    res = compare_gradients(net, x, targets)
    res["diff"] = res["tutorial"]["0.W"] - res["true"]["0.W"]
    return res


def last_update(trainer) -> np.ndarray | None:
    """The change the last step made to the first conv layer's filters, W_after − W_before (F, C, KH, KW),
    from the trainer's snapshots when the step before the last one was recorded too; otherwise None."""
    snaps = trainer.snapshots
    if len(snaps) < 2 or not trainer.history or snaps[-1].step != trainer.history[-1].step:
        return None
    if snaps[-2].step != snaps[-1].step - 1:
        return None
    return snaps[-1].filters - snaps[-2].filters


# ----------------------------------------------------------------------------------------------------------
# The Inside page's layout numbers and its one forward pass (the page only lays them out)
# ----------------------------------------------------------------------------------------------------------
MAP_PAGE = 16  # maps (and filters) per figure: a 32-filter layer is shown 16 at a time


def shown_maps(n: int, page: int) -> range:
    """The maps shown of a stage with n maps on pager page ``page`` (0-based): all of them when
    n ≤ MAP_PAGE."""
    if n <= MAP_PAGE:
        return range(n)
    start = min(page * MAP_PAGE, (n - 1) // MAP_PAGE * MAP_PAGE)
    return range(start, min(start + MAP_PAGE, n))


def range_words(idx: range, n: int, what: str) -> str:
    """ "32 maps" or "maps 17–32 of 32" for a figure title."""
    return f"{n} {what}s" if len(idx) == n else f"{what}s {idx.start + 1}–{idx.stop} of {n}"


def grid_cols(n: int) -> int:
    """Columns for a grid of n feature maps beside the captions: 3 → 3, 8 → 4 (two rows), 16 → 8."""
    return n if n <= 4 else (4 if n <= 8 else 8)


def panel_px(cols: int) -> int:
    """Panel size for a grid with ``cols`` columns in the page's right-hand column (~560 px wide at 1280)."""
    return int(min(170, max(56, 470 / cols)))


def forward_view(net, image: np.ndarray, label: int | None, task: str) -> dict:
    """The page's one forward pass of the image (on a copy of the model), shared by the verdict and the flow.

    Returns {"work": the copy, "outputs": every layer's output (1, ...), "proba" (classes,), "top", "names",
    "true_cls"}.
    """
    work = net.copy()
    out = work.forward(image[None, None])  # (1, 1, 28, 28) in
    head = Head.for_network(work, task)
    proba = head.class_proba(np.asarray(out, dtype=np.float64))[0]  # (classes,)
    return {"work": work, "outputs": list(work.outputs), "proba": proba, "top": int(np.argmax(proba)),
            "names": head.class_names, "true_cls": None if label is None else class_index(label, task)}

"""The tutorial's own algorithm, kept as a reference, a speed baseline and a lesson in gradient bugs.

"Demystifying the Mathematics Behind Convolutional Neural Networks (CNNs)" (Aishwarya Singh, Analytics
Vidhya, 2020) trains 3 filters 5x5 -> sigmoid -> flatten -> one dense sigmoid output on 200 MNIST images
(label 1 when digit > 4) with E = (y - O)^2 / 2, written with Python loops. This module reproduces its
code path faithfully (loops and all) in ``extract_patches``, ``conv_forward_loops``, ``tutorial_forward``,
``tutorial_backward`` and ``tutorial_step``, in the tutorial's own array layout:

- ``X = x_train.T / 255`` is (28, 28, N): image i is ``X[:, :, i]``, i.e. the image *transposed*;
- ``f = uniform(size=(3, 5, 5)).T`` is (5, 5, 3): filter k is ``f[:, :, k]``;
- ``wo`` is (1728, 1); features are ordered (filter, position) as ``filter_output`` is (N, 3, 576).

Its forward pass is a plain conv net plus one extra step, a standardisation of the dense output over the
batch, ``z -> (z - mean(z)) / std(z)``. Its backward pass differs from the true gradient of that forward
pass in the ways listed in ``MISTAKES``; ``compare_gradients`` measures each one by fixing it alone
(ablation) and returns plain dicts/arrays for the app's Gradients page.

In cnnviz's layout (natural images (N, 1, 28, 28), conv ``W`` (3, 1, 5, 5), dense ``W`` (1728, 1) in
Flatten's C order) the same network is ``W[k, 0] = f[:, :, k].T`` and the dense weights permuted between
the tutorial's (filter, column, row) and cnnviz's (filter, row, column) feature order; see
``params_to_cnnviz`` / ``params_from_cnnviz``. The tutorial has no biases.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnviz.nn.layers import Conv2D, Dense, Flatten, Sigmoid

TUTORIAL_LR = 0.01  # the learning rate of the tutorial's code
N_FILTERS, KSIZE, IMG = 3, 5, 28
OUT = IMG - KSIZE + 1  # 24
N_FEATURES = N_FILTERS * OUT * OUT  # 1728

# The ways the tutorial's backward pass departs from the true gradient of its own forward pass.
# key: (short title, one-line explanation, parameters it affects)
MISTAKES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "standardisation": (
        "Standardisation left out of the backward pass",
        "The forward pass standardises the dense output over the batch, z -> (z - mean) / std, but the "
        "backward pass skips that step: it misses the 1/std factor and the terms that tie each image to the "
        "batch mean and spread, which turns the direction of both gradients.",
        ("0.W", "3.W"),
    ),
    "average_before": (
        "Averages over images before the filter gradient",
        "It averages dE/dZ over the images first and correlates that mean with the summed input, so the "
        "filter gradient is (mean image) * (mean error) instead of the mean of (each image * its own error).",
        ("0.W",),
    ),
    "resize": (
        "np.resize mixes filters and positions",
        "The error vector is ordered (filter, position), but np.resize to (24, 24, 3) fills it position by "
        "position, so each filter's error map is a mosaic of all three filters' errors at the wrong places.",
        ("0.W",),
    ),
    "updated_wo": (
        "Back-propagates through the already-updated dense weights",
        "It updates wo <- wo - lr * dE/dwo first and then sends the error to the filters through the new wo, "
        "not the weights the forward pass used (a small effect at lr = 0.01).",
        ("0.W",),
    ),
    "sum_over_images": (
        "Dense gradient summed, filter gradient averaged over images",
        "dE/dwo is a sum over the images while dE/df is a mean, so the dense gradient is N times the "
        "gradient of the mean loss: the same direction, a different scale (cosine unaffected).",
        ("3.W",),
    ),
}
FIX_ORDER = ("standardisation", "average_before", "resize", "updated_wo", "sum_over_images")
PARAM_LABELS = {
    "0.W": "filters dE/df (3, 1, 5, 5)",
    "3.W": "dense dE/dW (1728, 1)",
}


# ----------------------------------------------------------------------------------------------------------
# Layout helpers
# ----------------------------------------------------------------------------------------------------------
def to_tutorial_layout(images: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) or (N, 1, 28, 28) in [0, 1] -> the tutorial's X = images.T, (28, 28, N) float64."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[:, 0]  # (N, H, W)
    if images.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, 1, H, W), got shape {images.shape}")
    return images.T  # (W, H, N): X[:, :, i] is image i transposed, as x_train.T gives


def init_params(rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """The tutorial's initialisation: f = uniform(size=(3, 5, 5)).T (5, 5, 3), wo uniform (1728, 1)."""
    rng = np.random.default_rng(rng)
    f = rng.uniform(size=(N_FILTERS, KSIZE, KSIZE)).T  # (5, 5, 3), a transposed view as in the tutorial
    wo = rng.uniform(size=(N_FEATURES, 1))  # (1728, 1)
    return {"f": f, "wo": wo}


def _swap_feature_order(w: np.ndarray, F: int, h: int, w_: int) -> np.ndarray:
    """Permute dense weights (F*h*w_, K) between (filter, a, b) and (filter, b, a) feature order."""
    K = w.shape[1]
    return np.ascontiguousarray(w.reshape(F, h, w_, K).transpose(0, 2, 1, 3)).reshape(F * h * w_, K)


def params_to_cnnviz(params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Tutorial params {"f" (KW, KH, F), "wo" (F*Wo*Ho, 1)} -> cnnviz (conv W (F, 1, KH, KW), dense W)."""
    f, wo = params["f"], params["wo"]
    W = np.ascontiguousarray(f.T[:, None])  # (F, 1, KH, KW): W[k, 0] = f[:, :, k].T
    F, _, KH, KW = W.shape
    side = int(round((wo.shape[0] // F) ** 0.5))
    return W, _swap_feature_order(wo, F, side, side)  # tutorial order (k, col, row) -> (k, row, col)


def params_from_cnnviz(W: np.ndarray, Wd: np.ndarray) -> dict[str, np.ndarray]:
    """cnnviz conv W (F, 1, KH, KW) and dense W (F*Ho*Wo, 1) -> tutorial params {"f", "wo"} (float64)."""
    W = np.asarray(W, dtype=np.float64)
    Wd = np.asarray(Wd, dtype=np.float64)
    if W.ndim != 4 or W.shape[1] != 1:
        raise ValueError(f"conv weights must be (F, 1, KH, KW), got {W.shape}")
    F = W.shape[0]
    side = int(round((Wd.shape[0] // F) ** 0.5))
    if F * side * side != Wd.shape[0] or Wd.ndim != 2 or Wd.shape[1] != 1:
        raise ValueError(f"dense weights must be (F*H_out*W_out, 1) with square maps, got {Wd.shape}")
    return {"f": W[:, 0].copy().T, "wo": _swap_feature_order(Wd, F, side, side)}  # f: a transposed view


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The tutorial's sigmoid 1 / (1 + exp(-x)) (overflow to 0 silenced for large negative x)."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------------------------------------
# The tutorial's loops, reproduced faithfully
# ----------------------------------------------------------------------------------------------------------
def extract_patches(X: np.ndarray, f_shape: tuple[int, ...] = (KSIZE, KSIZE, N_FILTERS)) -> np.ndarray:
    """The tutorial's patch loop: X (H, W, N) -> new_image (N, (H-KH+1)*(W-KW+1), KH, KW).

    For each image, slide a f_shape[0] x f_shape[1] window over X[:, :, k] row-major and collect the
    patches in a list, then resize the list to (N, positions, KH, KW): (200, 576, 5, 5) for the tutorial.
    """
    new_image = []
    for k in range(X.shape[2]):  # for each image
        for i in range(X.shape[0] - f_shape[0] + 1):  # sliding in the first direction
            for j in range(X.shape[1] - f_shape[1] + 1):  # sliding in the second direction
                new_image.append(X[:, :, k][i:i + f_shape[0], j:j + f_shape[1]])
    new_image = np.array(new_image)  # (N*positions, KH, KW)
    n = X.shape[2]
    return np.resize(new_image, (n, new_image.shape[0] // n, new_image.shape[1], new_image.shape[2]))


def conv_forward_loops(new_image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """The tutorial's convolution: patches (N, P, KH, KW), f (KH, KW, F) -> filter_output (N, F, P).

    One Python iteration per (image, filter, position): (patch * filter).sum() appended to a list, then
    np.resize to (N, F, P) -- (200, 3, 576) for the tutorial.
    """
    filter_output = []
    for i in range(len(new_image)):  # for each image
        for k in range(f.shape[2]):  # apply each filter
            for j in range(new_image.shape[1]):  # element-wise multiplication at each position
                filter_output.append((new_image[i][j] * f[:, :, k]).sum())
    return np.resize(np.array(filter_output), (len(new_image), f.shape[2], new_image.shape[1]))


def tutorial_conv(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Convolve natural-orientation images (N, H, W) with filters (F, KH, KW) through the tutorial's loops.

    Converts to the tutorial's layout (X = images.T, f = filters.T), runs ``extract_patches`` and
    ``conv_forward_loops`` and returns the maps (N, F, H_out, W_out) in natural orientation. The tutorial's
    worked example [[1,7,2],[11,1,23],[2,2,2]] with [[1,1],[0,1]] gives [[9, 32], [14, 26]].
    """
    images = np.asarray(images, dtype=np.float64)
    filters = np.asarray(filters, dtype=np.float64)
    N, H, W = images.shape
    F, KH, KW = filters.shape
    X = images.T  # (W, H, N)
    f = filters.T  # (KW, KH, F)
    out = conv_forward_loops(extract_patches(X, f.shape), f)  # (N, F, (W-KW+1)*(H-KH+1)), (col, row) order
    return out.reshape(N, F, W - KW + 1, H - KH + 1).transpose(0, 1, 3, 2)  # (N, F, H_out, W_out)


def tutorial_forward(new_image: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> dict:
    """The tutorial's forward pass on patches (N, 576, 5, 5) and binary targets y (N,).

    Returns its intermediates: filter_output (N, 3, 576), filter_output_sigmoid (1728, N) (features x
    images, as the tutorial transposes it), output_layer_input (1, N) after the standardisation, the raw
    dense output z_raw (1, N), output (1, N) and error (1, N) = (y - O)^2 / 2.
    """
    f, wo = params["f"], params["wo"]
    y = np.asarray(y, dtype=np.float64).reshape(1, -1)  # (1, N)
    filter_output = conv_forward_loops(new_image, f)  # (N, 3, 576)
    filter_output_sigmoid = _sigmoid(filter_output)
    n, F, P = filter_output_sigmoid.shape
    filter_output_sigmoid = filter_output_sigmoid.reshape((n, F * P)).T  # (1728, N)
    z_raw = np.dot(wo.T, filter_output_sigmoid)  # (1, N)
    output_layer_input = (z_raw - np.average(z_raw)) / np.std(z_raw)  # the tutorial's standardisation
    output = _sigmoid(output_layer_input)  # (1, N)
    error = np.square(y - output) / 2
    return {"filter_output": filter_output, "filter_output_sigmoid": filter_output_sigmoid, "z_raw": z_raw,
            "output_layer_input": output_layer_input, "output": output, "error": error, "y": y}


def tutorial_backward(X: np.ndarray, cache: dict, params: dict[str, np.ndarray],
                      lr: float = TUTORIAL_LR) -> dict[str, np.ndarray]:
    """The tutorial's backward pass, loops and all: returns {"f" (5, 5, 3), "wo" (1728, 1)} gradients.

    As in the tutorial: dE/dwo is summed over the images and skips the standardisation; wo is updated
    (wo - lr * dE/dwo) before the error goes back to the filters; dE/dZ is averaged over the images and
    np.resize'd to (24, 24, 3); the filter gradient is a loop over (filter, row, col, image), divided by N.
    """
    f, wo = params["f"], params["wo"]
    y, output = cache["y"], cache["output"]
    filter_output_sigmoid = cache["filter_output_sigmoid"]  # (1728, N)
    s_row = X.shape[0] - f.shape[0] + 1
    s_col = X.shape[1] - f.shape[1] + 1

    error_wrt_output = -(y - output)  # (1, N)
    output_wrt_output_layer_input = output * (1 - output)  # (1, N)
    output_wrt_w = filter_output_sigmoid  # (1728, N)
    delta_error_fcp = np.dot(output_wrt_w, (error_wrt_output * output_wrt_output_layer_input).T)  # (1728, 1)
    wo = wo - lr * delta_error_fcp  # the tutorial updates wo here, before using it below

    output_layer_input_wrt_filter_output_sigmoid = wo.T  # (1, 1728)
    filter_output_sigmoid_wrt_filter_output = filter_output_sigmoid * (1 - filter_output_sigmoid)
    error_wrt_filter_output = np.dot(output_layer_input_wrt_filter_output_sigmoid.T,
                                     error_wrt_output * output_wrt_output_layer_input
                                     ) * filter_output_sigmoid_wrt_filter_output  # (1728, N)
    error_wrt_filter_output = np.average(error_wrt_filter_output, axis=1)  # (1728,): mean over images
    error_wrt_filter_output = np.resize(error_wrt_filter_output, (s_row, s_col, f.shape[2]))  # (24, 24, 3)

    filter_update = []
    for i in range(f.shape[2]):
        for j in range(f.shape[0]):
            for k in range(f.shape[1]):
                temp = 0
                spos_row, spos_col = j, k
                epos_row, epos_col = spos_row + s_row, spos_col + s_col
                for l in range(X.shape[2]):
                    temp = temp + (X[spos_row:epos_row, spos_col:epos_col, l]
                                   * error_wrt_filter_output[:, :, i]).sum()
                filter_update.append(temp / X.shape[2])
    filter_update_array = np.resize(np.array(filter_update), (f.shape[2], f.shape[0], f.shape[1]))  # (3,5,5)
    # the tutorial applies f[:, :, i] -= lr * filter_update_array[i]; return it in f's layout (5, 5, 3)
    return {"f": np.ascontiguousarray(filter_update_array.transpose(1, 2, 0)), "wo": delta_error_fcp}


def tutorial_step(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray], lr: float = TUTORIAL_LR,
                  new_image: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """One step of the tutorial's loops: X (28, 28, N) -> (mean loss, grads {"f", "wo"}).

    ``new_image`` (the patches) may be passed in, as the tutorial builds them once before training;
    otherwise they are extracted here. Params are not changed (apply ``params[k] -= lr * grads[k]``).
    """
    if new_image is None:
        new_image = extract_patches(X, params["f"].shape)
    cache = tutorial_forward(new_image, y, params)
    grads = tutorial_backward(X, cache, params, lr)
    return float(cache["error"].mean()), grads


# ----------------------------------------------------------------------------------------------------------
# The same arithmetic vectorised, with each mistake switchable (for the app and the ablation)
# ----------------------------------------------------------------------------------------------------------
def _standardise_backward(d_hat: np.ndarray, z_hat: np.ndarray, std: float) -> np.ndarray:
    """Backward of z_hat = (z - mean(z)) / std(z) over the batch: d_hat (N, 1) -> dz (N, 1)."""
    return (d_hat - d_hat.mean() - z_hat * (d_hat * z_hat).mean()) / std


def _vec_forward(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> dict:
    """The tutorial's forward pass vectorised: X (H, W, N) -> the intermediates its backward needs.

    P (N*Ho*Wo, KH*KW) holds every patch, P[(i, a, b), (p, q)] = X[a+p, b+q, i] (im2col), and
    P_mean (Ho*Wo, KH*KW) its mean over the images; A (N, F*Ho*Wo) the sigmoid features in the tutorial's
    (filter, position) order, z (N, 1) the dense output, z_hat its standardisation, O the output.
    """
    f, wo = params["f"], params["wo"]
    N = X.shape[2]
    KH, KW, F = f.shape
    Ho, Wo = X.shape[0] - KH + 1, X.shape[1] - KW + 1
    win = sliding_window_view(X, (KH, KW), axis=(0, 1))  # (Ho, Wo, N, KH, KW) view
    P = np.ascontiguousarray(win.transpose(2, 0, 1, 3, 4)).reshape(N * Ho * Wo, KH * KW)  # (N*Ho*Wo, KH*KW)
    Z = (P @ f.reshape(KH * KW, F)).reshape(N, Ho * Wo, F)  # (N, positions, F) = filter_output^T
    A = _sigmoid(Z.transpose(0, 2, 1)).reshape(N, F * Ho * Wo)  # (N, 1728), (filter, position) order
    z = A @ wo  # (N, 1)
    mu, sd = z.mean(), z.std()
    z_hat = (z - mu) / sd
    O = _sigmoid(z_hat)  # (N, 1)
    yv = np.asarray(y, dtype=np.float64).reshape(N, 1)
    return {"P": P, "P_mean": P.reshape(N, Ho * Wo, KH * KW).mean(axis=0), "A": A, "z": z, "sd": sd,
            "z_hat": z_hat, "O": O, "y": yv, "shape": (N, F, Ho, Wo, KH, KW)}


def tutorial_gradients(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray], lr: float = TUTORIAL_LR,
                       fixes: tuple[str, ...] | set[str] = (), _fwd: dict | None = None) -> dict:
    """The tutorial's forward and backward arithmetic, vectorised, in its own layout; ``fixes`` switch off
    mistakes (keys of ``MISTAKES``). With no fixes it equals ``tutorial_step``; with all of them it is the
    true gradient of the mean loss. Returns {"loss", "f" (5, 5, 3), "wo" (1728, 1), "z_raw" (N,)}.
    ``_fwd`` reuses a ``_vec_forward`` result for the same X, y and params (the ablation does).
    """
    unknown = set(fixes) - set(MISTAKES)
    if unknown:
        raise ValueError(f"unknown fixes {sorted(unknown)}; choose from {list(MISTAKES)}")
    c = _fwd if _fwd is not None else _vec_forward(X, y, params)
    N, F, Ho, Wo, KH, KW = c["shape"]
    A, O, yv, z_hat = c["A"], c["O"], c["y"], c["z_hat"]
    wo = params["wo"]
    loss = float((np.square(yv - O) / 2).mean())
    delta = -(yv - O) * O * (1 - O)  # dE_i/dz_hat_i, per image (N, 1)
    if "standardisation" in fixes:
        delta = _standardise_backward(delta, z_hat, c["sd"])  # dE/dz (sum over images of E_i)
    dwo_sum = A.T @ delta  # (1728, 1): summed over images, as the tutorial
    dwo = dwo_sum / N if "sum_over_images" in fixes else dwo_sum
    w_back = wo if "updated_wo" in fixes else wo - lr * dwo_sum
    g = (delta @ w_back.T) * A * (1 - A)  # (N, 1728) dE_i/dZ_i, (filter, position) order

    def to_maps(v: np.ndarray) -> np.ndarray:  # (..., F*Ho*Wo) -> (..., Ho*Wo, F)
        if "resize" in fixes:
            return np.swapaxes(v.reshape(*v.shape[:-1], F, Ho * Wo), -1, -2)  # correct (filter, position)
        return v.reshape(*v.shape[:-1], Ho * Wo, F)  # np.resize of the flat vector: position-major

    if "average_before" in fixes:
        G = to_maps(g).reshape(N * Ho * Wo, F)  # (N*Ho*Wo, F) per-image error maps
        df = c["P"].T @ G / N  # (KH*KW, F): mean over images of (image * its own error)
    else:
        df = c["P_mean"].T @ to_maps(g.mean(axis=0))  # (KH*KW, F): (mean image) * (mean error)
    return {"loss": loss, "f": df.reshape(KH, KW, F), "wo": dwo, "z_raw": c["z"][:, 0]}


# ----------------------------------------------------------------------------------------------------------
# True gradients through cnnviz's layers, and the comparison
# ----------------------------------------------------------------------------------------------------------
def true_gradients(images: np.ndarray, y: np.ndarray, W: np.ndarray, Wd: np.ndarray) -> dict:
    """True gradients of the tutorial's forward pass with the mean loss, through cnnviz's layers.

    images (N, 1, 28, 28), y (N,) binary, conv W (3, 1, 5, 5), dense Wd (1728, 1), biases 0 (the tutorial
    has none). cnnviz's Conv2D -> Sigmoid -> Flatten -> Dense give z (N, 1); the tutorial's standardisation,
    output sigmoid and MSE (mean over the batch of (y - O)^2 / 2) and their backward are done here.
    Returns {"loss", "0.W", "3.W", "z_raw" (N,)} in float64.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    F, C, K, _ = W.shape
    conv = Conv2D(C, F, K)
    conv.params["W"] = np.asarray(W, dtype=np.float64)
    conv.params["b"] = np.zeros(F)
    dense = Dense(Wd.shape[0], Wd.shape[1])
    dense.params["W"] = np.asarray(Wd, dtype=np.float64)
    dense.params["b"] = np.zeros(Wd.shape[1])
    layers = [conv, Sigmoid(), Flatten(), dense]
    h = x
    for layer in layers:
        h = layer.forward(h)
    z = h  # (N, 1)
    N = z.shape[0]
    mu, sd = z.mean(), z.std()
    z_hat = (z - mu) / sd
    O = _sigmoid(z_hat)
    yv = np.asarray(y, dtype=np.float64).reshape(N, 1)
    loss = float((np.square(yv - O) / 2).mean())
    d = _standardise_backward(-(yv - O) * O * (1 - O) / N, z_hat, sd)  # dL/dz (N, 1), L = mean loss
    for i, layer in reversed(list(enumerate(layers))):
        d = layer.backward(d, need_dx=i > 0)
    return {"loss": loss, "0.W": conv.grads["W"], "3.W": dense.grads["W"], "z_raw": z[:, 0]}


def _metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Cosine similarity, relative error ||a - b|| / ||b|| and norm ratio ||a|| / ||b|| of a vs true b."""
    a, b = a.ravel(), b.ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
    rel = float(np.linalg.norm(a - b) / nb) if nb > 0 else float("nan")
    return {"cosine": cos, "rel_error": rel, "norm_ratio": na / nb if nb > 0 else float("nan")}


def _to_cnnviz_grads(g: dict) -> dict[str, np.ndarray]:
    """Tutorial-layout gradients {"f", "wo"} -> cnnviz keys {"0.W" (3, 1, 5, 5), "3.W" (1728, 1)}."""
    W, Wd = params_to_cnnviz({"f": g["f"], "wo": g["wo"]})
    return {"0.W": W, "3.W": Wd}


def _weights_of(net_or_weights) -> tuple[np.ndarray, np.ndarray]:
    """(W, Wd) from a tutorial-preset Network (first Conv2D and Dense layers) or a (W, Wd) pair."""
    if isinstance(net_or_weights, (tuple, list)):
        W, Wd = net_or_weights
        return np.asarray(W), np.asarray(Wd)
    W = Wd = None
    for layer in net_or_weights.layers:
        name = type(layer).__name__
        if name == "Conv2D" and W is None:
            W = layer.params["W"]
        elif name == "Dense" and Wd is None:
            Wd = layer.params["W"]
    if W is None or Wd is None:
        raise ValueError("compare_gradients needs a network with a Conv2D and a Dense layer (the tutorial "
                         "preset)")
    return W, Wd


def compare_gradients(net_or_weights, images: np.ndarray, targets: np.ndarray, lr: float = TUTORIAL_LR,
                      use_loops: bool = False, max_images: int | None = 200) -> dict:
    """The tutorial's gradients vs the true gradients of its own forward pass, for the same weights.

    net_or_weights: a tutorial-preset cnnviz Network, or (conv W (3, 1, 5, 5), dense W (1728, 1)).
    images (N, 1, 28, 28) or (N, 28, 28) in [0, 1]; targets (N,) binary (digit > 4). Biases are taken as 0
    (the tutorial has none). ``use_loops`` runs the tutorial's own loops (about a second for 200 images)
    instead of its vectorised replica (same numbers, milliseconds). Only the first ``max_images`` images
    are used (the tutorial's 200 by default; memory grows as 115 kB per image, float64).

    Returns plain data for the Gradients page:
      "loss": the tutorial forward's mean loss;
      "tutorial", "true": {"0.W": (3, 1, 5, 5), "3.W": (1728, 1)} float64 in cnnviz layout;
      "metrics": {param: {"cosine", "rel_error", "norm_ratio"}}, "per_filter_cosine": [3 floats];
      "ablation": rows {"label", "fixes", "metrics": {param: {...}}}: none fixed, each mistake fixed
        alone, fixes accumulated in ``FIX_ORDER`` up to all fixed, then all fixed but one;
      "mistakes": [{"key", "title", "explanation", "affects", "cosine_gain", "cosine_if_only_left"}]:
        per parameter, the cosine change when that mistake alone is fixed, and the cosine when it is
        the only mistake left;
      "explanations": {param: one-line summary}, "param_labels", "n_images", "lr".
    """
    W, Wd = _weights_of(net_or_weights)
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images (N, 1, H, W) or (N, H, W), got {np.shape(images)}")
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"need one binary target per image: {x.shape[0]} images, {y.shape[0]} targets")
    if max_images is not None:
        x, y = x[:max_images], y[:max_images]
    if x.shape[0] < 2:
        raise ValueError("need at least 2 images (the tutorial standardises over the batch)")
    params = params_from_cnnviz(W, Wd)
    X = to_tutorial_layout(x)  # (28, 28, N)
    true = true_gradients(x, y, W, Wd)
    true_g = {"0.W": true["0.W"], "3.W": true["3.W"]}

    fwd = _vec_forward(X, y, params)
    if use_loops:
        loss, g = tutorial_step(X, y, params, lr)
    else:
        g = tutorial_gradients(X, y, params, lr, _fwd=fwd)
        loss = g["loss"]
    tut = _to_cnnviz_grads(g)

    def row(label: str, fixes: tuple[str, ...]) -> dict:
        gg = tut if not fixes else _to_cnnviz_grads(tutorial_gradients(X, y, params, lr, fixes, _fwd=fwd))
        return {"label": label, "fixes": list(fixes),
                "metrics": {k: _metrics(gg[k], true_g[k]) for k in true_g}}

    ablation = [row("tutorial as written", ())]
    for key in FIX_ORDER:
        ablation.append(row(f"fix only: {MISTAKES[key][0]}", (key,)))
    for i in range(2, len(FIX_ORDER) + 1):
        fixes = FIX_ORDER[:i]
        label = "all fixed" if i == len(FIX_ORDER) else "fix " + " + ".join(fixes)
        ablation.append(row(label, fixes))
    for key in FIX_ORDER:
        ablation.append(row(f"all fixed except: {MISTAKES[key][0]}", tuple(k for k in FIX_ORDER if k != key)))

    metrics = {k: _metrics(tut[k], true_g[k]) for k in true_g}
    base_cos = metrics["0.W"]["cosine"]
    n = len(FIX_ORDER)
    mistakes = []
    for i, key in enumerate(FIX_ORDER):
        title, text, affects = MISTAKES[key]
        alone, left = ablation[1 + i]["metrics"], ablation[2 * n + i]["metrics"]
        mistakes.append({"key": key, "title": title, "explanation": text, "affects": list(affects),
                         "cosine_gain": {p: alone[p]["cosine"] - metrics[p]["cosine"] for p in true_g},
                         "cosine_if_only_left": {p: left[p]["cosine"] for p in true_g}})
    per_filter = [_metrics(tut["0.W"][k], true_g["0.W"][k])["cosine"] for k in range(W.shape[0])]

    # mistakes that on their own (all others fixed) still turn the filter gradient away from the true one
    ranked = sorted(mistakes, key=lambda m: m["cosine_if_only_left"]["0.W"])
    top = [m["title"][0].lower() + m["title"][1:] for m in ranked if m["cosine_if_only_left"]["0.W"] < 0.9]
    m3 = metrics["3.W"]
    explanations = {
        "0.W": (f"Tutorial's filter gradient vs the true one: cosine {base_cos:+.2f} (1 = same direction)"
                + (f"; each enough on its own: {'; '.join(top)}" if top else "")
                + "; see the ablation below."),
        "3.W": (f"Tutorial's dense gradient vs the true one: cosine {m3['cosine']:+.2f}, "
                f"{m3['norm_ratio']:.0f}x the size: it skips the standardisation in the backward pass "
                f"and sums instead of averaging over the {x.shape[0]} images."),
    }
    return {"loss": float(loss), "true_loss": true["loss"], "tutorial": tut, "true": true_g,
            "metrics": metrics, "per_filter_cosine": per_filter, "ablation": ablation,
            "mistakes": mistakes, "explanations": explanations, "param_labels": dict(PARAM_LABELS),
            "n_images": int(x.shape[0]), "lr": float(lr)}


def format_comparison(result: dict) -> str:
    """A plain-text table of ``compare_gradients``'s result (for the command line and the report)."""
    lines = [f"tutorial vs true gradients on {result['n_images']} images (lr = {result['lr']}), "
             f"loss {result['loss']:.4f}",
             f"{'':58s} {'filters 0.W':>22s} {'dense 3.W':>22s}",
             f"{'':58s} {'cosine':>10s} {'rel.err':>11s} {'cosine':>10s} {'rel.err':>11s}"]
    for r in result["ablation"]:
        m0, m3 = r["metrics"]["0.W"], r["metrics"]["3.W"]
        lines.append(f"{r['label'][:58]:58s} {m0['cosine']:+10.3f} {m0['rel_error']:11.3g} "
                     f"{m3['cosine']:+10.3f} {m3['rel_error']:11.3g}")
    lines.append("per-filter cosine: " + ", ".join(f"{c:+.3f}" for c in result["per_filter_cosine"]))
    lines += [result["explanations"]["0.W"], result["explanations"]["3.W"]]
    return "\n".join(lines)

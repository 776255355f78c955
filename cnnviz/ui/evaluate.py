"""Evaluate page: accuracy, confusion matrix (pick a cell to see its images), per-class accuracy and the most
confidently misclassified images. Works for the 10-digit nets and the tutorial's binary net (2×2 matrix)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz.ui import common, state
from cnnviz.viz import figures
from cnnviz.viz.names import LOSS_NAMES, describe_config

GALLERY_N = 24
CHUNK = 250  # images per evaluation chunk (progress bar granularity; at most ~40 updates)


def evaluate(tr, which: str) -> dict:
    """Evaluate the session's model on the validation or the training images, in chunks with a progress bar.

    Returns images (N, 28, 28), digit labels, true and predicted classes (N,), class probabilities (N, K),
    loss and accuracy.
    """
    if which == "train":
        x, labels = tr.data.x_train, tr.data.y_train
    else:
        x, labels = tr.data.x_val, tr.data.y_val
    n = len(x)
    chunk = max(CHUNK, -(-n // 40))
    bar = st.progress(0.0, text=f"Evaluating {n:,} images…") if n > chunk else None
    losses, probas = [], []
    with state.reading():  # never read weights that a live-training tick is updating
        for s in range(0, n, chunk):
            loss, _, proba = tr.evaluate(x[s:s + chunk], labels[s:s + chunk])
            losses.append(loss * len(proba))
            probas.append(proba)
            if bar is not None:
                done = min(n, s + chunk)
                bar.progress(done / n, text=f"Evaluating {done:,} / {n:,} images…")
    if bar is not None:
        bar.empty()
    proba = np.concatenate(probas)  # (N, K)
    probs = tr.head.expand(proba)  # (N, classes)
    true = tr.head.classes(labels)  # (N,)
    pred = tr.head.predicted(proba)
    return {"images": x[:, 0], "digits": np.asarray(labels), "true": true, "pred": pred, "probs": probs,
            "loss": float(sum(losses) / n),
            "acc": float((pred == true).mean()), "step": tr.step_count}


def _cached_eval(tr, which: str) -> dict:
    key = (id(tr), state.model_rev(), tr.step_count, which)
    caches = state.app().caches
    cache = caches.get("eval")
    if cache is None or cache[0] != key:
        cache = (key, evaluate(tr, which))
        caches["eval"] = cache
    return cache[1]


def _gallery_captions(idx: np.ndarray, res: dict, names: list[str]) -> tuple[list[str], list[str]]:
    captions, hovers = [], []
    for i in idx:
        t, p = int(res["true"][i]), int(res["pred"][i])
        conf = float(res["probs"][i, p])
        digit = int(res["digits"][i])
        # "true→predicted confidence"; the binary task's class names are long, so show the digit instead
        short = f"{names[t]}→{names[p]} {conf:.0%}" if len(names) > 2 else f"digit {digit} · {conf:.0%}"
        captions.append(short)
        top = np.argsort(res["probs"][i])[::-1][:3]
        hovers.append(f"image #{int(i)} (digit {digit})<br>true {names[t]}, predicted {names[p]}<br>"
                      + "<br>".join(f"p({names[j]}) = {res['probs'][i, j]:.3f}" for j in top))
    return captions, hovers


def _cell_from_click(task: str, names: list[str]) -> None:
    """A click on a confusion-matrix cell selects that (true, predicted) pair (in the session's state, so the
    choice survives a visit to another page)."""
    ui = state.app().ui
    event = st.session_state.get("eval_cm")
    points = getattr(getattr(event, "selection", None), "points", None) or []
    if not points:
        return
    idx = points[0].get("point_index")
    if not isinstance(idx, int) or not 0 <= idx < len(names) ** 2:
        return
    if ui.eval_click != (task, idx):
        ui.eval_click = (task, idx)  # apply each click once; the selectboxes stay free to change afterwards
        ui.eval_cell[task] = list(divmod(idx, len(names)))  # cell (true, pred) has marker true * K + pred


def _set_cell(task: str, which: int, key: str) -> None:
    v = st.session_state.get(key)
    if v is not None and state.owns_session():
        state.app().ui.eval_cell[task][which] = int(v)


def render() -> None:
    """The Evaluate page."""
    tr = state.get_trainer()
    cfg = state.get_config()
    s = common.scale()
    st.title("Evaluate")
    st.caption(f"The session's model at step {tr.step_count:,} · {describe_config(cfg)}")
    common.show_error()
    which = st.segmented_control("Images", ["val", "train"], **state.bind("ui.eval_which", "eval_which"),
                                 required=True,
                                 format_func={"val": f"validation ({tr.data.n_val:,})",
                                              "train": f"training ({tr.data.n_train:,})"}.get)
    res = _cached_eval(tr, which or "val")
    names = tr.head.class_names
    k = len(names)
    cm = tr.head.confusion(res["true"], res["pred"])
    per_class = np.divide(np.diag(cm), cm.sum(axis=1), out=np.zeros(k), where=cm.sum(axis=1) > 0)
    wrong = res["pred"] != res["true"]
    common.metric_row([
        ("Accuracy", f"{res['acc']:.1%}", f"Share of the {len(wrong):,} images classified correctly"),
        ("Loss", f"{res['loss']:.4f}", f"Mean {LOSS_NAMES.get(cfg.loss, cfg.loss)} loss"),
        ("Errors", f"{int(wrong.sum()):,}", None),
        ("Worst class", f"{names[int(np.argmin(per_class))]} ({per_class.min():.0%})",
         "Lowest per-class accuracy"),
    ])

    # default cell: the most frequent confusion (or the first class when there is none)
    off = cm.copy()
    np.fill_diagonal(off, -1)
    t0, p0 = np.unravel_index(int(np.argmax(off)), off.shape) if off.max() > 0 else (0, 0)
    ui = state.app().ui
    _cell_from_click(cfg.task, names)
    cell = ui.eval_cell.get(cfg.task)
    if not (isinstance(cell, list) and len(cell) == 2 and all(0 <= int(c) < k for c in cell)):
        cell = ui.eval_cell[cfg.task] = [int(t0), int(p0)]
    kt, kp = f"eval_true_{cfg.task}", f"eval_pred_{cfg.task}"
    st.session_state[kt], st.session_state[kp] = int(cell[0]), int(cell[1])  # the widgets show the state
    left, right = st.columns([1, 1], gap="large")
    with left:
        c1, c2 = st.columns(2)
        t_sel = c1.selectbox("True class", range(k), format_func=names.__getitem__, key=kt,
                             on_change=_set_cell, args=(cfg.task, 0, kt))
        p_sel = c2.selectbox("Predicted class", range(k), format_func=names.__getitem__, key=kp,
                             on_change=_set_cell, args=(cfg.task, 1, kp))
        common.plot(figures.confusion_matrix(cm, names, selected=(t_sel, p_sel), scale=s), key="eval_cm",
                    on_select="rerun", selection_mode="points")
        st.caption("Click a cell (or pick the classes above) to see its images.")
    with right:
        idx = np.flatnonzero((res["true"] == t_sel) & (res["pred"] == p_sel))
        conf = res["probs"][idx, p_sel]
        idx = idx[np.argsort(-conf)][:GALLERY_N]  # most confident first
        cap, hov = _gallery_captions(idx, res, names)
        verb = "correctly classified as" if t_sel == p_sel else "predicted as"
        title = f"True {names[t_sel]} {verb} {names[p_sel]}: {common.plural(int(cm[t_sel, p_sel]), 'image')}"
        common.plot(figures.image_gallery(res["images"][idx], cap, title, ncols=6, scale=s, hover=hov,
                                          tile_px=66),  # the height follows from the tiles and captions
                    key="eval_cell")
        common.plot(figures.class_accuracy(per_class, names, overall=res["acc"], scale=s, height=260),
                    key="eval_per_class")

    st.subheader("Most confidently misclassified")
    widx = np.flatnonzero(wrong)
    conf = res["probs"][widx, res["pred"][widx]]
    widx = widx[np.argsort(-conf)][:GALLERY_N]
    cap, hov = _gallery_captions(widx, res, names)
    common.plot(figures.image_gallery(res["images"][widx], cap,
                                      f"The {len(widx)} errors the model was surest about (true → predicted, "
                                      "confidence)", ncols=12, scale=s, hover=hov, tile_px=66),
                key="eval_wrong")

"""Draw page: draw a digit (or upload a photo of one) and watch the network classify it, stroke by stroke.

Shows the probabilities of every class, the 28×28 image the network actually receives, why it answered so
(saliency and occlusion maps over the drawing), the drawing's feature maps, and lets the user teach the
session's model their own handwriting. The canvas component is used in exactly one function
(``cnnviz.ui.canvas.digit_canvas``); the pixels → 28×28 step is the pure
``cnnviz.drawing.convert.canvas_to_mnist``.

Models: the shipped ``assets/models/draw.npz`` (default, loaded once per server by ``resources.pretrained``
and never touched: this page works on a per-session copy) or the session's own model being trained (read
through a copy taken under the session's training lock, so drawing while it trains is safe).
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from cnnviz.drawing import answer, strokes
from cnnviz.drawing.convert import canvas_to_mnist, image_file_to_mnist
from cnnviz.drawing.reading import verdict_from_proba
from cnnviz.nn.head import TASK_CLASS_NAMES
from cnnviz.ui import common, resources, state
from cnnviz.ui.canvas import digit_canvas
from cnnviz.ui.draw_teach import PRETRAINED, pretrained_copy, session_copy, teach_section
from cnnviz.ui.reading_view import not_digit_score, not_digit_threshold, show_reading, too_many_strokes
from cnnviz.viz import figures

SESSION = "session"
DIGIT_NAMES = [str(k) for k in range(10)]
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]

_CSS = """
<style>
.draw-guess {display: flex; align-items: baseline; gap: 0.9rem; margin: 0.2rem 0 0.1rem 0;}
.draw-guess .digit {font-size: 5.2rem; font-weight: 700; line-height: 1; color: #e07b00;
                    font-variant-numeric: tabular-nums;}
.draw-guess .digit.binary {font-size: 3.4rem;}
.draw-guess .conf {font-size: 1.05rem; color: #3a4150;}
.draw-guess .conf b {font-size: 1.5rem;}
.draw-empty {color: #5b6577; font-size: 1.05rem; padding: 0.6rem 0;}
</style>
"""


# ----------------------------------------------------------------------------------------------------------
# The canvas (cnnviz.ui.canvas) and its buttons
# ----------------------------------------------------------------------------------------------------------
def _on_canvas_change() -> None:
    state.app().draw.source = "canvas"


def _clear() -> None:
    """Our own Clear: a new canvas key gives an empty canvas (and forgets the uploaded image)."""
    strokes.clear(state.app().draw)


def _undo() -> None:
    """Our own Undo: remount the canvas with every stroke but the last one (cnnviz.drawing.strokes)."""
    strokes.undo(state.app().draw)


def _on_upload(key: str) -> None:
    """A photo was chosen: its digit replaces the answer; a file that cannot be read clears the previous
    answer (the old digit must not look like this file's answer) and its error shows beside the uploader."""
    d = state.app().draw
    f = st.session_state.get(key)
    d.upload_error = None
    if f is None:
        return
    try:
        d.drawing = image_file_to_mnist(f.getvalue())
        d.source = "upload"
        d.upload_name = f.name
    except ValueError as e:
        d.drawing = None
        d.source = "upload"
        d.upload_name = f.name
        d.upload_error = f"“{f.name}” could not be used: {e}."


@st.cache_data(show_spinner=False, max_entries=4)
def _model_extra(path: str, mtime: float) -> dict:
    """The shipped model file's metadata (validation accuracy, how it was trained); {} if unreadable."""
    from cnnviz.train import model_file as io

    try:
        return io.load_model_full(path)[2] or {}
    except (ValueError, OSError):
        return {}


# ----------------------------------------------------------------------------------------------------------
# Page sections
# ----------------------------------------------------------------------------------------------------------
def _model_choice() -> tuple[object, str, str]:
    """The model picker; returns (network copy, task, a one-line description)."""
    a = state.app()
    pre_net, pre_cfg = pretrained_copy()
    tr = state.get_trainer()
    options = ([PRETRAINED] if pre_net is not None else []) + [SESSION]
    if a.ui.draw_model not in options:
        a.ui.draw_model = options[0]
    session_label = answer.session_model_label(tr.step_count, tr.last_val)
    taught = a.draw.taught_steps
    labels = {PRETRAINED: "Pretrained for drawing"
              + (f", taught your digits ({taught} steps)" if taught else ""),
              SESSION: session_label}
    choice = st.segmented_control(
        "Model", options, format_func=labels.get, **state.bind("ui.draw_model", "draw_model"), required=True,
        help="Pretrained: assets/models/draw.npz, trained with augmentation for hand-drawn digits. "
             "This session's model: the one you train on the Train page — watch its answers improve.")
    if choice == PRETRAINED:
        path = resources.MODELS_DIR / "draw.npz"
        acc = _model_extra(str(path), path.stat().st_mtime).get("val_acc") if path.exists() else None
        return pre_net, "digits", answer.pretrained_description(taught, acc)
    net, tr = session_copy()
    cfg = tr.config
    desc = answer.session_description(cfg)
    return net, cfg.task, desc


def _guess(result: dict, scale: float) -> None:
    proba, names, top = result["proba"], result["names"], result["top"]
    binary = len(proba) == 2
    cls = "digit binary" if binary else "digit"
    note = "<br>(this model tells 0–4 from 5–9)" if binary else ""
    st.html(_CSS + f"<div class='draw-guess'><span class='{cls}'>{names[top]}</span>"
            f"<span class='conf'><b>{proba[top]:.0%}</b> sure{note}</span></div>")


def _empty_state(msg: str) -> None:
    st.html(_CSS + f"<div class='draw-empty'>{msg}</div>")


def _explain_section(image: np.ndarray, result: dict, scale: float) -> None:
    top_name = result["names"][result["top"]]
    c1, c2, c3 = st.columns([1, 1, 1.05], gap="medium")
    with c1:
        common.plot(figures.explanation_overlay(
            image, result["saliency"], f"Saliency: ∂ score({top_name}) / ∂ pixel", "gradient",
            scale=scale), key="draw_saliency")
    with c2:
        common.plot(figures.explanation_overlay(
            image, result["occlusion"], f"Occlusion: drop in P({top_name})", "ΔP", scale=scale),
            key="draw_occlusion")
    with c3:
        st.markdown(
            f"**Why “{top_name}”?**  \n"
            "**Saliency** is the gradient of the class score with respect to each input pixel, computed by "
            "the network's own backward pass: red pixels would *raise* the score if they were brighter, blue "
            "ones would lower it.  \n"
            "**Occlusion** erases a 4×4 square at a time (all 169 positions in one batch) and measures how "
            "much the probability falls: red marks the parts of your drawing the answer relies on.")


def _feature_section(image: np.ndarray, result: dict, scale: float) -> None:
    fm = result["fmaps"]
    if fm is None:
        st.caption("This model has no convolution layer, so there are no feature maps to show.")
        return
    maps, when = fm
    fig = figures.feature_maps_figure(
        maps, f"Feature maps of your drawing: first conv layer, {maps.shape[0]} filters, {when}",
        ncols=8, scale=scale)
    common.plot(fig, key="draw_fmaps")


def _open_inside() -> None:
    """Switch to the Inside page with the drawing selected as its input."""
    a = state.app()
    a.ui.inside_source = "Your drawing"
    steps = state.get_trainer().step_count
    a.ui.model_note = answer.inside_note(a.ui.draw_model == PRETRAINED, steps, a.config)
    a.ui.page = "inside"  # the note above already says which model is shown
    common.switch_to("inside", "Inside")


# ----------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------
def _current_image(canvas_rgba: np.ndarray | None, n_strokes: int) -> tuple[np.ndarray | None, str]:
    """The digit to classify and where it came from, keeping the state's ``draw.drawing`` up to date."""
    a = state.app()
    d = a.draw
    source = d.source
    if source != "upload":
        if canvas_rgba is not None and n_strokes:
            digest = hashlib.blake2b(np.ascontiguousarray(canvas_rgba).tobytes(), digest_size=12).hexdigest()
            cached = a.caches.get("draw_canvas")  # (digest, 28×28): the same pixels are converted once
            if cached is not None and cached[0] == digest:
                drawing = cached[1]
            else:
                try:
                    drawing = canvas_to_mnist(canvas_rgba)
                except ValueError:  # strokes outside the canvas, or all black
                    drawing = None
                a.caches["draw_canvas"] = (digest, drawing)
            d.drawing = drawing
            d.history[n_strokes] = drawing
            return drawing, "your drawing"
        if canvas_rgba is not None or (source == "canvas" and not n_strokes and not d.objects):
            d.drawing = None  # reset with the toolbar, every stroke undone, or cleared
            return None, ""
    if d.drawing is None:
        return None, ""
    if source == "upload":
        return np.asarray(d.drawing, dtype=np.float32), f"the uploaded “{d.upload_name or 'image'}”"
    return np.asarray(d.drawing, dtype=np.float32), "your drawing"


def render() -> None:
    """Draw the Draw page."""
    state.init()
    st.header("Draw a digit")
    common.show_error()
    _body()


@st.fragment
def _body() -> None:
    """Everything below the title. A fragment: a stroke (or a click here) reruns only this part of the
    page, not the sidebar and the app around it, which keeps the answer within ~0.3 s of the mouse-up."""
    ss, d = st.session_state, state.app().draw
    scale = common.scale()
    net, task, model_desc = _model_choice()
    st.caption(model_desc)

    left, mid, right = st.columns([1.5, 0.95, 1.45], gap="small")
    with left:
        st.caption("Draw here with the mouse or a finger")
        key = f"draw_canvas_{d.canvas_rev}"
        if key not in ss and d.objects and d.source != "upload":
            # back on this page after visiting another (or a reload): put the strokes back on the new canvas
            d.initial = {"objects": d.objects}
        rgba, objects, _side = digit_canvas(key, d.initial, on_change=_on_canvas_change)
        if objects or rgba is not None:  # a canvas that has not sent anything yet keeps the strokes we know
            d.objects = objects
        objects = d.objects
        row = st.container(horizontal=True, gap="small")
        row.button("Clear", key="draw_clear", on_click=_clear, icon=":material/delete:",
                   help="Start again with an empty canvas")
        row.button("Undo", key="draw_undo", on_click=_undo, icon=":material/undo:", disabled=not objects,
                   help="Remove the last stroke")
        st.file_uploader("…or upload a photo of a digit", type=UPLOAD_TYPES, key="draw_upload",
                         on_change=_on_upload, args=("draw_upload",),
                         help="PNG or JPEG, dark ink on light paper or light on dark; it is cropped, scaled "
                              "and centred exactly like a drawing")
        if d.upload_error:
            st.error(d.upload_error, icon=":material/error:")

    image, source = _current_image(rgba, len(objects))
    result = answer.predict(net, image, task) if image is not None else None

    # The answer first (the big class name and the probabilities), so it is on screen while the rest of the
    # page is still being computed and sent.
    with mid:
        if result is None:
            _empty_state("Draw a digit from 0 to 9 in the black box with your mouse (or finger). The "
                         "network's answer appears as soon as you lift it.")
        elif len(result["proba"]) == 10:  # a digit, "not sure" or "not a digit" (cnnviz.drawing.reading)
            pretrained = state.app().ui.draw_model == PRETRAINED
            show_reading(verdict_from_proba(result["proba"], not_digit_threshold(pretrained),
                                            too_many_strokes=too_many_strokes(image, pretrained),
                                            score=not_digit_score(image, net, pretrained)),
                         knows_non_digits=pretrained)
        else:
            _guess(result, scale)
        input_slot = st.container()
    with right:
        names = result["names"] if result is not None else list(TASK_CLASS_NAMES[task])
        proba = result["proba"] if result is not None else np.zeros(len(names))
        common.plot(figures.probability_figure(proba, names, "Probability of each class", scale=scale),
                    key="draw_proba")
    if result is None:
        return
    with input_slot:
        common.plot(figures.digit_input_figure(image, "What the network sees", scale=scale), key="draw_input")
        st.caption(f"28×28 pixels from {source}: cropped, scaled to 20 px, centred by its centre of mass, "
                   "as MNIST's digits were.")
    result.update(answer.explain(net, image, result["top"]))
    st.subheader("Why this answer?")
    _explain_section(image, result, scale)
    _feature_section(image, result, scale)
    if st.button("Follow this digit through every layer on the Inside page", key="draw_to_inside",
                 icon=":material/layers:", help="Opens the Inside page with your digit as its input"):
        _open_inside()
    st.subheader("Teach it your handwriting")
    teach_section(image, scale, result["top"] if len(result["proba"]) == 10 else None)

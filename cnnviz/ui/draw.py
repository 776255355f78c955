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

from cnnviz.drawing.convert import canvas_to_mnist, image_file_to_mnist
from cnnviz.drawing.reading import verdict_from_proba
from cnnviz.nn.head import TASK_CLASS_NAMES, Head
from cnnviz.ui import common, resources, state
from cnnviz.ui.canvas import digit_canvas
from cnnviz.ui.reading_view import not_digit_score, not_digit_threshold, show_reading, too_many_strokes
from cnnviz.viz import figures
from cnnviz.viz.explain import occlusion, saliency
from cnnviz.viz.names import describe_config

PRETRAINED = "pretrained"
SESSION = "session"
DIGIT_NAMES = [str(k) for k in range(10)]
BINARY_NAMES = ["0–4", "5–9"]
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
    d = state.app().draw
    d.canvas_rev += 1
    d.initial = None
    d.objects = []
    d.history = {}
    d.drawing = None
    d.source = "canvas"
    d.upload_error = None


def _undo() -> None:
    """Our own Undo: remount the canvas with every stroke but the last one.

    A remounted canvas sends no pixels until the next stroke, so the 28×28 digit of the remaining strokes is
    taken from ``draw.history`` (the digit seen after each stroke count, recorded as the user drew).
    """
    d = state.app().draw
    objects = list(d.objects)[:-1]
    d.canvas_rev += 1
    d.initial = {"objects": objects} if objects else None
    d.objects = objects
    d.source = "canvas"
    d.drawing = d.history.get(len(objects)) if objects else None


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


# ----------------------------------------------------------------------------------------------------------
# Models (pure helpers; no Streamlit)
# ----------------------------------------------------------------------------------------------------------
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


def analyse(net, image: np.ndarray, task: str = "digits") -> dict:
    """``predict`` and ``explain`` in one dict (for tests and scripts)."""
    result = predict(net, image, task)
    return {**result, **explain(net, image, result["top"])}


@st.cache_data(show_spinner=False, max_entries=4)
def _model_extra(path: str, mtime: float) -> dict:
    """The shipped model file's metadata (validation accuracy, how it was trained); {} if unreadable."""
    from cnnviz.train import model_file as io

    try:
        return io.load_model_full(path)[2] or {}
    except (ValueError, OSError):
        return {}


def _pretrained_copy():
    """This session's own copy of the shipped draw model (or (None, None) if it is not built): the taught copy
    once the user has taught it, else a private copy (the cached one is shared by every session and must never
    run forward/backward from two threads at once)."""
    shared = resources.pretrained("draw")
    if shared is None:
        return None, None
    net, cfg = shared
    a = state.app()
    if a.draw.taught_net is not None:
        return a.draw.taught_net, cfg or {}
    held = a.caches.get("draw_pretrained")
    if held is None or held[0] != id(net):
        held = (id(net), net.copy(), cfg or {})
        a.caches["draw_pretrained"] = held
    return held[1], held[2]


def _session_copy():
    """A copy of the session's model taken under its training lock (training may be running)."""
    tr = state.get_trainer()
    lock = state.lock()
    if lock.acquire(timeout=2.0):
        try:
            return tr.net.copy(), tr
        finally:
            lock.release()
    return tr.net.copy(), tr


# ----------------------------------------------------------------------------------------------------------
# Page sections
# ----------------------------------------------------------------------------------------------------------
def _model_choice() -> tuple[object, str, str]:
    """The model picker; returns (network copy, task, a one-line description)."""
    a = state.app()
    pre_net, pre_cfg = _pretrained_copy()
    tr = state.get_trainer()
    options = ([PRETRAINED] if pre_net is not None else []) + [SESSION]
    if a.ui.draw_model not in options:
        a.ui.draw_model = options[0]
    val = tr.last_val
    if tr.step_count == 0:
        session_label = "This session's model (untrained)"
    else:
        session_label = f"This session's model (step {tr.step_count:,}"
        session_label += f", {val[2]:.1%} val.)" if val and val[0] == tr.step_count else ")"
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
        desc = ("Pretrained draw model: two conv layers, trained on 4,000 MNIST digits, digits typeset in 28 "
                "fonts and drawings that are not digits, with random shifts, rotations, scalings and "
                "thicker/thinner strokes")
        if taught:
            desc = (f"This session's copy of the pretrained draw model, fine-tuned {taught} steps on your "
                    "digits. " + desc)
        return pre_net, "digits", desc + (f"; {acc:.1%} on the 1,000 validation digits." if acc else ".")
    net, tr = _session_copy()
    cfg = tr.config
    desc = f"This session's model: {describe_config(cfg)}"
    if cfg.task == "gt4":
        desc += " — it only answers “0–4 or 5–9”, as in the tutorial."
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
    tr = state.get_trainer()
    if a.ui.draw_model == PRETRAINED:
        a.ui.model_note = (f"Inside shows this session's model (step {tr.step_count:,}, "
                           f"{describe_config(a.config)}), not the pretrained draw model that answered on "
                           "the Draw page: its answer for your digit may differ.")
    else:
        a.ui.model_note = f"Inside shows this session's model (step {tr.step_count:,}), as on the Draw page."
    a.ui.page = "inside"  # the note above already says which model is shown
    common.switch_to("inside", "Inside")


def _teach_section(image: np.ndarray | None, scale: float, suggested: int | None = None) -> None:
    a = state.app()
    digits = a.draw.user_digits
    on_pretrained = a.ui.draw_model == PRETRAINED and resources.pretrained("draw") is not None
    if image is not None:
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8).hexdigest()
        if a.draw.label_for != digest:  # a new digit: propose the model's answer as its label
            a.draw.label_for = digest
            if suggested is not None:
                a.draw.label = int(suggested)
    binary = not on_pretrained and state.get_trainer().config.task == "gt4"
    who = "the pretrained draw model (this session's copy)" if on_pretrained else "the session's model"
    left, right = st.columns([1, 1.6], gap="medium")
    with left:
        st.markdown("Label your drawing with the right digit, add it to **your digits**, then train the "
                    f"model shown above, {who}, a few steps and see its answer change.")
        row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
        label = row.selectbox("This digit is a", list(range(10)), width=130,
                              **state.bind("draw.label", "draw_label", convert=int))
        row.button("Add to my digits", key="draw_add", icon=":material/add:", disabled=image is None,
                   on_click=_add_digit,
                   help="Adds the 28×28 image with this label to the session model's training data")
        row.button("Train 10 steps", key="draw_train", icon=":material/fast_forward:", disabled=not digits,
                   on_click=_train_steps, args=(10,),
                   help=f"Ten training steps of {who}, every step with your digits in its batch"
                   if on_pretrained else f"Ten training steps of {who} (your digits come first)")
        msg = a.caches.pop("draw_teach_msg", None)
        if msg:
            st.success(msg, icon=":material/check_circle:")
        err = a.caches.pop("draw_teach_error", None)
        if err:
            st.error(err, icon=":material/error:")
        if binary:
            st.caption("The session's model is the tutorial's binary network: it learns “0–4 vs 5–9”, so "
                       "your digit counts as " + ("“5–9”." if int(label) > 4 else "“0–4”."))
    with right:
        if digits:
            imgs = np.stack([np.asarray(im, dtype=np.float32) for im, _ in digits])  # (n, 28, 28)
            rows = -(-len(digits) // 10)
            title = f"Your digits ({len(digits)}), in the training data of the model you teach"
            common.plot(figures.image_gallery(imgs, [str(lab) for _, lab in digits], title, ncols=10,
                                              scale=scale, height=80 + 95 * rows), key="draw_user_digits")
        else:
            st.caption("Your digits will appear here.")


def _label(a: state.AppState) -> int:
    """The chosen label. A button's callback may run before the label box's own (both changed in one run):
    take the box's new value into the state first."""
    v = st.session_state.get("draw_label")
    if v is not None:
        a.draw.label = int(v)
    return int(a.draw.label)


def _add_digit() -> None:
    """Button callback: add the current digit with the chosen label to the user's digits (and to the session
    model's training data, which keeps them across rebuilds)."""
    a = state.app()
    image, label = a.draw.drawing, _label(a)
    if image is None:
        return
    image = np.asarray(image, dtype=np.float32)
    for old, old_label in a.draw.user_digits:
        # a second click on Add for the same drawing would weigh it twice in every teaching batch
        if np.array_equal(np.asarray(old, dtype=np.float32), image):
            a.caches["draw_teach_msg"] = (f"This drawing is already in your digits, as a “{old_label}”: "
                                          "train a few steps, or draw another one.")
            return
    tr = state.get_trainer()
    try:
        with state.lock():
            tr.add_examples(image[None, None], np.array([label]))  # (1, 1, 28, 28)
    except ValueError as e:
        a.caches["draw_teach_error"] = f"Not added: {e}."
        return
    a.draw.user_digits.append((image.copy(), label))
    n = len(a.draw.user_digits)
    a.caches["draw_teach_msg"] = (f"Added as a “{label}”. {common.plural(n, 'digit')} of yours "
                                  f"{'is' if n == 1 else 'are'} now in the training data: train a few steps.")


def _label_proba(net, image: np.ndarray, label: int) -> tuple[float, str]:
    """``net``'s probability of ``label`` (or of its half, 0–4 / 5–9, for a binary model)."""
    p = Head.expand(np.asarray(net.predict_proba(np.asarray(image, dtype=np.float32)[None, None])))[0]  # (K,)
    if len(p) == 10:
        return float(p[label]), str(label)
    return float(p[int(label > 4)]), BINARY_NAMES[int(label > 4)]


def teach_pretrained(a, n: int) -> int:
    """Fine-tune this session's copy of the pretrained draw model ``n`` steps on the user's digits (mixed with
    MNIST training images, so it does not forget the rest); the copy is what the Draw page shows from then
    on. Returns the steps done."""
    from cnnviz.train.finetune import fine_tune

    shared = resources.pretrained("draw")
    if shared is None or not a.draw.user_digits:
        return 0
    net = a.draw.taught_net if a.draw.taught_net is not None else shared[0].copy()
    x = np.stack([np.asarray(im, dtype=np.float32) for im, _ in a.draw.user_digits])[:, None]  # (n,1,28,28)
    y = np.array([int(lab) for _, lab in a.draw.user_digits], dtype=np.int64)
    base = resources.dataset("digits", 4000)
    fine_tune(net, x, y, base.x_train, base.y_train, n, lr=5e-4, seed=a.draw.taught_steps)
    a.draw.taught_net = net
    a.draw.taught_steps += n
    return n


def _train_steps(n: int) -> None:
    """Button callback: train the model the page shows ``n`` steps; report how its answer for this drawing
    moved."""
    a = state.app()
    image, label = a.draw.drawing, _label(a)
    if a.ui.draw_model == PRETRAINED and resources.pretrained("draw") is not None:
        net, _ = _pretrained_copy()
        before = _label_proba(net, image, label) if image is not None else None
        try:
            done = teach_pretrained(a, n)
        except ValueError as e:
            a.caches["draw_teach_error"] = f"Not trained: {e}."
            return
        net, _ = _pretrained_copy()
        msg = f"Fine-tuned this session's copy of the pretrained draw model {done} steps on your digits."
    else:
        before = _label_proba(_session_copy()[0], image, label) if image is not None else None
        done = state.train(n)
        if not done:
            return
        tr = state.get_trainer()
        with state.lock():
            tr.validate_now()  # so the model's label shows its accuracy at this step
        net = _session_copy()[0]
        msg = f"Trained the session's model {done} steps (now step {tr.step_count:,})."
    if before is not None:
        after, name = _label_proba(net, image, label)
        msg += f" P(“{name}”) for this drawing: {before[0]:.0%} → {after:.0%}."
    a.caches["draw_teach_msg"] = msg


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
    result = predict(net, image, task) if image is not None else None

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
    result.update(explain(net, image, result["top"]))
    st.subheader("Why this answer?")
    _explain_section(image, result, scale)
    _feature_section(image, result, scale)
    if st.button("Follow this digit through every layer on the Inside page", key="draw_to_inside",
                 icon=":material/layers:", help="Opens the Inside page with your digit as its input"):
        _open_inside()
    st.subheader("Teach it your handwriting")
    _teach_section(image, scale, result["top"] if len(result["proba"]) == 10 else None)

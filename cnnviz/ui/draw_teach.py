"""The Draw page's "Teach it your handwriting" panel, and the per-session copies of the models it teaches.

A sibling widget module of ``cnnviz.ui.draw`` (the page imports it; no other page does). The numbers come
from the pure ``cnnviz.drawing.answer``; this module only wires buttons and the state to them.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from cnnviz.drawing.answer import find_duplicate, label_proba, user_digit_arrays
from cnnviz.ui import common, resources, state
from cnnviz.viz import figures

PRETRAINED = "pretrained"


def pretrained_copy():
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


def session_copy():
    """A copy of the session's model taken under its training lock (training may be running)."""
    tr = state.get_trainer()
    lock = state.lock()
    if lock.acquire(timeout=2.0):
        try:
            return tr.net.copy(), tr
        finally:
            lock.release()
    return tr.net.copy(), tr


def teach_section(image: np.ndarray | None, scale: float, suggested: int | None = None) -> None:
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
    old_label = find_duplicate(a.draw.user_digits, image)
    if old_label is not None:
        # a second click on Add for the same drawing would weigh it twice in every teaching batch
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


def teach_pretrained(a, n: int) -> int:
    """Fine-tune this session's copy of the pretrained draw model ``n`` steps on the user's digits (mixed with
    MNIST training images, so it does not forget the rest); the copy is what the Draw page shows from then
    on. Returns the steps done."""
    from cnnviz.train.finetune import fine_tune

    shared = resources.pretrained("draw")
    if shared is None or not a.draw.user_digits:
        return 0
    net = a.draw.taught_net if a.draw.taught_net is not None else shared[0].copy()
    x, y = user_digit_arrays(a.draw.user_digits)  # (n, 1, 28, 28), (n,)
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
        net, _ = pretrained_copy()
        before = label_proba(net, image, label) if image is not None else None
        try:
            done = teach_pretrained(a, n)
        except ValueError as e:
            a.caches["draw_teach_error"] = f"Not trained: {e}."
            return
        net, _ = pretrained_copy()
        msg = f"Fine-tuned this session's copy of the pretrained draw model {done} steps on your digits."
    else:
        before = label_proba(session_copy()[0], image, label) if image is not None else None
        done = state.train(n)
        if not done:
            return
        tr = state.get_trainer()
        with state.lock():
            tr.validate_now()  # so the model's label shows its accuracy at this step
        net = session_copy()[0]
        msg = f"Trained the session's model {done} steps (now step {tr.step_count:,})."
    if before is not None:
        after, name = label_proba(net, image, label)
        msg += f" P(“{name}”) for this drawing: {before[0]:.0%} → {after:.0%}."
    a.caches["draw_teach_msg"] = msg

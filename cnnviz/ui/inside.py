"""Inside page: one image's path through the network, a convolution step-through, and the equations of the
forward and backward pass written with this sample's live numbers.

The numbers come from ``cnnviz.viz.lesson_math`` (pure, tested without a browser); this module only lays
them out with widgets and ``cnnviz.viz.figures``. The page works on a copy of the session's network, so
nothing here changes the model's weights or the gradients that the Gradients page shows.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz.nn.head import Head
from cnnviz.ui import common, filter_link, state
from cnnviz.ui.inside_steps import step_through_section
from cnnviz.viz import figures
from cnnviz.viz.lesson_math import (
    MAP_PAGE,
    forward_view,
    general_equations,
    grid_cols,
    is_tutorial_net,
    panel_px,
    range_words,
    sample_pass,
    shown_maps,
    sigmoid_inputs,
    stages,
    tutorial_equations,
)


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




def _stage_row(stage: dict, key: str, scale: float, page: int = 0) -> None:
    """One stage of the data flow: a caption on the left, its figure(s) on the right (a conv layer shows
    its filters above its feature maps); layers with more than MAP_PAGE maps show the pager's page."""
    left, right = st.columns([1, 3.2])
    left.markdown(f"**{stage['title']}**")
    left.caption(stage["note"])
    with right:
        if stage["type"] == "Conv2D":
            with left:
                fig = _filters_figure(stage, scale, page)
            common.plot(fig, key=f"{key}_filters")
        maps = stage["data"]  # (C, H, W)
        idx = shown_maps(maps.shape[0], page)
        cols = grid_cols(len(idx))
        size = f"{maps.shape[1]}×{maps.shape[2]}"
        shown = (f"{len(idx)} maps of {size}" if len(idx) == maps.shape[0]
                 else f"{range_words(idx, maps.shape[0], 'map')}, each {size}")
        fig = figures.map_grid(maps[idx.start:idx.stop], f"{stage['title']} — {shown}", kind=stage["colour"],
                               labels=[f"map {c + 1}" for c in idx], cols=cols,
                               panel_px=panel_px(cols), scale=scale,
                               colorbar_title="z" if stage["colour"] == "diverging" else "activation")
        common.plot(fig, key=key)


def _filters_figure(stage: dict, scale: float, page: int = 0) -> tuple:
    """The conv layer's filters as a grid (one input channel at a time when the layer has several)."""
    W = stage["filters"]  # (F, C, KH, KW)
    F, C = W.shape[:2]
    c = 0
    if C > 1:
        c = st.selectbox("Filters: input channel shown", list(range(C)),
                         format_func=lambda i: f"channel {i + 1} of {C}", key=f"inside_chan_{stage['index']}",
                         help="A filter of this layer has one 5×5 slice per input map; pick which to show")
    idx = shown_maps(F, page)
    cols = grid_cols(len(idx))
    what = f"{F} ×" if len(idx) == F else f"{range_words(idx, F, 'filter')},"
    title = (f"Filters of convolution {stage['conv_number']}" + (f", input channel {c + 1}" if C > 1 else "")
             + f" — {what} {W.shape[2]}×{W.shape[3]} (same colour range)")
    return figures.map_grid(W[idx.start:idx.stop, c], title, kind="diverging",
                            labels=[f"filter {k + 1}" for k in idx],
                            cols=cols, panel_px=panel_px(cols), colorbar_title="weight", scale=scale)


def _verdict(fw: dict, label: int | None, verdict_slot) -> None:
    names, top, proba, true_cls = fw["names"], fw["top"], fw["proba"], fw["true_cls"]
    mark = "" if true_cls is None else (" ✓" if top == true_cls else " ✗")
    truth = "" if label is None else f"True digit **{label}** · "
    verdict_slot.markdown(f"{truth}the network says **{names[top]}** ({proba[top]:.0%}){mark}")


def _flow_section(fw: dict, image: np.ndarray, desc: str, scale: float) -> None:
    """Input → filters → maps before/after the activation → pooled → flattened → output probabilities."""
    work, outputs, proba, top = fw["work"], fw["outputs"], fw["proba"], fw["top"]
    names, true_cls = fw["names"], fw["true_cls"]
    sts = stages(work, outputs)

    left, right = st.columns([1, 3.2])
    left.markdown("**Input**")
    left.caption(f"{desc}: 28 × 28 grey values in [0, 1], the network's only input.")
    with right:
        fig = figures.map_grid(image, f"Input — {desc}", kind="image", labels=["input"], cols=1,
                               panel_px=150, colorbar_title="grey", scale=scale)
        common.plot(fig, key="inside_input")
    n_conv = sum(s["type"] == "Conv2D" for s in sts)
    n_max = max((s["shape"][0] for s in sts if s["kind"] == "maps"), default=0)
    page = 0
    if n_max > MAP_PAGE:  # half the figures' cells per run; a person pages through the rest
        pages = list(range(-(-n_max // MAP_PAGE)))
        page = st.segmented_control(
            "Maps and filters shown", pages, default=0, key="inside_map_page",
            format_func=lambda p: f"{p * MAP_PAGE + 1}–{min(p * MAP_PAGE + MAP_PAGE, n_max)} of {n_max}",
            help=f"Layers with more than {MAP_PAGE} filters show {MAP_PAGE} at a time")
        page = 0 if page is None else int(page)
    block = None  # the expander of conv block 2, 3…: built only when a person opens it
    for s in sts:
        key = f"inside_stage_{s['index']}"
        if s["type"] == "Conv2D" and s["conv_number"] > 1:
            block = st.expander(f"↓ {s['title']}: its filters and feature maps ({s['shape'][0]} maps of "
                                f"{s['shape'][1]}×{s['shape'][2]})", key=f"inside_block_{s['conv_number']}",
                                on_change="rerun")
        if s["kind"] == "maps" and block is not None:
            if block.open:  # a closed block costs neither figures nor browser time
                with block:
                    _stage_row(s, key, scale, page)
            continue
        block = None
        if s["type"] == "Conv2D" or s["kind"] == "maps":
            st.markdown("↓")
            _stage_row(s, key, scale, page)
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
    if n_conv > 1:
        st.caption("Open a convolution block above to see its filters and feature maps.")
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


def _equations_section(net, fw: dict, image: np.ndarray, label: int | None, config) -> None:
    """Forward and backward equations with this sample's numbers."""
    if label is None:
        st.info("Your drawing has no true label, so there is no error E to back-propagate. The equations use "
                "the class the network predicts as the target.")
        out = fw["outputs"][-1]  # (1, K): the page's forward pass of this image
        cls = int(np.argmax(Head.for_network(fw["work"], config.task, config.loss).class_proba(out)[0]))
        label = cls if config.task == "digits" else (7 if cls == 1 else 2)  # a digit of the predicted class
    sp = sample_pass(net, image[None, None], label, config.task, config.loss)
    if is_tutorial_net(sp["net"], config.loss):
        eq = tutorial_equations(sp, image, label, config.loss)
        k, i, j = eq["m"]
        st.caption(f"The tutorial's network, this image (digit {label}). The chain rule is followed for one "
                   f"feature m = (filter {k + 1}, row {i + 1}, column {j + 1}), the one with the largest "
                   "∂E/∂Z₁.")
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
    z = sigmoid_inputs(sp["net"], image[None, None], sp["outputs"])  # (M,): the z of this very pass
    if z.size:
        common.plot(figures.sigmoid_figure(z, "σ(z) and σ′(z) = σ(1 − σ) with this image's z",
                                           scale=common.scale()), key="inside_sigmoid")


TABS = ["Forward pass", "Convolution step-through", "Equations with live numbers"]


def render() -> None:
    """Draw the Inside page for the session's model."""
    st.header("Inside the network")
    common.show_error()  # messages, and which model this page shows after a switch from Draw
    trainer = state.get_trainer()
    scale = common.scale()
    net, config = trainer.net, trainer.config
    image, label, desc, verdict_slot = _pick_image(trainer)
    fw = forward_view(net, image, label, config.task)
    _verdict(fw, label, verdict_slot)
    # Only the open tab is built: each tab switch reruns the page, and a run draws one tab's figures.
    ui = state.app().ui
    if ui.inside_tab not in TABS:
        ui.inside_tab = TABS[0]
    if st.session_state.get("inside_tab") in TABS:  # the tab widget is alive: it holds the user's last click
        ui.inside_tab = st.session_state["inside_tab"]
    else:  # Streamlit dropped it on another page: open the tab kept in the state
        st.session_state["inside_tab"] = ui.inside_tab
    flow, stepper, eqs = st.tabs(TABS, key="inside_tab", on_change="rerun")
    if flow.open:
        with flow:
            _flow_section(fw, image, desc, scale)
            filter_link.inspect_link(net, key="inside")
    if stepper.open:
        with stepper:
            step_through_section(net, image, scale)
    if eqs.open:
        with eqs:
            _equations_section(net, fw, image, label, config)

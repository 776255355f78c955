"""Gradients page: what the last training step computed and how the gradients evolve over the steps.

∂E/∂filter beside each filter with the update −η·∂E/∂f; the dense layer's ∂E/∂W laid out as feature maps
per output class; the gradient norm and update/parameter ratio of every parameter over the steps (log
scale, so vanishing sigmoid gradients show); a histogram of each parameter's gradient; and, for the
tutorial's network, the tutorial's own gradient beside the true one (``tutorial.compare_gradients``).

The numbers come from ``cnnviz.viz.lesson_math`` (pure, tested without a browser); ``render()`` wires
widgets to them and to ``cnnviz.viz.figures``. Nothing here changes the model.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz.nn.head import TASK_CLASS_NAMES
from cnnviz.ui import common, filter_link, state
from cnnviz.viz import figures
from cnnviz.viz.activations import sigmoid_preactivations
from cnnviz.viz.lesson_math import (
    RATIO_GUIDE,
    dense_input_shape,
    history_series,
    is_tutorial_net,
    last_update,
    param_label,
    tutorial_comparison,
)
from cnnviz.viz.names import LOSS_NAMES, describe_config
from cnnviz.viz.names import OPTIMIZER_NAMES as OPT_NAMES


# ----------------------------------------------------------------------------------------------------------
# Page
# ----------------------------------------------------------------------------------------------------------
def _no_step_yet(trainer) -> None:
    """The page before any training step: say so and offer to take one."""
    st.info("No training step has been taken yet, so there are no gradients to show. A step runs the "
            "forward pass on a batch, back-propagates the error and updates the weights: take one here, "
            "or train on the Train page.", icon=":material/info:")
    if st.button("Take one step", key="grad_first_step", type="primary", icon=":material/skip_next:"):
        state.train(1)
        st.rerun()
    st.caption(f"Model: {describe_config(trainer.config)}")
    conv = next((layer for layer in trainer.net.layers if type(layer).__name__ == "Conv2D"), None)
    if conv is not None:
        W = np.asarray(conv.params["W"])[:, 0]  # (F, KH, KW): input channel 1
        fig = figures.map_grid(W, f"The {W.shape[0]} filters the first step will update (initial weights)",
                               kind="diverging", labels=[f"filter {k + 1}" for k in range(W.shape[0])],
                               cols=min(W.shape[0], 8), panel_px=90, colorbar_title="weight",
                               scale=common.scale())
        common.plot(fig, key="grad_initial_filters")


def _conv_section(trainer, scale: float) -> None:
    net, cfg = trainer.net, trainer.config
    lr, optimizer = cfg.lr, cfg.optimizer
    convs = [i for i, layer in enumerate(net.layers) if type(layer).__name__ == "Conv2D"]
    if not convs:
        return
    st.subheader("Filters and their gradients")
    c1, c2, _ = st.columns([1, 1, 2])
    li = convs[0]
    if len(convs) > 1:
        li = c1.selectbox("Conv layer", convs, format_func=lambda i: f"conv {convs.index(i) + 1}",
                          key="grad_conv_layer")
    layer = net.layers[li]
    W, G = np.asarray(layer.params["W"]), np.asarray(layer.grads["W"])  # (F, C, KH, KW)
    F, C = W.shape[:2]
    c = 0
    if C > 1:
        c = c2.selectbox("Input channel", list(range(C)), format_func=lambda k: f"channel {k + 1} of {C}",
                         key=f"grad_conv_chan_{li}")
    upd = -lr * G[:, c]  # (F, KH, KW)
    rows = [("filter f", W[:, c], "diverging"), ("∂E/∂f", G[:, c], "diverging"),
            ("−η·∂E/∂f", upd, "diverging")]
    cb = ["weight", "gradient", "update"]
    # With momentum or Adam the optimiser's actual step differs from −η·∂E/∂f: show it when it is known.
    actual = last_update(trainer) if li == convs[0] and (optimizer != "sgd" or cfg.momentum > 0) else None
    if actual is not None:
        rows.append(("actual ΔW", actual[:, c], "diverging"))
        cb.append("ΔW")
    title = (f"Conv {convs.index(li) + 1}: each filter, its gradient and the update (η = {lr:g})"
             + (f", input channel {c + 1}" if C > 1 else "") + " — one colour range per row")
    cols = [f"filter {k + 1}" for k in range(F)]
    fig = figures.heatmap_rows(rows, title, col_labels=cols, scale=scale, colorbar_titles=cb,
                               panel_px=_panel(F))
    common.plot(fig, key="grad_filters")
    note = ("Red cells: increasing that weight would increase the error, so the update (the negative "
            "gradient times η) lowers it; blue cells the other way.")
    if optimizer != "sgd" or cfg.momentum > 0:
        how = ("rescales each weight's gradient by its running statistics" if optimizer == "adam"
               else f"adds momentum ({cfg.momentum:g}) from the previous steps")
        note += (f" {'Adam' if optimizer == 'adam' else 'SGD with momentum'} {how}, so −η·∂E/∂f gives the "
                 "direction, not the exact step" + (": the last row is the change the step really made."
                                                    if actual is not None else "."))
    st.caption(note)


def _panel(n_cols: int) -> int:
    """Row height for ``heatmap_rows`` so that square panels fill the page width without growing huge."""
    return int(min(150, max(70, 900 / max(n_cols, 1))))


def _dense_section(net, task: str, scale: float) -> None:
    dense = [i for i, layer in enumerate(net.layers) if type(layer).__name__ == "Dense"]
    if not dense:
        return
    li = dense[-1]
    layer = net.layers[li]
    W, G = np.asarray(layer.params["W"]), np.asarray(layer.grads["W"])  # (D, K)
    K = W.shape[1]
    shape = dense_input_shape(net, li)
    st.subheader("Dense layer: ∂E/∂W laid out as the feature maps it reads")
    names = list(TASK_CLASS_NAMES[task]) if K > 1 else ["5–9 (the single output)"]
    k = 0
    if K > 1:
        k = st.segmented_control("Output class", list(range(K)), format_func=lambda i: names[i],
                                 default=0, key="grad_dense_class")
        k = 0 if k is None else int(k)
    if len(shape) == 3:
        C, H, Wd = shape
        w_maps = W[:, k].reshape(C, H, Wd)  # (C, H, W): the weight of every flattened feature
        g_maps = G[:, k].reshape(C, H, Wd)  # (C, H, W)
        what = f"output “{names[k]}”, reshaped to the {C} maps of {H}×{Wd} they multiply"
        if C <= 8:
            rows = [("weights W", w_maps, "diverging"), ("∂E/∂W", g_maps, "diverging")]
            fig = figures.heatmap_rows(rows, f"Dense weights and gradient for {what}",
                                       col_labels=[f"map {c + 1}" for c in range(C)],
                                       colorbar_titles=["weight", "gradient"], scale=scale,
                                       panel_px=_panel(C) + 20)
            common.plot(fig, key="grad_dense")
        else:  # many maps: one grid each, 8 to a row, so the panels stay readable
            labels = [f"map {c + 1}" for c in range(C)]
            for key, maps, name, cb in (("grad_dense", g_maps, "Gradient ∂E/∂W", "gradient"),
                                        ("grad_dense_w", w_maps, "Weights W", "weight")):
                fig = figures.map_grid(maps, f"{name} for {what}", kind="diverging", labels=labels, cols=8,
                                       panel_px=88, colorbar_title=cb, scale=scale)
                common.plot(fig, key=key)
        st.caption("Each cell is the weight and its gradient that connect one pixel of one feature map to "
                   "this output: where the gradient is large, that pixel's activation mattered for this "
                   "step's error.")
    else:
        fig = figures.flat_vector_figure(G[:, k], 1, f"∂E/∂W for output “{names[k]}”", scale=scale)
        common.plot(fig, key="grad_dense")


def _history_section(trainer, scale: float) -> None:
    net = trainer.net
    st.subheader("Over the steps")
    steps, norms = history_series(trainer.history, "grad_norms")
    _, ratios = history_series(trainer.history, "update_ratios")
    label = {n: param_label(net, n) for n in norms}
    c1, c2 = st.columns(2)
    with c1:
        fig = figures.series_figure(steps, {label[n]: v for n, v in norms.items()},
                                    "Gradient norm ‖∂E/∂θ‖ per parameter", "gradient norm (log)", scale=scale,
                                    what="gradients", empty_reason=_zero_reason(net))
        common.plot(fig, key="grad_norms")
    with c2:
        # Weights only: a bias starts at 0, where the ratio is undefined (huge) for the first steps.
        fig = figures.series_figure(steps, {label[n]: v for n, v in ratios.items() if n.endswith(".W")},
                                    "Update / weight ratio ‖ΔW‖ / ‖W‖", "ratio (log)",
                                    reference=RATIO_GUIDE, reference_label="10⁻³ rule of thumb", scale=scale,
                                    what="updates", empty_reason=_zero_reason(net))
        common.plot(fig, key="grad_ratios")
    acts = {type(layer).__name__ for layer in net.layers}
    msg = ("Both axes are logarithmic: a line that falls by a factor of 10 drops one grid line. ")
    if "Sigmoid" in acts:
        msg += ("This network uses sigmoid, whose derivative σ(1 − σ) is at most 0.25 and near 0 when a unit "
                "saturates: the layers before it get smaller gradients (vanishing gradients).")
    else:
        msg += ("Ratios far above 10⁻³ mean the learning rate is large for that parameter; far below, "
                "it barely moves.")
    st.caption(msg)
    if "Sigmoid" in acts:
        x = trainer.data.x_train[:32]  # (32, 1, 28, 28): a few training images are enough for the picture
        fig = figures.sigmoid_figure(sigmoid_preactivations(net, x),
                                     "Why sigmoid gradients vanish: σ, σ′ and this network's z "
                                     f"on {len(x)} training images", scale=scale)
        common.plot(fig, key="grad_sigmoid")


def _zero_reason(net) -> str | None:
    """Why every gradient can be exactly 0, for the empty log chart: a saturated sigmoid output."""
    if type(net.layers[-1]).__name__ == "Sigmoid":
        return "every output sigmoid is saturated (σ′ = 0 in float32), so no error flows back"
    return None


def _histogram_section(net, scale: float) -> None:
    st.subheader("This step's gradients, value by value")
    grads = {param_label(net, n): np.asarray(g) for n, g in net.named_grads() if n.endswith(".W")}
    fig = figures.histogram_grid(grads, "Histogram of each layer's weight gradients (count on a log axis)",
                                 cols=min(4, len(grads)), scale=scale)
    common.plot(fig, key="grad_hist")
    st.caption("A narrow spike at 0 means that layer barely learns from this batch; the biases (a few "
               "numbers each) are left out.")


def _tutorial_section(trainer, scale: float) -> None:
    """The tutorial's own gradient beside the true one, with the difference and cosine."""
    st.subheader("The tutorial's gradient vs the true gradient")
    # The comparison runs the tutorial's backward pass and several variants: only when asked, then cached
    # for this model and step, so a training step on this page does not pay for it.
    if not st.toggle("Compare with the tutorial's backward pass", key="grad_tut_show",
                     help="Computes the tutorial's gradient and each of its fixes at the current weights"):
        st.caption("Turn this on to see how the tutorial's own gradient differs from the true one, and why.")
        return
    key = ("grad_tut_cmp", state.model_rev(), len(trainer.history),
           trainer.history[-1].step if trainer.history else 0)
    cached = state.app().caches.get("grad_tut_cache")
    if cached is None or cached[0] != key:
        data = trainer.data
        try:
            with st.spinner("Running the tutorial's backward pass and its variants…"):
                res = tutorial_comparison(trainer.net, data.x_train, data.y_train)
        except ValueError as e:
            st.info(f"The comparison needs the tutorial's exact network: {e}")
            return
        state.app().caches["grad_tut_cache"] = (key, res)
    else:
        res = cached[1]
    st.caption("Both gradients are taken at this model's current weights with its trained biases set to 0, "
               "because the tutorial's network has no biases; the model itself keeps its biases.")
    true, tut, diff = res["true"]["0.W"][:, 0], res["tutorial"]["0.W"][:, 0], res["diff"][:, 0]  # (3, 5, 5)
    cos = res["per_filter_cosine"]
    m0 = res["metrics"]["0.W"]
    cols = [f"filter {k + 1} (cos {c:+.2f})" for k, c in enumerate(cos)]
    rows = [("true ∂E/∂f", true, "diverging"), ("tutorial's", tut, "diverging"),
            ("tutorial − true", diff, "diverging")]
    left, right = st.columns([3, 2])
    with left:
        fig = figures.heatmap_rows(rows, f"Filter gradients at the current weights on the {res['n_images']} "
                                   "training images", col_labels=cols, scale=scale,
                                   colorbar_titles=["true", "tutorial", "difference"], panel_px=120)
        common.plot(fig, key="grad_tutorial")
    with right:
        a, b = st.columns(2)
        a.metric("Cosine (filters)", f"{m0['cosine']:+.2f}", help="1 = same direction, −1 = opposite")
        b.metric("Size ratio (filters)", f"{m0['norm_ratio']:.2g}×", help="‖tutorial‖ / ‖true‖")
        m3 = res["metrics"]["3.W"]
        a.metric("Cosine (dense)", f"{m3['cosine']:+.2f}")
        b.metric("Size ratio (dense)", f"{m3['norm_ratio']:.2g}×")
        st.markdown(f"**Why they differ.** {res['explanations']['0.W']}")
        st.caption(res["explanations"]["3.W"])
    with st.expander("Each mistake in the tutorial's backward pass, and what fixing it changes"):
        for mk in res["mistakes"]:
            gain = mk["cosine_gain"]
            st.markdown(f"**{mk['title']}** — {mk['explanation']} "
                        f"(fixing only this changes the filter cosine by {gain['0.W']:+.2f}, "
                        f"the dense cosine by {gain['3.W']:+.2f})")
        table = [{"fixes": r["label"], "filter cosine": round(r["metrics"]["0.W"]["cosine"], 3),
                  "filter rel. error": round(r["metrics"]["0.W"]["rel_error"], 3),
                  "dense cosine": round(r["metrics"]["3.W"]["cosine"], 3),
                  "dense rel. error": round(r["metrics"]["3.W"]["rel_error"], 3)} for r in res["ablation"]]
        st.dataframe(table, hide_index=True, width="stretch")


def render() -> None:
    """Draw the Gradients page for the session's model."""
    st.header("Gradients")
    common.show_error()
    trainer = state.get_trainer()
    scale = common.scale()
    if not trainer.history:
        _no_step_yet(trainer)
        return
    net, cfg = trainer.net, trainer.config
    rec = trainer.history[-1]
    total = float(np.sqrt(sum(v * v for v in rec.grad_norms.values())))
    c = st.columns([1, 1, 1, 1, 1.2], vertical_alignment="bottom")
    c[0].metric("Step", f"{rec.step}")
    c[1].metric("Batch loss", common.fmt(rec.loss))
    c[2].metric("Learning rate η", f"{cfg.lr:g}")
    c[3].metric("‖∇‖ (all)", f"{total:.3g}", help="Norm of all gradients of the last step together")
    if c[4].button("One more step", key="grad_step", width="stretch", icon=":material/skip_next:"):
        state.train(1)
        st.rerun()
    st.caption(f"The gradients of step {rec.step}: ∂E/∂θ for every parameter θ, computed by back-propagation "
               f"on that step's batch ({OPT_NAMES.get(cfg.optimizer, cfg.optimizer)}, loss "
               f"{LOSS_NAMES.get(cfg.loss, cfg.loss)}).")
    _conv_section(trainer, scale)
    filter_link.inspect_link(net, key="gradients")
    _dense_section(net, cfg.task, scale)
    _history_section(trainer, scale)
    _histogram_section(net, scale)
    if is_tutorial_net(net, cfg.loss) and cfg.task == "gt4":
        _tutorial_section(trainer, scale)

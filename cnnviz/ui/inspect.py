"""Inspect a filter: what one conv filter responds to, and what happens if you change it.

What this page keeps lives in the session's typed state (``cnnviz.ui.state``):
  ``AppState.inspect.selection``  (conv, filter): the filter on show, both from 0 — ``conv`` counts the
                    network's conv layers (0 = "conv 1"), ``filter`` is that layer's output channel. Other
                    pages set it through ``cnnviz.ui.filter_link.inspect_link`` before switching here.
  ``AppState.inspect.draft``  the draft change of that filter: {"mode": one of ``inspect.EDIT_MODES``,
                    "factor": float, "kernel": (KH, KW) float32 or None, "channel": int, "rev": int, "target":
                    (conv, filter, model_rev)}. It is a proposal only: the session's trained weights change on
                    "Keep these weights" alone (``state.replace_weights``, which Undo reverts).
  ``AppState.caches["inspect"]``  computed views of the current weights (conv outputs on the validation
                    images, maximised inputs, predictions) with the hash of those weights; emptied when the
                    weights change.
Widget keys only mirror these values (set from the state before each widget is drawn).

All computing is done by ``cnnviz.viz.inspect`` on copies of the session's network; the "Change it and see"
tab and the cache live in the sibling widget module ``cnnviz.ui.inspect_change``.
"""

from __future__ import annotations

import streamlit as st

from cnnviz.ui import common, state
from cnnviz.ui.inspect_change import cached, change_tab, inspect_state, val, widget
from cnnviz.viz import figures_inspect as figs
from cnnviz.viz import inspect as insp

URL_PATH = "inspect"
TITLE = "Inspect a filter"
N_PATCHES = 12


def page() -> st.Page:
    """This page for ``st.navigation`` / ``st.switch_page`` (one url path, so both name the same page)."""
    return st.Page(render, title=TITLE, icon=":material/center_focus_strong:", url_path=URL_PATH)


# ----------------------------------------------------------------------------------------------------------
# Selection (session state; the draft change is kept by cnnviz.ui.inspect_change)
# ----------------------------------------------------------------------------------------------------------
def _session_net():
    """A copy of the session's network (taken under the training lock: never half-updated), its config."""
    tr = state.get_trainer()
    with state.reading():
        return tr.net.copy(), tr.config


def _selection(net) -> tuple[int, int]:
    """The (conv, filter) on show, clamped to this network (a new model may have fewer layers or filters)."""
    convs = insp.conv_layers(net)
    ci, f = inspect_state().selection
    ci = min(max(int(ci), 0), len(convs) - 1)
    f = min(max(int(f), 0), net.layers[convs[ci]].out_channels - 1)
    inspect_state().selection = (ci, f)
    return ci, f


def _on_layer() -> None:
    v = widget("inspect_layer_w", needs_draft=False)
    if v is not None:
        inspect_state().selection = (int(v), 0)


def _on_filter() -> None:
    v = widget("inspect_filter_w", needs_draft=False)
    if v is not None:
        inspect_state().selection = (inspect_state().selection[0], int(v))


# ----------------------------------------------------------------------------------------------------------
# Page
# ----------------------------------------------------------------------------------------------------------
def _pickers(net, convs: list[int], ci: int, f: int) -> None:
    ss = st.session_state
    ss["inspect_layer_w"], ss["inspect_filter_w"] = ci, f
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    c1.selectbox("Layer", range(len(convs)), key="inspect_layer_w", on_change=_on_layer,
                 format_func=lambda i: f"conv {i + 1} ({net.layers[convs[i]].out_channels} filters)")
    F = net.layers[convs[ci]].out_channels
    c2.selectbox("Filter", range(F), key="inspect_filter_w", on_change=_on_filter,
                 format_func=lambda i: f"filter {i + 1}")
    c3.caption("Open any filter here, or from Train, Inside and Gradients (\"Inspect a filter\" there). "
               "Everything below is computed for the current weights on the 1,000 validation images.")


def _on_strip_click() -> None:
    """A click on a filter of the strip (its invisible marker, point index = filter) selects that filter."""
    points = getattr(getattr(st.session_state.get("inspect_strip"), "selection", None), "points", None) or []
    idx = points[0].get("point_index") if points else None
    if isinstance(idx, int) and idx >= 0 and state.owns_session():
        inspect_state().selection = (inspect_state().selection[0], idx)


def _strip(net, li: int, ci: int, f: int, fp: str) -> None:
    """Every filter of the layer as the average of its 12 top patches: the layer at a glance; click one."""
    x, _ = val()
    raw = cached(fp, ("out", li), lambda: insp.layer_outputs(net, li, x)[0])  # (N, F, H_out, W_out)
    avg, dead = cached(fp, ("strip", li),
                       lambda: insp.strip_averages(net, li, raw, x[:, 0], k=N_PATCHES))  # (F, S, S), (F,)
    common.plot(figs.filter_strip(avg, f, f"Conv {ci + 1}: what each filter responds to (the average of its "
                                  "top patches; click one)", dead=dead, scale=common.scale(),
                                  height=round(130 + 10 * (avg.shape[-1] > 5))),
                key="inspect_strip", on_select=_on_strip_click, selection_mode="points")


def _responds_tab(net, cfg, convs: list[int], ci: int, f: int, fp: str) -> None:
    li = convs[ci]
    s = common.scale()
    x, y = val()
    raw = cached(fp, ("out", li), lambda: insp.layer_outputs(net, li, x)[0])  # (N, F, H_out, W_out)
    geo = insp.rf_geometry(net, li)
    raw_f = raw[:, f]  # (N, H_out, W_out)
    act_f = insp.activate(net, li, raw_f)  # (N, H_out, W_out) what the next layer sees
    top = insp.top_patches(raw_f, x[:, 0], geo, k=N_PATCHES)
    low = insp.top_patches(raw_f, x[:, 0], geo, k=N_PATCHES, largest=False)
    means, counts = insp.class_means(act_f, y)
    first = insp.is_first_layer_filter(net, li)
    name = f"Filter {f + 1} of conv {ci + 1}"
    st.markdown(insp.filter_summary(name, insp.is_dead(net, li, raw_f), means, first, top, low))
    common.plot(figs.patch_gallery(top.patches, x[top.index, 0], top.boxes, top.values, y[top.index],
                                   f"The {len(top.index)} patches it responds to most (output above each)",
                                   ncols=7, scale=s, average=True), key="inspect_top")
    c1, c2, c3 = st.columns([1, 1.3, 1.7], gap="medium")
    with c1:
        W_f = net.layers[li].params["W"][f]  # (C, KH, KW)
        common.plot(figs.filter_weights(W_f, f"Its weights ({W_f.shape[-2]}×{W_f.shape[-1]})", scale=s,
                                        height=270), key="inspect_weights")
        if W_f.shape[0] > 1:
            st.caption(f"One tile per input channel: it combines the {W_f.shape[0]} feature maps of the "
                       "layer before, not pixels.")
    with c2:
        common.plot(figs.class_bars(means, counts, "Mean activation per digit", scale=s, height=270),
                    key="inspect_classes")
    with c3:
        if first:
            i0 = int(top.index[0])
            common.plot(figs.receptive_field(x[i0, 0], tuple(top.boxes[0]), act_f[i0],
                                             (int(top.rows[0]), int(top.cols[0])),
                                             f"Its strongest response: a digit {int(y[i0])}", scale=s,
                                             height=270), key="inspect_rf")
            st.caption("The input it likes most? For a first-layer filter the answer is **the filter "
                       "itself**: the output is the sum of weight × pixel, so the best input has ink where "
                       "the weights are red and none where they are blue.")
        else:
            mx = cached(fp, ("max", li, f), lambda: insp.maximize_input(net, li, f))
            common.plot(figs.max_input(mx.image, mx.box, mx.values, "An input that maximises it", scale=s,
                                       height=270), key="inspect_max")
            st.caption(f"300 steps of gradient ascent on the pixels (the network's own backward pass; "
                       f"blur and jitter keep it from relying on single pixels). It reaches "
                       f"{mx.values[-1]:.2f}, the best validation patch {top.values[0]:.2f}: read it with "
                       "the average patch above, which shows the same preference in real digits.")
    common.plot(figs.patch_gallery(low.patches, x[low.index, 0], low.boxes, low.values, y[low.index],
                                   f"The {len(low.index)} patches that drive it most negative", ncols=7,
                                   scale=s, average=True), key="inspect_low")
    st.caption(f"Each tile: the {geo.size}×{geo.size} pixels that one output of this filter sees (enlarged), "
               "its output above it, and the whole digit beside it with the patch outlined. One patch per "
               "digit: the 12 digits with the most extreme response anywhere in them. The first tile "
               "averages them: what they have in common.")
    if not first:
        i0 = int(top.index[0])
        common.plot(figs.receptive_field(x[i0, 0], tuple(top.boxes[0]), act_f[i0],
                                         (int(top.rows[0]), int(top.cols[0])),
                                         f"Receptive field: {geo.size}×{geo.size} input pixels can reach one "
                                         f"output of conv {ci + 1}", scale=s, height=300), key="inspect_rf")


def render() -> None:
    """The Inspect a filter page."""
    st.title(TITLE)
    common.show_error()
    net, cfg = _session_net()
    convs = insp.conv_layers(net)
    if not convs:
        st.info("This network has no convolution layer, so it has no filters to inspect.")
        return
    ci, f = _selection(net)
    _pickers(net, convs, ci, f)
    fp = insp.weights_fingerprint(net)
    _strip(net, convs[ci], ci, f, fp)
    responds, change = st.tabs(["What it responds to", "Change it and see"])
    with responds:
        _responds_tab(net, cfg, convs, ci, f, fp)
    with change:
        change_tab(net, cfg, convs, ci, f, fp)

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

All computing is done by ``cnnviz.viz.inspect`` on copies of the session's network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz.train.data import task_targets
from cnnviz.ui import common, resources, state
from cnnviz.viz import figures_inspect as figs
from cnnviz.viz import inspect as insp

CACHE_KEY = "inspect"  # in the AppState's caches
URL_PATH = "inspect"
TITLE = "Inspect a filter"
N_PATCHES = 12
MODE_LABELS = {"learned": "Learned weights", "knock out": "Knock out", "scale": "Scale", "paint": "Paint"}


def page() -> st.Page:
    """This page for ``st.navigation`` / ``st.switch_page`` (one url path, so both name the same page)."""
    return st.Page(render, title=TITLE, icon=":material/center_focus_strong:", url_path=URL_PATH)


# ----------------------------------------------------------------------------------------------------------
# Selection and draft (session state)
# ----------------------------------------------------------------------------------------------------------
def _ins() -> state.InspectState:
    return state.app().inspect


def _session_net():
    """A copy of the session's network (taken under the training lock: never half-updated), its config."""
    tr = state.get_trainer()
    with state.reading():
        return tr.net.copy(), tr.config


def _selection(net) -> tuple[int, int]:
    """The (conv, filter) on show, clamped to this network (a new model may have fewer layers or filters)."""
    convs = insp.conv_layers(net)
    ci, f = _ins().selection
    ci = min(max(int(ci), 0), len(convs) - 1)
    f = min(max(int(f), 0), net.layers[convs[ci]].out_channels - 1)
    _ins().selection = (ci, f)
    return ci, f


def _draft(target: tuple[int, int, int]) -> dict:
    """The draft edit for ``target`` (conv, filter, model_rev); a new target starts from the learned one."""
    ins = _ins()
    d = ins.draft
    if not d or d.get("target") != target:
        d = {"mode": "learned", "factor": 0.5, "kernel": None, "channel": 0, "rev": 0, "target": target}
        ins.draft = d
    return d


def _widget(key: str, needs_draft: bool = True):
    """A widget's new value in its on_change callback, to copy into the state (None: nothing to copy — the
    widget is gone, another tab took the session over, or there is no draft to change)."""
    v = st.session_state.get(key)
    if v is None or not state.owns_session() or (needs_draft and _ins().draft is None):
        return None
    return v


def _on_layer() -> None:
    v = _widget("inspect_layer_w", needs_draft=False)
    if v is not None:
        _ins().selection = (int(v), 0)


def _on_filter() -> None:
    v = _widget("inspect_filter_w", needs_draft=False)
    if v is not None:
        _ins().selection = (_ins().selection[0], int(v))


def _on_mode() -> None:
    v = _widget("inspect_mode")
    if v is not None:
        _ins().draft["mode"] = v


def _on_factor() -> None:
    v = _widget("inspect_factor")
    if v is not None:
        _ins().draft["factor"] = float(v)


def _on_channel() -> None:
    v = _widget("inspect_channel")
    if v is not None:
        d = _ins().draft
        d["channel"], d["kernel"] = int(v), None
        d["rev"] += 1


def _restore() -> None:
    d = _ins().draft
    if d is None:
        return
    d.update(mode="learned", kernel=None)
    d["rev"] += 1


def _load_preset(name: str, norm: float, size: int) -> None:
    d = _ins().draft
    d.update(mode="paint", kernel=insp.preset_kernel(name, size) * np.float32(norm))
    d["rev"] += 1


def _on_kernel_edit(key: str, base: np.ndarray) -> None:
    """Apply the grid's edited cells to the draft kernel (the grid restarts from it under a new key)."""
    d = _ins().draft
    k = np.array(base, dtype=np.float32)
    for row, cells in (st.session_state.get(key) or {}).get("edited_rows", {}).items():
        for col, value in cells.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if np.isfinite(v):
                k[int(row), int(col) - 1] = v
    d.update(mode="paint", kernel=k)
    d["rev"] += 1


# ----------------------------------------------------------------------------------------------------------
# Cached computations (per session, keyed by the weights)
# ----------------------------------------------------------------------------------------------------------
def _cached(fp: str, key: tuple, compute):
    """``compute()`` once per weights: the cache holds the views of ONE set of weights (fingerprint ``fp``)
    and is emptied when they change, so a session keeps at most a few layers' outputs in memory."""
    caches = state.app().caches
    c = caches.get(CACHE_KEY)
    if not c or c.get("fp") != fp:
        c = caches[CACHE_KEY] = {"fp": fp}
    if key not in c:
        c[key] = compute()
    return c[key]


def _val() -> tuple[np.ndarray, np.ndarray]:
    return resources.validation_images()  # (1000, 1, 28, 28), (1000,) digits


# ----------------------------------------------------------------------------------------------------------
# Page
# ----------------------------------------------------------------------------------------------------------
def _class_names(task: str, K: int) -> list[str]:
    return ["0–4", "5–9"] if task == "gt4" else [str(i) for i in range(K)]


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


def _summary(name: str, dead: bool, means: np.ndarray, first: bool, top, low) -> str:
    """One sentence answering "what does it detect?" from the numbers on the page."""
    if dead:
        return (f"**{name} never fires** on the validation images: its output is negative everywhere, so the "
                "ReLU after it outputs 0 for every digit (and no gradient reaches it to revive it). It is a "
                "*dead* filter; the patches below are the places where it came closest.")
    order = np.argsort(-np.nan_to_num(means, nan=-np.inf), kind="stable")
    hi, lo = order[:2], order[-1]
    best = "its weights are the pattern it likes most" if first else "the input it likes most is on the right"
    likes = insp.describe_patch(top.patches.mean(axis=0))  # (S, S) average of the top patches
    hates = insp.describe_patch(low.patches.mean(axis=0))
    words = f"patches with **{likes}**" if likes else "the patches just below"
    against = f"; patches with {hates} drive it negative" if hates and hates != likes else ""
    return (f"**{name}** responds most to {words}{against}. On average it fires most for **{hi[0]}s and "
            f"{hi[1]}s** and least for **{lo}s** (bars); {best}.")


def _on_strip_click() -> None:
    """A click on a filter of the strip (its invisible marker, point index = filter) selects that filter."""
    points = getattr(getattr(st.session_state.get("inspect_strip"), "selection", None), "points", None) or []
    idx = points[0].get("point_index") if points else None
    if isinstance(idx, int) and idx >= 0 and state.owns_session():
        _ins().selection = (_ins().selection[0], idx)


def _strip(net, li: int, ci: int, f: int, fp: str) -> None:
    """Every filter of the layer as the average of its 12 top patches: the layer at a glance; click one."""
    x, _ = _val()
    raw = _cached(fp, ("out", li), lambda: insp.layer_outputs(net, li, x)[0])  # (N, F, H_out, W_out)
    geo = insp.rf_geometry(net, li)

    def averages():
        F = raw.shape[1]
        avg = np.stack([insp.top_patches(raw[:, k], x[:, 0], geo, k=N_PATCHES).patches.mean(axis=0)
                        for k in range(F)])  # (F, S, S)
        return avg, np.array([insp.is_dead(net, li, raw[:, k]) for k in range(F)])

    avg, dead = _cached(fp, ("strip", li), averages)
    common.plot(figs.filter_strip(avg, f, f"Conv {ci + 1}: what each filter responds to (the average of its "
                                  "top patches; click one)", dead=dead, scale=common.scale(),
                                  height=round(130 + 10 * (avg.shape[-1] > 5))),
                key="inspect_strip", on_select=_on_strip_click, selection_mode="points")


def _responds_tab(net, cfg, convs: list[int], ci: int, f: int, fp: str) -> None:
    li = convs[ci]
    s = common.scale()
    x, y = _val()
    raw = _cached(fp, ("out", li), lambda: insp.layer_outputs(net, li, x)[0])  # (N, F, H_out, W_out)
    geo = insp.rf_geometry(net, li)
    raw_f = raw[:, f]  # (N, H_out, W_out)
    act_f = insp.activate(net, li, raw_f)  # (N, H_out, W_out) what the next layer sees
    top = insp.top_patches(raw_f, x[:, 0], geo, k=N_PATCHES)
    low = insp.top_patches(raw_f, x[:, 0], geo, k=N_PATCHES, largest=False)
    means, counts = insp.class_means(act_f, y)
    first = insp.is_first_layer_filter(net, li)
    name = f"Filter {f + 1} of conv {ci + 1}"
    st.markdown(_summary(name, insp.is_dead(net, li, raw_f), means, first, top, low))
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
            mx = _cached(fp, ("max", li, f), lambda: insp.maximize_input(net, li, f))
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


def _confidence(p: np.ndarray, c: int) -> float:
    """Probability of class ``c`` from probabilities (1, K) (K = 1: the sigmoid output is P(class 1))."""
    if p.shape[1] == 1:
        return float(p[0, 0] if c == 1 else 1.0 - p[0, 0])
    return float(p[0, c])


def _keep(edited, what: str) -> None:
    """Make the changed weights the session's model (the one place where this page writes the model), through
    the state's ``replace_weights``: under the model lock, on the Undo stack."""
    if state.replace_weights(edited, what):
        state.set_notice("The changed filter is now part of the model: training continues from these "
                         "weights. Undo brings the previous weights back.")


def _paint_controls(W_f: np.ndarray, d: dict) -> np.ndarray:
    """Preset buttons, an input-channel picker and the editable grid; returns the kernel (KH, KW) shown."""
    C, KH, KW = W_f.shape
    ch = min(int(d.get("channel", 0)), C - 1)
    if C > 1:
        st.session_state["inspect_channel"] = ch  # the widget mirrors the draft
        st.selectbox("Input channel to paint", range(C), key="inspect_channel", on_change=_on_channel,
                     format_func=lambda i: f"channel {i + 1}")
    learned = W_f[ch]
    norm = float(np.linalg.norm(learned)) or 1.0
    row = st.container(horizontal=True)
    for name in insp.PRESETS:
        row.button(name.capitalize(), key=f"inspect_preset_{name}", on_click=_load_preset,
                   args=(name, norm, KH))
    kernel = d["kernel"] if d["kernel"] is not None and d["kernel"].shape == (KH, KW) else learned
    key = f"inspect_kernel_{d['rev']}"
    df = pd.DataFrame(np.round(kernel.astype(np.float64), 3), columns=[str(i + 1) for i in range(KW)])
    st.data_editor(df, key=key, on_change=_on_kernel_edit, args=(key, kernel), hide_index=True,
                   width="stretch")
    st.caption("Type in the grid (rows top to bottom) or start from a preset; presets have the learned "
               "filter's size (L2 norm), so only the pattern changes.")
    return kernel


def _change_tab(net, cfg, convs: list[int], ci: int, f: int, fp: str) -> None:
    li = convs[ci]
    s = common.scale()
    ss = st.session_state
    d = _draft((ci, f, state.model_rev()))
    W_f = net.layers[li].params["W"][f]  # (C, KH, KW)
    left, right = st.columns([1, 1.3], gap="large")
    with left:
        ss["inspect_mode"] = d["mode"]
        st.radio("Change filter", insp.EDIT_MODES, key="inspect_mode", on_change=_on_mode, horizontal=True,
                 format_func=MODE_LABELS.get)
        kernel = None
        if d["mode"] == "scale":
            ss["inspect_factor"] = d["factor"]
            st.slider("Multiply its weights and bias by", -2.0, 3.0, step=0.1, key="inspect_factor",
                      on_change=_on_factor)
        elif d["mode"] == "paint":
            kernel = _paint_controls(W_f, d)
        elif d["mode"] == "knock out":
            st.caption("Its weights and bias are set to 0: its feature map is all zeros, as if removed.")
        row = st.container(horizontal=True)
        row.button("Restore", key="inspect_restore", on_click=_restore,
                  icon=":material/restart_alt:", disabled=d["mode"] == "learned",
                  help="Put the learned weights back (nothing was changed in your model)")
        keep = row.button("Keep these weights", key="inspect_keep", icon=":material/check:",
                         disabled=d["mode"] == "learned",
                         help="Put the changed filter into the session's model (training continues from it)")
    mode = d["mode"]
    edited = insp.edit_filter(net, li, f, mode, factor=d["factor"], kernel=kernel,
                              channel=min(int(d["channel"]), W_f.shape[0] - 1) if mode == "paint" else None)
    if keep:
        _keep(edited, f"{MODE_LABELS[mode].lower()} filter {f + 1} of conv {ci + 1}")
        _restore()
        st.rerun()
    x, y = _val()
    pred0, _ = _cached(fp, ("pred",), lambda: insp.predictions(net, x))
    pred1, _ = insp.predictions(edited, x) if mode != "learned" else (pred0, None)
    truth = task_targets(y, cfg.task)
    acc0, acc1 = float(np.mean(pred0 == truth)), float(np.mean(pred1 == truth))
    changed = int(np.sum(pred0 != pred1))
    with right:
        m = st.columns(3)
        delta = f"{(acc1 - acc0) * 100:+.1f} points" if mode != "learned" else None
        m[0].metric("Validation accuracy", f"{acc1:.1%}", delta=delta, help="On the 1,000 validation images, "
                    f"with this filter as shown; the learned weights give {acc0:.1%}")
        m[1].metric("Answers changed", f"{changed:,}", help="Validation images whose predicted class "
                    "differs from the learned network's")
        drawing = state.app().draw.drawing
        names = _class_names(cfg.task, 10)
        if drawing is not None:
            xd = np.asarray(drawing, dtype=np.float32).reshape(1, 1, 28, 28)
            (c0,), p0 = insp.predictions(net, xd)
            (c1,), p1 = insp.predictions(edited, xd)
            m[2].metric("Your drawing", f"{names[c1]} ({_confidence(p1, c1):.0%})",
                        delta=None if mode == "learned" else
                        f"learned: {names[c0]} ({_confidence(p0, c0):.0%})",
                        delta_color="off")
        else:
            m[2].metric("Your drawing", "–", help="Draw a digit on the Draw page to see its prediction "
                        "change")
        raw = _cached(fp, ("out", li), lambda: insp.layer_outputs(net, li, x)[0])  # (N, F, H_out, W_out)
        i0 = int(raw[:, f].reshape(len(x), -1).max(axis=1).argmax())  # the digit it responds to most
        image = np.asarray(drawing, dtype=np.float32) if drawing is not None else x[i0, 0]
        fm1 = insp.feature_map(edited, li, f, image)
        fm0 = insp.feature_map(net, li, f, image)
        common.plot(figs.edit_maps(image, fm0, fm1, "Its feature map" + (" of your drawing" if drawing
                                   is not None else f" of a digit {int(y[i0])}"), scale=s, height=260),
                    key="inspect_edit_maps")
        if mode != "learned":
            common.plot(figs.filter_weights(edited.layers[li].params["W"][f], "Changed weights", scale=s,
                                            height=220, zmax=float(np.abs(W_f).max()) or None),
                        key="inspect_edit_weights")
    st.caption("Nothing here changes your trained model until you press **Keep these weights**; the numbers "
               "come from a copy of the network with this one filter changed.")


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
        _change_tab(net, cfg, convs, ci, f, fp)

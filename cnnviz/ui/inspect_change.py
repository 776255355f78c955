"""The Inspect page's "Change it and see" tab, and the per-session helpers both of its tabs use.

A sibling widget module of ``cnnviz.ui.inspect`` (that page imports it; no other page does): the draft
change of a filter (``AppState.inspect.draft``), its widgets and callbacks, and the page's cache of computed
views of the current weights (``AppState.caches["inspect"]``). All computing is done by the pure
``cnnviz.viz.inspect`` on copies of the session's network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz.nn.head import TASK_CLASS_NAMES
from cnnviz.train.data import task_targets
from cnnviz.ui import common, resources, state
from cnnviz.viz import figures_inspect as figs
from cnnviz.viz import inspect as insp

CACHE_KEY = "inspect"  # in the AppState's caches
MODE_LABELS = {"learned": "Learned weights", "knock out": "Knock out", "scale": "Scale", "paint": "Paint"}


def inspect_state() -> state.InspectState:
    """This session's Inspect state: the filter on show and the draft change."""
    return state.app().inspect


def _draft(target: tuple[int, int, int]) -> dict:
    """The draft edit for ``target`` (conv, filter, model_rev); a new target starts from the learned one."""
    ins = inspect_state()
    d = ins.draft
    if not d or d.get("target") != target:
        d = {"mode": "learned", "factor": 0.5, "kernel": None, "channel": 0, "rev": 0, "target": target}
        ins.draft = d
    return d


def widget(key: str, needs_draft: bool = True):
    """A widget's new value in its on_change callback, to copy into the state (None: nothing to copy — the
    widget is gone, another tab took the session over, or there is no draft to change)."""
    v = st.session_state.get(key)
    if v is None or not state.owns_session() or (needs_draft and inspect_state().draft is None):
        return None
    return v


def _on_mode() -> None:
    v = widget("inspect_mode")
    if v is not None:
        inspect_state().draft["mode"] = v


def _on_factor() -> None:
    v = widget("inspect_factor")
    if v is not None:
        inspect_state().draft["factor"] = float(v)


def _on_channel() -> None:
    v = widget("inspect_channel")
    if v is not None:
        d = inspect_state().draft
        d["channel"], d["kernel"] = int(v), None
        d["rev"] += 1


def _restore() -> None:
    d = inspect_state().draft
    if d is None:
        return
    d.update(mode="learned", kernel=None)
    d["rev"] += 1


def _load_preset(name: str, norm: float, size: int) -> None:
    d = inspect_state().draft
    d.update(mode="paint", kernel=insp.preset_kernel(name, size) * np.float32(norm))
    d["rev"] += 1


def _on_kernel_edit(key: str, base: np.ndarray) -> None:
    """Apply the grid's edited cells to the draft kernel (the grid restarts from it under a new key)."""
    d = inspect_state().draft
    k = insp.apply_grid_edits(base, (st.session_state.get(key) or {}).get("edited_rows", {}))  # (KH, KW)
    d.update(mode="paint", kernel=k)
    d["rev"] += 1


# ----------------------------------------------------------------------------------------------------------
# Cached computations (per session, keyed by the weights)
# ----------------------------------------------------------------------------------------------------------
def cached(fp: str, key: tuple, compute):
    """``compute()`` once per weights: the cache holds the views of ONE set of weights (fingerprint ``fp``)
    and is emptied when they change, so a session keeps at most a few layers' outputs in memory."""
    caches = state.app().caches
    c = caches.get(CACHE_KEY)
    if not c or c.get("fp") != fp:
        c = caches[CACHE_KEY] = {"fp": fp}
    if key not in c:
        c[key] = compute()
    return c[key]


def val() -> tuple[np.ndarray, np.ndarray]:
    return resources.validation_images()  # (1000, 1, 28, 28), (1000,) digits


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


def change_tab(net, cfg, convs: list[int], ci: int, f: int, fp: str) -> None:
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
    x, y = val()
    pred0, _ = cached(fp, ("pred",), lambda: insp.predictions(net, x))
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
        names = list(TASK_CLASS_NAMES[cfg.task])
        if drawing is not None:
            xd = np.asarray(drawing, dtype=np.float32).reshape(1, 1, 28, 28)
            (c0,), p0 = insp.predictions(net, xd)
            (c1,), p1 = insp.predictions(edited, xd)
            m[2].metric("Your drawing", f"{names[c1]} ({insp.confidence(p1, c1):.0%})",
                        delta=None if mode == "learned" else
                        f"learned: {names[c0]} ({insp.confidence(p0, c0):.0%})",
                        delta_color="off")
        else:
            m[2].metric("Your drawing", "–", help="Draw a digit on the Draw page to see its prediction "
                        "change")
        raw = cached(fp, ("out", li), lambda: insp.layer_outputs(net, li, x)[0])  # (N, F, H_out, W_out)
        i0 = insp.strongest_image(raw[:, f])  # the digit it responds to most
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



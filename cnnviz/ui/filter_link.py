""""Inspect a filter" from any page: one call draws a filter picker and a button that opens the Inspect page.

A page calls ``inspect_link(net, key)`` once, where it shows filters. The choice is written to
the session's typed state (``inspect.select``, see ``cnnviz.ui.inspect``), then the app switches page.
"""

from __future__ import annotations

import streamlit as st

from cnnviz.ui import common, state
from cnnviz.viz.inspect import conv_layers

INSPECT_PATH = "inspect"  # the Inspect page's url path (cnnviz/ui/inspect.py)


def _label(net, convs: list[int], ci: int, f: int) -> str:
    return f"conv {ci + 1} · filter {f + 1}" if len(convs) > 1 else f"filter {f + 1}"


def inspect_link(net, key: str, conv: int = 0) -> None:
    """A compact row: a selectbox of every conv filter of ``net`` and an "Inspect" button.

    ``key`` makes the widgets unique per page; ``conv`` (from 0) is the layer offered first. Nothing is
    drawn for a network without conv layers. The button stores (conv, filter) and switches to the Inspect
    page (``st.switch_page`` must run in the script body, so this is a plain button, not a callback).
    """
    convs = conv_layers(net)
    if not convs:
        return
    options = [(ci, f) for ci in range(len(convs)) for f in range(net.layers[convs[ci]].out_channels)]
    current = state.app().inspect.selection
    start = options.index(current) if current in options else next(
        (i for i, o in enumerate(options) if o[0] == min(conv, len(convs) - 1)), 0)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    with row:
        choice = st.selectbox("Inspect a filter: what does it detect?", options, index=start,
                              key=f"inspect_link_{key}", format_func=lambda o: _label(net, convs, *o),
                              width=260)
        go = st.button("Inspect", key=f"inspect_go_{key}", icon=":material/center_focus_strong:",
                       help="Open this filter: the patches that excite it, the digits it fires for, an input "
                            "that maximises it; knock it out or repaint it and see what changes")
    if go:
        state.app().inspect.selection = (int(choice[0]), int(choice[1]))
        common.switch_to(INSPECT_PATH, "Inspect a filter")

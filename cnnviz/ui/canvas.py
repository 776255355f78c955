"""The drawing canvas: the one place the streamlit-drawable-canvas component is used.

Size: the canvas grows with the screen. The browser reports its window width in a cookie (``cnnviz_vw``, set
by our script below; Streamlit reads cookies when a session connects), and presentation mode always gets the
large canvas. The pen grows with the canvas, so a digit drawn across it has the same stroke-to-size ratio
(MNIST's) at every size.

The component's own toolbar is hidden: invisible until hovered, it sat over the top 30 px of the canvas and
swallowed strokes that started there (Chromium, component 0.13). The page has its own Clear and Undo buttons
instead, so there is one set. Our script (static, installed once per browser tab) also presses the hidden
toolbar's "send" button right after each stroke, so the drawing reaches Python without the component's
200 ms debounce.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from cnnviz.ui import common

BASE_PX = 280  # the canvas the pen width was chosen for
BASE_STROKE = 18  # on 280 px, a digit drawn ~200 px tall becomes ~2 px strokes in 28×28, as in MNIST
LARGE_PX = 448  # presentation mode (projector) and wide windows
# The Draw page's canvas column is ~38% of the main area, which is the window less the sidebar and margins
# (~460 px): a canvas wider than its column is clipped and strokes near its right edge are lost.
COLUMN_SHARE = 0.38
WINDOW_MARGINS = 460


def canvas_px(presentation: bool, window_width: int | None) -> int:
    """The canvas side in pixels: as large as the canvas column of a window ``window_width`` CSS px wide
    allows (280 to 448, a multiple of 8); in presentation mode 448 while the width is not known yet (a
    projector), otherwise 280 then (the first page of a first visit). Presentation mode never makes the canvas
    wider than its column: at 1280 px a 448 px canvas was cut off at ~330 px and strokes on its right third
    were lost."""
    if window_width is None:
        return LARGE_PX if presentation else BASE_PX
    fit = int(COLUMN_SHARE * (window_width - WINDOW_MARGINS)) // 8 * 8
    return int(min(LARGE_PX, max(BASE_PX, fit)))


def stroke_px(side: int) -> int:
    """The pen width for a canvas of ``side`` pixels (the 280 px canvas's pen, scaled)."""
    return int(round(BASE_STROKE * side / BASE_PX))


def _window_width() -> int | None:
    try:
        value = st.context.cookies.get("cnnviz_vw")
        return int(value) if value is not None and 200 <= int(value) <= 20_000 else None
    except (ValueError, TypeError, AttributeError):
        return None


def digit_canvas(key: str, initial: dict | None = None,
                 on_change: Callable[[], None] | None = None) -> tuple[np.ndarray | None, list, int]:
    """A black square drawing canvas with a white pen, sized for the screen.

    Returns (RGBA pixels (side, side, 4) uint8 or None before the first stroke, the list of stroke objects,
    the side in pixels). A drawing is sent back after every stroke (mouse-up) without pressing anything.
    """
    from streamlit_drawable_canvas import st_canvas

    side = canvas_px(common.presentation(), _window_width())
    result = st_canvas(
        stroke_width=stroke_px(side), stroke_color="#FFFFFF", background_color="#000000", height=side,
        width=side, drawing_mode="freedraw", update_streamlit=True, return_image_data=True,
        initial_drawing=initial, key=key, on_change=on_change,
    )
    st.html(_CANVAS_JS, unsafe_allow_javascript=True)
    objects = list((result.json_data or {}).get("objects") or [])
    return result.image_data, objects, side


_CANVAS_JS = """
<script>
(() => {
  if (window.__cnnvizCanvas) return;
  window.__cnnvizCanvas = true;
  // the window's width, for the canvas size of the next session start (a reload)
  const saveWidth = () => {
    document.cookie = "cnnviz_vw=" + Math.round(window.innerWidth)
      + "; path=/; max-age=31536000; SameSite=Lax";
  };
  saveWidth();
  window.addEventListener("resize", saveWidth);
  // hide the component's toolbar inside its shadow root (page CSS does not reach there)
  // (the rule only matches the component's toolbar class, so it is harmless in any other shadow root)
  const STYLE = ".dc-toolbar{display:none !important}";
  const styleRoot = (root) => {
    if (root.querySelector("style[data-cnnviz]")) return;
    const s = document.createElement("style");
    s.setAttribute("data-cnnviz", "1");
    s.textContent = STYLE;
    root.appendChild(s);
  };
  const hide = () => {
    for (const c of document.querySelectorAll("*")) if (c.shadowRoot) styleRoot(c.shadowRoot);
  };
  // the component may fill its shadow root after the host appears: check again when the pointer enters it,
  // which always happens before a stroke can start
  window.addEventListener("pointerover", (ev) => {
    for (const n of (ev.composedPath ? ev.composedPath() : [])) if (n instanceof ShadowRoot) styleRoot(n);
  }, true);
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; hide(); });
  }).observe(document.body, {childList: true, subtree: true});
  hide();
  // send the drawing at once after a stroke (the hidden toolbar's own "send" button)
  const LABEL = 'button[aria-label="Update the app with this drawing"]';
  window.addEventListener("pointerup", (ev) => {
    const path = ev.composedPath ? ev.composedPath() : [];
    const canvas = path.find((n) => n.classList && n.classList.contains("upper-canvas"));
    if (!canvas) return;
    const root = canvas.getRootNode();
    // after Fabric has finished the stroke (its mouse-up handler and the microtask that records it)
    setTimeout(() => { const b = root.querySelector(LABEL); if (b && !b.disabled) b.click(); }, 15);
  }, true);
})();
</script>
"""

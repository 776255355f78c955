"""Keyboard shortcuts on the Train page: Space = Play/Pause, S = Step, R = Reset.

A teacher at a projector drives training from the keyboard. The shortcuts are a small script (``st.html``
with JavaScript) that clicks the page's own buttons, found by their widget keys (Streamlit gives each
element container the class ``st-key-<key>``), so a shortcut does exactly what the click does, callbacks and
all. It never fires while the user types in a field (text and number inputs, selects, sliders, anything
editable) or holds Ctrl/Alt/Meta, and it does nothing on a page without those buttons. The listener is
installed once per browser tab (a flag on ``window``), however often the page reruns.
"""

from __future__ import annotations

import json

import streamlit as st

# key (KeyboardEvent.key, lower-case) -> widget keys of the buttons it clicks, the first one present wins
SHORTCUTS: dict[str, tuple[str, ...]] = {
    " ": ("btn_play", "btn_pause"),
    "s": ("btn_step",),
    "r": ("btn_reset",),
}
HELP = "Keyboard: Space = Play/Pause, S = Step, R = Reset (not while typing in a field)."

_SCRIPT = """
<script>
(() => {
  const w = window;
  w.__cnnvizShortcuts = %s;
  if (w.__cnnvizKeysInstalled) return;
  w.__cnnvizKeysInstalled = true;
  const typing = (el) => {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    const tag = (el.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select') return true;
    const role = (el.getAttribute && el.getAttribute('role')) || '';
    return ['textbox', 'combobox', 'spinbutton', 'slider', 'listbox', 'searchbox'].includes(role);
  };
  w.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.altKey || ev.metaKey || ev.repeat) return;
    const keys = w.__cnnvizShortcuts[(ev.key || '').toLowerCase()];
    if (!keys) return;
    const target = ev.composedPath ? ev.composedPath()[0] : ev.target;
    if (typing(target) || typing(document.activeElement)) return;
    for (const k of keys) {
      const btn = document.querySelector('.st-key-' + k + ' button');
      if (btn && !btn.disabled) {
        ev.preventDefault();
        ev.stopImmediatePropagation();  // e.g. Streamlit's own "R = rerun" shortcut
        btn.click();
        return;
      }
    }
  }, {capture: true});
})();
</script>
"""


def script() -> str:
    """The HTML (one script) that installs the shortcuts in the browser."""
    return _SCRIPT % json.dumps({k: list(v) for k, v in SHORTCUTS.items()})


def install() -> None:
    """Install the Train page's keyboard shortcuts (call once per run of the page; cheap when repeated)."""
    st.html(script(), unsafe_allow_javascript=True)

"""Small widgets and helpers shared by the pages: page CSS (and presentation mode), charts, metric rows."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PRESENTATION_SCALE = 1.5  # figure scale in presentation mode: 12 px figure text becomes 18 px

_BASE_CSS = """
<style>
/* a little tighter than Streamlit's default, so that controls and the first figures fit at 1280x800 */
.block-container {padding-top: 2.2rem; padding-bottom: 2rem; max-width: 1500px;}
/* wide screens (a projector at 1920x1080): the whole width, not a centre column with empty margins */
@media (min-width: 1600px) {.block-container {max-width: 100%; padding-left: 2.5rem; padding-right: 2.5rem;}}
h1 {font-size: 2.1rem !important; padding-bottom: 0.2rem !important;}
[data-testid="stMetricValue"] {font-size: 1.55rem;}
[data-testid="stMetricLabel"] p {font-size: 0.85rem; color: #5b6577;}
[data-testid="stSidebar"] [data-testid="stVerticalBlock"] {gap: 0.55rem;}
div[data-testid="stPlotlyChart"] {overflow: hidden;}
[data-testid="stAppDeployButton"] {display: none;}
</style>
"""

_PRESENTATION_CSS = """
<style>
/* presentation mode: readable from the back of a room on a projector. Streamlit sizes text and widgets in
   rem, so a larger root font scales the whole page evenly. */
html {font-size: 21px;}
h1 {font-size: 2.3rem !important;}
.block-container {max-width: 100%; padding-left: 1.5rem; padding-right: 1.5rem;}
[data-testid="stSidebar"] {min-width: 330px; max-width: 330px;}
/* captions and help text stay readable from the back of the room */
[data-testid="stCaptionContainer"] {font-size: 0.95rem;}
</style>
"""


def presentation() -> bool:
    """True when the session is in presentation mode (larger fonts and figures, only essential controls)."""
    from cnnviz.ui import state

    return bool(state.app().ui.presentation)


def scale() -> float:
    """Figure scale factor: 1 normally, larger in presentation mode."""
    return PRESENTATION_SCALE if presentation() else 1.0


def inject_css() -> None:
    """Page-wide CSS (call once per run, from app.py)."""
    st.html(_BASE_CSS + (_PRESENTATION_CSS if presentation() else ""))


_PLOT_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "toggleSpikelines"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


def plot(fig: go.Figure, key: str, **kwargs):
    """Show a Plotly figure with the app's look (our own colours and fonts, a slim mode bar)."""
    return st.plotly_chart(fig, key=key, theme=None, config=_PLOT_CONFIG, **kwargs)


def fmt(value, spec: str = ".4f", missing: str = "–") -> str:
    """Format a number for a metric, or a dash when there is none yet."""
    if value is None:
        return missing
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 image", "2 images" (``many``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def metric_row(items: list[tuple[str, str, str | None]]) -> None:
    """A row of st.metric: items are (label, already formatted value, help text or None)."""
    cols = st.columns(len(items))
    for col, (label, value, help_) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_)


def show_error() -> None:
    """Show (once) the session's last error, e.g. a diverged training run or a rejected upload."""
    from cnnviz.ui import state

    msg, note = state.pop_messages()
    if msg:
        st.error(msg, icon=":material/error:")
    warning = state.pop_warning()
    if warning:
        st.warning(warning, icon=":material/warning:")
    if state.app().ui.model_note:
        st.info(state.app().ui.model_note, icon=":material/info:")
        state.app().ui.model_note = None
    if note:
        st.success(note, icon=":material/check_circle:")


# ----------------------------------------------------------------------------------------------------------
# Model file: download the session's model, upload one back
# ----------------------------------------------------------------------------------------------------------
MAX_MODEL_BYTES = 5 * 2**20  # same as server.maxUploadSize in .streamlit/config.toml (and state's)


def _model_bytes(trainer, cfg, lock) -> bytes:
    """The trainer's current weights and config as .npz bytes (runs when the user clicks Download, possibly
    on a server thread: it takes the session's training lock so it never reads half-updated weights)."""
    from cnnviz.train import model_file as io

    with lock:
        net = trainer.net.copy()
        extra = {"session": io.session_extra(trainer)}  # the history too: one file restores the session
    return io.model_to_bytes(net, cfg.to_dict(), extra=extra)


def load_model_upload(name: str, raw: bytes) -> bool:
    """Replace the session's model by an uploaded .npz (validated by model_file); True on success.

    Any problem (not a model, corrupt, wrong shapes, NaN weights, a config out of range, too large) leaves a
    clear message for the page and keeps the current model. Undo brings the previous model back.
    """
    from cnnviz.ui import state

    return state.load_model_bytes(name, raw)


def pass_upload(loader, key: str) -> None:
    """A file uploader's ``on_change``: hand the file now under ``key`` to ``loader(name, raw bytes)``, then
    give the uploader a new key, so that choosing the same file again is a new upload (not "no change")."""
    from cnnviz.ui import state

    f = st.session_state.get(key)
    if f is not None:
        loader(f.name, f.getvalue())
        state.app().ui.upload_rev += 1


def load_pretrained(preset: str) -> bool:
    """Replace the session's model by a private copy of the shipped ``assets/models/{preset}.npz``.

    Lets a class look inside a trained network at once (Inside, Gradients, Evaluate) and continue training
    from there. The shared cached model is never changed: the session gets ``net.copy()``; Reset returns to
    the pretrained weights and Undo to the model before.
    """
    from cnnviz.ui import state

    return state.load_pretrained(preset)


def model_file_box() -> None:
    """Sidebar expander: download the session's model as .npz; upload one back (validated)."""
    from cnnviz.ui import resources, state
    from cnnviz.viz.names import PRESET_NAMES

    with st.sidebar.expander("Model file (.npz)", expanded=False):
        tr, cfg, lock = state.get_trainer(), state.get_config(), state.lock()
        if cfg.preset != "custom" and resources.pretrained(cfg.preset) is not None:
            st.button(f"Start from pretrained {PRESET_NAMES.get(cfg.preset, cfg.preset)} weights",
                      key="load_pretrained",
                      on_click=load_pretrained, args=(cfg.preset,), icon=":material/school:",
                      help=f"Replace this session's model by the shipped assets/models/{cfg.preset}.npz "
                           "(trained by `python -m cnnviz assets`), to explore a trained network at once")
        st.download_button(
            "Download model", lambda: _model_bytes(tr, cfg, lock),
            file_name=f"cnnviz-{cfg.preset}-seed{cfg.seed}.npz", mime="application/octet-stream",
            key="model_download", on_click="ignore", icon=":material/download:",
            help="The weights, the layer spec, this config and the training history in one .npz (no "
                 "pickle): upload it again later, on any cnnviz server, to continue where you stopped")
        key = f"model_file_{state.app().ui.upload_rev}"
        st.file_uploader("Load a model (.npz)", type=["npz"], key=key, on_change=pass_upload,
                         args=(load_model_upload, key),
                         help="A model saved by cnnviz; every array is checked, a bad file is rejected")


def _elsewhere() -> None:
    """Never runs: a stand-in body for ``switch_to``'s page (the app's own page with that url path runs)."""


def switch_to(url_path: str, title: str) -> None:
    """Open the app's page at ``url_path``. ``st.navigation`` knows a page by its url path, so a stand-in
    page with the same path names it, and no page has to import another to link to it."""
    st.switch_page(st.Page(_elsewhere, title=title, url_path=url_path))

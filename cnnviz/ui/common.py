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
    return bool(st.session_state.get("presentation", False))


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


def metric_row(items: list[tuple[str, str, str | None]]) -> None:
    """A row of st.metric: items are (label, already formatted value, help text or None)."""
    cols = st.columns(len(items))
    for col, (label, value, help_) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_)


def show_error() -> None:
    """Show (once) the session's last error, e.g. a diverged training run or a rejected upload."""
    msg = st.session_state.pop("error", None)
    if msg:
        st.error(msg, icon=":material/error:")
    note = st.session_state.pop("notice", None)
    if note:
        st.success(note, icon=":material/check_circle:")


# ----------------------------------------------------------------------------------------------------------
# Model file: download the session's model, upload one back
# ----------------------------------------------------------------------------------------------------------
MAX_MODEL_BYTES = 5 * 2**20  # same as server.maxUploadSize in .streamlit/config.toml


def _model_bytes(trainer, cfg, lock) -> bytes:
    """The trainer's current weights and config as .npz bytes (runs when the user clicks Download, possibly
    on a server thread: it takes the session's training lock so it never reads half-updated weights)."""
    from cnnviz.train import model_file as io

    with lock:
        net = trainer.net.copy()
        extra = {"session": io.session_extra(trainer)}  # the history too: one file restores the session
    return io.model_to_bytes(net, cfg.to_dict(), extra=extra)


def _config_for_uploaded(net, cfg_dict):
    """A validated RunConfig for an uploaded network: the file's own config, or one inferred from it."""
    from cnnviz.train.config import RunConfig, normalize_layer
    from cnnviz.ui.resources import max_train_size

    spec = net.spec()
    limit = max_train_size()
    if cfg_dict is not None:
        cfg = RunConfig.from_dict(dict(cfg_dict), max_train_size=limit)
        if cfg.layers != [normalize_layer(s, i) for i, s in enumerate(spec)]:
            # the file's config describes another network than its weights: trust the weights
            cfg = RunConfig.from_dict({**cfg.to_dict(), "preset": "custom", "layers": spec},
                                      max_train_size=limit)
        return cfg
    cur = st.session_state["config"].to_dict()
    last = spec[-1]["type"]
    k = next((s["out_features"] for s in reversed(spec) if s["type"] == "Dense"), None)
    task = "digits" if k == 10 else "gt4"
    loss = ("mse" if cur["loss"] != "bce" else "bce") if last == "Sigmoid" else "softmax_ce"
    return RunConfig.from_dict({**cur, "preset": "custom", "layers": spec, "task": task, "loss": loss},
                               max_train_size=limit)


def load_model_upload(name: str, raw: bytes) -> bool:
    """Replace the session's model by an uploaded .npz (validated by model_file); True on success.

    Any problem (not a model, corrupt, wrong shapes, NaN weights, a config out of range, too large) leaves a
    clear message for the page and keeps the current model.
    """
    from cnnviz.train import model_file as io
    from cnnviz.ui import state

    try:
        if len(raw) > MAX_MODEL_BYTES:
            raise ValueError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is "
                             f"{MAX_MODEL_BYTES / 2**20:.0f} MB")
        net, cfg_dict, session = io.session_from_bytes(raw)
        cfg = _config_for_uploaded(net, cfg_dict)
        state.replace_model(net, cfg)
        if session is not None:  # a file downloaded from cnnviz: its curves and step count continue
            io.restore_session(state.get_trainer(), session)
    except (ValueError, TypeError, KeyError) as e:
        state.set_error(f"Model file '{name}' not loaded: {e}. The current model is kept.")
        return False
    state.set_notice(f"Model loaded from {name} ({net.n_params:,} parameters): {cfg.describe()}")
    return True


def pass_upload(loader, key: str) -> None:
    """A file uploader's ``on_change``: hand the file now under ``key`` to ``loader(name, raw bytes)``."""
    f = st.session_state.get(key)
    if f is not None:
        loader(f.name, f.getvalue())


def load_pretrained(preset: str) -> bool:
    """Replace the session's model by a private copy of the shipped ``assets/models/{preset}.npz``.

    Lets a class look inside a trained network at once (Inside, Gradients, Evaluate) and continue training
    from there. The shared cached model is never changed: the session gets ``net.copy()``.
    """
    from cnnviz.ui import resources, state

    shipped = resources.pretrained(preset)
    if shipped is None:
        state.set_error(f"No pretrained model ships for the preset '{preset}'.")
        return False
    net, cfg_dict = shipped
    try:
        state.replace_model(net.copy(), _config_for_uploaded(net, cfg_dict))
    except ValueError as e:
        state.set_error(f"Pretrained model not loaded: {e}. The current model is kept.")
        return False
    state.set_notice(f"Loaded the pretrained {preset} model: training continues from its trained weights.")
    return True


def model_file_box() -> None:
    """Sidebar expander: download the session's model as .npz; upload one back (validated)."""
    from cnnviz.ui import resources, state

    with st.sidebar.expander("Model file (.npz)", expanded=False):
        tr, cfg, lock = state.get_trainer(), state.get_config(), st.session_state["train_lock"]
        if cfg.preset != "custom" and resources.pretrained(cfg.preset) is not None:
            st.button(f"Start from pretrained {cfg.preset} weights", key="load_pretrained",
                      on_click=load_pretrained, args=(cfg.preset,), icon=":material/school:",
                      help=f"Replace this session's model by the shipped assets/models/{cfg.preset}.npz "
                           "(trained by `python -m cnnviz assets`), to explore a trained network at once")
        st.download_button(
            "Download model", lambda: _model_bytes(tr, cfg, lock),
            file_name=f"cnnviz-{cfg.preset}-seed{cfg.seed}.npz", mime="application/octet-stream",
            key="model_download", on_click="ignore", icon=":material/download:",
            help="The weights, the layer spec, this config and the training history in one .npz (no "
                 "pickle): upload it again later, on any cnnviz server, to continue where you stopped")
        st.file_uploader("Load a model (.npz)", type=["npz"], key="model_file", on_change=pass_upload,
                         args=(load_model_upload, "model_file"),
                         help="A model saved by cnnviz; every array is checked, a bad file is rejected")

"""The configuration sidebar: preset, architecture, training settings, Apply / Undo, config JSON, model file.

Every field shows ``AppState.settings`` (the pending settings) and writes back through its ``on_change``
(``state.bind``): a widget that is not drawn (presentation mode hides most of them) never loses a value.
Choosing a preset fills every field with its defaults; editing the architecture turns the preset into
"custom". Above Apply the sidebar lists exactly what would change, field by field, and that the current
model and its history would be replaced; Apply never raises (a bad value keeps the model, with a message),
and Undo brings back the model from before the last Apply, Reset, upload or pretrained load.
"""

from __future__ import annotations

import json

import streamlit as st

from cnnviz.train import config as C
from cnnviz.ui import common, resources, state
from cnnviz.ui.state import arch_of  # noqa: F401  (re-exported: tests and scripts read it from here)
from cnnviz.viz.names import ACTIVATION_NAMES, POOLING_NAMES

PRESET_LABELS = {
    "tutorial": "Tutorial (the article's net)",
    "classroom": "Classroom (8 filters)",
    "deeper": "Deeper (2 conv layers)",
    "custom": "Custom",
}
TASK_LABELS = {"digits": "10 digits (0–9)", "gt4": "0–4 vs 5–9"}
LOSS_LABELS = {"softmax_ce": "softmax cross-entropy", "mse": "mean squared error (the tutorial's)",
               "bce": "binary cross-entropy"}
OPT_LABELS = {"adam": "Adam", "sgd": "SGD (+ momentum)"}
INIT_LABELS = {"default": "He / Glorot (scaled)", "tutorial": "uniform(0, 1) (the tutorial's)"}
LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
       10.0]  # 1-2-5 steps: a log scale
BATCHES = [0, 8, 16, 32, 64, 128, 256, 512, 1024]
TRAIN_SIZES = [200, 500, 1000, 2000, 3000, 4000]
FULL_MNIST_SIZES = [10_000, 20_000, 30_000, 59_000]  # with $CNNVIZ_MNIST_DIR (59,000 if no t10k files)


def _on_preset() -> None:
    """A preset was chosen: fill every field with its defaults (custom keeps what is there)."""
    a = state.app()
    if a.settings.preset != "custom":
        a.settings = state.Settings.from_config(C.preset_config(a.settings.preset))


def _on_arch() -> None:
    """An architecture field changed: the network is no longer a preset's."""
    state.app().settings.preset = "custom"


def _on_task_or_loss() -> None:
    """Keep task and loss compatible: binary cross-entropy only makes sense for the binary task."""
    st_ = state.app().settings
    if st_.task == "digits" and st_.loss == "bce":
        st_.loss = "softmax_ce"


def _apply() -> None:
    state.apply_settings()


def _undo() -> None:
    state.undo()


def load_config_upload(name: str, raw: bytes) -> bool:
    """Apply an uploaded JSON config (validated by RunConfig.from_dict); True on success, else a message and
    the current model is kept."""
    return state.load_config_bytes(name, raw)


def _fmt_lr(v: float) -> str:
    return f"{v:g}"


def _options_with(options: list, value) -> list:
    """Options plus ``value`` (e.g. a learning rate from an uploaded config), sorted."""
    return options if value in options else sorted([*options, value])


def render() -> None:
    """Draw the sidebar (every page)."""
    a = state.app()
    cfg = state.get_config()
    sb = st.sidebar
    sb.toggle("Presentation mode", **state.bind("ui.presentation", "presentation"),
              help="Larger fonts and figures and only the essential controls, for a projector.")
    sb.selectbox("Preset", list(PRESET_LABELS), format_func=PRESET_LABELS.get,
                 **state.bind("settings.preset", "sb_preset", after=_on_preset),
                 help="Tutorial: the article's network (3 filters, sigmoid, 200 images, 0–4 vs 5–9). "
                      "Classroom: 8 filters, ReLU, max-pool, 10 digits. Deeper: two conv layers like "
                      "ConvNetJS's MNIST demo. Custom: your own architecture (edit any Architecture field).")
    s = a.settings
    if not a.ui.presentation:
        with sb.expander("Architecture", expanded=False):
            c1, c2 = st.columns(2)
            c1.number_input("Filters", 1, 32, **state.bind("settings.filters", "sb_filters", _on_arch, int),
                            help="Filters (output channels) per conv layer")
            c2.number_input("Filter size", 1, 9, **state.bind("settings.kernel", "sb_kernel", _on_arch, int),
                            help="Kernel size k×k")
            c1.number_input("Conv layers", 1, 3, **state.bind("settings.n_conv", "sb_n_conv", _on_arch, int))
            c2.selectbox("Activation", list(C.ACTIVATIONS), format_func=lambda a: ACTIVATION_NAMES.get(a, a),
                         **state.bind("settings.activation", "sb_activation", _on_arch))
            c1.selectbox("Pooling", list(C.POOLINGS), format_func=lambda p: POOLING_NAMES.get(p, p),
                         **state.bind("settings.pooling", "sb_pooling", _on_arch),
                         help="2×2 pooling after each conv layer")
            c2.number_input("Padding", 0, 4, **state.bind("settings.padding", "sb_padding", _on_arch, int))
            c1.number_input("Stride", 1, 3, **state.bind("settings.stride", "sb_stride", _on_arch, int))
        with sb.expander("Training", expanded=False):
            st.selectbox("Task", list(TASK_LABELS), format_func=TASK_LABELS.get,
                         **state.bind("settings.task", "sb_task", _on_task_or_loss))
            st.selectbox("Loss", list(LOSS_LABELS), format_func=LOSS_LABELS.get,
                         **state.bind("settings.loss", "sb_loss", _on_task_or_loss))
            st.selectbox("Optimiser", list(OPT_LABELS), format_func=OPT_LABELS.get,
                         **state.bind("settings.optimizer", "sb_optimizer"))
            st.select_slider("Learning rate (log scale)", _options_with(LRS, s.lr),
                             **state.bind("settings.lr", "sb_lr", convert=float), format_func=_fmt_lr)
            if s.optimizer == "adam" and s.lr > 0.01:  # a hint only: the user's value is kept
                st.caption(f"Adam usually learns best near 0.001; with {_fmt_lr(s.lr)} it may stall at "
                           "chance level.")
            if s.optimizer == "sgd":
                st.slider("Momentum", 0.0, 0.99, step=0.01,
                          **state.bind("settings.momentum", "sb_momentum", convert=float))
            st.select_slider("Batch size", _options_with(BATCHES, s.batch),
                             **state.bind("settings.batch", "sb_batch", convert=int),
                             format_func=lambda b: "full" if b == 0 else str(b),
                             help="Images per step; 'full' = the whole training set each step, as the "
                                  "tutorial")
            full = resources.mnist_dir() is not None
            sizes = TRAIN_SIZES + (FULL_MNIST_SIZES if full else [])
            st.select_slider("Training images", _options_with(sizes, s.train_size),
                             **state.bind("settings.train_size", "sb_train_size", convert=int),
                             format_func=lambda n: f"{n:,}",
                             help="Up to 4,000: the shipped subset's stratified training split, validated on "
                                  "the same 1,000 held-out images."
                                  + (" More: the full MNIST from $CNNVIZ_MNIST_DIR, validated on 1,000 t10k "
                                     "images." if full else " For more, set $CNNVIZ_MNIST_DIR to a folder "
                                     "with the MNIST IDX files."))
            c1, c2 = st.columns(2)
            c1.number_input("Seed", 0, 2**31 - 1, step=1,
                            **state.bind("settings.seed", "sb_seed", convert=int))
            c2.selectbox("Initial weights", list(INIT_LABELS), format_func=INIT_LABELS.get,
                         **state.bind("settings.init", "sb_init"))
    changes = state.pending_changes(a)
    sb.button("Apply" + (" changes" if changes else ""), type="primary" if changes else "secondary",
              on_click=_apply, key="sb_apply", width="stretch", disabled=not changes,
              help="Rebuild the model with these settings (training starts again from step 0)" if changes
              else "Nothing to apply: these are the current model's settings")
    if changes:
        steps = a.trainer.step_count if a.trainer is not None else 0
        lines = "\n".join(f"- {label}: {old} → **{new}**" for label, old, new in changes)
        sb.markdown(f"**Apply will change:**\n{lines}")
        sb.caption(f"The current model (step {steps:,}) and its history will be replaced; Undo brings them "
                   "back.")
    if a.undo:
        sb.button(f"Undo {a.undo[-1].what}", key="sb_undo", on_click=_undo, icon=":material/undo:",
                  width="stretch", help="Bring back the model, its history and its settings from before "
                                        f"the last change ({len(a.undo)} kept)")
    if not a.ui.presentation:
        _config_box(cfg)
        common.model_file_box()


def _config_box(cfg: C.RunConfig) -> None:
    with st.sidebar.expander("Current config (JSON)", expanded=False):
        text = json.dumps(cfg.to_dict(), indent=1)
        st.code(text, language="json")
        st.download_button("Download config", text, file_name=f"cnnviz-{cfg.preset}-seed{cfg.seed}.json",
                           mime="application/json", key="sb_config_download", on_click="ignore",
                           icon=":material/download:")
        key = f"sb_config_file_{state.app().ui.upload_rev}"
        st.file_uploader("Load a config (.json)", type=["json"], key=key,
                         on_change=common.pass_upload, args=(load_config_upload, key),
                         help="A config downloaded from cnnviz; values are checked before anything is "
                              "rebuilt")

"""The configuration sidebar: preset, architecture, training settings, Apply, config JSON and model file.

Widgets keep their values in ``st.session_state`` under "sb_*" keys, filled from the current RunConfig
whenever the model changes (Apply, upload, first visit). Choosing a preset fills every field with its
defaults; editing the architecture turns the preset into "custom". Apply validates the whole thing through
``RunConfig.from_dict``: a bad value shows an error and the current model is kept.
"""

from __future__ import annotations

import json

import streamlit as st

from cnnviz.train import config as C
from cnnviz.ui import common, resources, state

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
ARCH_KEYS = ("sb_n_conv", "sb_filters", "sb_kernel", "sb_activation", "sb_pooling", "sb_padding", "sb_stride")


def arch_of(layers: list[dict]) -> dict:
    """The sidebar's architecture fields read off a layer list (first conv layer's settings)."""
    convs = [i for i, s in enumerate(layers) if s["type"] == "Conv2D"]
    if not convs:
        return {"n_conv": 1, "filters": 8, "kernel": 5, "activation": "relu", "pooling": "none", "padding": 0,
                "stride": 1}
    first = layers[convs[0]]
    after = layers[convs[0] + 1]["type"] if convs[0] + 1 < len(layers) else ""
    pools = {s["type"] for s in layers if s["type"] in ("MaxPool2D", "AvgPool2D")}
    return {
        "n_conv": len(convs),
        "filters": int(first["out_channels"]),
        "kernel": int(first["kernel_size"]),
        "activation": {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}.get(after, "relu"),
        "pooling": "max" if "MaxPool2D" in pools else ("avg" if "AvgPool2D" in pools else "none"),
        "padding": int(first.get("padding", 0)),
        "stride": int(first.get("stride", 1)),
    }


def _fields_from_config(cfg: C.RunConfig) -> dict:
    a = arch_of(cfg.layers)
    return {
        "sb_preset": cfg.preset, "sb_task": cfg.task, "sb_loss": cfg.loss, "sb_optimizer": cfg.optimizer,
        "sb_lr": cfg.lr, "sb_momentum": float(cfg.momentum), "sb_batch": cfg.batch_size,
        "sb_train_size": cfg.train_size, "sb_seed": cfg.seed, "sb_init": cfg.init,
        **{f"sb_{k}": v for k, v in a.items()},
    }


def _sync_widgets(force: bool = False) -> None:
    """Fill the widgets from the current config when the model changed (or a widget was not drawn)."""
    ss = st.session_state
    cfg = state.get_config()
    rev = ss.get("model_rev", 0)
    values = _fields_from_config(cfg)
    stale = force or ss.get("sb_synced_rev") != rev
    for k, v in values.items():
        if stale or k not in ss:
            ss[k] = v
    ss["sb_synced_rev"] = rev


def _on_preset() -> None:
    """A preset was chosen: fill every field with its defaults (custom keeps what is there)."""
    p = st.session_state["sb_preset"]
    if p == "custom":
        return
    for k, v in _fields_from_config(C.preset_config(p)).items():
        st.session_state[k] = v


def _on_arch() -> None:
    """An architecture field changed: the network is no longer a preset's."""
    st.session_state["sb_preset"] = "custom"


def _on_task_or_loss() -> None:
    """Keep task and loss compatible: binary cross-entropy only makes sense for the binary task."""
    ss = st.session_state
    if ss["sb_task"] == "digits" and ss["sb_loss"] == "bce":
        ss["sb_loss"] = "softmax_ce"


def config_from_widgets() -> dict:
    """The config dict that the widgets describe (not yet validated)."""
    ss = st.session_state
    preset, task, loss = ss["sb_preset"], ss["sb_task"], ss["sb_loss"]
    d = {"preset": preset, "task": task, "loss": loss, "optimizer": ss["sb_optimizer"],
         "lr": float(ss["sb_lr"]), "momentum": float(ss["sb_momentum"]), "batch_size": int(ss["sb_batch"]),
         "train_size": int(ss["sb_train_size"]), "seed": int(ss["sb_seed"]), "init": ss["sb_init"]}
    arch = {k[3:]: ss[k] for k in ARCH_KEYS}
    if preset != "custom":
        base = C.preset_config(preset)
        body = [dict(s) for s in base.layers]
        flat = next(i for i, s in enumerate(body) if s["type"] == "Flatten")
        n_features = C.layer_shapes(body)[flat][0]
        layers = body[:flat + 1] + C.output_layers(n_features, task, loss)
        if layers != body:  # task or loss need another output layer: no longer exactly the preset
            d["preset"] = "custom"
        d["layers"] = layers
        d["val_every"] = base.val_every
    else:
        d["layers"] = C.custom_layers(task=task, loss=loss, **arch)
    return d


def _apply() -> None:
    try:
        d = config_from_widgets()
    except (ValueError, KeyError) as e:
        state.set_error(f"Configuration not applied: {e}. The current model is kept.")
        return
    if state.apply_config(d) is not None:
        state.set_notice(f"Rebuilt: {state.get_config().describe()}")


def load_config_upload(name: str, raw: bytes) -> bool:
    """Apply an uploaded JSON config (validated by RunConfig.from_dict); True on success, else a message and
    the current model is kept."""
    try:
        if len(raw) > 200_000:
            raise ValueError("the file is larger than 200 kB; a config is a small JSON object")
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as e:  # deep nesting too
        state.set_error(f"Config file '{name}' not loaded: {e}. The current model is kept.")
        return False
    if state.apply_config(d) is None:
        return False
    state.set_notice(f"Config loaded from {name}: {state.get_config().describe()}")
    return True


def _pending(current: C.RunConfig) -> bool:
    """True when the widgets describe something other than the current config."""
    try:
        d = config_from_widgets()
    except (ValueError, KeyError):
        return True
    cur = current.to_dict()
    return any(cur.get(k) != v for k, v in d.items() if k != "val_every")


def _fmt_lr(v: float) -> str:
    return f"{v:g}"


def _options_with(options: list, value) -> list:
    """Options plus ``value`` (e.g. a learning rate from an uploaded config), sorted."""
    return options if value in options else sorted([*options, value])


def render() -> None:
    """Draw the sidebar (every page)."""
    ss = st.session_state
    _sync_widgets()
    cfg = state.get_config()
    sb = st.sidebar
    sb.toggle("Presentation mode", key="presentation",
              help="Larger fonts and figures and only the essential controls, for a projector.")
    sb.selectbox("Preset", list(PRESET_LABELS), format_func=PRESET_LABELS.get, key="sb_preset",
                 on_change=_on_preset,
                 help="Tutorial: the article's network (3 filters, sigmoid, 200 images, 0–4 vs 5–9). "
                      "Classroom: 8 filters, ReLU, max-pool, 10 digits. Deeper: two conv layers like "
                      "ConvNetJS's MNIST demo. Custom: your own architecture (edit any Architecture field).")
    if not common.presentation():
        with sb.expander("Architecture", expanded=False):
            c1, c2 = st.columns(2)
            c1.number_input("Filters", 1, 32, key="sb_filters", on_change=_on_arch,
                            help="Filters (output channels) per conv layer")
            c2.number_input("Filter size", 1, 9, key="sb_kernel", on_change=_on_arch, help="Kernel size k×k")
            c1.number_input("Conv layers", 1, 3, key="sb_n_conv", on_change=_on_arch)
            c2.selectbox("Activation", list(C.ACTIVATIONS), key="sb_activation", on_change=_on_arch)
            c1.selectbox("Pooling", list(C.POOLINGS), key="sb_pooling", on_change=_on_arch,
                         help="2×2 pooling after each conv layer")
            c2.number_input("Padding", 0, 4, key="sb_padding", on_change=_on_arch)
            c1.number_input("Stride", 1, 3, key="sb_stride", on_change=_on_arch)
        with sb.expander("Training", expanded=False):
            st.selectbox("Task", list(TASK_LABELS), format_func=TASK_LABELS.get, key="sb_task",
                         on_change=_on_task_or_loss)
            st.selectbox("Loss", list(LOSS_LABELS), format_func=LOSS_LABELS.get, key="sb_loss",
                         on_change=_on_task_or_loss)
            st.selectbox("Optimiser", list(OPT_LABELS), format_func=OPT_LABELS.get, key="sb_optimizer")
            st.select_slider("Learning rate (log scale)", _options_with(LRS, ss["sb_lr"]), key="sb_lr",
                             format_func=_fmt_lr)
            if ss["sb_optimizer"] == "sgd":
                st.slider("Momentum", 0.0, 0.99, key="sb_momentum", step=0.01)
            st.select_slider("Batch size", _options_with(BATCHES, ss["sb_batch"]), key="sb_batch",
                             format_func=lambda b: "full" if b == 0 else str(b),
                             help="Images per step; 'full' = the whole training set each step, as the "
                                  "tutorial")
            full = resources.mnist_dir() is not None
            sizes = TRAIN_SIZES + (FULL_MNIST_SIZES if full else [])
            st.select_slider("Training images", _options_with(sizes, ss["sb_train_size"]),
                             key="sb_train_size", format_func=lambda n: f"{n:,}",
                             help="Up to 4,000: the shipped subset's stratified training split, validated on "
                                  "the same 1,000 held-out images."
                                  + (" More: the full MNIST from $CNNVIZ_MNIST_DIR, validated on 1,000 t10k "
                                     "images." if full else " For more, set $CNNVIZ_MNIST_DIR to a folder "
                                     "with the MNIST IDX files."))
            c1, c2 = st.columns(2)
            c1.number_input("Seed", 0, 2**31 - 1, key="sb_seed", step=1)
            c2.selectbox("Initial weights", list(INIT_LABELS), format_func=INIT_LABELS.get, key="sb_init")
    pending = _pending(cfg)
    sb.button("Apply" + (" changes" if pending else ""), type="primary" if pending else "secondary",
              on_click=_apply, key="sb_apply", width="stretch",
              help="Rebuild the model with these settings (training starts again from step 0)")
    if pending:
        sb.caption("Settings changed: Apply to rebuild the model.")
    if not common.presentation():
        _config_box(cfg)
        common.model_file_box()


def _config_box(cfg: C.RunConfig) -> None:
    with st.sidebar.expander("Current config (JSON)", expanded=False):
        text = json.dumps(cfg.to_dict(), indent=1)
        st.code(text, language="json")
        st.download_button("Download config", text, file_name=f"cnnviz-{cfg.preset}-seed{cfg.seed}.json",
                           mime="application/json", key="sb_config_download", on_click="ignore",
                           icon=":material/download:")
        st.file_uploader("Load a config (.json)", type=["json"], key="sb_config_file",
                         on_change=common.pass_upload, args=(load_config_upload, "sb_config_file"),
                         help="A config downloaded from cnnviz; values are checked before anything is "
                              "rebuilt")

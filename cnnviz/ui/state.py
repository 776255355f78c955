"""The session's one typed state: ``AppState``, kept under ONE key (``STATE_KEY``) in ``st.session_state``.

Everything a session owns lives here: the settings being edited in the sidebar (``Settings``, pending), the
applied ``RunConfig``, the trainer, the weights a Reset returns to (``Start``), the drawing and the user's
digits, the UI choices (presentation mode, speed, replay position, picks on the pages), the play flag, the
one-shot messages and the Undo stack; per page: the Compare page's runs (``CompareState``), the Inspect page's
selection and draft (``InspectState``), the Lesson's step and picks (``LessonState``), the shared-link flags
(``LinkState``); computed page results go in ``caches``. This module is the only one that reads or writes it
(the pages through its functions, e.g. ``bind``, ``apply_config``, ``replace_weights``, ``undo``).

Widgets display the state and write back through ``on_change`` callbacks (``bind``): before a widget is
drawn its Streamlit key is set from the typed state, and its callback copies the new value back. A widget key
is therefore never the only copy of a value, and Streamlit deleting the state of a widget that was not drawn
in a run (hidden in presentation mode, in a collapsed branch, on another page) can no longer lose or reset
anything.

Reload and reconnect: the AppState object is also kept in a bounded server-side store (``SessionStore``),
keyed by a random 128-bit token held in a ``SameSite=Strict`` cookie (never in the URL, so a copied link
attaches no one to this session). A reload finds the token in ``st.context.cookies`` and takes the same
AppState back (model, history, settings, drawing); the URL keeps the page. The newest tab with the cookie
owns the session; an older tab says so and offers to take it back. A server restart loses every session.

Training and every read of the weights that may race with a live tick run under ``AppState.lock``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import secrets
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from cnnviz.serve import serving
from cnnviz.serve.store import SessionStore
from cnnviz.train import config as C
from cnnviz.train.config import RunConfig, preset_config
from cnnviz.train.trainer import Trainer, TrainingDiverged
from cnnviz.ui import resources, session_guard
from cnnviz.viz.names import PRESET_NAMES, describe_config

STATE_KEY = "cnnviz"
DEFAULT_PRESET = "classroom"
COOKIE = "cnnviz_session"
# The cookie only names the session; the server's store decides how long it is kept (KEEP_MINUTES idle), so
# the cookie may outlive it: a school day, refreshed whenever a tab opens.
COOKIE_MAX_AGE_S = 8 * 3600
KEEP_MINUTES = float(os.environ.get("CNNVIZ_KEEP_MIN", "45"))  # a closed session is kept this long, idle
KEEP_SESSIONS = int(os.environ.get("CNNVIZ_KEEP_SESSIONS", "60"))  # ... and at most this many of them
KEEP_MB = float(os.environ.get("CNNVIZ_KEEP_MB", "400"))  # ... holding at most this much (estimated) memory
UNDO_DEPTH = 3

# Live-training speeds: (seconds between redraws, time budget per redraw, max steps per redraw).
SPEEDS: dict[str, tuple[float, float, int]] = {
    "Slow": (0.5, 0.0, 1),  # one step at a time: watch every update
    "Normal": (0.25, 0.1, 25),
    "Fast": (0.25, 0.15, 200),  # bounded by LIMITS["steps_per_tick"]
}
DEFAULT_SPEED = "Normal"

ARCH_FIELDS = ("n_conv", "filters", "kernel", "activation", "pooling", "padding", "stride")
FIELD_LABELS = {
    "preset": "Preset", "task": "Task", "loss": "Loss", "optimizer": "Optimiser", "lr": "Learning rate",
    "momentum": "Momentum", "batch": "Batch size", "train_size": "Training images", "seed": "Seed",
    "init": "Initial weights", "n_conv": "Conv layers", "filters": "Filters", "kernel": "Filter size",
    "activation": "Activation", "pooling": "Pooling", "padding": "Padding", "stride": "Stride",
}


# ----------------------------------------------------------------------------------------------------------
# The typed state
# ----------------------------------------------------------------------------------------------------------
def arch_of(layers: list[dict]) -> dict:
    """The sidebar's architecture fields read off a layer list (``custom_layers``'s defaults for a network
    without conv layers)."""
    return C.custom_fields(layers) or {"n_conv": 1, "filters": 8, "kernel": 5, "activation": "relu",
                                       "pooling": "none", "padding": 0, "stride": 1}


@dataclass
class Settings:
    """The sidebar's fields: what Apply would build (pending until Apply)."""

    preset: str = DEFAULT_PRESET
    task: str = "digits"
    loss: str = "softmax_ce"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    batch: int = 32
    train_size: int = 2000
    seed: int = 0
    init: str = "default"
    n_conv: int = 1
    filters: int = 8
    kernel: int = 5
    activation: str = "relu"
    pooling: str = "max"
    padding: int = 0
    stride: int = 1

    @classmethod
    def from_config(cls, cfg: RunConfig) -> Settings:
        return cls(preset=cfg.preset, task=cfg.task, loss=cfg.loss, optimizer=cfg.optimizer, lr=float(cfg.lr),
                   momentum=float(cfg.momentum), batch=int(cfg.batch_size), train_size=int(cfg.train_size),
                   seed=int(cfg.seed), init=cfg.init, **arch_of(cfg.layers))

    def to_config_dict(self) -> dict:
        """The config dict these fields describe (validated later by RunConfig.from_dict)."""
        d = {"preset": self.preset, "task": self.task, "loss": self.loss, "optimizer": self.optimizer,
             "lr": float(self.lr), "momentum": float(self.momentum), "batch_size": int(self.batch),
             "train_size": int(self.train_size), "seed": int(self.seed), "init": self.init}
        if self.preset != "custom":
            base = C.preset_config(self.preset)
            body = [dict(s) for s in base.layers]
            flat = next(i for i, s in enumerate(body) if s["type"] == "Flatten")
            n_features = C.layer_shapes(body)[flat][0]
            layers = body[:flat + 1] + C.output_layers(n_features, self.task, self.loss)
            if layers != body:  # task or loss need another output layer: no longer exactly the preset
                d["preset"] = "custom"
            d["layers"] = layers
            d["val_every"] = base.val_every
        else:
            d["layers"] = C.custom_layers(task=self.task, loss=self.loss,
                                          **{k: getattr(self, k) for k in ARCH_FIELDS})
        return d


@dataclass
class Start:
    """The weights a run started from, which Reset returns to."""

    kind: str = "seed"  # "seed" (fresh weights from the config's seed), "pretrained" or "upload"
    name: str = ""  # the pretrained preset or the uploaded file's name

    def describe(self) -> str:
        if self.kind == "pretrained":
            return f"the pretrained {PRESET_NAMES.get(self.name, self.name)} weights"
        if self.kind == "upload":
            return f"the weights uploaded from {self.name}"
        return "fresh weights from the seed"


@dataclass
class UndoEntry:
    """What Undo brings back: the model (the trainer object itself: weights, optimiser, history), the applied
    config, the start weights and what replaced it."""

    what: str
    config: RunConfig
    trainer: Trainer | None
    start: Start


@dataclass
class UI:
    """Choices made on the pages (kept here so that they survive page switches, hidden widgets, reloads)."""

    presentation: bool = False
    speed: str = DEFAULT_SPEED
    replay_step: int | None = None  # None: the replay follows the latest step
    inside_source: str = "Validation image"
    inside_index: int = 0
    draw_model: str = "pretrained"
    eval_which: str = "val"
    eval_cell: dict = field(default_factory=dict)  # task -> [true, predicted]: the confusion cell shown
    eval_click: Any = None  # the last confusion-matrix click handled (each click applies once)
    step_example: str = ""  # the Inside step-through's example ("": the first, the tutorial's)
    step_filter: int = 0  # its learned filter (0-based index; shown as filter 1..F)
    step_pos: dict = field(default_factory=dict)  # example kind -> window position (1-based)
    step_playing: bool = False
    inside_tab: str = "Forward pass"  # the Inside page's open tab
    upload_rev: int = 0  # bumped after each handled upload: a fresh uploader accepts the same file again
    model_note: str | None = None  # "which model is shown" after a page switch changed it
    page: str = "train"  # the page of the last full run


@dataclass
class DrawState:
    """The Draw page's data: the digit, its source, the user's labelled digits, the taught draw model."""

    drawing: np.ndarray | None = None  # (28, 28) float32 in [0, 1]
    source: str = ""  # "canvas" or "upload" ("" before either: e.g. a digit set by a test or script)
    upload_name: str = ""
    upload_error: str | None = None
    user_digits: list = field(default_factory=list)  # [(image (28, 28), label)]
    objects: list = field(default_factory=list)  # the canvas's strokes (to redraw them after a reload)
    canvas_rev: int = 0  # a new canvas key clears the canvas
    initial: dict | None = None  # the strokes a new canvas starts with ({"objects": [...]}, None: empty)
    history: dict = field(default_factory=dict)  # stroke count -> the (28, 28) digit seen then (for Undo)
    label: int = 0  # "This digit is a": the label for "Add to my digits"
    label_for: str = ""  # the digest of the digit that label was proposed for
    taught_net: Any = None  # this session's fine-tuned copy of the pretrained draw model, once taught
    taught_steps: int = 0


@dataclass
class CompareState:
    """The Compare page: its comparison (up to four runs with their trainers), the lesson or pinned source,
    its own play flag, and the settings chosen for the next pinned run (None: the current run's)."""

    cmp: Any = None  # cnnviz.train.compare.Comparison, built on the first visit
    source: str = "sigmoid vs ReLU"
    playing: bool = False
    lr: float | None = None
    activation: str | None = None
    pooling: str | None = None
    init: str | None = None


@dataclass
class InspectState:
    """The Inspect page: the filter on show (conv, filter), both from 0, and the draft change of it (a
    proposal only: the model changes on "Keep these weights" alone, through ``replace_weights``)."""

    selection: tuple[int, int] = (0, 0)
    # {"mode", "factor", "kernel" (KH, KW) or None, "channel", "rev", "target": (conv, filter, model_rev)}
    draft: dict | None = None


@dataclass
class LessonState:
    """The Lesson page: the step shown, the digit picked with "Another digit" (seed, validation index), and
    the window positions of step 2's sliders."""

    step: int = 1
    pick: tuple[int, int] | None = None
    tut_pos: int = 1
    real_pos: int | None = None  # None: the position where the filter responds most


@dataclass
class LinkState:
    """Shared links: which browser tab already read its URL (a link is read once per tab, and a reload that
    restores this session must not apply it again over the restored work), the messages of opening one, and
    whether the share box shows a link."""

    read_by: str = ""  # the Streamlit session key of the tab that read the URL
    messages: list = field(default_factory=list)  # [(kind, text)]
    share_on: bool = False


@dataclass
class AppState:
    """One browser session's whole state (see the module docstring)."""

    config: RunConfig
    settings: Settings
    trainer: Trainer | None = None
    start: Start = field(default_factory=Start)
    playing: bool = False
    error: str | None = None
    notice: str | None = None
    warning: str | None = None  # e.g. "trained, but the run is not learning": neither an error nor a success
    undo: list[UndoEntry] = field(default_factory=list)
    model_rev: int = 0
    ui: UI = field(default_factory=UI)
    draw: DrawState = field(default_factory=DrawState)
    compare: CompareState = field(default_factory=CompareState)
    inspect: InspectState = field(default_factory=InspectState)
    lesson: LessonState = field(default_factory=LessonState)
    link: LinkState = field(default_factory=LinkState)
    health_fixed: bool = False  # a health fix was clicked in the live fragment: redraw the whole app
    caches: dict = field(default_factory=dict)  # per-page computed results, keyed by what they depend on
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    token: str = ""  # the cookie's value (never shown, never in a URL)
    owner: str = ""  # the Streamlit session (browser tab) that owns this state now


def new_state() -> AppState:
    cfg = preset_config(DEFAULT_PRESET)
    return AppState(config=cfg, settings=Settings.from_config(cfg))


# ----------------------------------------------------------------------------------------------------------
# Where the state lives: st.session_state[STATE_KEY], and the server's store for reloads
# ----------------------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def store() -> SessionStore:
    """The server's bounded store of sessions for reloads (created once per process, shared by design)."""
    return SessionStore(ttl_s=KEEP_MINUTES * 60.0, max_entries=KEEP_SESSIONS, max_bytes=KEEP_MB * 2**20,
                        weigh=weigh)


def _nbytes(obj, depth: int = 0) -> int:
    """Bytes of the arrays in a cache value (arrays, or tuples/lists/dicts/objects holding them)."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if depth > 3:
        return 0
    if isinstance(obj, dict):
        return sum(_nbytes(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v, depth + 1) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(_nbytes(v, depth + 1) for v in vars(obj).values())
    return 0


def _trainer_bytes(tr: Trainer | None) -> int:
    if tr is None:
        return 0
    n = sum(p.nbytes for _, p in tr.net.named_params()) * 3  # two optimiser moments, the divergence backup
    for layer in tr.net.layers:  # weights, gradients and the arrays each layer keeps from its last forward
        for v in vars(layer).values():
            if isinstance(v, np.ndarray):
                n += v.nbytes
            elif isinstance(v, dict):
                n += sum(x.nbytes for x in v.values() if isinstance(x, np.ndarray))
    n += sum(sn.filters.nbytes + sn.grads.nbytes for sn in getattr(tr, "snapshots", ()))
    n += len(tr.history) * 400  # a StepRecord with its per-parameter norms
    x = getattr(tr, "_x", None)
    data = getattr(tr, "data", None)
    # its own copy (user digits added), not the shared data
    if x is not None and x is not getattr(data, "x_train", None):
        n += x.nbytes
    return n


def weigh(a: AppState) -> int:
    """Estimated bytes a kept session holds: its model and those on its Undo stack, the Compare page's runs
    (each a trainer), the taught draw model and the pages' cached results (an Inspect page's layer outputs
    on the validation images are megabytes)."""
    undone = sum(_trainer_bytes(e.trainer) for e in a.undo if e.trainer is not a.trainer)
    cmp = a.compare.cmp
    runs = sum(_trainer_bytes(r.trainer) for r in cmp.runs) if cmp is not None else 0
    taught = a.draw.taught_net
    taught_b = sum(p.nbytes for _, p in taught.named_params()) * 3 if taught is not None else 0
    return _trainer_bytes(a.trainer) + undone + runs + taught_b + _nbytes(a.caches)


def _cookie_token() -> str | None:
    try:
        tok = st.context.cookies.get(COOKIE)
    except Exception:  # no request (AppTest, bare mode): no cookie
        return None
    return tok if isinstance(tok, str) and len(tok) == 32 else None


def _set_cookie_js(token: str) -> None:
    """Give the browser the session's cookie: random, 128-bit, SameSite=Strict, never in a URL."""
    max_age = COOKIE_MAX_AGE_S
    st.html(f"<script>document.cookie = '{COOKIE}={token}; Path=/; Max-Age={max_age}; SameSite=Strict'"
            " + (location.protocol === 'https:' ? '; Secure' : '');</script>", unsafe_allow_javascript=True)


def init() -> AppState:
    """This run's AppState: the session's own, one taken back from the store (reload), or a new one."""
    ss = st.session_state
    app = ss.get(STATE_KEY)
    if app is None:
        tok = _cookie_token()
        app = store().get(tok) if tok else None
        restored = app is not None
        if app is None:
            app = new_state()
            app.token = secrets.token_hex(16)  # 128 random bits
        ss[STATE_KEY] = app
        app.owner = session_guard.session_key()
        store().put(app.token, app)
        if restored:
            app.playing = False  # training waits for the user after a reload
            app.compare.playing = False
            steps = app.trainer.step_count if app.trainer else 0
            app.notice = " ".join(filter(None, [app.notice, f"Welcome back: your model (step {steps:,}), its "
                                                "history and your settings were kept."]))
    return app


def app() -> AppState:
    """The session's AppState (creating it on first use)."""
    a = st.session_state.get(STATE_KEY)
    return a if a is not None else init()


def attach_cookie() -> None:
    """Call once per full run (app.py): sets the cookie in a tab's first run, and again in every run while
    the tab's connection did not bring it (``st.context.cookies`` is read when the tab connects, so a first
    run interrupted before the snippet ran gets another chance); keeps the store fresh."""
    a = app()
    ss = st.session_state
    if _cookie_token() != a.token or not ss.get("_cookie_sent"):
        _set_cookie_js(a.token)
        ss["_cookie_sent"] = True
    store().put(a.token, a)  # marks it used (and puts it back if the store had to let it go)


def owns_session() -> bool:
    """False when a newer browser tab took this session over (this tab then only shows a message, and its
    clicks change nothing). Always True outside a script run (tests driving the state directly)."""
    if not _in_script():
        return True
    a = app()
    return not a.owner or a.owner == session_guard.session_key()


def take_over() -> None:
    app().owner = session_guard.session_key()


def page_switched(page: str) -> None:
    """Record the page of this run; leaving Train pauses live training (it only runs while Train is open),
    and leaving the Draw page while it showed the pretrained draw model says which model the next page
    shows."""
    a = app()
    prev, a.ui.page = a.ui.page, page
    if prev == page:
        return
    if page != "train" and a.playing:
        a.playing = False
        a.notice = "Live training paused: it runs while the Train page is open. Press Play there to continue."
    if page != "compare":
        a.compare.playing = False  # the Compare page's runs, too, train only while it is open
    if prev == "draw" and a.ui.draw_model == "pretrained" and page in ("inside", "gradients", "evaluate"):
        tr = a.trainer
        a.ui.model_note = ("This page shows this session's model ("
                           + (f"step {tr.step_count:,}, " if tr is not None else "")
                           + f"{describe_config(a.config)}), not the pretrained draw model the Draw page "
                           "used.")


# ----------------------------------------------------------------------------------------------------------
# Widgets <-> state
# ----------------------------------------------------------------------------------------------------------
def _resolve(path: str) -> tuple[object, str]:
    obj: object = app()
    *parts, last = path.split(".")
    for p in parts:
        obj = getattr(obj, p)
    return obj, last


def get(path: str):
    obj, last = _resolve(path)
    return getattr(obj, last)


def put(path: str, value) -> None:
    obj, last = _resolve(path)
    setattr(obj, last, value)


def bind(path: str, key: str, after=None, convert=None) -> dict:
    """Widget kwargs that show ``path`` of the AppState (e.g. "settings.lr") under widget key ``key`` and copy
    a change back (then call ``after()``). Sets the widget's value from the state before it is drawn."""
    st.session_state[key] = get(path)

    def _changed() -> None:
        v = st.session_state.get(key)
        if v is None or not owns_session():
            return
        put(path, convert(v) if convert else v)
        if after is not None:
            after()

    return {"key": key, "on_change": _changed}


# ----------------------------------------------------------------------------------------------------------
# Reading the model
# ----------------------------------------------------------------------------------------------------------
def get_config() -> RunConfig:
    """The session's applied RunConfig."""
    return app().config


def _in_script() -> bool:
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    return get_script_run_ctx() is not None


def _heavy():
    """A fair CPU slot for heavy work in a script run; outside one (tests driving the state) no limiter."""
    return session_guard.heavy_work() if _in_script() else nullcontext()


def get_trainer() -> Trainer:
    """The session's Trainer, built from the applied config on first use."""
    a = app()
    if a.trainer is None:
        cfg = a.config
        with _heavy():  # its first validation pass: in a fair CPU slot
            a.trainer = Trainer(cfg, resources.dataset(cfg.task, cfg.train_size))
    return a.trainer


def lock() -> threading.Lock:
    return app().lock


def model_rev() -> int:
    return app().model_rev


def set_error(msg: str) -> None:
    app().error = msg


def set_notice(msg: str) -> None:
    app().notice = msg


def set_warning(msg: str) -> None:
    app().warning = msg


def pop_warning() -> str | None:
    a = app()
    msg, a.warning = a.warning, None
    return msg


def pop_messages() -> tuple[str | None, str | None]:
    a = app()
    err, note = a.error, a.notice
    a.error = a.notice = None
    return err, note


# ----------------------------------------------------------------------------------------------------------
# Changing the model: every replacement goes through _install and can be undone
# ----------------------------------------------------------------------------------------------------------
def _push_undo(a: AppState, what: str) -> None:
    a.undo.append(UndoEntry(what, a.config, a.trainer, a.start))
    del a.undo[:-UNDO_DEPTH]  # the oldest go first: at most UNDO_DEPTH models are kept per session


def _install(a: AppState, cfg: RunConfig, what: str, net=None, start: Start | None = None) -> None:
    """Build a trainer for ``cfg`` (on ``net``'s weights if given) and make it the session's model; the old
    one goes on the Undo stack. Raises ValueError, before anything is replaced, for a too costly network."""
    if not owns_session():
        raise ValueError("this session continues in another tab")
    serving.check_server_cost(cfg)  # no single step may hold a shared server's CPU for long
    with _heavy():
        trainer = Trainer(cfg, resources.dataset(cfg.task, cfg.train_size), net=net)
    _replay_user_digits(a, trainer)
    with a.lock:
        _push_undo(a, what)
        a.config = cfg
        a.trainer = trainer
        a.start = start or Start()
        a.settings = Settings.from_config(cfg)
        a.playing = False
        a.ui.replay_step = None
        a.model_rev += 1


def _replay_user_digits(a: AppState, trainer: Trainer) -> None:
    """Give a rebuilt trainer the user's own digits again (the Draw page's "teach it")."""
    digits = a.draw.user_digits
    if not digits:
        return
    images = np.stack([np.asarray(im, dtype=np.float32) for im, _ in digits])[:, None]  # (n, 1, 28, 28)
    labels = np.array([int(lab) for _, lab in digits], dtype=np.int64)
    try:
        trainer.add_examples(images, labels)
    except ValueError as e:
        a.error = f"Your digits could not be added to the new model: {e}"


def pending_changes(a: AppState | None = None) -> list[tuple[str, str, str]]:
    """(field label, applied value, pending value) for every field that Apply would change."""
    a = a or app()
    applied = Settings.from_config(a.config)
    out = []
    for f in dataclasses.fields(Settings):
        old, new = getattr(applied, f.name), getattr(a.settings, f.name)
        if old != new and not (f.name == "momentum" and a.settings.optimizer != "sgd"
                               and applied.optimizer != "sgd"):
            out.append((FIELD_LABELS[f.name], _fmt_field(f.name, old), _fmt_field(f.name, new)))
    return out


def _fmt_field(name: str, v) -> str:
    if name == "batch":
        return "full" if v == 0 else str(v)
    if name == "train_size":
        return f"{v:,}"
    if name in ("lr", "momentum"):
        return f"{v:g}"
    return {"softmax_ce": "softmax cross-entropy", "mse": "mean squared error", "bce": "binary cross-entropy",
            "gt4": "0–4 vs 5–9", "digits": "10 digits", "sgd": "SGD", "adam": "Adam"}.get(v, str(v))


def apply_settings(a: AppState | None = None) -> bool:
    """Apply: rebuild the model from the pending settings. Never raises; a bad value keeps the current model
    and leaves an error message. Returns True if the model was rebuilt."""
    a = a or app()
    if not pending_changes(a):
        a.notice = "Nothing to apply: the settings are those of the current model, which is kept."
        return False
    try:
        d = a.settings.to_config_dict()
    except (ValueError, KeyError, TypeError, StopIteration) as e:
        a.error = f"Configuration not applied: {e}. The current model is kept."
        return False
    if apply_config(d, "Apply", a) is None:
        return False
    a.notice = f"Rebuilt: {describe_config(a.config)}. Undo brings back the previous model."
    return True


def apply_config(d: dict, what: str = "Apply", a: AppState | None = None) -> RunConfig | None:
    """Validate ``d`` with RunConfig.from_dict and rebuild the trainer; on a bad value keep the current model.

    Returns the new config, or None (and an error message for the page) if it was rejected.
    """
    a = a or app()
    try:
        cfg = RunConfig.from_dict(d, max_train_size=resources.max_train_size())
        _install(a, cfg, what)
    except (ValueError, TypeError, KeyError) as e:
        a.error = f"Configuration not applied: {e}. The current model is kept."
        return None
    return cfg


def load_config_bytes(name: str, raw: bytes, a: AppState | None = None) -> bool:
    """Apply an uploaded JSON config; True on success, else a message and the current model is kept."""
    a = a or app()
    try:
        if len(raw) > 200_000:
            raise ValueError("the file is larger than 200 kB; a config is a small JSON object")
        d = json.loads(raw.decode("utf-8"))
        if not isinstance(d, dict):
            raise ValueError("a config is a JSON object")
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as e:  # deep nesting too
        a.error = f"Config file '{name}' not loaded: {e}. The current model is kept."
        return False
    if apply_config(d, f"the config {name}", a) is None:
        return False
    a.notice = f"Config loaded from {name}: {describe_config(a.config)}. Undo brings back the previous model."
    return True


def config_for_network(net, cfg_dict, a: AppState | None = None) -> RunConfig:
    """A validated RunConfig for a network from a file: the file's own config, or one inferred from it."""
    from cnnviz.train.config import normalize_layer

    a = a or app()
    spec = net.spec()
    limit = resources.max_train_size()
    if cfg_dict is not None:
        cfg = RunConfig.from_dict(dict(cfg_dict), max_train_size=limit)
        if cfg.layers != [normalize_layer(s, i) for i, s in enumerate(spec)]:
            # the file's config describes another network than its weights: trust the weights
            cfg = RunConfig.from_dict({**cfg.to_dict(), "preset": "custom", "layers": spec},
                                      max_train_size=limit)
        return cfg
    cur = a.config.to_dict()
    last = spec[-1]["type"]
    k = next((s["out_features"] for s in reversed(spec) if s["type"] == "Dense"), None)
    task = "digits" if k == 10 else "gt4"
    loss = ("mse" if cur["loss"] != "bce" else "bce") if last == "Sigmoid" else "softmax_ce"
    return RunConfig.from_dict({**cur, "preset": "custom", "layers": spec, "task": task, "loss": loss},
                               max_train_size=limit)


MAX_MODEL_BYTES = 5 * 2**20  # same as server.maxUploadSize in .streamlit/config.toml


def load_model_bytes(name: str, raw: bytes, a: AppState | None = None) -> bool:
    """Replace the session's model by an uploaded .npz (validated by model_file); True on success.

    Any problem (not a model, corrupt, wrong shapes, NaN weights, a config out of range, too large) leaves a
    clear message and keeps the current model. Reset then returns to the uploaded weights.
    """
    from cnnviz.train import model_file as io

    a = a or app()
    try:
        if len(raw) > MAX_MODEL_BYTES:
            raise ValueError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is "
                             f"{MAX_MODEL_BYTES / 2**20:.0f} MB")
        net, cfg_dict, session = io.session_from_bytes(raw)
        cfg = config_for_network(net, cfg_dict, a)
        _install(a, cfg, f"loading {name}", net, Start("upload", name))
        if session is not None:  # a file downloaded from cnnviz: its curves and step count continue
            io.restore_session(a.trainer, session)
    except (ValueError, TypeError, KeyError) as e:
        a.error = f"Model file '{name}' not loaded: {e}. The current model is kept."
        return False
    a.notice = (f"Model loaded from {name} ({net.n_params:,} parameters): {describe_config(cfg)}. Undo "
                "brings back the previous model.")
    return True


def load_pretrained(preset: str, a: AppState | None = None) -> bool:
    """Replace the session's model by a private copy of the shipped ``assets/models/{preset}.npz``."""
    a = a or app()
    shipped = resources.pretrained(preset)
    if shipped is None:
        a.error = f"No pretrained model ships for the preset '{preset}'."
        return False
    net, cfg_dict = shipped
    try:
        label = PRESET_NAMES.get(preset, preset)
        _install(a, config_for_network(net, cfg_dict, a), f"the pretrained {label} weights", net.copy(),
                 Start("pretrained", preset))
    except ValueError as e:
        a.error = f"Pretrained model not loaded: {e}. The current model is kept."
        return False
    a.notice = (f"Loaded the pretrained {PRESET_NAMES.get(preset, preset)} model: training continues from "
                "its trained weights. Undo brings back the previous model.")
    return True


def reset(a: AppState | None = None) -> None:
    """Back to step 0 from the weights the run started from (seeded, pretrained or uploaded); stops live
    training. The model before the Reset can be brought back with Undo."""
    a = a or app()
    if not owns_session():
        return
    tr = a.trainer if a.trainer is not None else get_trainer()
    with _heavy():
        new = Trainer(a.config, tr.data, net=tr._initial_net)  # the start weights (None: from the seed)
    _replay_user_digits(a, new)
    with a.lock:
        _push_undo(a, "Reset")
        a.trainer = new
        a.playing = False
        a.ui.replay_step = None
        a.model_rev += 1
    a.notice = f"Reset: back to step 0 from {a.start.describe()}, history cleared. Undo brings it back."


def _copy_trainer(tr: Trainer) -> Trainer:
    """A deep copy of ``tr`` (weights, optimiser, history) sharing its dataset (shared, never copied)."""
    memo: dict = {id(tr.data): tr.data}
    if getattr(tr, "parallel", None) is not None:  # a worker pool (threads, locks): shared, not copied
        memo[id(tr.parallel)] = tr.parallel
    for v in vars(tr.data).values():
        memo[id(v)] = v
    for name in ("_x", "_y_digits"):  # the dataset's own arrays when no user digits were added
        v = getattr(tr, name, None)
        if v is not None and any(v is w for w in vars(tr.data).values()):
            memo[id(v)] = v
    return copy.deepcopy(tr, memo)


def replace_weights(net, reason: str, a: AppState | None = None) -> bool:
    """Make ``net``'s parameters (same shapes) the session model's weights: the Inspect page's "Keep these
    weights". The model before goes on the Undo stack (a copy: the trainer itself continues with the new
    weights, its history kept); its latest validation entry is measured again for the new weights. Runs under
    the model lock; returns False (and an error message) when the model is busy or the weights do not fit."""
    a = a or app()
    if not owns_session():
        return False
    tr = get_trainer()
    if not a.lock.acquire(timeout=5.0):
        a.error = "The model is busy (training); the change was not kept. Pause and try again."
        return False
    try:
        before = _copy_trainer(tr)
        try:
            tr.net.set_params(dict(net.named_params()))
        except (ValueError, KeyError) as e:
            a.error = f"The weights were not kept: {e}."
            return False
        # the validation entry of this step described the old weights: measure the kept ones instead
        loss, acc, _ = tr.evaluate(tr.data.x_val, tr.data.y_val)
        if tr.val_history and tr.val_history[-1][0] == tr.step_count:
            tr.val_history[-1] = (tr.step_count, loss, acc)
        else:
            tr.val_history.append((tr.step_count, loss, acc))
        a.undo.append(UndoEntry(reason, a.config, before, a.start))
        del a.undo[:-UNDO_DEPTH]
        a.ui.replay_step = None
        a.model_rev += 1
    finally:
        a.lock.release()
    return True


def undo(a: AppState | None = None) -> bool:
    """Bring back the model, history, config and start weights from before the last Apply, Reset, upload or
    pretrained load. Returns False when there is nothing to undo."""
    a = a or app()
    if not owns_session():
        return False
    if not a.undo:
        a.error = "Nothing to undo."
        return False
    with a.lock:
        e = a.undo.pop()
        a.config, a.trainer, a.start = e.config, e.trainer, e.start
        a.settings = Settings.from_config(e.config)
        a.playing = False
        a.ui.replay_step = None
        a.model_rev += 1
    steps = a.trainer.step_count if a.trainer is not None else 0
    a.notice = f"Undone: {e.what}. The previous model is back (step {steps:,}): {describe_config(a.config)}."
    return True


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------
def train(max_steps: int, budget_s: float | None = None, live: bool = False, status=None,
          wait: bool = True, redraw: tuple[float, float] | None = None) -> int:
    """Run up to ``max_steps`` steps, stopping before one that would overrun ``budget_s``; returns steps done.

    The work runs inside one of the server's fair CPU slots (``session_guard.training_slot``; ``live`` = a
    Play tick, which shows its place in line while waiting). Divergence stops live training and leaves a
    clear message; the trainer has already restored the last good weights. If another run of this session
    holds the model, or no CPU slot came free in time, nothing is done (returns 0). ``status``: the
    placeholder for a live tick's status line. ``wait=False``: neither wait for a CPU slot nor for the model.
    ``redraw``: (interval running, the speed's own) for the status line.
    """
    a = app()
    tr = get_trainer()
    live = live or a.playing  # while playing, every call is a live tick
    if not owns_session():  # another tab took this session over: this one trains nothing
        return 0
    if live and session_guard.unattended():
        a.playing = False
        session_guard.leave_line()
        a.notice = (f"Live training paused after {session_guard.IDLE_PAUSE_S / 60:.0f} minutes without any "
                    "interaction, to leave the CPU to others. Press Play to continue.")
        return 0
    done = 0
    with session_guard.training_slot(live, status=status, max_wait_s=None if wait else 0.0,
                                     redraw=redraw) as slot:
        if not slot.granted:
            if not live:
                a.error = ("The server is busy: no CPU slot came free within "
                           f"{session_guard.CLICK_WAIT_S:.0f} s. Nothing was trained; please try again.")
            return 0
        if not a.lock.acquire(timeout=5.0 if wait else 0.0):
            return 0
        try:
            t0 = last = time.perf_counter()
            while done < max_steps:
                tr.step()
                done += 1
                now = time.perf_counter()
                # stop before a step that would overrun the budget (a step's time is its predecessor's)
                if budget_s is not None and (now - t0) + (now - last) > budget_s:
                    break
                last = now
        except TrainingDiverged as e:
            a.playing = False
            a.error = str(e)
        finally:
            a.lock.release()
    return done


@contextmanager
def reading():
    """Hold the session's model lock while reading weights that a live tick may be updating."""
    with app().lock:
        yield

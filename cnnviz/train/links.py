"""Links that open a configuration: a RunConfig (plus a page and a lesson step) <-> URL query parameters.

A link carries settings only (preset, architecture, training settings, seed, page, lesson step): never
weights, a model file or anything that identifies a session, so handing it to a class gives nobody access to
anyone's work. Only the settings that differ from the preset's defaults are written, so links stay short.

Reading a link is the gate for text anyone can edit: every parameter is parsed strictly (integers must be
integers, numbers must be finite), checked against the same limits as a config file (``LIMITS`` and the
config's own checks, then ``RunConfig.from_dict`` on the whole), and a bad, tampered or unknown parameter
is dropped with a clear message so that its default applies. If the parameters are fine one by one but
not together (e.g. too much memory), the preset's defaults apply with a message. Pure Python: no Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cnnviz.train import config as C

# Query parameter -> RunConfig field, for the training settings (names short enough to type by hand).
SETTINGS: dict[str, str] = {
    "task": "task", "loss": "loss", "optimizer": "optimizer", "lr": "lr", "momentum": "momentum",
    "batch": "batch_size", "train": "train_size", "seed": "seed", "init": "init", "decay": "lr_decay",
    "val": "val_every",
}
FLOAT_SETTINGS = ("lr", "momentum", "decay")
# Query parameter -> argument of ``config.custom_layers`` (the sidebar's architecture fields).
ARCH: dict[str, str] = {
    "filters": "filters", "kernel": "kernel", "conv": "n_conv", "activation": "activation",
    "pooling": "pooling", "padding": "padding", "stride": "stride",
}
INT_ARCH = ("filters", "kernel", "conv", "padding", "stride")
ORDER = ("preset", *ARCH, *SETTINGS, "page", "step")  # the order a link lists its parameters in
IGNORED = ("embed", "embed_options")  # Streamlit's own display options, not settings
MAX_VALUE_CHARS = 40  # a setting is a short word or number; anything longer is tampering
MAX_PARAMS = 40


@dataclass
class LinkResult:
    """What a link asked for, after validation.

    config: the RunConfig to start with (None when the link carries no setting at all: keep the session's);
    page: a page's url path or None; step: a 1-based lesson step or None; problems: one message per bad,
    tampered or unknown parameter (empty when everything was accepted).
    """

    config: C.RunConfig | None = None
    page: str | None = None
    step: int | None = None
    problems: list[str] = field(default_factory=list)


def arch_of(cfg: C.RunConfig) -> dict | None:
    """The ``custom_layers`` arguments that rebuild ``cfg.layers`` exactly, or None if no such arguments
    exist (e.g. an uploaded network with different filter counts per layer: a link cannot describe it)."""
    layers = cfg.layers
    arch = C.custom_fields(layers)
    if arch is None:
        return None
    try:
        rebuilt = C.custom_layers(task=cfg.task, loss=cfg.loss, **arch)
    except ValueError:
        return None
    norm = [C.normalize_layer(s, k) for k, s in enumerate(layers)]
    return arch if rebuilt == [C.normalize_layer(s, k) for k, s in enumerate(rebuilt)] == norm else None


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def to_params(cfg: C.RunConfig, page: str | None = None, step: int | None = None) -> dict[str, str]:
    """Query parameters describing ``cfg`` (and optionally a page and a lesson step), as strings.

    Only what differs from the preset's defaults is written; a custom network is written as the sidebar's
    architecture fields. Raises ValueError for a custom network that those fields cannot describe.
    """
    out: dict[str, str] = {"preset": cfg.preset}
    if cfg.preset == "custom":
        arch = arch_of(cfg)
        if arch is None:
            raise ValueError("this network cannot be written as a link (its layers are not one of the "
                             "sidebar's architectures); download the config file instead")
        base = C.preset_config("custom")
        base_arch = arch_of(base) or {}
        for p, a in ARCH.items():
            if arch[a] != base_arch.get(a):
                out[p] = _fmt(arch[a])
        base_d = base.to_dict()
    else:
        base_d = C.preset_config(cfg.preset).to_dict()
    d = cfg.to_dict()
    for p, f in SETTINGS.items():
        if d[f] != base_d[f]:
            out[p] = _fmt(d[f])
    if page:
        out["page"] = page
    if step is not None:
        out["step"] = str(int(step))
    return out


def _parse_int(name: str, s: str) -> int:
    t = s.strip()
    if not t.lstrip("-+").isdigit():
        raise ValueError(f"{name} must be a whole number, got {s!r}")
    return int(t)


def _parse_float(name: str, s: str) -> float:
    try:
        v = float(s.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {s!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {s!r}")
    return v


def _one(params: dict[str, str | list[str]], key: str, problems: list[str]) -> str | None:
    """The single string value of ``key`` (a repeated parameter is tampering: its last value is used)."""
    v = params.get(key)
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        if not v:
            return None
        if len(v) > 1:
            problems.append(f"'{key}' is given {len(v)} times: the last value is used")
        v = v[-1]
    v = str(v)
    if len(v) > MAX_VALUE_CHARS:
        problems.append(f"'{key}' is {len(v)} characters long, longer than any setting: ignored, the "
                        "default is used")
        return None
    return v


def from_params(params: dict, pages: tuple[str, ...] = (), n_steps: int = 0,
                default_preset: str = "classroom",
                max_train_size: int = C.TRAIN_SIZE_SUBSET_MAX) -> LinkResult:
    """Read a link's query parameters (``st.query_params.to_dict()`` or parsed lists) into a LinkResult.

    pages: the url paths a ``page`` may name; n_steps: the lesson's number of steps (``step`` is 1..n_steps).
    Every value is checked on its own with the config's own checks (``LIMITS``, the allowed names,
    ``custom_layers`` for the architecture), then all together with ``RunConfig.from_dict``, the gate a
    config file passes too; each problem gives a message and its setting keeps the default.
    """
    res = LinkResult()
    problems = res.problems
    keys = [k for k in params if k not in IGNORED]
    unknown = [k for k in keys if k not in ORDER]
    if len(keys) > MAX_PARAMS:
        problems.append(f"the link has {len(keys)} parameters, more than any setting needs: it is ignored")
        return res
    for k in unknown:
        shown = k if len(k) <= MAX_VALUE_CHARS else k[:MAX_VALUE_CHARS] + "…"
        problems.append(f"unknown parameter '{shown}' ignored (a link may carry: {', '.join(ORDER)})")

    _read_place(params, res, pages, n_steps)

    preset = _one(params, "preset", problems)
    if preset is not None and preset not in C.PRESETS:
        problems.append(f"unknown preset '{preset}': choose one of {', '.join(C.PRESETS)}; "
                        f"'{default_preset}' is used")
        preset = None
    has_setting = any(k in params for k in (*ARCH, *SETTINGS))
    if preset is None and not has_setting:
        return res
    preset = preset or default_preset

    settings = _read_settings(params, problems, max_train_size)
    base_arch = arch_of(C.preset_config(preset)) or arch_of(C.preset_config("custom")) or {}
    arch_given = _read_arch(params, problems, base_arch)

    fallback = preset if preset != "custom" else default_preset
    base = C.preset_config(preset).to_dict()
    d: dict[str, object] = {**base, **settings}
    task, loss = str(d["task"]), str(d["loss"])
    if arch_given or preset == "custom" or (task, loss) != (base["task"], base["loss"]):
        d["preset"] = "custom"
        try:
            if arch_given or preset == "custom":
                d["layers"] = C.custom_layers(task=task, loss=loss, **{**base_arch, **arch_given})
            else:  # the preset's network with the head that the task and loss need (as the sidebar does)
                body = [dict(s) for s in base["layers"]]
                flat = next(i for i, s in enumerate(body) if s["type"] == "Flatten")
                d["layers"] = body[:flat + 1] + C.output_layers(C.layer_shapes(body)[flat][0], task, loss)
        except ValueError as e:
            problems.append(f"the network in the link does not work: {e}; the '{fallback}' preset is used")
            d = {**C.preset_config(fallback).to_dict(),
                 **{k: v for k, v in settings.items() if k not in ("task", "loss")}}
    try:
        res.config = C.RunConfig.from_dict(d, max_train_size=max_train_size)
    except ValueError as e:
        problems.append(f"these settings do not work together: {e}; the '{fallback}' preset's defaults "
                        "are used")
        res.config = C.preset_config(fallback)
    return res


def _read_place(params: dict, res: LinkResult, pages: tuple[str, ...], n_steps: int) -> None:
    """The link's page and lesson step, each checked on its own (a bad one keeps the default)."""
    problems = res.problems
    page = _one(params, "page", problems)
    if page is not None:
        if page in pages:
            res.page = page
        else:
            problems.append(f"page '{page}' does not exist: choose one of {', '.join(pages)}")
    step = _one(params, "step", problems)
    if step is not None:
        try:
            n = _parse_int("step", step)
            if not 1 <= n <= n_steps:
                raise ValueError(f"lesson step {n} does not exist: the lesson has steps 1..{n_steps}")
            res.step = n
        except ValueError as e:
            problems.append(str(e))


def _read_settings(params: dict, problems: list[str], max_train_size: int) -> dict[str, object]:
    """The training settings the link gives, each parsed and checked on its own."""
    settings: dict[str, object] = {}
    for p, f in SETTINGS.items():
        raw = _one(params, p, problems)
        if raw is None:
            continue
        try:
            if p in FLOAT_SETTINGS:
                v: object = _parse_float(p, raw)
            elif f in ("task", "loss", "optimizer", "init"):
                v = raw
            else:
                v = _parse_int(p, raw)
            _check_setting(f, v, max_train_size)
            settings[f] = v
        except ValueError as e:
            problems.append(f"{_msg(p, e)}; the default is used")
    return settings


def _read_arch(params: dict, problems: list[str], base_arch: dict) -> dict[str, object]:
    """The architecture fields the link gives, each checked by building the network with it."""
    arch_given: dict[str, object] = {}
    for p, a in ARCH.items():
        raw = _one(params, p, problems)
        if raw is None:
            continue
        try:
            v = _parse_int(p, raw) if p in INT_ARCH else raw
            C.custom_layers(**{**base_arch, a: v})
            arch_given[a] = v
        except (ValueError, TypeError) as e:
            problems.append(f"{_msg(p, e)}; the default is used")
    return arch_given


def _check_setting(f: str, v: object, max_train_size: int) -> None:
    """One training setting on its own, with the config's own checks and LIMITS (combinations, such as the
    memory a step needs, are checked by ``RunConfig.from_dict`` on the whole link)."""
    if f in ("task", "loss", "optimizer", "init"):
        C._choice(f, v, {"task": C.TASKS, "loss": C.LOSSES, "optimizer": C.OPTIMIZERS, "init": C.INITS}[f])
    elif f == "train_size":
        lo = int(C.LIMITS["train_size"][0])
        if not lo <= int(v) <= max_train_size:
            raise ValueError(f"train_size = {v} is out of range: allowed {lo}..{max_train_size}")
    else:
        C._in_range(f, v)


def _msg(param: str, e: Exception) -> str:
    """A problem message that names the link's parameter (the config's own message may use the field)."""
    text = str(e)
    return text if text.startswith(param) else f"'{param}': {text}"

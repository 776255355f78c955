"""Model files: ``.npz`` holding a JSON spec and the weights, read without pickle and validated throughout.

Layout (a zip, as ``np.savez_compressed`` writes it): ``spec.npy`` is a uint8 array of UTF-8 JSON
``{"format": "cnnviz-model", "version": 1, "layers": [...], "params": {"0.W": {"shape": [...],
"dtype": "<f4"}, ...}, "config": {...} | null, "extra": {...} | null}``, and every parameter is
``<layer>.<key>.npy``.

Loading trusts nothing: the zip's declared sizes are checked before anything is decompressed (zip bombs),
each array's ``.npy`` header (dtype, shape) is checked against the spec before its data is read (no object
arrays, no pickles, no huge allocations), the spec's layers are checked against ``config.LIMITS``, and
the values must be finite. Anything else raises ``ValueError`` with a clear message.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from typing import IO

import numpy as np

from cnnviz.nn.network import Network, from_spec
from cnnviz.train.config import TRAIN_SIZE_IDX_MAX, RunConfig, layer_shapes, normalize_layer, spec_layers

FORMAT = "cnnviz-model"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 64 * 2**20  # a model file; LIMITS allow 2M parameters = 16 MB in float64
MAX_SPEC_BYTES = 1 * 2**20  # the JSON spec (layers, config and any extra metadata)
MAX_HEADER_BYTES = 4096  # one .npy header
ALLOWED_DTYPES = (np.dtype("<f4"), np.dtype("<f8"))
SPEC_MEMBER = "spec.npy"

__all__ = ["save_model", "load_model", "load_model_and_config", "load_model_full", "model_to_bytes",
           "session_to_bytes", "session_from_bytes", "session_extra", "restore_session",
           "model_from_bytes", "param_shapes", "FORMAT_VERSION"]


def param_shapes(layers: list[dict]) -> dict[str, tuple[int, ...]]:
    """Expected parameter shapes of a valid spec, as each layer gives them:
    {"0.W": (F, C, KH, KW), "0.b": (F,), "3.W": (in, out), ...}."""
    return {f"{i}.{key}": shape for i, layer in enumerate(spec_layers(layers))
            for key, shape in layer.param_shapes().items()}


# ----------------------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------------------
def _config_dict(config) -> dict | None:
    if config is None:
        return None
    if isinstance(config, RunConfig):
        return config.to_dict()
    if isinstance(config, dict):
        return dict(config)
    raise TypeError(f"config must be a RunConfig, a dict or None, got {type(config).__name__}")


def save_model(path_or_file: str | os.PathLike | IO[bytes], net: Network, config=None,
               extra: dict | None = None) -> None:
    """Write ``net`` (and optionally its RunConfig and a JSON-able ``extra`` dict) as a compressed .npz."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    for name, p in net.named_params():
        if p.dtype not in ALLOWED_DTYPES:
            raise ValueError(f"parameter {name} has dtype {p.dtype}; models are saved as float32 or float64")
        if not np.all(np.isfinite(p)):
            raise ValueError(f"parameter {name} has NaN/inf values; refusing to save a broken model")
        arrays[name] = np.ascontiguousarray(p)
        meta[name] = {"shape": list(p.shape), "dtype": p.dtype.str}
    spec = {"format": FORMAT, "version": FORMAT_VERSION, "layers": net.spec(), "params": meta,
            "config": _config_dict(config), "extra": extra}
    blob = json.dumps(spec, allow_nan=False, sort_keys=True).encode("utf-8")
    if len(blob) > MAX_SPEC_BYTES:
        raise ValueError(f"model metadata is {len(blob)} bytes, more than the {MAX_SPEC_BYTES} allowed")
    arrays["spec"] = np.frombuffer(blob, dtype=np.uint8)
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "wb") as f:
            np.savez_compressed(f, **arrays)
    else:
        np.savez_compressed(path_or_file, **arrays)


def model_to_bytes(net: Network, config=None, extra: dict | None = None) -> bytes:
    """The .npz file of ``save_model`` as bytes (for a download button)."""
    buf = io.BytesIO()
    save_model(buf, net, config, extra)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------
def _read_source(src) -> bytes:
    """All bytes of a path, a binary file object or a bytes-like, refusing more than MAX_FILE_BYTES."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        size = os.path.getsize(src)
        if size > MAX_FILE_BYTES:
            raise ValueError(f"model file is {size} bytes, more than the {MAX_FILE_BYTES} allowed")
        with open(src, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    elif hasattr(src, "read"):
        data = src.read(MAX_FILE_BYTES + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("model file object must be opened in binary mode")
    else:
        raise ValueError(f"cannot read a model from a {type(src).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"model file is larger than the {MAX_FILE_BYTES} bytes allowed")
    if not data:
        raise ValueError("model file is empty")
    return data


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple[int, ...] | None,
                 dtypes: tuple[np.dtype, ...], what: str) -> np.ndarray:
    """Read one .npy member, checking its header (dtype, shape) before reading the data."""
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
        except ValueError as e:
            raise ValueError(f"{what} is not a .npy array: {e}") from None
        if version == (1, 0):
            hdr = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER_BYTES)
        elif version in ((2, 0), (3, 0)):
            hdr = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER_BYTES)
        else:
            raise ValueError(f"{what}: unsupported .npy version {version}")
        arr_shape, fortran, dtype = hdr
        if dtype not in dtypes:
            raise ValueError(f"{what} has dtype {dtype}; expected {' or '.join(d.name for d in dtypes)}")
        if shape is not None and tuple(arr_shape) != tuple(shape):
            raise ValueError(f"{what} has shape {tuple(arr_shape)}, but the spec says {tuple(shape)}")
        if shape is None and (len(arr_shape) != 1 or arr_shape[0] > MAX_SPEC_BYTES):
            raise ValueError(f"{what} must be a 1-D array of at most {MAX_SPEC_BYTES} bytes, got {arr_shape}")
        n_bytes = math.prod(arr_shape) * dtype.itemsize
        data = f.read(n_bytes + 1)
    if len(data) != n_bytes:
        raise ValueError(f"{what} is truncated or has trailing data ({len(data)} bytes, expected {n_bytes})")
    arr = np.frombuffer(data, dtype=dtype)
    if fortran:
        return arr.reshape(tuple(arr_shape)[::-1]).T.copy()
    return arr.reshape(arr_shape).copy()


def _parse_spec(blob: np.ndarray) -> dict:
    try:
        spec = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"the model's spec is not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise ValueError("the model's spec must be a JSON object")
    if spec.get("format") != FORMAT:
        raise ValueError(f"not a cnnviz model (format {spec.get('format')!r}, expected {FORMAT!r})")
    version = spec.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"unsupported model format version {version!r} "
                         f"(this cnnviz reads up to {FORMAT_VERSION})")
    unknown = set(spec) - {"format", "version", "layers", "params", "config", "extra"}
    if unknown:
        raise ValueError(f"unknown fields in the model spec: {sorted(unknown)}")
    return spec


def _load(src) -> tuple[Network, dict | None, dict | None]:  # noqa: C901
    data = _read_source(src)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError("not a model file: expected a .npz (zip) archive saved by cnnviz "
                         "(the file may be truncated or corrupt)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > 64:
            raise ValueError(f"model file has {len(infos)} members, too many for a cnnviz model")
        by_name: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            if info.filename in by_name:
                raise ValueError(f"model file has a duplicate member {info.filename!r}")
            if info.flag_bits & 0x1:
                raise ValueError("model file members must not be encrypted")
            total += info.file_size
            by_name[info.filename] = info
        if total > MAX_FILE_BYTES:  # declared uncompressed sizes: a zip bomb is refused before decompressing
            raise ValueError(f"model file would decompress to {total} bytes, "
                             f"more than the {MAX_FILE_BYTES} allowed")
        if SPEC_MEMBER not in by_name:
            raise ValueError("model file has no spec (spec.npy is missing): not a cnnviz model")
        if by_name[SPEC_MEMBER].file_size > MAX_SPEC_BYTES + MAX_HEADER_BYTES:
            raise ValueError(f"the model's spec is larger than the {MAX_SPEC_BYTES} bytes allowed")
        spec = _parse_spec(_read_member(zf, by_name[SPEC_MEMBER], None, (np.dtype("u1"),), "spec"))
        layers = spec.get("layers")
        layer_shapes(layers)  # types, keys, chained shapes and LIMITS, before anything is allocated
        expected = param_shapes(layers)
        meta = spec.get("params")
        if not isinstance(meta, dict) or set(meta) != set(expected):
            raise ValueError("the spec's parameter list does not match its layers "
                             f"(expected {sorted(expected)})")
        members = {f"{name}.npy" for name in expected} | {SPEC_MEMBER}
        if set(by_name) != members:
            missing, extra = sorted(members - set(by_name)), sorted(set(by_name) - members)
            raise ValueError(f"model arrays do not match the spec: missing {missing}, unexpected {extra}")
        params = {}
        for name, shape in expected.items():
            m = meta[name]
            if not isinstance(m, dict) or m.get("shape") != list(shape):
                given = m.get("shape") if isinstance(m, dict) else m
                raise ValueError(f"the spec gives {name} the shape {given}, "
                                 f"but its layer needs {list(shape)}")
            arr = _read_member(zf, by_name[f"{name}.npy"], shape, ALLOWED_DTYPES, f"array {name}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"array {name} contains NaN or inf values")
            params[name] = arr
    dtypes = {a.dtype for a in params.values()}
    if len(dtypes) > 1:
        raise ValueError("model arrays mix float32 and float64")
    net = from_spec([normalize_layer(s, i) for i, s in enumerate(layers)], rng=0, input_shape=(1, 28, 28))
    if dtypes == {np.dtype("<f8")}:
        net.astype(np.float64)
    for name, arr in params.items():
        i, key = name.split(".", 1)
        layer = net.layers[int(i)]
        layer.params[key] = arr
        layer.grads[key] = np.zeros_like(arr)
    config = spec.get("config")
    if config is not None:
        cfg = RunConfig.from_dict(config, max_train_size=TRAIN_SIZE_IDX_MAX)
        if [normalize_layer(s) for s in cfg.layers] != [normalize_layer(s) for s in layers]:
            raise ValueError("the model's config describes different layers than the model itself")
        config = cfg.to_dict()
    extra = spec.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise ValueError("the model's 'extra' metadata must be a JSON object")
    return net, config, extra


def load_model_full(path_or_file) -> tuple[Network, dict | None, dict | None]:
    """(Network, config dict or None, extra dict or None) from a path, binary file object or bytes."""
    try:
        return _load(path_or_file)
    except ValueError:
        raise
    except FileNotFoundError:
        raise
    except zipfile.BadZipFile as e:
        raise ValueError(f"the model file is corrupt or truncated ({e})") from None
    except Exception as e:  # hostile bytes can break zipfile/zlib/numpy in many ways: one clear error
        raise ValueError(f"not a valid cnnviz model file ({type(e).__name__}: {e})") from None


def load_model_and_config(path_or_file) -> tuple[Network, dict | None]:
    """(Network, validated config dict or None) from a model file; ValueError on any problem."""
    net, config, _ = load_model_full(path_or_file)
    return net, config


def load_model(path_or_file) -> Network:
    """The Network of a model file; ValueError on any problem."""
    return load_model_full(path_or_file)[0]


def model_from_bytes(data: bytes) -> tuple[Network, dict | None]:
    """(Network, config dict or None) from the bytes of an uploaded model file; ValueError on any problem."""
    return load_model_and_config(bytes(data))


# ----------------------------------------------------------------------------------------------------------
# A whole session in one file: the model file, with the training history in its "extra" metadata
# ----------------------------------------------------------------------------------------------------------
SESSION_KIND = "cnnviz-session"
SESSION_MAX_RECORDS = 2000  # longer histories are thinned evenly (the latest record always kept)
_RECORD_FIELDS = ("step", "epoch", "loss", "acc", "ms")


def session_extra(trainer) -> dict:
    """The JSON-able history of a Trainer: step count, epoch, step records (thinned to at most
    SESSION_MAX_RECORDS, per-parameter gradient norms and update ratios included) and validation history."""
    recs = list(trainer.history)
    if len(recs) > SESSION_MAX_RECORDS:
        keep = np.unique(np.linspace(0, len(recs) - 1, SESSION_MAX_RECORDS).round().astype(int))
        recs = [recs[i] for i in keep]
    names = sorted(recs[-1].grad_norms) if recs else []
    cols: dict = {f: [getattr(r, f) for r in recs] for f in _RECORD_FIELDS}
    cols["grad_norms"] = {n: [float(r.grad_norms.get(n, 0.0)) for r in recs] for n in names}
    cols["update_ratios"] = {n: [float(r.update_ratios.get(n, 0.0)) for r in recs] for n in names}
    return {"kind": SESSION_KIND, "step_count": int(trainer.step_count), "epoch": int(trainer.epoch),
            "history": cols, "val_history": [[int(s), float(l), float(a)] for s, l, a in trainer.val_history]}


def session_to_bytes(trainer) -> bytes:
    """One file with the session's model, config and history: a valid model file (``load_model`` reads it),
    whose ``extra`` holds ``session_extra(trainer)``. The optimiser's state and the position within the
    epoch are not saved: a restored session continues from the same weights with a fresh optimiser."""
    return model_to_bytes(trainer.net, trainer.config, extra={"session": session_extra(trainer)})


def _check_session(s: object) -> dict:  # noqa: C901
    """Validate the "session" metadata of a file (types, equal lengths, finite, bounded); ValueError."""
    def fail(what: str):
        raise ValueError(f"the file's session history is invalid: {what}")

    if not isinstance(s, dict) or s.get("kind") != SESSION_KIND:
        fail("not a cnnviz session")
    for key in ("step_count", "epoch"):
        v = s.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10**9:
            fail(f"{key} must be a non-negative integer")
    h = s.get("history")
    if not isinstance(h, dict):
        fail("history must be an object")
    n = None
    columns = {f: h.get(f) for f in _RECORD_FIELDS}
    for group in ("grad_norms", "update_ratios"):
        g = h.get(group)
        if not isinstance(g, dict) or len(g) > 64:
            fail(f"{group} must be an object of at most 64 parameters")
        columns.update({f"{group}:{k}": v for k, v in g.items()})
    for name, col in columns.items():
        if not isinstance(col, list) or len(col) > SESSION_MAX_RECORDS:
            fail(f"{name} must be a list of at most {SESSION_MAX_RECORDS} numbers")
        if n is not None and len(col) != n:
            fail(f"{name} has {len(col)} values, other columns {n}")
        n = len(col)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in col):
            fail(f"{name} must hold finite numbers")
    if set(h["grad_norms"]) != set(h["update_ratios"]):
        fail("grad_norms and update_ratios name different parameters")
    val = s.get("val_history")
    if not isinstance(val, list) or len(val) > 100_000:
        fail("val_history must be a list")
    for row in val:
        if (not isinstance(row, list) or len(row) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in row)):
            fail("val_history rows must be [step, loss, accuracy]")
    return s


def session_from_bytes(data: bytes) -> tuple[Network, dict | None, dict | None]:
    """(Network, config dict or None, validated session history or None) from a model or session file."""
    net, config, extra = load_model_full(bytes(data))
    session = None
    if extra and "session" in extra:
        session = _check_session(extra["session"])
    return net, config, session


def restore_session(trainer, session: dict) -> None:
    """Put a saved history (``session_extra``) back on a Trainer built from the same file's model and config,
    so that the curves, the metrics and the step count continue where the saved session stopped."""
    from cnnviz.train.trainer import StepRecord

    s = _check_session(session)
    h = s["history"]
    n = len(h["step"])
    names = sorted(h["grad_norms"])
    trainer.history = [
        StepRecord(int(h["step"][i]), int(h["epoch"][i]), float(h["loss"][i]), float(h["acc"][i]),
                   float(h["ms"][i]), {k: float(h["grad_norms"][k][i]) for k in names},
                   {k: float(h["update_ratios"][k][i]) for k in names})
        for i in range(n)]
    trainer.val_history = [(int(a), float(b), float(c)) for a, b, c in s["val_history"]]
    trainer.step_count = s["step_count"]
    trainer.epoch = max(1, s["epoch"])
    for snap in trainer.snapshots:  # the restored weights are those of the saved step
        snap.step = trainer.step_count

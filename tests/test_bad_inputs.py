"""Hostile and broken input: model files, JSON configs and image uploads, in the core and in the app.

Every bad input gets a clear ``ValueError`` from the core and a clear message in the app, with the current
model untouched. Image files and MNIST IDX files are covered by their owners' tests (tests/test_drawing.py:
not an image, truncated, 1×1, 20000×20000, 16-bit, CMYK, palette, animated GIF, EXIF; tests/test_data.py:
short, wrong magic, mismatched counts, gzip bombs); here the image cases are pushed through the Draw page's
upload handler, and model files and configs are covered in full.
"""

from __future__ import annotations

import io as _io
import json
import math
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import DIVERGING
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnviz.nn.network import build
from cnnviz.serve import serving
from cnnviz.train import model_file as io
from cnnviz.train.config import LIMITS, RunConfig, preset_config

TIMEOUT = 60


# ----------------------------------------------------------------------------------------------------------
# Building hostile model files
# ----------------------------------------------------------------------------------------------------------
def valid_model(preset: str = "classroom") -> bytes:
    return io.model_to_bytes(build(preset, rng=np.random.default_rng(0)), preset_config(preset))


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(_io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(parts: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header_only(descr: str, shape: tuple, fortran: bool = False, body: bytes = b"") -> bytes:
    """A .npy file whose header declares any dtype and shape, followed by ``body`` (no real data)."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


def get_spec(parts: dict[str, bytes]) -> dict:
    arr = np.load(_io.BytesIO(parts["spec.npy"]), allow_pickle=False)
    return json.loads(arr.tobytes().decode("utf-8"))


def with_spec(parts: dict[str, bytes], spec: dict | str) -> dict[str, bytes]:
    blob = (spec if isinstance(spec, str) else json.dumps(spec)).encode("utf-8")
    return {**parts, "spec.npy": npy(np.frombuffer(blob, dtype=np.uint8))}


def edit_spec(fn) -> bytes:
    parts = members(valid_model())
    spec = get_spec(parts)
    fn(spec)
    return rezip(with_spec(parts, spec))


def edit_array(name: str, blob: bytes) -> bytes:
    parts = members(valid_model())
    return rezip({**parts, f"{name}.npy": blob})


def patch_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite a member's declared uncompressed size in the local and the central zip headers (a lie)."""
    out = bytearray(data)
    raw = name.encode()
    for sig, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        pos = 0
        while (pos := out.find(sig, pos)) != -1:
            n = struct.unpack_from("<H", out, pos + name_len_at)[0]
            if bytes(out[pos + name_at:pos + name_at + n]) == raw:
                struct.pack_into("<I", out, pos + size_at, size)
            pos += 4
    return bytes(out)


def zip_bomb(declared_honestly: bool) -> bytes:
    """A model whose dense weights member inflates to 100 MB of zeros (about 100 kB compressed)."""
    parts = members(valid_model())
    big = b"\x00" * (100 * 2**20)
    data = rezip({**parts, "4.W.npy": parts["4.W.npy"][:128] + big})
    return data if declared_honestly else patch_declared_size(data, "4.W.npy", len(parts["4.W.npy"]))


def _layers_spec(layers: list) -> bytes:
    def fn(spec):
        spec["layers"] = layers
        spec["config"] = None
    return edit_spec(fn)


CLASSROOM = preset_config("classroom")
W_SHAPE = (8, 1, 5, 5)
BAD_MODELS: dict[str, tuple[bytes | None, str]] = {}


def _bad_models() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, regex the ValueError must match). Built lazily (the zip bomb takes ~0.5 s)."""
    if BAD_MODELS:
        return BAD_MODELS
    good = valid_model()
    parts = members(good)
    cases = {
        "empty": (b"", "empty"),
        "text": (b"these are not the weights you are looking for", "not a model file"),
        "truncated half": (good[: len(good) // 2], "not a model file|not a valid"),
        "truncated tail": (good[:-30], "not a model file|not a valid"),
        "flipped bytes": (good[:200] + bytes(b ^ 0xFF for b in good[200:260]) + good[260:],
                          "not a valid|truncated|not a model|spec"),
        "npy not npz": (npy(np.zeros(3, np.float32)), "not a model file"),
        "pickle file": (b"\x80\x04\x95cos\nsystem\n(S'echo pwned'\ntR." + b"." * 20, "not a model file"),
        "no spec": (rezip({k: v for k, v in parts.items() if k != "spec.npy"}), "no spec"),
        "missing weight": (rezip({k: v for k, v in parts.items() if k != "0.W.npy"}), "missing"),
        "extra member": (rezip({**parts, "evil.npy": npy(np.zeros(2, np.float32))}), "unexpected"),
        "wrong shape": (edit_array("0.W", npy(np.zeros((8, 1, 3, 3), np.float32))), "shape"),
        "transposed dense": (edit_array("4.W", npy(np.zeros((10, 1152), np.float32))), "shape"),
        "int weights": (edit_array("0.W", npy(np.zeros(W_SHAPE, np.int32))), "dtype"),
        "float16 weights": (edit_array("0.W", npy(np.zeros(W_SHAPE, np.float16))), "dtype"),
        "complex weights": (edit_array("0.W", npy(np.zeros(W_SHAPE, np.complex64))), "dtype"),
        "big-endian weights": (edit_array("0.W", npy(np.zeros(W_SHAPE, ">f4"))), "dtype"),
        "mixed float32/64": (edit_array("0.W", npy(np.zeros(W_SHAPE, np.float64))), "mix"),
        "NaN weights": (edit_array("0.W", npy(np.full(W_SHAPE, np.nan, np.float32))), "NaN"),
        "inf bias": (edit_array("0.b", npy(np.array([np.inf] + [0] * 7, np.float32))), "NaN or inf"),
        "object array (pickle)": (edit_array("0.W", npy(np.array([{"x": 1}] * 200, dtype=object).reshape(
            8, 1, 5, 5), allow_pickle=True)), "dtype"),
        "enormous declared shape": (edit_array("0.W", npy_header_only("<f4", (10**9, 10**9, 5, 5))), "shape"),
        "enormous declared spec": (rezip({**parts, "spec.npy": npy_header_only("|u1", (2**40,))}),
                                   "spec|at most"),
        "header longer than allowed": (edit_array("0.W", b"\x93NUMPY\x02\x00" + struct.pack("<I", 10**6)
                                                  + b" " * 100), "not a valid|header|npy"),
        "short data": (edit_array("0.W", npy(np.zeros(W_SHAPE, np.float32))[:-40]), "truncated"),
        "trailing data": (edit_array("0.W", npy(np.zeros(W_SHAPE, np.float32)) + b"\x00" * 8), "trailing"),
        "fortran order": (edit_array("0.W", npy(np.asfortranarray(np.ones(W_SHAPE, np.float32)))), None),
        "zip bomb (declared)": (zip_bomb(True), "decompress|larger"),
        "zip bomb (lying sizes)": (zip_bomb(False), "not a valid|truncated|trailing|Bad|CRC"),
        "encrypted member flag": (_encrypted(parts), "encrypted|not a valid"),
        "too many members": (rezip({**parts, **{f"x{i}.npy": b"" for i in range(80)}}), "members"),
        "spec not JSON": (rezip(with_spec(parts, "{not json")), "JSON"),
        "spec a list": (rezip(with_spec(parts, "[1, 2]")), "JSON object"),
        "wrong format": (edit_spec(lambda s: s.update(format="keras")), "not a cnnviz model"),
        "future version": (edit_spec(lambda s: s.update(version=99)), "version"),
        "version as string": (edit_spec(lambda s: s.update(version="1")), "version"),
        "unknown top-level field": (edit_spec(lambda s: s.update(payload="x")), "unknown fields"),
        "unknown layer type": (_layers_spec([{"type": "Lambda", "code": "os.system('x')"}]), "unknown layer"),
        "layer with extra key": (_layers_spec([{**CLASSROOM.layers[0], "activation": "relu"},
                                               *CLASSROOM.layers[1:]]), "unknown keys"),
        "layers not a list": (_layers_spec({"type": "Conv2D"}), "list"),
        "string kernel size": (_layers_spec([{**CLASSROOM.layers[0], "kernel_size": "5"},
                                             *CLASSROOM.layers[1:]]), "integer"),
        "1000 filters": (_layers_spec([{**CLASSROOM.layers[0], "out_channels": 1000},
                                       *CLASSROOM.layers[1:]]), "out of range"),
        "huge dense": (_layers_spec([{"type": "Flatten"}, {"type": "Dense", "in_features": 784,
                                                            "out_features": 10**7}]), "out of range"),
        "params mismatch layers": (edit_spec(lambda s: s["params"].pop("0.b")), "parameter list"),
        "params shape lie": (edit_spec(lambda s: s["params"]["0.W"].update(shape=[8, 1, 3, 3])), "shape"),
        "config out of range": (edit_spec(lambda s: s["config"].update(lr=1e9)), "lr"),
        "config wrong type": (edit_spec(lambda s: s["config"].update(batch_size="64")), "integer"),
        "config for another net": (edit_spec(lambda s: s["config"].update(preset="deeper", layers=[])),
                                   "different layers|layers"),
        "extra not an object": (edit_spec(lambda s: s.update(extra=[1, 2])), "extra"),
    }
    BAD_MODELS.update(cases)
    return BAD_MODELS


def _encrypted(parts: dict[str, bytes]) -> bytes:
    data = bytearray(rezip(parts, zipfile.ZIP_STORED))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = 0
        while (pos := data.find(sig, pos)) != -1:
            data[pos + flag_at] |= 0x1
            pos += 4
    return bytes(data)


BAD_MODEL_NAMES = [
    "empty", "text", "truncated half", "truncated tail", "flipped bytes", "npy not npz", "pickle file",
    "no spec", "missing weight", "extra member", "wrong shape", "transposed dense", "int weights",
    "float16 weights", "complex weights", "big-endian weights", "mixed float32/64", "NaN weights",
    "inf bias", "object array (pickle)", "enormous declared shape", "enormous declared spec",
    "header longer than allowed", "short data", "trailing data", "zip bomb (declared)",
    "zip bomb (lying sizes)", "encrypted member flag", "too many members", "spec not JSON", "spec a list",
    "wrong format", "future version", "version as string", "unknown top-level field", "unknown layer type",
    "layer with extra key", "layers not a list", "string kernel size", "1000 filters", "huge dense",
    "params mismatch layers", "params shape lie", "config out of range", "config wrong type",
    "config for another net", "extra not an object",
]


# ----------------------------------------------------------------------------------------------------------
# Core: cnnviz.train.model_file
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BAD_MODEL_NAMES)
def test_bad_model_file_raises_a_clear_value_error(name):
    data, message = _bad_models()[name]
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as err:
            io.load_model(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = str(err.value)
    assert 10 < len(text) < 600 and "Traceback" not in text
    assert peak < 40 * 2**20, f"loading a hostile file allocated {peak / 2**20:.0f} MB"


def test_fortran_order_weights_load_to_the_same_values():
    data, _ = _bad_models()["fortran order"]
    net = io.load_model(data)
    np.testing.assert_array_equal(net.layers[0].params["W"], np.ones(W_SHAPE, np.float32))


def test_a_pickle_inside_a_model_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    blob = npy(np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        io.load_model(edit_array("0.b", blob))
    assert not marker.exists()


def test_load_model_from_path_and_file_object(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(_bad_models()["NaN weights"][0])
    with pytest.raises(ValueError, match="NaN"):
        io.load_model(p)
    with open(p, "rb") as f, pytest.raises(ValueError, match="NaN"):
        io.load_model(f)
    big = tmp_path / "big.npz"
    with open(big, "wb") as f:
        f.truncate(io.MAX_FILE_BYTES + 1)  # sparse: refused by its size before it is read
    with pytest.raises(ValueError, match="larger|bytes"):
        io.load_model(big)


# ----------------------------------------------------------------------------------------------------------
# Nothing lost: download -> upload is bit-exact
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["tutorial", "classroom", "deeper"])
def test_model_round_trip_reproduces_predictions_bit_for_bit(preset):
    from cnnviz.train.data import load_dataset
    from cnnviz.train.trainer import Trainer

    cfg = preset_config(preset, train_size=200)
    tr = Trainer(cfg, load_dataset(cfg.task, cfg.train_size))
    tr.run(3)
    raw = io.model_to_bytes(tr.net, cfg)
    net, cfg_back = io.model_from_bytes(raw)
    x = tr.data.x_val[:64]
    np.testing.assert_array_equal(net.predict_proba(x), tr.net.predict_proba(x))
    for (n1, a), (n2, b) in zip(net.named_params(), tr.net.named_params(), strict=True):
        assert n1 == n2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert RunConfig.from_dict(cfg_back) == cfg
    assert io.model_to_bytes(net, cfg_back) == raw  # the file itself is reproducible


# ----------------------------------------------------------------------------------------------------------
# Core: configs
# ----------------------------------------------------------------------------------------------------------
BAD_CONFIGS = [
    ([1, 2], "JSON object"),
    ("classroom", "JSON object"),
    ({"preset": "huge"}, "unknown preset"),
    ({"lr": "0.1"}, "lr must be a number"),
    ({"lr": float("nan")}, "finite"),
    ({"lr": 0}, "out of range"),
    ({"lr": 1e6}, "out of range"),
    ({"momentum": 1.5}, "momentum"),
    ({"batch_size": -1}, "batch_size"),
    ({"batch_size": 10**9}, "batch_size"),
    ({"batch_size": 64.0}, "integer"),
    ({"batch_size": True}, "integer"),
    ({"batch_size": None}, "integer"),
    ({"train_size": 10**7}, "train_size"),
    ({"train_size": 0}, "train_size"),
    ({"seed": -5}, "seed"),
    ({"seed": 2**80}, "seed"),
    ({"val_every": 0}, "val_every"),
    ({"task": "cifar"}, "task"),
    ({"loss": "hinge"}, "loss"),
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"init": "zeros"}, "init"),
    ({"steps": 5}, "unknown config keys"),
    ({"__class__": "x"}, "unknown config keys"),
    ({"preset": "custom"}, "needs 'layers'"),
    ({"preset": "custom", "layers": "conv"}, "list"),
    ({"preset": "custom", "layers": [{"type": "Conv2D"}]}, "missing"),
    ({"preset": "custom", "layers": [{"type": "Softmax2"}]}, "unknown layer type"),
    ({"preset": "custom", "layers": [{"type": "Conv2D", "in_channels": 1, "out_channels": 10**6,
                                      "kernel_size": 5}, {"type": "Flatten"}]}, "out of range"),
    ({"preset": "custom", "layers": [{"type": "Conv2D", "in_channels": 1, "out_channels": 8,
                                      "kernel_size": 99}, {"type": "Flatten"}]}, "out of range"),
    ({"preset": "custom", "layers": [{"type": "Dense", "in_features": 784, "out_features": 10}]}, "Flatten"),
    ({"preset": "custom", "layers": [{"type": "Flatten"}] * 40}, "number of layers"),
    ({"batch_size": 0, "train_size": 4000, "preset": "deeper"}, "full batch|MB per training step"),
    ({"preset": "deeper", "batch_size": 1024}, "MB per training step"),
]


@pytest.mark.parametrize("d, message", BAD_CONFIGS)
def test_bad_config_raises_a_clear_value_error(d, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(d)


def test_limits_are_documented_for_everything_that_sets_work():
    for key in ("filters", "kernel", "conv_layers", "batch_size", "train_size", "steps_per_tick", "params",
                "step_memory_mb"):
        lo, hi = LIMITS[key]
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi
    assert set(serving.SERVER_LIMITS) == {"step_gflop", "val_gflop"}


# ----------------------------------------------------------------------------------------------------------
# In the app: each bad upload gives a message, and the current model is untouched
# ----------------------------------------------------------------------------------------------------------
def upload_script(kind: str, files: list) -> None:
    """Train 3 steps, then try every upload in ``files`` ((name, bytes)); record each one's outcome."""
    import streamlit as st

    from cnnviz.ui import common, sidebar, state, train

    state.init()
    ss = st.session_state
    if "_results" not in ss:
        state.train(3)
        tr = state.get_trainer()
        ss["_before"] = ({n: p.copy() for n, p in tr.net.named_params()}, tr, tr.step_count,
                         state.get_config())
        results = []
        for name, raw in files:
            if kind == "model":
                ok = common.load_model_upload(name, raw)
            else:
                ok = sidebar.load_config_upload(name, raw)
            results.append((name, ok, state.pop_messages()[0]))
        ss["_results"] = results
    sidebar.render()
    train.render()


def _run_uploads(kind: str, files: list) -> AppTest:
    at = AppTest.from_function(upload_script, args=(kind, files), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def _assert_model_untouched(at: AppTest) -> None:
    params, tr, steps, cfg = at.session_state["_before"]
    assert at.session_state["cnnviz"].trainer is tr and tr.step_count == steps == 3
    assert at.session_state["cnnviz"].config is cfg
    for name, p in tr.net.named_params():
        np.testing.assert_array_equal(p, params[name])


def test_app_rejects_every_bad_model_upload_and_keeps_the_model():
    bad = _bad_models()
    files = [(f"{name}.npz", bad[name][0]) for name in BAD_MODEL_NAMES if name != "fortran order"]
    at = _run_uploads("model", files)
    for name, ok, error in at.session_state["_results"]:
        assert ok is False, name
        assert error and "not loaded" in error and "kept" in error, (name, error)
    _assert_model_untouched(at)


def test_app_refuses_a_model_too_costly_for_a_shared_server():
    from cnnviz.train.config import custom_layers

    layers = custom_layers(n_conv=3, filters=32, kernel=9, padding=4)
    cfg = RunConfig.from_dict({"preset": "custom", "layers": layers, "batch_size": 64})
    from cnnviz.nn.network import from_spec

    raw = io.model_to_bytes(from_spec(layers, rng=0), cfg)
    at = _run_uploads("model", [("costly.npz", raw)])
    (_, ok, error), = at.session_state["_results"]
    assert ok is False and "GFLOP" in error
    _assert_model_untouched(at)


def test_app_rejects_every_bad_config_upload_and_keeps_the_model():
    files = [(f"c{i}.json", json.dumps(d).encode()) for i, (d, _) in enumerate(BAD_CONFIGS)
             if not (isinstance(d, dict) and any(isinstance(v, float) and math.isnan(v) for v in d.values()))]
    files += [("nan.json", b'{"lr": NaN}'), ("binary.json", bytes(range(256))), ("deep.json", b"[" * 100_000),
              ("huge.json", b" " * 300_000), ("costly.json", json.dumps({"preset": "custom", "layers": [
                  *__import__("cnnviz.train.config", fromlist=["x"]).custom_layers(
                      n_conv=3, filters=32, kernel=9, padding=4)], "batch_size": 64}).encode())]
    at = _run_uploads("config", files)
    for name, ok, error in at.session_state["_results"]:
        assert ok is False, name
        assert error and ("not loaded" in error or "not applied" in error) and "kept" in error, (name, error)
    _assert_model_untouched(at)


# ----------------------------------------------------------------------------------------------------------
# In the app: image uploads on the Draw page
# ----------------------------------------------------------------------------------------------------------
def _png(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = _io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _digit(mode: str = "L", size: int = 64) -> Image.Image:
    im = Image.new("L", (size, size), 0)
    im.paste(255, (size // 2 - 4, size // 6, size // 2 + 4, size - size // 6))  # a "1"
    return im.convert(mode)


def _bomb(width: int, height: int) -> bytes:
    import zlib

    data = bytearray(_png(Image.new("L", (16, 16), 0)))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _exif_rotated() -> bytes:
    """The "1" stored lying on its side, with EXIF orientation 6 (rotate 90° clockwise to display)."""
    ex = Image.Exif()
    ex[0x0112] = 6
    return _png(_digit("RGB").rotate(90, expand=True), "JPEG", exif=ex.tobytes())


BAD_IMAGES = {
    "not-an-image.png": b"hello, I am a text file",
    "truncated.png": (lambda b: b[: len(b) // 2])(_png(_digit())),
    "one-pixel.png": _png(Image.new("L", (1, 1), 255)),
    "bomb-20000.png": _bomb(20000, 20000),
    "blank.png": _png(Image.new("L", (64, 64), 255)),
    "empty.png": b"",
}
GOOD_ODD_IMAGES = {
    "16-bit.png": _png(Image.fromarray(np.asarray(_digit(), np.uint16) * 257)),
    "cmyk.jpg": _png(_digit("CMYK"), "JPEG"),
    "palette.png": _png(_digit("P")),
    "animated.gif": _png(_digit(), "GIF", save_all=True, append_images=[Image.new("L", (64, 64), 0)]),
    "exif-rotated.jpg": _exif_rotated(),
}


def draw_upload_script(files: list) -> None:
    """Run the Draw page's upload handler on each file, recording the drawing or the message."""
    import numpy as np
    import streamlit as st

    from cnnviz.ui import draw, state

    state.init()
    ss = st.session_state
    if "_results" not in ss:
        tr = state.get_trainer()
        ss["_before"] = ({n: p.copy() for n, p in tr.net.named_params()}, tr, tr.step_count,
                         state.get_config())
        results = []

        class Upload:  # what st.file_uploader hands the callback: .name and .getvalue()
            def __init__(self, name, raw):
                self.name, self._raw = name, raw

            def getvalue(self):
                return self._raw

        for name, raw in files:
            state.app().draw.drawing = None
            ss["draw_upload_test"] = Upload(name, raw)
            draw._on_upload("draw_upload_test")
            del ss["draw_upload_test"]
            d = state.app().draw.drawing
            results.append((name, None if d is None else np.array(d), state.app().draw.upload_error))
            state.app().draw.upload_error = None
        ss["_results"] = results
        state.app().draw.drawing = None
    draw.render()


def test_draw_page_upload_messages_and_conversions():
    files = list(BAD_IMAGES.items()) + list(GOOD_ODD_IMAGES.items())
    at = AppTest.from_function(draw_upload_script, args=(files,), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    results = {name: (img, err) for name, img, err in at.session_state["_results"]}
    for name in BAD_IMAGES:
        img, err = results[name]
        assert img is None and err and name in err and "could not be used" in err, (name, err)
    for name in GOOD_ODD_IMAGES:
        img, err = results[name]
        assert err is None, (name, err)
        assert img.shape == (28, 28) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
        rows, cols = (img.sum(axis=1) > 0.5).sum(), (img.sum(axis=0) > 0.5).sum()
        assert rows > 2 * cols, (name, rows, cols)  # an upright "1": tall, not lying on its side
    _assert_model_untouched_draw(at)


def _assert_model_untouched_draw(at: AppTest) -> None:
    params, tr, steps, cfg = at.session_state["_before"]
    assert at.session_state["cnnviz"].trainer is tr and tr.step_count == steps
    for name, p in tr.net.named_params():
        np.testing.assert_array_equal(p, params[name])


# ----------------------------------------------------------------------------------------------------------
# Nothing lost: a whole session in one file; divergence keeps the last good weights
# ----------------------------------------------------------------------------------------------------------
def test_session_file_restores_model_config_and_history():
    from cnnviz.train.data import load_dataset
    from cnnviz.train.trainer import Trainer

    cfg = preset_config("classroom", train_size=500, val_every=3)
    data = load_dataset(cfg.task, cfg.train_size)
    tr = Trainer(cfg, data)
    tr.run(7)
    raw = io.session_to_bytes(tr)
    net = io.load_model(raw)  # still a plain model file
    net, cfg_back, session = io.session_from_bytes(raw)
    back = Trainer(RunConfig.from_dict(cfg_back), data, net=net)
    io.restore_session(back, session)
    assert back.step_count == 7 and back.epoch == tr.epoch
    assert [(r.step, r.loss, r.acc, r.grad_norms) for r in back.history] == \
           [(r.step, r.loss, r.acc, r.grad_norms) for r in tr.history]
    assert back.val_history == tr.val_history
    np.testing.assert_array_equal(back.predict_proba(data.x_val[:50]), tr.predict_proba(data.x_val[:50]))
    back.step()  # and it trains on
    assert back.step_count == 8 and len(back.history) == 8


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["history"]["loss"].__setitem__(0, float("nan")), "finite"),
    (lambda s: s["history"]["ms"].__setitem__(1, float("inf")), "finite"),
    (lambda s: s["history"]["loss"].pop(), "values"),
    (lambda s: s["history"].update(acc="high"), "list"),
    (lambda s: s.update(step_count=-3), "step_count"),
    (lambda s: s.update(kind="other"), "not a cnnviz session"),
    (lambda s: s["history"]["grad_norms"].update(x=[0.0] * 4), "different parameters|values"),
    (lambda s: s.update(val_history=[[1, 2]]), "val_history"),
    (lambda s: s["history"].update(step=list(range(5000))), "at most"),
])
def test_bad_session_history_is_refused(edit, message):
    from cnnviz.train.data import load_dataset
    from cnnviz.train.trainer import Trainer

    cfg = preset_config("tutorial")
    tr = Trainer(cfg, load_dataset(cfg.task, cfg.train_size))
    tr.run(4)
    parts = members(io.session_to_bytes(tr))
    spec = get_spec(parts)
    edit(spec["extra"]["session"])
    raw = rezip(with_spec(parts, json.dumps(spec)))  # json.dumps writes NaN/Infinity, as a hostile file may
    with pytest.raises(ValueError, match=message):
        io.session_from_bytes(raw)
    assert io.load_model(io.session_to_bytes(tr)).n_params == tr.net.n_params


def roundtrip_script(raw: bytes | None) -> None:
    """Train 6 steps and offer the download (raw None), or upload ``raw`` (first run only)."""
    import streamlit as st

    from cnnviz.ui import common, sidebar, state, train

    state.init()
    ss = st.session_state
    if "_done" not in ss:
        ss["_done"] = True
        if raw is None:
            state.train(6)
            tr = state.get_trainer()
            ss["_download"] = common._model_bytes(tr, state.get_config(), state.lock())
        else:
            ss["_ok"] = common.load_model_upload("mine.npz", raw)
    sidebar.render()
    train.render()


def test_download_then_upload_in_another_session_continues_the_run():
    a = AppTest.from_function(roundtrip_script, args=(None,), default_timeout=TIMEOUT).run()
    assert not a.exception
    raw = a.session_state["_download"]
    b = AppTest.from_function(roundtrip_script, args=(raw,), default_timeout=TIMEOUT).run()
    assert not b.exception and b.session_state["_ok"] is True
    ta, tb = a.session_state["cnnviz"].trainer, b.session_state["cnnviz"].trainer
    assert tb.step_count == 6 and [r.loss for r in tb.history] == [r.loss for r in ta.history]
    x = ta.data.x_val[:100]
    np.testing.assert_array_equal(tb.predict_proba(x), ta.predict_proba(x))  # bit for bit
    metrics = {m.label: m.value for m in b.metric}
    assert metrics.get("Step") == "6"


def diverge_script(config: dict) -> None:
    """Step a diverging config one step at a time, recording the weights after every step."""
    import streamlit as st

    from cnnviz.ui import state, train

    state.init()
    ss = st.session_state
    if "_done" not in ss:
        ss["_done"] = True
        assert state.apply_config(config) is not None
        tr = state.get_trainer()
        ss["_weights"] = {0: {n: p.copy() for n, p in tr.net.named_params()}}
        for _ in range(60):
            if state.train(1) != 1 or "error" in ss:
                break
            tr = state.get_trainer()
            ss["_weights"][tr.step_count] = {n: p.copy() for n, p in tr.net.named_params()}
        ss["_message"] = state.app().error or ""
    train.render()


def test_divergence_keeps_exactly_the_last_good_weights():
    """The restored weights are, bit for bit, those of the step the message names (the last weights whose
    loss was finite), and training goes on from there."""
    import re

    at = AppTest.from_function(diverge_script, args=(DIVERGING,), default_timeout=TIMEOUT).run()
    assert not at.exception
    msg = at.session_state["_message"]
    m = re.search(r"weights of step (\d+) were restored", msg)
    assert m and "learning rate" in msg, msg
    good = at.session_state["_weights"][int(m.group(1))]
    tr = at.session_state["cnnviz"].trainer
    for name, p in tr.net.named_params():
        assert np.isfinite(p).all()
        np.testing.assert_array_equal(p, good[name])
    assert any("diverged" in e.value for e in at.error)

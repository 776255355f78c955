"""Model files: exact round trips, and every kind of bad or hostile file -> a clear ValueError."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnviz.nn.network import build, from_spec
from cnnviz.train.config import preset_config
from cnnviz.train.model_file import (
    MAX_FILE_BYTES,
    load_model,
    load_model_and_config,
    load_model_full,
    model_from_bytes,
    model_to_bytes,
    save_model,
)

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "models"


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).random((7, 1, 28, 28), dtype=np.float32)


@pytest.mark.parametrize("name", ["tutorial", "classroom", "deeper"])
def test_round_trip_reproduces_predictions_bit_for_bit(name, x, tmp_path):
    net = build(name, rng=5)
    cfg = preset_config(name)
    path = tmp_path / f"{name}.npz"
    save_model(path, net, cfg, extra={"note": "hello"})
    net2, config, extra = load_model_full(path)
    assert np.array_equal(net.predict_proba(x), net2.predict_proba(x))
    assert net2.spec() == net.spec()
    assert config == cfg.to_dict() and extra == {"note": "hello"}
    for (n1, p1), (n2, p2) in zip(net.named_params(), net2.named_params(), strict=True):
        assert n1 == n2 and p1.dtype == p2.dtype == np.float32 and np.array_equal(p1, p2)


def test_bytes_and_file_objects(x):
    net = build("classroom", rng=2)
    blob = model_to_bytes(net, preset_config("classroom"))
    net2, cfg = model_from_bytes(blob)
    assert cfg["preset"] == "classroom"
    assert np.array_equal(net.forward(x), net2.forward(x))
    buf = io.BytesIO()
    save_model(buf, net)
    buf.seek(0)
    net3, cfg3 = load_model_and_config(buf)
    assert cfg3 is None and np.array_equal(net.forward(x), net3.forward(x))
    assert np.array_equal(load_model(bytearray(blob)).forward(x), net.forward(x))


def test_float64_round_trip(x):
    net = build("classroom", rng=3).astype(np.float64)
    net2 = load_model(model_to_bytes(net))
    assert all(p.dtype == np.float64 for _, p in net2.named_params())
    assert np.array_equal(net.forward(x.astype(np.float64)), net2.forward(x.astype(np.float64)))


def test_save_refuses_nan_weights():
    net = build("classroom")
    net.layers[0].params["W"][0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model_to_bytes(net)


@pytest.mark.parametrize("name, minimum", [("tutorial", 0.6), ("classroom", 0.97), ("deeper", 0.975)])
def test_shipped_models_load_and_meet_their_accuracy(name, minimum):
    from cnnviz.train.data import load_dataset

    net, cfg = load_model_and_config(ASSETS / f"{name}.npz")
    assert cfg is not None and cfg["preset"] == name
    assert (ASSETS / f"{name}.npz").stat().st_size < 200_000  # float32, compressed
    d = load_dataset(cfg["task"], 10)
    out = net.forward(d.x_val)
    pred = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(1)
    truth = d.y_val if cfg["task"] == "digits" else (d.y_val > 4).astype(int)
    assert np.mean(pred == truth) >= minimum


# ----------------------------------------------------------------------------------------------------------
# Hostile and broken files
# ----------------------------------------------------------------------------------------------------------
def _npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _spec_bytes(spec: dict | str | bytes) -> bytes:
    raw = spec if isinstance(spec, bytes) else (spec if isinstance(spec, str) else json.dumps(spec)).encode()
    return _npy(np.frombuffer(raw, dtype=np.uint8))


def _good_parts(name: str = "classroom") -> tuple[dict, dict[str, np.ndarray]]:
    net = build(name, rng=0)
    arrays = {n: p.copy() for n, p in net.named_params()}
    spec = {"format": "cnnviz-model", "version": 1, "layers": net.spec(),
            "params": {n: {"shape": list(a.shape), "dtype": a.dtype.str} for n, a in arrays.items()},
            "config": None, "extra": None}
    return spec, arrays


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _file(spec=None, arrays=None, raw_members: dict[str, bytes] | None = None) -> bytes:
    good_spec, good_arrays = _good_parts()
    spec = good_spec if spec is None else spec
    arrays = good_arrays if arrays is None else arrays
    members = {"spec.npy": _spec_bytes(spec)}
    members.update({f"{n}.npy": _npy(a) for n, a in arrays.items()})
    members.update(raw_members or {})
    return _zip(members)


def test_hand_built_file_is_accepted():
    """The helpers above build a valid file; each test below breaks exactly one thing."""
    assert load_model(_file()).n_params == build("classroom").n_params


def _expect_error(blob: bytes, match: str | None) -> None:
    with pytest.raises(ValueError, match=match or None):
        load_model(blob)


def test_empty_and_not_a_zip():
    _expect_error(b"", "empty")
    _expect_error(b"hello world", "not a model file")
    _expect_error(b"\x89PNG\r\n\x1a\n" + bytes(100), "not a model file")


@pytest.mark.parametrize("frac", [0.01, 0.1, 0.5, 0.9, 0.99])
def test_truncated(frac):
    blob = model_to_bytes(build("classroom"))
    _expect_error(blob[: int(len(blob) * frac)], "")


def test_corrupt_bytes_inside():
    blob = bytearray(model_to_bytes(build("classroom")))
    rng = np.random.default_rng(0)
    for _ in range(20):
        bad = np.frombuffer(blob, dtype=np.uint8).copy()
        pos = rng.integers(100, len(bad) - 200, 8)
        bad[pos] ^= 0x5A
        try:
            net = load_model(bad.tobytes())
        except ValueError:
            continue
        # a flip that zip's CRC cannot see would have to leave a valid, finite model
        assert all(np.all(np.isfinite(p)) for _, p in net.named_params())


def test_wrong_shapes():
    spec, arrays = _good_parts()
    arrays["0.W"] = np.zeros((8, 1, 3, 3), np.float32)
    _expect_error(_file(spec, arrays), "shape")
    spec, arrays = _good_parts()
    spec["params"]["0.W"]["shape"] = [8, 1, 3, 3]
    _expect_error(_file(spec, arrays), "shape")
    spec, arrays = _good_parts()
    spec["layers"][4]["in_features"] = 1000  # dense no longer fits its input
    _expect_error(_file(spec, arrays), "in_features")


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex64, np.uint8, ">f4", np.bool_])
def test_wrong_dtype(dtype):
    spec, arrays = _good_parts()
    arrays["4.W"] = arrays["4.W"].astype(dtype)
    _expect_error(_file(spec, arrays), "dtype")


def test_mixed_float_dtypes():
    spec, arrays = _good_parts()
    arrays["4.b"] = arrays["4.b"].astype(np.float64)
    _expect_error(_file(spec, arrays), "mix")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(value):
    spec, arrays = _good_parts()
    arrays["0.W"][3, 0, 2, 2] = value
    _expect_error(_file(spec, arrays), "NaN or inf")


class _Evil:
    def __reduce__(self):  # would create a file if anything unpickled it
        return (Path.touch, (Path("/tmp/cnnviz_pickle_executed"),))


def test_object_arrays_and_pickles_are_never_loaded():
    marker = Path("/tmp/cnnviz_pickle_executed")
    marker.unlink(missing_ok=True)
    spec, arrays = _good_parts()
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil()
    members = {"spec.npy": _spec_bytes(spec), **{f"{n}.npy": _npy(a) for n, a in arrays.items()}}
    members["0.b.npy"] = _npy(evil, allow_pickle=True)
    _expect_error(_zip(members), "dtype")
    members["0.b.npy"] = pickle.dumps(_Evil())  # a raw pickle where an .npy should be
    _expect_error(_zip(members), "not a .npy")
    members = {"spec.npy": pickle.dumps(_Evil())}
    _expect_error(_zip(members), "")
    assert not marker.exists()


def test_zip_bomb_is_refused_before_decompressing():
    spec, arrays = _good_parts()
    members = {"spec.npy": _spec_bytes(spec), **{f"{n}.npy": _npy(a) for n, a in arrays.items()}}
    members["4.W.npy"] = bytes(MAX_FILE_BYTES + 1)  # compresses to ~70 KB
    blob = _zip(members)
    assert len(blob) < 1_000_000
    _expect_error(blob, "decompress")


def test_zip_member_lying_about_its_size():
    blob = bytearray(_file())
    # shrink the declared uncompressed size of every member in the central directory: reading stops early
    with zipfile.ZipFile(io.BytesIO(bytes(blob))) as zf:
        infos = zf.infolist()
    for info in infos:
        needle = info.file_size.to_bytes(4, "little")
        idx = blob.rfind(needle)
        if idx > 0:
            blob[idx:idx + 4] = (16).to_bytes(4, "little")
    _expect_error(bytes(blob), "")


def test_huge_declared_shapes():
    spec, arrays = _good_parts()
    spec["layers"][4] = {"type": "Dense", "in_features": 1152, "out_features": 10**9}
    spec["params"]["4.W"]["shape"] = [1152, 10**9]
    spec["params"]["4.b"]["shape"] = [10**9]
    _expect_error(_file(spec, arrays), "out of range")
    # an .npy header claiming an enormous array where the spec expects a small one
    spec, arrays = _good_parts()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12,)})
    members = {"spec.npy": _spec_bytes(spec), **{f"{n}.npy": _npy(a) for n, a in arrays.items()}}
    members["0.b.npy"] = header.getvalue() + bytes(64)
    _expect_error(_zip(members), "shape")


def test_unknown_layer_type():
    spec, arrays = _good_parts()
    spec["layers"][1] = {"type": "Lambda", "code": "__import__('os').system('true')"}
    _expect_error(_file(spec, arrays), "unknown layer type")


@pytest.mark.parametrize("mutate, match", [
    (lambda s: s.update(format="keras"), "not a cnnviz model"),
    (lambda s: s.update(version=99), "version"),
    (lambda s: s.update(version="1"), "version"),
    (lambda s: s.update(surprise=1), "unknown fields"),
    (lambda s: s.update(layers="Conv2D"), "layers"),
    (lambda s: s.update(params=[]), "parameter list"),
    (lambda s: s["params"].pop("0.b"), "parameter list"),
    (lambda s: s.update(config={"preset": "classroom", "lr": "fast"}), "lr"),
    (lambda s: s.update(config={"preset": "deeper"}), "different layers"),
    (lambda s: s.update(config=[1]), "JSON object"),
    (lambda s: s.update(extra=[1, 2]), "extra"),
])
def test_bad_spec_fields(mutate, match):
    spec, arrays = _good_parts()
    mutate(spec)
    _expect_error(_file(spec, arrays), match)


def test_bad_spec_blobs():
    spec, arrays = _good_parts()
    _expect_error(_file(spec="{not json", arrays=arrays), "JSON")
    _expect_error(_file(spec=b"\xff\xfe\x00", arrays=arrays), "JSON")
    _expect_error(_file(spec="[1, 2]", arrays=arrays), "JSON object")
    _expect_error(_file(spec="[" * 100000 + "]" * 100000, arrays=arrays), "JSON")
    big = dict(spec, extra={"pad": "x" * (2 * 2**20)})
    _expect_error(_file(big, arrays), "larger than|at most")
    members = {f"{n}.npy": _npy(a) for n, a in arrays.items()}
    _expect_error(_zip(members), "no spec")
    float_spec = {"spec.npy": _npy(np.zeros(10, np.float32)), **members}
    _expect_error(_zip(float_spec), "dtype")


def test_missing_and_extra_arrays():
    spec, arrays = _good_parts()
    del arrays["4.b"]
    _expect_error(_file(spec, arrays), "missing")
    spec, arrays = _good_parts()
    extra = {"payload.npy": _npy(np.zeros(3, np.float32))}
    _expect_error(_file(spec, arrays, raw_members=extra), "unexpected")


def test_npy_member_with_trailing_or_missing_data():
    spec, arrays = _good_parts()
    members = {"spec.npy": _spec_bytes(spec), **{f"{n}.npy": _npy(a) for n, a in arrays.items()}}
    members["0.b.npy"] = members["0.b.npy"] + b"extra"
    _expect_error(_zip(members), "trailing")
    members["0.b.npy"] = _npy(arrays["0.b"])[:-8]
    _expect_error(_zip(members), "truncated")


def test_oversized_file_is_refused(tmp_path):
    p = tmp_path / "big.npz"
    with open(p, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    _expect_error(p, "larger|more than")


def test_fortran_ordered_arrays_are_read_correctly(x):
    spec, arrays = _good_parts()
    members = {"spec.npy": _spec_bytes(spec), **{f"{n}.npy": _npy(a) for n, a in arrays.items()}}
    members["4.W.npy"] = _npy(np.asfortranarray(arrays["4.W"]))
    net = load_model(_zip(members))
    ref = from_spec(spec["layers"], rng=0)
    ref.set_params(arrays)
    assert np.array_equal(net.forward(x), ref.forward(x))


def test_saved_bytes_are_reproducible():
    net = build("classroom", rng=4)
    cfg = preset_config("classroom")
    assert model_to_bytes(net, cfg) == model_to_bytes(load_model(model_to_bytes(net, cfg)), cfg)

"""Fuzzing with hypothesis: the model loader and the image conversions let only ValueError escape.

Inputs are random bytes, and valid files with random byte edits, truncations and insertions (the shapes a
damaged or hostile upload takes). Bounded to a few seconds per test so the whole file runs in well under a
minute on two cores.
"""

from __future__ import annotations

import io as _io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnviz.drawing.convert import canvas_to_mnist, image_file_to_mnist
from cnnviz.nn.network import build
from cnnviz.train import model_file as io
from cnnviz.train.config import preset_config

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _model_bytes(preset: str) -> bytes:
    return io.model_to_bytes(build(preset, rng=np.random.default_rng(1)), preset_config(preset))


VALID_MODELS = [_model_bytes("tutorial"), _model_bytes("classroom")]


def _image_bytes(fmt: str, mode: str = "L") -> bytes:
    im = Image.new("L", (40, 40), 0)
    im.paste(255, (17, 6, 23, 34))
    buf = _io.BytesIO()
    im.convert(mode).save(buf, fmt)
    return buf.getvalue()


VALID_IMAGES = [_image_bytes("PNG"), _image_bytes("JPEG", "RGB"), _image_bytes("GIF"), _image_bytes("BMP"),
                _image_bytes("TIFF"), _image_bytes("WEBP")]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A valid file with a few random edits: byte flips, a cut, an insertion, or a splice of two files."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero", "splice"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "zero":
            data[pos:pos + 8] = bytes(len(data[pos:pos + 8]))
        else:
            other = draw(st.sampled_from(seeds))
            data = data[:pos] + other[pos:]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _only_value_error(fn, data) -> None:
    try:
        fn(data)
    except ValueError as e:
        assert str(e), "an error message must say what is wrong"


@FUZZ
@given(st.binary(max_size=2048))
def test_load_model_random_bytes(data):
    _only_value_error(io.load_model, data)


@FUZZ
@given(mutated(VALID_MODELS))
def test_load_model_mutated_files(data):
    try:
        net = io.load_model(data)
    except ValueError as e:
        assert str(e)
        return
    x = np.zeros((1, 1, 28, 28), np.float32)  # a file that loads is a working, finite network
    assert np.isfinite(net.predict_proba(x)).all()


@FUZZ
@given(st.binary(max_size=4096))
def test_image_file_random_bytes(data):
    _only_value_error(image_file_to_mnist, data)


def _digit_or_clear_error(convert, arg) -> None:
    """``convert(arg)`` gives a (28, 28) float32 digit in [0, 1], or raises ValueError with a message."""
    try:
        out = convert(arg)
    except ValueError as e:
        assert str(e)
        return
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow's notes on mutated EXIF
@FUZZ
@given(mutated(VALID_IMAGES))
def test_image_file_mutated(data):
    _digit_or_clear_error(image_file_to_mnist, data)


_DTYPES = st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_])


@FUZZ
@given(st.tuples(st.integers(0, 300), st.integers(0, 300), st.sampled_from([None, 1, 2, 3, 4, 5])),
       _DTYPES, st.integers(0, 2**32 - 1), st.sampled_from(["random", "sparse", "special"]))
def test_canvas_to_mnist_random_arrays(shape, dtype, seed, fill):
    """Any array a canvas component could hand over (any shape, dtype, NaN/inf): a digit or a ValueError."""
    h, w, c = shape
    full = (h, w) if c is None else (h, w, c)
    rng = np.random.default_rng(seed)
    if fill == "random":
        a = rng.random(full) * 300
    elif fill == "sparse":
        a = np.zeros(full)
        if a.size:
            a.flat[rng.integers(0, a.size, size=min(a.size, 5))] = 255
    else:
        a = rng.choice(np.array([0.0, 1.0, 255.0, np.nan, np.inf, -np.inf, -1.0]), size=full)
    with np.errstate(invalid="ignore", over="ignore"):
        a = a.astype(dtype)
    _digit_or_clear_error(canvas_to_mnist, a)


@pytest.mark.parametrize("bad", [None, "canvas", 3.5, [[1, 2], [3]], {"a": 1}])
def test_canvas_to_mnist_non_arrays(bad):
    with pytest.raises(ValueError):
        canvas_to_mnist(bad)

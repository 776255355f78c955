"""canvas_to_mnist and image_file_to_mnist as pure functions: MNIST's preparation, and every bad upload."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnviz.drawing.convert import MAX_FILE_BYTES, canvas_to_mnist, image_file_to_mnist

ROOT = Path(__file__).resolve().parents[1]
DRAW_MODEL = ROOT / "assets" / "models" / "draw.npz"


# ----------------------------------------------------------------------------------------------------------
# Helpers: strokes on a 280x280 canvas, like the Draw page's
# ----------------------------------------------------------------------------------------------------------
def canvas_with(shape: str, box: tuple[int, int, int, int], width: int, background: str = "transparent",
                size: int = 280) -> np.ndarray:
    """A canvas (size, size, 4) uint8 with a white "one" (a bar), "zero" (an ellipse) or "ell" in ``box``."""
    bg = (0, 0, 0, 0) if background == "transparent" else (0, 0, 0, 255)
    im = Image.new("RGBA", (size, size), bg)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = box
    if shape == "one":
        cx = (x0 + x1) // 2
        d.line([(cx + (x1 - x0) // 6, y0), (cx - (x1 - x0) // 6, y1)], fill=(255, 255, 255, 255), width=width)
    elif shape == "zero":
        d.ellipse(box, outline=(255, 255, 255, 255), width=width)
    elif shape == "ell":  # an asymmetric L, to see orientation
        d.line([(x0, y0), (x0, y1), (x1, y1)], fill=(255, 255, 255, 255), width=width)
    return np.asarray(im)


def com(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(img.shape)
    m = img.sum()
    return float((ys * img).sum() / m), float((xs * img).sum() / m)


def bbox(img: np.ndarray, thr: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero((img > thr).any(axis=1))
    cols = np.flatnonzero((img > thr).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def similar(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation over shifts of up to one pixel: centring by the centre of mass rounds to whole pixels,
    so a half-pixel difference in where the COM falls moves a digit by one pixel."""
    return max(corr(np.roll(a, (dy, dx), axis=(0, 1)), b) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def digit_image(dark_on_light: bool = False, size: int = 200, mode: str = "L") -> Image.Image:
    """A photo-like picture of a "zero" (ellipse) with a little paper grain."""
    rng = np.random.default_rng(0)
    ink = canvas_with("zero", (60, 30, 140, 170), 14, size=size)[:, :, 3].astype(np.float32) / 255
    grey = 0.08 + 0.8 * ink + rng.normal(0, 0.02, ink.shape)
    if dark_on_light:
        grey = 1.0 - grey
    return Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L").convert(mode)


# ----------------------------------------------------------------------------------------------------------
# canvas_to_mnist
# ----------------------------------------------------------------------------------------------------------
def test_output_is_28x28_float32_in_unit_range():
    out = canvas_to_mnist(canvas_with("zero", (40, 40, 240, 240), 20))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)


@pytest.mark.parametrize("background", ["transparent", "black"])
def test_empty_canvas_raises(background):
    with pytest.raises(ValueError, match="empty"):
        canvas_to_mnist(canvas_with("none", (0, 0, 1, 1), 1, background))


def test_transparent_and_black_backgrounds_agree():
    a = canvas_to_mnist(canvas_with("zero", (50, 30, 200, 250), 18, "transparent"))
    b = canvas_to_mnist(canvas_with("zero", (50, 30, 200, 250), 18, "black"))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_rejects_non_images():
    for bad in (np.zeros((10,), np.uint8), np.zeros((5, 5, 2), np.uint8), np.zeros((0, 5, 4), np.uint8)):
        with pytest.raises(ValueError):
            canvas_to_mnist(bad)


@pytest.mark.parametrize("box", [
    (40, 40, 240, 240),  # large, central
    (5, 5, 60, 60),  # small, top-left corner
    (215, 200, 275, 275),  # small, bottom-right corner
    (0, 0, 280, 280),  # touching every edge
    (100, 10, 130, 270),  # tall and narrow
])
@pytest.mark.parametrize("shape", ["zero", "one", "ell"])
def test_longer_side_20_and_centre_of_mass_at_14(shape, box):
    width = max(3, (box[2] - box[0]) // 10)
    out = canvas_to_mnist(canvas_with(shape, box, width))
    h, w = bbox(out)
    assert max(h, w) in (20, 21)  # 20 px plus at most one pixel of anti-aliased fringe
    cy, cx = com(out)
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    # The COM lands on (14, 14) to the nearest pixel, unless that would push the digit out of the field
    # (an L's COM is near its corner): then the digit touches the edge on that side.
    assert abs(cy - 14) <= 0.5 + 1e-4 or rows[0] == 0 or rows[-1] == 27
    assert abs(cx - 14) <= 0.5 + 1e-4 or cols[0] == 0 or cols[-1] == 27


def test_aspect_ratio_is_kept():
    out = canvas_to_mnist(canvas_with("zero", (100, 20, 180, 260), 12))  # 80 wide, 240 tall: 1:3
    h, w = bbox(out, thr=0.3)
    assert h in (19, 20, 21) and 5 <= w <= 9


@pytest.mark.parametrize("shape", ["zero", "one", "ell"])
def test_size_and_position_do_not_matter(shape):
    """The same digit drawn large in the middle or small in a corner comes out (nearly) the same."""
    ref = canvas_to_mnist(canvas_with(shape, (40, 40, 240, 240), 20))
    for box, width in [((5, 5, 65, 65), 6), ((200, 200, 275, 275), 7), ((14, 14, 266, 266), 25)]:
        out = canvas_to_mnist(canvas_with(shape, box, width))
        assert similar(out, ref) > 0.95, (box, similar(out, ref))


@pytest.mark.parametrize("shape", ["zero", "one", "ell"])
def test_thick_and_thin_strokes_are_normalised(shape):
    """A thin and a thick stroke of the same digit land on the same place: same 20 px box, same centre, and
    the thin stroke runs inside the thick one. (Thickness itself is kept: the draw model is trained on it.)"""
    thin = canvas_to_mnist(canvas_with(shape, (40, 40, 240, 240), 6))
    thick = canvas_to_mnist(canvas_with(shape, (40, 40, 240, 240), 36))
    for out in (thin, thick):
        assert out.max() == pytest.approx(1.0)
        assert max(bbox(out)) in (20, 21)
    thin_ink, thick_ink = thin > 0.3, thick > 0.3
    near_thick = np.pad(thick_ink, 1)  # thick ink grown by one pixel (anti-aliased edges, COM rounding)
    near_thick = np.logical_or.reduce([near_thick[dy:dy + 28, dx:dx + 28]
                                       for dy in range(3) for dx in range(3)])
    assert thin_ink[near_thick].sum() / thin_ink.sum() > 0.9
    assert thick_ink.sum() > 1.5 * thin_ink.sum()
    assert np.hypot(*np.subtract(com(thin), com(thick))) < 1.5


def test_anti_aliased():
    out = canvas_to_mnist(canvas_with("zero", (40, 40, 240, 240), 20))
    grey = ((out > 0.05) & (out < 0.95)).sum()
    assert grey > 20  # intermediate grey levels at the stroke edges, as in MNIST


def _render_on_canvas(images: np.ndarray, size: int, y0: int, x0: int, grow: int = 0) -> list[np.ndarray]:
    """MNIST digits (N, 28, 28) uint8 scaled to ``size`` px and placed at (y0, x0) on 280x280 canvases;
    ``grow`` > 0 thickens the strokes (a max filter), < 0 thins them (a min filter)."""
    from PIL import ImageFilter

    out = []
    for img in images:
        big = Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)
        if grow:
            k = 2 * abs(grow) + 1
            big = big.filter(ImageFilter.MaxFilter(k) if grow > 0 else ImageFilter.MinFilter(k))
        canvas = np.zeros((280, 280, 4), np.uint8)
        canvas[y0:y0 + size, x0:x0 + size, :3] = 255
        canvas[y0:y0 + size, x0:x0 + size, 3] = np.asarray(big)
        out.append(canvas)
    return out


@pytest.mark.skipif(not DRAW_MODEL.exists(), reason="assets/models/draw.npz is not built")
@pytest.mark.parametrize("size,y0,x0,grow,name", [
    (280, 0, 0, 0, "large, filling the canvas"),
    (84, 4, 4, 0, "small, top-left corner"),
    (84, 190, 190, 0, "small, bottom-right corner"),
    (160, 60, 100, 6, "medium, thick strokes"),
    (240, 20, 20, -3, "large, thin strokes"),
    (200, 40, 40, 8, "large, very thick strokes"),
])
def test_draw_model_keeps_95_percent_on_rerendered_validation(size, y0, x0, grow, name):
    """Validation digits re-drawn onto the canvas at other sizes/positions/thicknesses still read >= 95%."""
    from cnnviz.train.data import fixed_split, load_subset
    from cnnviz.train.model_file import load_model

    images, labels = load_subset()
    _, val_idx = fixed_split(labels)
    x = np.stack([canvas_to_mnist(c) for c in _render_on_canvas(images[val_idx], size, y0, x0, grow)])
    net = load_model(DRAW_MODEL)
    pred = net.predict_proba(x[:, None]).argmax(axis=1)  # x[:, None]: (1000, 1, 28, 28)
    acc = float((pred == labels[val_idx]).mean())
    assert acc >= 0.95, f"{name}: {acc:.1%}"


# ----------------------------------------------------------------------------------------------------------
# image_file_to_mnist: good files in every mode
# ----------------------------------------------------------------------------------------------------------
REFERENCE = None


def reference() -> np.ndarray:
    global REFERENCE
    if REFERENCE is None:
        REFERENCE = image_file_to_mnist(png_bytes(digit_image()))
    return REFERENCE


def test_png_light_on_dark_matches_canvas_conversion():
    out = reference()
    assert out.shape == (28, 28) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    canvas = canvas_to_mnist(canvas_with("zero", (60, 30, 140, 170), 14, size=200))
    assert similar(out, canvas) > 0.95


def test_dark_on_light_is_inverted():
    out = image_file_to_mnist(png_bytes(digit_image(dark_on_light=True)))
    assert similar(out, reference()) > 0.97
    assert out[0, 0] == 0.0 and out.max() == pytest.approx(1.0)


def test_jpeg_photo_of_dark_ink():
    out = image_file_to_mnist(png_bytes(digit_image(dark_on_light=True, mode="RGB"), "JPEG", quality=70))
    assert similar(out, reference()) > 0.95


def test_16_bit_png():
    grey = np.asarray(digit_image(dark_on_light=True), np.uint16) * 257  # (H, W) 0..65535
    im = Image.fromarray(grey)
    assert im.mode.startswith("I;16") or im.mode == "I"
    out = image_file_to_mnist(png_bytes(im))
    assert similar(out, reference()) > 0.97


def test_cmyk_jpeg():
    im = digit_image(dark_on_light=True, mode="RGB").convert("CMYK")
    out = image_file_to_mnist(png_bytes(im, "JPEG", quality=90))
    assert similar(out, reference()) > 0.95


def test_palette_png():
    im = digit_image(dark_on_light=True, mode="RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = image_file_to_mnist(png_bytes(im))
    assert similar(out, reference()) > 0.95


@pytest.mark.parametrize("ink", ["white", "black"])
def test_strokes_on_transparent_background(ink):
    """A canvas-like PNG (strokes on transparency) reads the same whether the strokes are white or black."""
    alpha = np.asarray(digit_image())  # (H, W) light digit = opaque ink
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[:, :, :3] = 255 if ink == "white" else 0
    rgba[:, :, 3] = alpha
    out = image_file_to_mnist(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert similar(out, reference()) > 0.95


def test_grey_alpha_png():
    la = digit_image(dark_on_light=True).convert("LA")
    assert similar(image_file_to_mnist(png_bytes(la)), reference()) > 0.97


def test_animated_gif_uses_first_frame():
    first = digit_image(dark_on_light=True)
    second = Image.new("L", first.size, 255)
    ImageDraw.Draw(second).rectangle((20, 20, 60, 180), fill=0)
    data = png_bytes(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert similar(image_file_to_mnist(data), reference()) > 0.95


def test_exif_orientation_is_applied():
    upright = Image.fromarray(canvas_with("ell", (40, 30, 150, 170), 14, size=200)[:, :, 3])
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the camera stored it turned 90 degrees
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display, which undoes ROTATE_90 (counter-clockwise)
    data = png_bytes(stored.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())
    out = image_file_to_mnist(data)
    expected = image_file_to_mnist(png_bytes(upright))
    assert similar(out, expected) > 0.95
    assert corr(out, image_file_to_mnist(png_bytes(stored))) < 0.5


def test_large_photo_is_reduced_not_refused():
    big = digit_image(dark_on_light=True).resize((3000, 3000))
    out = image_file_to_mnist(png_bytes(big))
    assert similar(out, reference()) > 0.95


# ----------------------------------------------------------------------------------------------------------
# image_file_to_mnist: bad files, each with a clear ValueError
# ----------------------------------------------------------------------------------------------------------
def _png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header declares width x height (CRC fixed): a decompression bomb."""
    data = bytearray(png_bytes(Image.new("L", (16, 16), 0)))
    ihdr = 8  # after the signature: length (4), b"IHDR" (4), data (13), crc (4)
    struct.pack_into(">II", data, ihdr + 8, width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4:ihdr + 8 + 13])) & 0xFFFFFFFF
    struct.pack_into(">I", data, ihdr + 8 + 13, crc)
    return bytes(data)


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (b"%PDF-1.4\n" + b"0" * 100, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image|could not be read"),
])
def test_not_an_image(data, message):
    with pytest.raises(ValueError, match=message):
        image_file_to_mnist(data)


def test_truncated_png():
    data = png_bytes(digit_image())
    with pytest.raises(ValueError, match="could not be read|not an image"):
        image_file_to_mnist(data[: len(data) // 2])


def test_truncated_jpeg():
    data = png_bytes(digit_image(mode="RGB"), "JPEG")
    with pytest.raises(ValueError, match="could not be read|not an image"):
        image_file_to_mnist(data[: len(data) // 3])


def test_one_pixel_image():
    with pytest.raises(ValueError, match="too small"):
        image_file_to_mnist(png_bytes(Image.new("L", (1, 1), 255)))


def test_decompression_bomb_20000_squared():
    data = _png_with_declared_size(20000, 20000)
    assert struct.unpack(">II", data[16:24]) == (20000, 20000) and len(data) < 200
    with pytest.raises(ValueError, match="too large"):
        image_file_to_mnist(data)


def test_moderate_pixel_count_over_our_limit():
    with pytest.raises(ValueError, match="too large"):
        image_file_to_mnist(_png_with_declared_size(5000, 5000))  # 25 Mpixel: under Pillow's limit, over ours


def test_oversized_file():
    with pytest.raises(ValueError, match="too large"):
        image_file_to_mnist(b"\x89PNG" + b"\x00" * (MAX_FILE_BYTES + 1))


@pytest.mark.parametrize("colour", [0, 255, 128])
def test_blank_images(colour):
    with pytest.raises(ValueError, match="blank"):
        image_file_to_mnist(png_bytes(Image.new("L", (64, 64), colour)))


def test_not_bytes():
    with pytest.raises(ValueError):
        image_file_to_mnist("digit.png")  # type: ignore[arg-type]


def test_fuzzed_files_never_crash():
    """Random byte flips in a valid PNG/JPEG/GIF: a (28, 28) digit in [0, 1] or a ValueError, nothing else."""
    rng = np.random.default_rng(1)
    seeds = [png_bytes(digit_image()), png_bytes(digit_image(mode="RGB"), "JPEG"),
             png_bytes(digit_image(), "GIF")]
    for _ in range(150):
        data = bytearray(seeds[rng.integers(len(seeds))])
        for pos in rng.integers(0, len(data), size=rng.integers(1, 8)):
            data[pos] = rng.integers(256)
        if rng.random() < 0.3:
            data = data[: rng.integers(1, len(data))]
        try:
            out = image_file_to_mnist(bytes(data))
        except ValueError:
            continue
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and 0 <= out.min() and out.max() <= 1


# ----------------------------------------------------------------------------------------------------------
# augment (the draw model's training augmentation)
# ----------------------------------------------------------------------------------------------------------
def _mnist_batch(n: int = 64) -> np.ndarray:
    from cnnviz.train.data import load_subset, to_input

    images, _ = load_subset()
    return to_input(images[:n])  # (n, 1, 28, 28)


def test_augment_shapes_range_and_determinism():
    from cnnviz.train.augment import augment

    x = _mnist_batch()
    a = augment(x, np.random.default_rng(0))
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0 and np.allclose(a.max(axis=(1, 2, 3)), 1.0)
    np.testing.assert_array_equal(a, augment(x, np.random.default_rng(0)))  # same seed, same result
    assert not np.array_equal(a, augment(x, np.random.default_rng(1)))
    assert augment(x[:, 0], np.random.default_rng(0)).shape == (64, 28, 28)  # (N, H, W) works too
    np.testing.assert_array_equal(x, _mnist_batch())  # the input is not modified


def test_augment_without_transformations_is_the_identity():
    from cnnviz.train.augment import augment

    x = _mnist_batch(16)
    same = augment(x, np.random.default_rng(0), max_shift=0, max_rotation=0, scale_range=(1, 1),
                   max_shear=0, p_thickness=0)
    np.testing.assert_allclose(same, x / x.max(axis=(1, 2, 3), keepdims=True), atol=1e-6)


def test_augment_shift_moves_the_centre_of_mass():
    from cnnviz.train.augment import augment

    x = _mnist_batch(32)
    a = augment(x, np.random.default_rng(0), max_shift=2, max_rotation=0, scale_range=(1, 1), max_shear=0,
                p_thickness=0)
    d = np.array([np.hypot(*np.subtract(com(p[0]), com(q[0]))) for p, q in zip(a, x, strict=True)])
    assert d.max() <= 2 * np.sqrt(2) + 0.3 and d.mean() > 0.5


def test_augment_thickness_changes_ink_not_place():
    from cnnviz.train.augment import augment

    x = _mnist_batch(32)
    fixed = {"max_shift": 0, "max_rotation": 0, "scale_range": (1, 1), "max_shear": 0, "p_thickness": 1.0}
    thick = augment(x, np.random.default_rng(0), thickness=(2, 2), **fixed)
    thin = augment(x, np.random.default_rng(0), thickness=(-0.6, -0.6), **fixed)
    ink = (x > 0.5).sum(axis=(1, 2, 3))
    assert np.all((thick > 0.5).sum(axis=(1, 2, 3)) > ink)
    assert np.all((thin > 0.5).sum(axis=(1, 2, 3)) < ink)
    for a in (thick, thin):
        d = [np.hypot(*np.subtract(com(p[0]), com(q[0]))) for p, q in zip(a, x, strict=True)]
        assert max(d) < 1.0


def test_augment_rotation_keeps_mass_near_the_centre():
    from cnnviz.train.augment import augment

    x = _mnist_batch(32)
    a = augment(x, np.random.default_rng(0), max_shift=0, max_rotation=15, scale_range=(1, 1), max_shear=0,
                p_thickness=0)
    assert np.mean([corr(p[0], q[0]) for p, q in zip(a, x, strict=True)]) > 0.5
    assert not np.allclose(a, x / x.max(axis=(1, 2, 3), keepdims=True))

"""Turn a drawing or an uploaded picture into the 28×28 digit MNIST would have made of it.

MNIST's own preparation: crop to the strokes, scale the longer side to 20 px keeping the aspect ratio
(anti-aliased), then place the result in a 28×28 field so that its centre of mass lands on (14, 14).
``canvas_to_mnist`` does this for the Draw page's canvas (white strokes on a transparent or black background);
``image_file_to_mnist`` does it for an uploaded photo or scan (any mode, dark-on-light inverted), refusing
unreadable, empty, tiny or oversized files with a clear ``ValueError``. NumPy and Pillow only.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 28  # output field (MNIST)
BOX = 20  # the longer side of the digit after scaling (MNIST)
CENTRE = 14.0  # where the centre of mass lands, in pixel-index coordinates (MNIST's mean is 13.99, 14.00)
INK_THRESHOLD = 0.1  # a pixel counts as stroke for cropping above this share of the brightest pixel

MAX_FILE_BYTES = 5 * 1024 * 1024  # uploads above this are refused before decoding
MAX_PIXELS = 16_000_000  # width × height above this is refused before decoding (decompression bombs)
MIN_SIDE = 8  # smaller images cannot hold a recognisable digit
WORK_SIDE = 512  # uploads are reduced to at most this side before the NumPy work
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def ink_to_mnist(ink: np.ndarray) -> np.ndarray:
    """(H, W) stroke intensity (>= 0, background 0) -> (28, 28) float32 in [0, 1], MNIST-style.

    Crops to the strokes, scales the longer side to 20 px with Lanczos resampling of the float image
    (keeps the aspect ratio), normalises the brightest pixel to 1, and shifts it so its centre of mass is at
    (14, 14) (clipped so that the digit stays inside the field). ``ValueError`` when there are no strokes.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"expected a 2-D intensity image, got shape {ink.shape}")
    ink = np.nan_to_num(ink, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(ink.max()) if ink.size else 0.0
    if peak <= 1e-3:
        raise ValueError("the drawing is empty: draw a digit first")
    ink = np.clip(ink / peak, 0.0, 1.0)  # (H, W)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # (h0, w0)
    h0, w0 = crop.shape
    scale = BOX / max(h0, w0)
    h = max(1, min(BOX, round(h0 * scale)))
    w = max(1, min(BOX, round(w0 * scale)))
    small = np.asarray(
        Image.fromarray(np.ascontiguousarray(crop)).resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32
    )  # (h, w)
    small = np.clip(small, 0.0, None)  # Lanczos rings slightly below 0
    top_value = float(small.max())
    if top_value <= 1e-6:
        raise ValueError("the drawing is empty: draw a digit first")
    small = np.clip(small / top_value, 0.0, 1.0)
    mass = small.sum()
    cy = float((small.sum(axis=1) * np.arange(h)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(w)).sum() / mass)
    top = int(np.clip(np.floor(CENTRE - cy + 0.5), 0, SIZE - h))  # round half up, the same way everywhere
    left = int(np.clip(np.floor(CENTRE - cx + 0.5), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)  # (28, 28)
    out[top:top + h, left:left + w] = small
    return out


def canvas_to_mnist(rgba: np.ndarray) -> np.ndarray:
    """Canvas pixels (H, W, 4) uint8, white strokes on transparent or black -> (28, 28) float32 in [0, 1].

    Stroke intensity is luminance × alpha, so both a transparent and an opaque black background count as
    empty and anti-aliased stroke edges keep their partial weight. (H, W, 3) and (H, W) are accepted too.
    Raises ``ValueError`` on an empty drawing or an array that is not an image.
    """
    a = np.asarray(rgba)
    if a.ndim == 2:
        a = a[:, :, None]  # (H, W, 1)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected canvas pixels of shape (H, W, 4), got {np.shape(rgba)}")
    scale = 255.0 if a.dtype == np.uint8 else None
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # damaged pixels: no ink
    a /= scale or (255.0 if a.max(initial=0.0) > 1.0 else 1.0)
    if a.shape[2] == 1:
        return ink_to_mnist(a[:, :, 0])
    lum = a[:, :, 0] * 0.299 + a[:, :, 1] * 0.587 + a[:, :, 2] * 0.114  # (H, W)
    alpha = a[:, :, 3] if a.shape[2] == 4 else 1.0
    return ink_to_mnist(lum * alpha)


def _grey_from_image(im: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W) float32 grey in [0, 1], light = 1, transparency resolved against the ink.

    Transparent areas are filled with the colour that contrasts with the opaque pixels (black under light ink,
    white under dark ink), so white strokes on a transparent PNG stay visible, and so do black ones.
    """
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        g = np.asarray(im, dtype=np.float32)  # (H, W)
        lo, hi = float(g.min()), float(g.max())
        return (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
    has_alpha = "A" in im.getbands() or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0  # (H, W, 4)
        lum = rgba[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W)
        alpha = rgba[:, :, 3]
        if float(alpha.min()) < 0.98:
            opaque = alpha > 0.5
            ink_is_light = opaque.any() and float(lum[opaque].mean()) > 0.5
            backdrop = 0.0 if ink_is_light else 1.0
            return lum * alpha + backdrop * (1.0 - alpha)
        return lum
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0  # (H, W)


def image_file_to_mnist(data: bytes) -> np.ndarray:
    """An uploaded PNG/JPEG/GIF/BMP/WebP/TIFF file's bytes -> (28, 28) float32 in [0, 1], MNIST-style.

    Refuses (``ValueError`` with a message for the user) files that are empty, too big (> 5 MiB), not an
    image, truncated, decompression bombs (> 16 Mpixel declared), smaller than 8×8 or blank. Applies the EXIF
    orientation, takes the first frame of an animation, reads any mode (16-bit, CMYK, palette, grey+alpha),
    inverts dark-on-light pictures (decided by the brightness of the border), removes the paper's background
    level, and then prepares the digit like ``canvas_to_mnist``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("expected the bytes of an image file")
    data = bytes(data)
    if not data:
        raise ValueError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"the file is too large ({len(data) / 2**20:.1f} MiB); the limit is "
                         f"{MAX_FILE_BYTES // 2**20} MiB")
    try:
        # Pillow refuses > 2 × MAX_IMAGE_PIXELS itself (DecompressionBombError); our own, lower limit is
        # checked from the header before any pixel is decoded, so its DecompressionBombWarning never fires.
        im = Image.open(io.BytesIO(data), formats=FORMATS)
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise ValueError(f"the image is too large ({w}×{h} pixels); the limit is "
                             f"{MAX_PIXELS // 1_000_000} million pixels")
        if min(w, h) < MIN_SIDE:
            raise ValueError(f"the image is too small ({w}×{h} pixels); it needs at least "
                             f"{MIN_SIDE}×{MIN_SIDE}")
        im.seek(0)  # first frame of an animated GIF/WebP
        im.load()
        im = ImageOps.exif_transpose(im)
        if max(im.size) > WORK_SIDE:
            im = im.copy()
            im.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
        grey = _grey_from_image(im)  # (H, W)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError("the image is too large (its declared size is a decompression bomb)") from e
    except UnidentifiedImageError as e:
        raise ValueError("this file is not an image that can be read (use PNG or JPEG)") from e
    except ValueError:
        raise
    except (OSError, SyntaxError, EOFError, IndexError, TypeError, KeyError, MemoryError) as e:
        raise ValueError(f"the image could not be read (damaged or truncated file): {e}") from e
    return _grey_to_mnist(grey)


def _grey_to_mnist(grey: np.ndarray) -> np.ndarray:
    """(H, W) grey in [0, 1] -> (28, 28) digit: light-ink polarity, background removed, MNIST-style."""
    H, W = grey.shape
    b = max(1, min(H, W) // 20)
    border = np.concatenate([grey[:b].ravel(), grey[-b:].ravel(), grey[:, :b].ravel(), grey[:, -b:].ravel()])
    if float(np.median(border)) > 0.5:  # dark ink on light paper: make the ink light, as in MNIST
        grey = 1.0 - grey
        border = 1.0 - border
    background = float(np.median(border))
    peak = float(grey.max())
    if peak - background < 0.1:
        raise ValueError("the image looks blank: no digit stands out from the background")
    # Up to a fifth of the way from the background to the ink is paper (shading, grain, JPEG noise).
    floor = background + 0.2 * (peak - background)
    ink = np.clip((grey - floor) / (peak - floor), 0.0, 1.0)  # (H, W)
    return ink_to_mnist(ink)

"""Synthetic drawings that are not digits, for teaching the draw model to say so.

``make_nondigits`` draws dots, straight strokes (never near-vertical: that is a 1), zigzags, scribbles, wavy
lines, crosses and stars, filled blobs, several scattered marks, capital/small letters that do not resemble a
digit (typeset in a few of the typeset-digit fonts, and as pen strokes through a letter's skeleton), spirals
of two or more turns, scribbles of several strokes, cursive loops and parallel hatching, on a canvas-sized
image with a random pen, then prepares each like a drawing (``ink_to_mnist``). The draw model is trained to
answer these with equal probabilities for all ten digits (outlier exposure), so its top probability on them
is low.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cnnviz.drawing.convert import ink_to_mnist

CANVAS = 280
KINDS = ("dot", "line", "zigzag", "scribble", "wave", "cross", "blob", "marks", "letter", "spiral",
         "pen letter", "scribbles", "loops", "hatch")
# Letters whose shapes are far from every digit (no O, I, l, S, Z, B, G, q, g, b, etc.)
LETTERS = "AEFHKMNRVWXYkmwxyh"
LETTER_FONTS = ("truetype/dejavu/DejaVuSans.ttf", "truetype/liberation/LiberationSerif-Regular.ttf",
                "truetype/freefont/FreeSans.ttf", "opentype/urw-base35/NimbusRoman-Italic.otf",
                "truetype/lato/Lato-Regular.ttf")


def _pen(rng: np.random.Generator) -> int:
    return int(rng.integers(6, 28))


def _polyline(draw: ImageDraw.ImageDraw, pts: np.ndarray, width: int) -> None:
    """A stroke through pts (n, 2) with round joints and caps, like the canvas's pen."""
    p = [tuple(map(float, q)) for q in pts]
    if len(p) > 1:
        draw.line(p, fill=255, width=width, joint="curve")
    r = width / 2
    for x, y in (p[0], p[-1]):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)


def _smooth_path(rng: np.random.Generator, n_ctrl: int, box: float, centre: np.ndarray) -> np.ndarray:
    """A smooth random curve through n_ctrl random points in a box (Catmull-Rom-like by upsampling)."""
    ctrl = centre + rng.uniform(-box / 2, box / 2, (n_ctrl, 2))  # (n_ctrl, 2)
    t = np.linspace(0, n_ctrl - 1, n_ctrl * 12)
    xs = np.interp(t, np.arange(n_ctrl), ctrl[:, 0])
    ys = np.interp(t, np.arange(n_ctrl), ctrl[:, 1])
    k = np.ones(7) / 7  # moving average rounds the corners
    pad = lambda v: np.concatenate([np.full(3, v[0]), v, np.full(3, v[-1])])  # noqa: E731
    return np.stack([np.convolve(pad(xs), k, "valid"), np.convolve(pad(ys), k, "valid")], 1)  # (m, 2)


def _dot(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
           letter_fonts: list | None) -> None:
    r = rng.uniform(2, 18)
    pts = c + rng.normal(0, r / 3, (int(rng.integers(1, 4)), 2))
    _polyline(d, pts, int(max(4, 2 * r)))


def _line(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
            letter_fonts: list | None) -> None:
    angle = rng.uniform(np.deg2rad(35), np.deg2rad(145)) * rng.choice([-1, 1])  # from vertical
    v = np.array([np.sin(angle), np.cos(angle)]) * size / 2
    bend = rng.normal(0, size * 0.04, 2)
    pts = np.stack([c - v, c + bend, c + v])
    _polyline(d, pts, w)


def _zigzag(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
              letter_fonts: list | None) -> None:
    horizontal = rng.random() < 0.6
    n = int(rng.integers(3, 8) if horizontal else rng.integers(5, 9))  # 2-3 vertical turns look like a 3
    a = np.linspace(-size / 2, size / 2, n + 1)
    b = np.where(np.arange(n + 1) % 2 == 0, -1, 1) * rng.uniform(0.1, 0.35) * size
    pts = c + (np.stack([a, b], 1) if horizontal else np.stack([b, a], 1))
    _polyline(d, pts, w)


def _scribble(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
                letter_fonts: list | None) -> None:
    _polyline(d, _smooth_path(rng, int(rng.integers(7, 16)), size, c), w)


def _wave(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
            letter_fonts: list | None) -> None:
    t = np.linspace(0, 1, 60)
    cycles = rng.uniform(1.5, 4)
    amp = rng.uniform(0.08, 0.25) * size
    pts = np.stack([c[0] - size / 2 + t * size, c[1] + amp * np.sin(2 * np.pi * cycles * t)], 1)
    if rng.random() < 0.3:
        pts = pts[:, ::-1] - c[::-1] + c  # a vertical wave
    _polyline(d, pts, w)


def _cross(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
             letter_fonts: list | None) -> None:
    n = int(rng.integers(2, 5))  # 2: an x (or +), 3-4: a star or a hash
    base = rng.uniform(0, np.pi)
    for k in range(n):
        a = base + k * np.pi / n + rng.normal(0, 0.08)
        v = np.array([np.cos(a), np.sin(a)]) * size / 2
        off = rng.normal(0, size * 0.08, 2) if n > 2 else 0
        _polyline(d, np.stack([c - v + off, c + v + off]), w)


def _blob(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
            letter_fonts: list | None) -> None:
    n = int(rng.integers(5, 12))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = size / 2 * rng.uniform(0.45, 1.0, n)
    poly = c + np.stack([np.cos(ang) * rad, np.sin(ang) * rad * rng.uniform(0.6, 1.4)], 1)
    d.polygon([tuple(map(float, q)) for q in poly], fill=255)


def _marks(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
             letter_fonts: list | None) -> None:
    for _ in range(int(rng.integers(3, 7))):  # scattered dots and dashes
        p = rng.uniform(20, CANVAS - 20, 2)
        v = rng.normal(0, 12, 2)
        _polyline(d, np.stack([p, p + v]), w)


def _letter(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
              letter_fonts: list | None) -> None:
    fonts = letter_fonts or [ImageFont.load_default(size=200)]
    ft = fonts[int(rng.integers(len(fonts)))]
    ch = LETTERS[int(rng.integers(len(LETTERS)))]
    d.text((CANVAS / 2, CANVAS / 2), ch, fill=255, font=ft, anchor="mm")


def _spiral(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
            letter_fonts: list | None) -> None:
    """Two to five turns (fewer would be a 6, a 9 or a 0), inwards or outwards, round or oval."""
    turns = rng.uniform(2.0, 5.0)
    w = int(max(3, min(w, size / 2 / turns / rng.uniform(1.6, 3.0))))  # a gap between the turns
    t = np.linspace(0, 2 * np.pi * turns, int(40 * turns))
    r = size / 2 * (rng.uniform(0.0, 0.15) + (1 - 0.15) * t / t[-1])
    sx, sy = rng.uniform(0.6, 1.0, 2)
    a = rng.uniform(0, 2 * np.pi) + rng.choice([-1, 1]) * t
    pts = c + np.stack([r * np.cos(a) * sx, r * np.sin(a) * sy], 1)  # (n, 2)
    _polyline(d, pts if rng.random() < 0.5 else pts[::-1], w)


# Skeletons of the LETTERS as pen strokes in a unit box (x right, y down): what a hand draws, not a font.
def _arc_pts(cx, cy, rx, ry, t0, t1):
    t = np.deg2rad(np.linspace(t0, t1, max(6, int(abs(t1 - t0) / 10))))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _s(*pts):
    return np.array(pts, dtype=np.float64)


PEN_LETTERS = {
    "A": [_s((0, 1), (0.5, 0), (1, 1)), _s((0.25, 0.6), (0.75, 0.6))],
    "E": [_s((1, 0), (0, 0), (0, 1), (1, 1)), _s((0, 0.5), (0.75, 0.5))],
    "F": [_s((1, 0), (0, 0), (0, 1)), _s((0, 0.45), (0.7, 0.45))],
    "H": [_s((0, 0), (0, 1)), _s((1, 0), (1, 1)), _s((0, 0.5), (1, 0.5))],
    "K": [_s((0, 0), (0, 1)), _s((0.9, 0), (0, 0.6)), _s((0.3, 0.4), (1, 1))],
    "M": [_s((0, 1), (0, 0), (0.5, 0.7), (1, 0), (1, 1))],
    "N": [_s((0, 1), (0, 0), (1, 1), (1, 0))],
    "R": [np.concatenate([_s((0, 1), (0, 0)), _arc_pts(0.35, 0.25, 0.6, 0.25, 270, 450), _s((0, 0.5))]),
          _s((0.3, 0.5), (1, 1))],
    "V": [_s((0, 0), (0.5, 1), (1, 0))],
    "W": [_s((0, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (1, 0))],
    "X": [_s((0, 0), (1, 1)), _s((1, 0), (0, 1))],
    "Y": [_s((0, 0), (0.5, 0.5), (1, 0)), _s((0.5, 0.5), (0.5, 1))],
    "k": [_s((0, 0), (0, 1)), _s((0.8, 0.4), (0, 0.75), (0.9, 1))],
    "m": [np.concatenate([_s((0, 1), (0, 0.3)), _arc_pts(0.25, 0.35, 0.25, 0.3, 180, 360), _s((0.5, 1)),
                          _arc_pts(0.75, 0.35, 0.25, 0.3, 180, 360), _s((1, 1))])],
    "w": [_s((0, 0.3), (0.25, 1), (0.5, 0.45), (0.75, 1), (1, 0.3))],
    "x": [_s((0, 0.35), (1, 1)), _s((1, 0.35), (0, 1))],
    "y": [_s((0, 0.3), (0.5, 0.75)), _s((1, 0.3), (0.2, 1.2))],
    "h": [_s((0, 0), (0, 1)), np.concatenate([_s((0, 0.7)), _arc_pts(0.5, 0.65, 0.5, 0.3, 200, 360),
                                                _s((1, 1))])],
}


def _pen_letter(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
                letter_fonts: list | None) -> None:
    """A letter drawn with the pen along its skeleton, with a random aspect, slant and wobbly corners."""
    strokes = PEN_LETTERS[sorted(PEN_LETTERS)[int(rng.integers(len(PEN_LETTERS)))]]
    h = size
    wd = size * rng.uniform(0.55, 1.0)
    slant = rng.uniform(-0.3, 0.3)
    for st in strokes:
        p = st + rng.normal(0, 0.03, st.shape)  # (n, 2) a hand never hits the corners exactly
        x = c[0] + (p[:, 0] - 0.5) * wd + slant * (0.5 - p[:, 1]) * h
        y = c[1] + (p[:, 1] - 0.5) * h
        _polyline(d, np.stack([x, y], 1), w)


def _scribbles(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
               letter_fonts: list | None) -> None:
    """Two to four scribbled strokes over the same area, some dense (many turns in a small box)."""
    if rng.random() < 0.6:
        w = int(max(3, min(w, size / rng.uniform(12, 25))))  # a thin pen: the strokes stay apart
    for _ in range(int(rng.integers(2, 5))):
        off = rng.normal(0, size * 0.12, 2)
        _polyline(d, _smooth_path(rng, int(rng.integers(6, 20)), size * rng.uniform(0.5, 1.0), c + off), w)


def _loops(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
           letter_fonts: list | None) -> None:
    """Cursive loops (like a row of e's or l's): a prolate cycloid, three to seven loops."""
    n = rng.uniform(2.5, 6)
    t = np.linspace(0, 2 * np.pi * n, int(30 * n))
    b = rng.uniform(1.5, 3.0)
    x = t - b * np.sin(t)  # loops where b > 1
    y = -np.cos(t) * rng.uniform(3.0, 6.0)
    w = int(max(3, min(w, size / n / 4)))
    pts = np.stack([x, y], 1)
    pts = (pts - pts.mean(0)) / np.ptp(pts[:, 0]) * size  # (n, 2) as wide as the size
    ang = rng.normal(0, 0.25) + (np.pi / 2 if rng.random() < 0.2 else 0)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    _polyline(d, c + pts @ rot.T, w)


def _hatch(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, size: float, c: np.ndarray,
           letter_fonts: list | None) -> None:
    """Three to seven parallel strokes at any angle, or one stroke going back and forth."""
    k = int(rng.integers(3, 8))
    w = int(max(3, min(w, size / k / 2)))
    a = rng.uniform(0, np.pi)
    u = np.array([np.cos(a), np.sin(a)]) * size / 2  # along the strokes
    v = np.array([-np.sin(a), np.cos(a)]) * size / 2  # across them
    offs = np.linspace(-1, 1, k)
    if rng.random() < 0.5:
        for o in offs:
            _polyline(d, np.stack([c - u + o * v, c + u + o * v]) + rng.normal(0, size * 0.02, (2, 2)), w)
    else:  # at least five turns: fewer would be a Z, an N or a 7
        offs = np.linspace(-1, 1, k + 3)
        ends = [c + (u if i % 2 else -u) + o * v for i, o in enumerate(offs)]
        _polyline(d, np.array(ends), w)


_DRAW = {"dot": _dot, "line": _line, "zigzag": _zigzag, "scribble": _scribble, "wave": _wave, "cross": _cross,
         "blob": _blob, "marks": _marks, "letter": _letter, "spiral": _spiral, "pen letter": _pen_letter,
         "scribbles": _scribbles, "loops": _loops, "hatch": _hatch}


def draw_nondigit(kind: str, rng: np.random.Generator, letter_fonts: list | None = None) -> np.ndarray:
    """One non-digit of ``kind`` (see KINDS) drawn on a (280, 280) float32 canvas (ink 1, background 0)."""
    im = Image.new("L", (CANVAS, CANVAS), 0)
    d = ImageDraw.Draw(im)
    w = _pen(rng)
    size = rng.uniform(0.3, 0.9) * CANVAS
    c = rng.uniform(size / 2 + 10, CANVAS - size / 2 - 10, 2)
    draw = _DRAW.get(kind)
    if draw is None:
        raise ValueError(f"unknown kind {kind!r}: choose from {', '.join(KINDS)}")
    draw(d, rng, w, size, c, letter_fonts)
    return np.asarray(im, dtype=np.float32) / 255.0  # (280, 280)


def _letter_fonts() -> list:
    """Pillow's built-in font and the installed ones of LETTER_FONTS (without them the built-in font alone
    is used, and the non-digit set differs from the shipped model's)."""
    from cnnviz.drawing.fonts import FONT_DIR

    out = [ImageFont.load_default(size=200)]
    for p in LETTER_FONTS:
        if (FONT_DIR / p).is_file():
            out.append(ImageFont.truetype(str(FONT_DIR / p), size=200))
    return out


def make_nondigits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """n non-digits, kinds in turn, as MNIST-like (n, 28, 28) float32 in [0, 1], and each one's kind."""
    fonts = _letter_fonts()
    images, kinds = [], []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        try:
            images.append(ink_to_mnist(draw_nondigit(kind, rng, fonts)))
        except ValueError:  # drawn entirely off the canvas: draw a dot instead
            images.append(ink_to_mnist(draw_nondigit("dot", rng, fonts)))
        kinds.append(kind)
    return np.stack(images).astype(np.float32), kinds  # (n, 28, 28)

"""Digits 0–9 typeset in free outline fonts, prepared like a drawing: training shapes MNIST lacks.

Many people draw a 6 that curls back at its top, a 9 whose tail curves to the lower left, a 4 closed at the
top, a 1 with a flag: shapes that few of MNIST's pen-written digits have, but that printed digits have.
``render_typeset`` sets each digit in each font of ``FONTS`` (upright and italic, about 200 px tall, white on
black, with Pillow) and sends it through the same ``ink_to_mnist`` step as the Draw page's canvas.

Only TrueType/OpenType *outline* fonts from Debian's ``fonts-*`` packages, plus Pillow's built-in font: no
plotter (Hershey) or stroke fonts. The rendered set is shipped as ``assets/typeset_digits.npz`` (~120 KB),
so neither training nor the tests need the fonts; rebuilding it needs them::

    apt-get install fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-noto-core \
        fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine fonts-ebgaramond fonts-lato \
        fonts-open-sans fonts-roboto-unhinted
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cnnviz.drawing.convert import ink_to_mnist

FONT_DIR = Path("/usr/share/fonts")
TYPESET_PATH = Path(__file__).resolve().parents[2] / "assets" / "typeset_digits.npz"
DIGIT_PX = 200  # target height of a digit in pixels before ink_to_mnist (a large drawing on the canvas)
SYNTHETIC_ITALIC = 0.21  # shear (about 12 degrees) for a family without an italic face


@dataclass(frozen=True)
class Font:
    """One family: its upright and italic faces (paths under /usr/share/fonts; italic None = sheared)."""

    name: str
    upright: str | None  # None for Pillow's built-in font
    italic: str | None
    package: str
    licence: str


URW = ("fonts-urw-base35", "AGPL-3 with font exception")
LIBERTINE = "GPL-2+ with font exception / OFL"
FONTS: tuple[Font, ...] = (
    Font("DejaVu Sans", "truetype/dejavu/DejaVuSans.ttf", "truetype/dejavu/DejaVuSans-Oblique.ttf",
         "fonts-dejavu-core", "Bitstream Vera / DejaVu free licence"),
    Font("DejaVu Serif", "truetype/dejavu/DejaVuSerif.ttf", "truetype/dejavu/DejaVuSerif-Italic.ttf",
         "fonts-dejavu-core", "Bitstream Vera / DejaVu free licence"),
    Font("DejaVu Sans Mono", "truetype/dejavu/DejaVuSansMono.ttf",
         "truetype/dejavu/DejaVuSansMono-Oblique.ttf",
         "fonts-dejavu-core", "Bitstream Vera / DejaVu free licence"),
    Font("Liberation Sans", "truetype/liberation/LiberationSans-Regular.ttf",
         "truetype/liberation/LiberationSans-Italic.ttf", "fonts-liberation", "SIL OFL 1.1"),
    Font("Liberation Serif", "truetype/liberation/LiberationSerif-Regular.ttf",
         "truetype/liberation/LiberationSerif-Italic.ttf", "fonts-liberation", "SIL OFL 1.1"),
    Font("Liberation Mono", "truetype/liberation/LiberationMono-Regular.ttf",
         "truetype/liberation/LiberationMono-Italic.ttf", "fonts-liberation", "SIL OFL 1.1"),
    Font("FreeSans", "truetype/freefont/FreeSans.ttf", "truetype/freefont/FreeSansOblique.ttf",
         "fonts-freefont-ttf", "GPL-3+ with font exception"),
    Font("FreeSerif", "truetype/freefont/FreeSerif.ttf", "truetype/freefont/FreeSerifItalic.ttf",
         "fonts-freefont-ttf", "GPL-3+ with font exception"),
    Font("FreeMono", "truetype/freefont/FreeMonoBold.ttf", "truetype/freefont/FreeMonoBoldOblique.ttf",
         "fonts-freefont-ttf", "GPL-3+ with font exception"),
    Font("Nimbus Sans", "opentype/urw-base35/NimbusSans-Regular.otf",
         "opentype/urw-base35/NimbusSans-Italic.otf", *URW),
    Font("Nimbus Roman", "opentype/urw-base35/NimbusRoman-Regular.otf",
         "opentype/urw-base35/NimbusRoman-Italic.otf", *URW),
    Font("Nimbus Mono PS", "opentype/urw-base35/NimbusMonoPS-Bold.otf",
         "opentype/urw-base35/NimbusMonoPS-BoldItalic.otf", *URW),
    Font("URW Gothic", "opentype/urw-base35/URWGothic-Book.otf",
         "opentype/urw-base35/URWGothic-BookOblique.otf", *URW),
    Font("URW Bookman", "opentype/urw-base35/URWBookman-Light.otf",
         "opentype/urw-base35/URWBookman-LightItalic.otf", *URW),
    Font("C059", "opentype/urw-base35/C059-Roman.otf", "opentype/urw-base35/C059-Italic.otf", *URW),
    Font("P052", "opentype/urw-base35/P052-Roman.otf", "opentype/urw-base35/P052-Italic.otf", *URW),
    Font("Z003", None, "opentype/urw-base35/Z003-MediumItalic.otf", *URW),
    Font("Carlito", "truetype/crosextra/Carlito-Regular.ttf", "truetype/crosextra/Carlito-Italic.ttf",
         "fonts-crosextra-carlito", "SIL OFL 1.1"),
    Font("Caladea", "truetype/crosextra/Caladea-Regular.ttf", "truetype/crosextra/Caladea-Italic.ttf",
         "fonts-crosextra-caladea", "Apache 2.0"),
    Font("Noto Sans", "truetype/noto/NotoSans-Regular.ttf", "truetype/noto/NotoSans-Italic.ttf",
         "fonts-noto-core", "SIL OFL 1.1"),
    Font("Noto Serif", "truetype/noto/NotoSerif-Regular.ttf", "truetype/noto/NotoSerif-Italic.ttf",
         "fonts-noto-core", "SIL OFL 1.1"),
    Font("Linux Libertine", "opentype/linux-libertine/LinLibertine_R.otf",
         "opentype/linux-libertine/LinLibertine_RI.otf", "fonts-linuxlibertine", LIBERTINE),
    Font("Linux Biolinum", "opentype/linux-libertine/LinBiolinum_R.otf",
         "opentype/linux-libertine/LinBiolinum_RI.otf", "fonts-linuxlibertine", LIBERTINE),
    Font("EB Garamond", "opentype/ebgaramond/EBGaramond12-Regular.otf",
         "opentype/ebgaramond/EBGaramond12-Italic.otf", "fonts-ebgaramond", "SIL OFL 1.1"),
    Font("Lato", "truetype/lato/Lato-Regular.ttf", "truetype/lato/Lato-Italic.ttf", "fonts-lato",
         "SIL OFL 1.1"),
    Font("Open Sans", "truetype/open-sans/OpenSans-Regular.ttf", "truetype/open-sans/OpenSans-Italic.ttf",
         "fonts-open-sans", "Apache 2.0"),
    Font("Roboto", "truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf",
         "truetype/roboto/unhinted/RobotoTTF/Roboto-Italic.ttf", "fonts-roboto-unhinted", "Apache 2.0"),
    Font("Aileron (Pillow's built-in font)", None, None, "python3-pil (Pillow)", "CC0"),
)
APT_PACKAGES = sorted({f.package for f in FONTS if f.package.startswith("fonts-")})


def _load(font: Font, face: str | None) -> ImageFont.FreeTypeFont | None:
    """The FreeType font of ``face`` (a path under FONT_DIR) at a size where digits are ~200 px tall."""
    if font.upright is None and font.italic is None:
        return ImageFont.load_default(size=int(DIGIT_PX * 1.45))
    if face is None:
        return None
    path = FONT_DIR / face
    if not path.is_file():
        raise FileNotFoundError(f"font file {path} is missing: apt-get install {font.package}")
    return ImageFont.truetype(str(path), size=int(DIGIT_PX * 1.45))


def _glyph(ft: ImageFont.FreeTypeFont, digit: int, shear: float = 0.0) -> np.ndarray:
    """One digit in white on black, (H, W) float32 in [0, 1], ~DIGIT_PX tall; sheared right by ``shear``."""
    side = int(DIGIT_PX * 2.2)
    im = Image.new("L", (side, side), 0)
    ImageDraw.Draw(im).text((side // 2, side // 2), str(digit), fill=255, font=ft, anchor="mm")
    if shear:
        # x_src = x + shear * (y - centre): the top leans right, as in an italic face
        im = im.transform(im.size, Image.Transform.AFFINE, (1, shear, -shear * side / 2, 0, 1, 0),
                          resample=Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0  # (side, side)


def render_typeset() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every digit in every font of FONTS, upright and italic, as MNIST-like digits.

    Returns images uint8 (N, 28, 28), labels uint8 (N,) and the style name of each image ("Lato italic").
    A family without an italic face gets a sheared upright one; one without an upright face (Z003, a
    chancery italic) contributes only its italic. Needs the fonts installed (see the module docstring).
    """
    images, labels, styles = [], [], []
    for font in FONTS:
        faces = []
        upright = _load(font, font.upright)
        if upright is not None:
            faces.append(("upright", upright, 0.0))
        italic = _load(font, font.italic)
        if italic is not None and (font.italic is not None):
            faces.append(("italic", italic, 0.0))
        elif upright is not None:
            faces.append(("italic", upright, SYNTHETIC_ITALIC))
        for style, ft, shear in faces:
            for digit in range(10):
                mnist = ink_to_mnist(_glyph(ft, digit, shear))  # (28, 28)
                images.append(np.round(mnist * 255).astype(np.uint8))
                labels.append(digit)
                styles.append(f"{font.name} {style}")
    return np.stack(images), np.array(labels, dtype=np.uint8), styles  # (N, 28, 28), (N,)


def build_typeset(out_path: str | os.PathLike = TYPESET_PATH) -> int:
    """Render the typeset set and save it (compressed) with the fonts' names, packages and licences.

    Returns the number of images."""
    images, labels, styles = render_typeset()
    credits = [{"font": f.name, "package": f.package, "licence": f.licence} for f in FONTS]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, images=images, labels=labels, styles=np.array(styles),
                        fonts=np.array(json.dumps(credits)))
    return len(labels)


def fonts_available() -> bool:
    """True when every font file of FONTS is installed (so the typeset set can be rebuilt here)."""
    return all((FONT_DIR / p).is_file() for f in FONTS for p in (f.upright, f.italic) if p is not None)


def load_typeset(path: str | os.PathLike = TYPESET_PATH) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The shipped typeset digits: images float32 (N, 28, 28) in [0, 1], labels int64 (N,), style names."""
    with np.load(path, allow_pickle=False) as z:
        images = z["images"]
        labels = z["labels"]
        styles = [str(s) for s in z["styles"]]
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{path}: expected images uint8 (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or labels.max(initial=0) > 9 or len(styles) != len(images):
        raise ValueError(f"{path}: labels or styles do not match the images")
    return images.astype(np.float32) / 255.0, labels.astype(np.int64), styles


def font_credits(path: str | os.PathLike = TYPESET_PATH) -> list[dict]:
    """The fonts of the shipped typeset set: [{"font", "package", "licence"}, ...]."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["fonts"]))

"""read_digit and the draw model: verdicts on digits and non-digits, the typeset and non-digit generators,
and the shipped draw model's accuracy on the held-out drawn digits (tests/drawn_digits.py)."""

from __future__ import annotations

import json

import drawn_digits as dd  # tests/drawn_digits.py: the held-out sets
import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnviz.drawing import DigitReading, canvas_to_mnist, fonts, nondigits, read_digit
from cnnviz.drawing.reading import (
    draw_model_max_crossings,
    load_draw_model,
    stroke_crossings,
    verdict_from_proba,
)
from cnnviz.train.data import fixed_split, load_subset


def _canvas(draw_fn, side: int = 280) -> np.ndarray:
    im = Image.new("RGBA", (side, side), (0, 0, 0, 255))
    draw_fn(ImageDraw.Draw(im))
    return canvas_to_mnist(np.asarray(im))  # (28, 28)


# ---------------------------------------------------------------------------------------------- the rules
def test_verdict_rules():
    p = np.full(10, 0.01)
    p[3] = 0.91
    r = verdict_from_proba(p, not_digit_below=0.5)
    assert (r.verdict, r.digit, r.candidates) == ("digit", 3, (3,))
    assert r.message() == "3"
    p = np.full(10, 0.0)
    p[3], p[8] = 0.55, 0.45
    r = verdict_from_proba(p, not_digit_below=0.5)
    assert (r.verdict, r.digit, r.candidates) == ("unsure", None, (3, 8))
    assert r.message() == "Not sure: 3 or 8?"
    p = np.full(10, 0.1)
    p[4] = 0.19
    p[1] = 0.01
    r = verdict_from_proba(p, not_digit_below=0.5)
    assert r.verdict == "not a digit" and r.digit is None and r.candidates[0] == 4
    assert r.message() == "This does not look like a digit"
    assert r.proba.shape == (10,) and abs(r.proba.sum() - 1) < 1e-9
    with pytest.raises(ValueError):
        verdict_from_proba(np.ones(11) / 11)


def test_read_digit_checks_its_input():
    with pytest.raises(ValueError):
        read_digit(np.zeros((20, 20), dtype=np.float32))


# ------------------------------------------------------------------------------ the shipped model's verdicts
def test_dots_lines_blobs_and_scribbles_are_not_digits():
    cases = {
        "dot": lambda d: d.ellipse([130, 130, 142, 142], fill="white"),
        "big dot": lambda d: d.ellipse([100, 60, 140, 100], fill="white"),
        "horizontal line": lambda d: d.line([(40, 150), (240, 145)], fill="white", width=18),
        "filled blob": lambda d: d.polygon([(60, 80), (200, 60), (230, 190), (120, 230), (50, 170)],
                                           fill="white"),
        "scribble": lambda d: d.line([(40, 60), (230, 200), (60, 220), (220, 50), (50, 140), (240, 120),
                                      (100, 40), (150, 250)], fill="white", width=14, joint="curve"),
        "letter X": lambda d: (d.line([(60, 40), (220, 240)], fill="white", width=18),
                               d.line([(220, 40), (60, 240)], fill="white", width=18)),
    }
    verdicts = {name: read_digit(_canvas(fn)).verdict for name, fn in cases.items()}
    assert verdicts == {name: "not a digit" for name in cases}, verdicts


def test_real_digits_are_read():
    images, labels = load_subset()
    _, val_idx = fixed_split(labels)
    idx = val_idx[:100]
    readings = [read_digit(images[i].astype(np.float32) / 255) for i in idx]
    assert all(isinstance(r, DigitReading) for r in readings)
    right = sum(r.verdict == "digit" and r.digit == labels[i] for r, i in zip(readings, idx, strict=True))
    assert right >= 95, right
    x, y = dd.drawn_digits(n_per_digit=3, seed=11)
    right = sum(read_digit(im).digit == lab for im, lab in zip(x, y, strict=True))
    assert right >= 28, right


def test_shipped_draw_model_meets_the_thresholds_on_held_out_drawn_digits():
    """>= 97% of the held-out drawn digits (set A), no digit below 90%, >= 98% of MNIST validation, at most
    2% of drawn digits flagged as not a digit (the shipped model: 98.3%, weakest digit 6 at 90%, MNIST val
    98.3%, 0.3% flagged)."""
    net, threshold = load_draw_model()
    limit = draw_model_max_crossings()
    x, y = dd.drawn_digits()
    p = net.predict_proba(x[:, None])  # (600, 10)
    pred = p.argmax(1)
    assert (pred == y).mean() >= 0.97
    per_digit = [(pred[y == d] == d).mean() for d in range(10)]
    assert min(per_digit) >= 0.90, per_digit
    assert dd.flagged(net, x, threshold, limit, use_views=True).mean() <= 0.02
    images, labels = load_subset()
    _, val_idx = fixed_split(labels)
    pv = net.predict_proba(images[val_idx][:, None].astype(np.float32) / 255)  # (1000, 10)
    assert (pv.argmax(1) == labels[val_idx]).mean() >= 0.98


def test_nine_in_ten_held_out_non_digits_are_flagged():
    """The issue's target: >= 90% of the drawn non-digits flagged (set A; the shipped model flags 95.0%: the
    network's averaged probabilities alone 92.5%, the stroke-crossing limit some scribbles they miss)."""
    net, threshold = load_draw_model()
    limit = draw_model_max_crossings()
    xn, kinds = dd.drawn_nondigits()
    flagged = np.array([read_digit(im, net, threshold, limit, use_views=True).verdict == "not a digit"
                        for im in xn])
    assert flagged.mean() >= 0.93, flagged.mean()
    base = np.array([k.split()[0] for k in kinds])
    per_kind = {k: flagged[base == k].mean() for k in set(base)}
    assert min(per_kind.values()) >= 0.8, per_kind
    # the batch computation the asset build reports agrees with read_digit one drawing at a time
    assert flagged.mean() == pytest.approx(dd.flagged(net, xn, threshold, limit, use_views=True).mean())


def test_second_held_out_set():
    """Set B (other writing styles, another seed, other non-digit kinds), written before the changes: digits
    99.5% (weakest 1 at 97%), none flagged; non-digits 81.1% flagged (hearts 10%, triangles 37%, letters 67%:
    closed round shapes and the letters u, n and & read as 0 and 8)."""
    net, threshold = load_draw_model()
    limit = draw_model_max_crossings()
    x, y = dd.drawn_digits_b()
    pred = net.predict_proba(x[:, None]).argmax(1)  # (600,)
    assert (pred == y).mean() >= 0.97
    assert min((pred[y == d] == d).mean() for d in range(10)) >= 0.90
    assert dd.flagged(net, x, threshold, limit, use_views=True).mean() <= 0.02
    xn, kinds = dd.drawn_nondigits_b()
    flagged = dd.flagged(net, xn, threshold, limit, use_views=True)
    assert flagged.mean() >= 0.80, flagged.mean()
    kinds = np.array(kinds)
    for kind in ("arrow", "star", "smiley", "grid", "wave", "dash", "coloured"):
        assert flagged[kinds == kind].mean() >= 0.9, kind


@pytest.mark.xfail(reason="known shortfall: on set B's non-digit kinds (never trained on) the shipped model "
                          "flags 81%: hearts read as 0 (10% flagged), triangles as 0 or 4 (37%)",
                   strict=False)
def test_nine_in_ten_of_the_second_sets_non_digits_are_flagged():
    net, threshold = load_draw_model()
    xn, _ = dd.drawn_nondigits_b()
    assert dd.flagged(net, xn, threshold, draw_model_max_crossings(), True).mean() >= 0.90


def test_views_of_a_drawing():
    from cnnviz.drawing.reading import VIEWS, views, views_top

    images, _ = load_subset()
    x = images[:3].astype(np.float32) / 255  # (3, 28, 28)
    v = views(x)
    assert v.shape == (3, len(VIEWS), 28, 28) and v.dtype == np.float32
    np.testing.assert_allclose(v[:, 0], x / x.max(axis=(1, 2), keepdims=True), atol=1e-6)  # as drawn
    assert np.all(np.abs(v[:, 1:] - v[:, :1]).max(axis=(2, 3)) > 0.3)  # every other view moves the strokes
    net, _ = load_draw_model()
    top = views_top(net, x)
    assert top.shape == (3,) and np.all((top > 0.1) & (top <= 1))
    np.testing.assert_allclose(net.predict_proba(v.reshape(-1, 1, 28, 28)).reshape(3, len(VIEWS), 10)
                               .mean(1).max(1), top, rtol=1e-5)


def test_stroke_crossings_tell_scribbles_from_digits():
    eight = _canvas(lambda d: (d.ellipse([90, 30, 190, 130], outline="white", width=16),
                               d.ellipse([80, 130, 200, 250], outline="white", width=16)))
    one = _canvas(lambda d: d.line([(140, 30), (140, 250)], fill="white", width=16))
    t = np.linspace(0, 8 * np.pi, 300)
    r = 10 + 110 * t / t[-1]
    spiral = _canvas(lambda d: d.line(list(zip(140 + r * np.cos(t), 140 + r * np.sin(t), strict=True)),
                                      fill="white", width=8))
    hatch = _canvas(lambda d: [d.line([(30, y), (250, y + 40)], fill="white", width=10)
                               for y in range(20, 230, 30)])
    c = stroke_crossings(np.stack([eight, one, spiral, hatch]))  # (4,)
    assert c.shape == (4,)
    assert c[0] <= 5.5 and c[1] <= 2.5, c
    assert c[2] >= 8 and c[3] >= 8, c
    assert stroke_crossings(one) == pytest.approx(c[1])  # one image gives a scalar
    # read_digit: the shipped limit alone makes the spiral "not a digit" (no probability threshold)
    net, _ = load_draw_model()
    limit = draw_model_max_crossings()
    assert read_digit(spiral, net, not_digit_below=0.0, max_crossings=limit).verdict == "not a digit"
    assert read_digit(spiral).verdict == "not a digit"  # the shipped model's defaults
    assert read_digit(spiral, net, not_digit_below=0.0, max_crossings=None).verdict != "not a digit"
    assert read_digit(eight, net, not_digit_below=0.0, max_crossings=limit).digit == 8
    # calibrated on the 5,000 MNIST digits: at most 0.2% of them are over the limit
    images, _ = load_subset()
    assert (stroke_crossings(images.astype(np.float32) / 255) > limit).mean() <= 0.002


def test_shipped_model_records_its_threshold_and_size():
    from cnnviz.train.model_file import load_model_full

    _, _, extra = load_model_full(str(fonts.TYPESET_PATH.parent / "models" / "draw.npz"))
    assert 0.2 <= extra["not_digit_below"] <= 0.6
    assert 4 <= extra["max_stroke_crossings"] <= 9
    assert extra["not_digit_views"] is True
    assert "typeset" in extra["training_data"]
    assert (fonts.TYPESET_PATH.parent / "models" / "draw.npz").stat().st_size <= 5 * 2**20


# ----------------------------------------------------------------------------------------- the generators
def test_shipped_typeset_digits():
    images, labels, styles = fonts.load_typeset()
    assert images.shape[1:] == (28, 28) and images.dtype == np.float32
    assert np.bincount(labels, minlength=10).tolist() == [len(labels) // 10] * 10
    families = {s.rsplit(" ", 1)[0] for s in styles}
    assert len(families) >= 20
    assert {s.rsplit(" ", 1)[1] for s in styles} == {"upright", "italic"}
    credits = fonts.font_credits()
    assert len(credits) == len(fonts.FONTS) and all(c["licence"] and c["package"] for c in credits)
    # prepared like a drawing: brightest pixel 1, longer side 20 px, centred by mass
    for im in images[::37]:
        assert im.max() == pytest.approx(1.0, abs=0.01)
        rows = np.flatnonzero(im.max(1) > 0.05)
        cols = np.flatnonzero(im.max(0) > 0.05)
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20, 21, 22)


def test_typeset_generator_reproduces_the_shipped_set():
    font = fonts.FONTS[0]
    if not (fonts.FONT_DIR / font.upright).is_file():
        pytest.skip(f"{font.name} is not installed (apt-get install {font.package})")
    images, labels, styles = fonts.load_typeset()
    ft = fonts._load(font, font.upright)
    for digit in (3, 6, 9):
        fresh = fonts.ink_to_mnist(fonts._glyph(ft, digit))  # (28, 28)
        i = styles.index(f"{font.name} upright") + digit
        assert labels[i] == digit
        assert np.abs(fresh - images[i]).max() <= 1 / 255 + 1e-6


def test_font_credits_are_json():
    raw = np.load(fonts.TYPESET_PATH, allow_pickle=False)["fonts"]
    assert isinstance(json.loads(str(raw)), list)


def test_nondigit_generator():
    x, kinds = nondigits.make_nondigits(45, np.random.default_rng(0))
    assert x.shape == (45, 28, 28) and x.dtype == np.float32
    assert set(kinds) == set(nondigits.KINDS)
    assert np.all(x.max(axis=(1, 2)) > 0.9) and x.min() >= 0
    with pytest.raises(ValueError):
        nondigits.draw_nondigit("triangle", np.random.default_rng(0))


def test_drawn_digit_generator_covers_styles_and_sizes():
    rng = np.random.default_rng(3)
    aspect, strokes = dd.STYLES[6][0]
    sizes = []
    for _ in range(20):
        rgba = dd.render_strokes(strokes, rng, aspect)
        assert rgba.shape == (280, 280, 4) and rgba.dtype == np.uint8
        ink = np.flatnonzero(rgba[..., 0].max(1) > 0)
        sizes.append(ink[-1] - ink[0])
    assert min(sizes) < 150 and max(sizes) > 200  # from a third of the canvas to nearly all of it


# ------------------------------------------------------------------------------------------------ the page
def test_canvas_size_grows_with_the_screen_and_the_pen_with_it():
    from cnnviz.ui.canvas import BASE_STROKE, canvas_px, stroke_px

    assert canvas_px(True, None) >= 420 and canvas_px(True, 1920) >= 420  # presentation mode (projector)
    assert canvas_px(False, 1920) >= 420 and canvas_px(False, 2560) >= 420
    assert canvas_px(False, 800) == canvas_px(False, None) == 280
    assert 280 < canvas_px(False, 1280) <= 0.38 * (1280 - 460)  # fits its column on a laptop
    assert canvas_px(False, 1280) <= canvas_px(False, 1600) <= canvas_px(False, 1920)
    assert stroke_px(280) == BASE_STROKE
    side = canvas_px(False, 1920)
    assert stroke_px(side) / side == pytest.approx(BASE_STROKE / 280, rel=0.05)


def test_reading_html_shows_the_verdict_and_candidates():
    from cnnviz.ui.reading_view import reading_html

    p = np.zeros(10)
    p[3], p[8] = 0.5, 0.4
    p[5] = 0.1
    unsure = reading_html(verdict_from_proba(p, 0.3))
    assert "Not sure: 3 or 8?" in unsure and unsure.count("class='cand'") == 2
    p = np.full(10, 0.1)
    assert "does not look like a digit" in reading_html(verdict_from_proba(p, 0.3))
    p = np.zeros(10)
    p[7] = 1.0
    assert "<span class='digit'>7</span>" in reading_html(verdict_from_proba(p, 0.3))


def test_asset_build_of_the_draw_model(tmp_path, monkeypatch):
    """`python -m cnnviz assets --only draw` in small: the typeset set and the model are written, and the log
    names the fonts with their licences and reports the threshold and the held-out numbers."""
    import functools

    from cnnviz import assets_build
    from cnnviz.train import augment
    from cnnviz.train.model_file import load_model_full

    monkeypatch.setattr(augment, "train_draw_model", functools.partial(augment.train_draw_model, epochs=1))
    logs: list[str] = []
    assets_build.build_all(models=("draw",), subset=False, out_dir=tmp_path, log=logs.append)
    text = "\n".join(logs)
    assert (tmp_path / "models" / "draw.npz").is_file()
    assert (tmp_path / "typeset_digits.npz").is_file() or "kept" in text
    assert "SIL OFL 1.1" in text and "Liberation Sans" in text
    assert "not-a-digit threshold" in text and "held-out check" in text and "MNIST val acc" in text
    assert "stroke-crossing limit" in text and "seven views" in text
    _, _, extra = load_model_full(str(tmp_path / "models" / "draw.npz"))
    assert 0.2 <= extra["not_digit_below"] <= 0.6
    assert 4 <= extra["max_stroke_crossings"] <= 9

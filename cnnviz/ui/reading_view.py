"""The Draw page's answer: the digit, "Not sure: 3 or 8?" with its candidates, or "not a digit".

``show_reading`` draws a ``cnnviz.drawing.DigitReading`` (the decision itself is the core's
``cnnviz.drawing.reading``); ``not_digit_threshold`` gives the threshold for the model the page uses,
``too_many_strokes`` its stroke-crossing check, ``not_digit_score`` the score compared with the threshold.
"""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from cnnviz.drawing.reading import DEFAULT_NOT_DIGIT_BELOW, DigitReading, stroke_crossings, views_top
from cnnviz.ui import resources

_CSS = """
<style>
.draw-guess {display: flex; align-items: baseline; gap: 0.9rem; margin: 0.2rem 0 0.1rem 0; flex-wrap: wrap;}
.draw-guess .digit {font-size: 5.2rem; font-weight: 700; line-height: 1; color: #e07b00;
                    font-variant-numeric: tabular-nums;}
.draw-guess .conf {font-size: 1.05rem; color: #3a4150;}
.draw-guess .conf b {font-size: 1.5rem;}
.draw-verdict {font-size: 1.7rem; font-weight: 700; line-height: 1.2; margin: 0.4rem 0 0.3rem 0;}
.draw-verdict.unsure {color: #b35c00;}
.draw-verdict.not-digit {color: #5b6577;}
.draw-candidates {display: flex; gap: 1.1rem; align-items: baseline; margin-bottom: 0.2rem;}
.draw-candidates .cand {font-size: 2.6rem; font-weight: 700; color: #e07b00;
                        font-variant-numeric: tabular-nums;}
.draw-candidates .cand small {font-size: 1.0rem; font-weight: 400; color: #3a4150; margin-left: 0.2rem;}
.draw-note {font-size: 0.95rem; color: #5b6577;}
</style>
"""


@st.cache_data(show_spinner=False, max_entries=4)
def _threshold_from_file(path: str, mtime: float) -> float:
    from cnnviz.train import model_file

    try:
        extra = model_file.load_model_full(path)[2] or {}
    except (ValueError, OSError):
        return DEFAULT_NOT_DIGIT_BELOW
    return float(extra.get("not_digit_below", DEFAULT_NOT_DIGIT_BELOW))


@st.cache_data(show_spinner=False, max_entries=4)
def _max_crossings_from_file(path: str, mtime: float) -> float | None:
    from cnnviz.train import model_file

    try:
        extra = model_file.load_model_full(path)[2] or {}
    except (ValueError, OSError):
        return None
    value = extra.get("max_stroke_crossings")
    return float(value) if value is not None else None


@st.cache_data(show_spinner=False, max_entries=4)
def _uses_views_from_file(path: str, mtime: float) -> bool:
    from cnnviz.train import model_file

    try:
        extra = model_file.load_model_full(path)[2] or {}
    except (ValueError, OSError):
        return False
    return bool(extra.get("not_digit_views", False))


def not_digit_score(image: np.ndarray, net, pretrained: bool) -> float | None:
    """For the shipped draw model, the top probability of its average answer over seven small changes of the
    prepared (28, 28) drawing (what its threshold was calibrated on); None otherwise (the plain answer's top
    probability is used). ``net`` is this session's copy of the model (its buffers are overwritten)."""
    path = resources.MODELS_DIR / "draw.npz"
    if not pretrained or not path.exists() or not _uses_views_from_file(str(path), path.stat().st_mtime):
        return None
    return float(views_top(net, np.asarray(image, dtype=np.float32)[None])[0])


def too_many_strokes(image: np.ndarray, pretrained: bool) -> bool:
    """The prepared (28, 28) drawing crosses more strokes than the shipped draw model's calibrated limit
    (never for the session's own model: its file has no limit)."""
    path = resources.MODELS_DIR / "draw.npz"
    if not pretrained or not path.exists():
        return False
    limit = _max_crossings_from_file(str(path), path.stat().st_mtime)
    return limit is not None and float(stroke_crossings(image)) > limit


def not_digit_threshold(pretrained: bool) -> float:
    """The top probability under which the page says "not a digit": the shipped draw model's calibrated
    value (from its file), or the default for the session's own model (never trained on non-digits)."""
    path = resources.MODELS_DIR / "draw.npz"
    if pretrained and path.exists():
        return _threshold_from_file(str(path), path.stat().st_mtime)
    return DEFAULT_NOT_DIGIT_BELOW


def reading_html(reading: DigitReading, knows_non_digits: bool = True) -> str:
    """The answer as HTML (class names used by the browser tests: .draw-guess .digit for a digit,
    .draw-verdict.unsure / .draw-verdict.not-digit otherwise).

    ``knows_non_digits``: the model was trained to spread its answer over the ten digits for non-digits (the
    shipped draw model). A model that never saw a non-digit (the session's own, above all an untrained one)
    also answers flat when it simply knows nothing, so its low answer must not be blamed on the drawing."""
    p = reading.proba
    if reading.verdict == "digit":
        d = reading.digit
        return (f"<div class='draw-guess'><span class='digit'>{d}</span>"
                f"<span class='conf'><b>{p[d]:.0%}</b> sure</span></div>")
    cands = "".join(f"<span class='cand'>{c}<small>{p[c]:.0%}</small></span>" for c in reading.candidates)
    if reading.verdict == "unsure":
        return (f"<div class='draw-verdict unsure'>{html.escape(reading.message())}</div>"
                f"<div class='draw-candidates'>{cands}</div>"
                "<div class='draw-note'>Two or more digits fit this drawing about equally well.</div>")
    best = reading.candidates[0] if reading.candidates else int(p.argmax())
    if not knows_non_digits:
        return ("<div class='draw-verdict not-digit'>This model cannot tell which digit this is</div>"
                f"<div class='draw-note'>No digit gets more than {p[best]:.0%}; its best guess is a {best}. "
                "This model was never shown anything but digits, so a low answer means it has not learned "
                "enough yet, not that your drawing is wrong: train it on the Train page, or pick the "
                "pretrained draw model above.</div>")
    return ("<div class='draw-verdict not-digit'>This does not look like a digit</div>"
            f"<div class='draw-note'>No digit gets more than {p[best]:.0%}; the closest shape is a "
            f"{best}. Draw one digit, 0 to 9, as large as you like.</div>")


def show_reading(reading: DigitReading, knows_non_digits: bool = True) -> None:
    """Draw the answer for one drawing (a digit, "not sure" with its candidates, or "not a digit")."""
    st.html(_CSS + reading_html(reading, knows_non_digits))

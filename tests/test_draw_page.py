"""AppTest tests of the Draw page: a digit set through session state (AppTest cannot draw on the canvas; the
browser tests in test_browser_draw.py do), the model choice, uploads, and teaching the session's model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import chart_spec, plotly_array
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
DRAW_MODEL = ROOT / "assets" / "models" / "draw.npz"
TIMEOUT = 60


def draw_page_script(setup: str = "") -> None:
    """The Draw page alone, with an optional first-run hook (AppTest cannot switch st.navigation pages)."""
    import numpy as np  # noqa: F401  (used by setup code)
    import streamlit as st

    from cnnviz.ui import common, draw, state

    state.init()
    common.inject_css()
    if setup and not st.session_state.get("_test_setup_done"):
        st.session_state["_test_setup_done"] = True
        exec(setup)
    draw.render()


def page(setup: str = "") -> AppTest:
    return AppTest.from_function(draw_page_script, args=(setup,), default_timeout=TIMEOUT)


def validation_digit(digit: int) -> np.ndarray:
    """The first validation image of ``digit`` as (28, 28) float32 in [0, 1]."""
    from cnnviz.train.data import fixed_split, load_subset

    images, labels = load_subset()
    _, val_idx = fixed_split(labels)
    idx = val_idx[labels[val_idx] == digit][0]
    return images[idx].astype(np.float32) / 255


def with_drawing(digit: int, extra: str = "") -> AppTest:
    img = validation_digit(digit)
    return page(f"state.app().draw.drawing = np.array({img.tolist()}, dtype=np.float32)\n{extra}")


def guess(at: AppTest) -> str:
    """The big answer text of the page (the class name in .draw-guess)."""
    for el in at.get("html"):
        body = el.proto.body
        if "draw-guess" in body and "class='digit" in body:
            return body.split("class='digit")[1].split(">", 1)[1].split("<", 1)[0]
    raise AssertionError("no guess shown")


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
def test_empty_page_invites_drawing():
    at = page()
    at.run()
    assert not at.exception
    assert any("Draw a digit from 0 to 9" in el.proto.body for el in at.get("html"))
    proba = chart_spec(at, "draw_proba")
    assert [d["type"] for d in proba["data"]] == ["bar"] and plotly_array(proba["data"][0]["y"]).max() == 0
    assert not [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("draw_saliency")]
    assert [b.label for b in at.button][:2] == ["Clear", "Undo"]


@pytest.mark.skipif(not DRAW_MODEL.exists(), reason="assets/models/draw.npz is not built")
@pytest.mark.parametrize("digit", [0, 1, 7])
def test_drawing_from_session_state_is_classified_by_the_pretrained_model(digit):
    at = with_drawing(digit)
    at.run()
    assert not at.exception
    assert at.session_state["cnnviz"].ui.draw_model == "pretrained"
    assert guess(at) == str(digit)
    proba = chart_spec(at, "draw_proba")["data"][0]
    assert list(plotly_array(proba["x"])) == [str(k) for k in range(10)]
    assert plotly_array(proba["y"]).sum() == pytest.approx(1.0, abs=1e-6)
    assert int(np.argmax(plotly_array(proba["y"]))) == digit
    assert proba["marker"]["color"][digit] != proba["marker"]["color"][(digit + 1) % 10]  # top highlighted
    shown = plotly_array(chart_spec(at, "draw_input")["data"][0]["z"]).astype(np.float32)
    np.testing.assert_allclose(shown, validation_digit(digit), atol=1e-6)  # the 28x28 the network sees
    for key in ("draw_saliency", "draw_occlusion"):
        data = chart_spec(at, key)["data"]
        assert len(data) == 2 and plotly_array(data[1]["z"]).shape == (28, 28)
    fm = chart_spec(at, "draw_fmaps")
    assert "8 filters" in fm["layout"]["title"]["text"]


@pytest.mark.skipif(not DRAW_MODEL.exists(), reason="assets/models/draw.npz is not built")
def test_pretrained_model_is_never_mutated():
    at = with_drawing(3)
    at.run()
    from cnnviz.train.model_file import load_model

    fresh = dict(load_model(DRAW_MODEL).named_params())
    held = at.session_state["cnnviz"].caches["draw_pretrained"][1]  # this session's private copy
    for name, arr in held.named_params():
        np.testing.assert_array_equal(arr, fresh[name])


def test_session_model_is_used_when_chosen():
    at = with_drawing(4, "state.app().ui.draw_model = 'session'")
    at.run()
    assert not at.exception
    assert any("This session's model" in c.value for c in at.caption)
    proba = chart_spec(at, "draw_proba")["data"][0]
    assert len(plotly_array(proba["x"])) == 10


def test_untrained_session_model_does_not_blame_a_clear_digit():
    """Browser finding: the untrained session model answers ~10% for everything, and the page said "This does
    not look like a digit ... Draw one digit" under a clear 1. The drawing is not at fault: the model is."""
    at = with_drawing(1, "state.app().ui.draw_model = 'session'")
    at.run()
    assert not at.exception
    bodies = [el.proto.body for el in at.get("html")]
    verdict = next(b for b in bodies if "draw-verdict" in b or "draw-guess" in b)
    assert "not-digit" in verdict  # the untrained model is unsure of every digit
    assert "does not look like a digit" not in verdict
    assert "cannot tell which digit" in verdict and "Train page" in verdict
    # the shipped draw model, trained on non-digits, keeps its "not a digit" wording
    from cnnviz.drawing.reading import verdict_from_proba
    from cnnviz.ui.reading_view import reading_html

    flat = np.full(10, 0.1)
    assert "does not look like a digit" in reading_html(verdict_from_proba(flat, 0.41))


def test_tutorial_binary_network_is_shown_as_0_4_vs_5_9():
    setup = ("from cnnviz.train.config import preset_config\n"
             "state.apply_config(preset_config('tutorial').to_dict())\n"
             "state.app().ui.draw_model = 'session'")
    at = with_drawing(8, setup)
    at.run()
    assert not at.exception
    assert at.session_state["cnnviz"].trainer.config.task == "gt4"
    proba = chart_spec(at, "draw_proba")["data"][0]
    assert list(plotly_array(proba["x"])) == ["0–4", "5–9"]
    assert plotly_array(proba["y"]).sum() == pytest.approx(1.0)
    assert guess(at) in ("0–4", "5–9")
    assert any("0–4 or 5–9" in c.value for c in at.caption)


def test_teach_adds_your_digit_and_training_changes_the_answer():
    at = with_drawing(2)
    at.run()
    at.selectbox(key="draw_label").set_value(2)
    at.button(key="draw_add").click().run()
    assert not at.exception
    digits = at.session_state["cnnviz"].draw.user_digits
    assert len(digits) == 1 and digits[0][1] == 2
    assert at.session_state["cnnviz"].trainer.n_user_examples == 1
    assert chart_spec(at, "draw_user_digits")["layout"]["title"]["text"].startswith("Your digits (1)")
    steps = at.session_state["cnnviz"].trainer.step_count
    assert at.session_state["cnnviz"].ui.draw_model == "pretrained"
    at.button(key="draw_train").click().run()
    assert not at.exception
    # issue 11: teaching fine-tunes the model on screen (a session copy of the pretrained draw model), not
    # the session's Train model, and the page keeps showing that (taught) copy
    a = at.session_state["cnnviz"]
    assert a.trainer.step_count == steps and a.draw.taught_steps == 10 and a.draw.taught_net is not None
    assert a.ui.draw_model == "pretrained"
    assert any("→" in s.value and "P(“2”)" in s.value for s in at.success)
    # on the session's model, teaching trains the session's model
    at.segmented_control(key="draw_model").set_value("session").run()
    at.button(key="draw_train").click().run()
    assert not at.exception
    assert at.session_state["cnnviz"].trainer.step_count == steps + 10
    assert at.session_state["cnnviz"].ui.draw_model == "session"


def test_clear_forgets_the_drawing():
    at = with_drawing(5)
    at.run()
    assert at.session_state["cnnviz"].draw.drawing is not None
    at.button(key="draw_clear").click().run()
    assert not at.exception
    assert at.session_state["cnnviz"].draw.drawing is None
    assert any("Draw a digit from 0 to 9" in el.proto.body for el in at.get("html"))


@pytest.mark.skipif(not DRAW_MODEL.exists(), reason="assets/models/draw.npz is not built")
def test_upload_a_photo_of_a_digit():
    """A dark-on-light photo of a 6 is inverted, prepared like a drawing and classified."""
    six = validation_digit(6)
    photo = np.kron(1.0 - six, np.ones((6, 6)))  # (168, 168) black ink on white paper
    at = page()
    at.run()
    at.file_uploader(key="draw_upload").set_value(("six.png", png(photo), "image/png")).run()
    assert not at.exception
    assert at.session_state["cnnviz"].draw.source == "upload"
    assert guess(at) == "6"
    assert any("six.png" in c.value for c in at.caption)


@pytest.mark.parametrize("name,data,message", [
    ("notes.png", b"these are not pixels", "not an image"),
    ("tiny.png", png(np.ones((1, 1))), "too small"),
    ("blank.png", png(np.ones((64, 64))), "blank"),
])
def test_bad_uploads_get_a_clear_message_and_the_page_keeps_working(name, data, message):
    at = with_drawing(1)
    at.run()
    before = np.array(at.session_state["cnnviz"].draw.drawing)
    at.file_uploader(key="draw_upload").set_value((name, data, "image/png")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(name in e and message in e for e in errors), errors
    # issue 11: the previous answer is cleared (it is not this file's answer); the page keeps working
    assert before is not None and at.session_state["cnnviz"].draw.drawing is None
    assert not any("draw-guess" in el.proto.body and "class='digit" in el.proto.body for el in at.get("html"))
    assert chart_spec(at, "draw_proba")


def test_presentation_mode_scales_the_figures():
    at = with_drawing(9, "state.app().ui.presentation = True")
    at.run()
    assert not at.exception
    normal = with_drawing(9)
    normal.run()
    big, small = chart_spec(at, "draw_proba"), chart_spec(normal, "draw_proba")
    assert big["layout"]["height"] > small["layout"]["height"]


# ----------------------------------------------------------------------------------------------------------
# The Draw page's figure builders (cnnviz.viz.figures, "--- Draw ---" block), arrays in, figures out
# ----------------------------------------------------------------------------------------------------------
def test_digit_input_figure():
    from cnnviz.viz import figures

    img = validation_digit(4)
    fig = figures.digit_input_figure(img, "What the network sees")
    assert fig.layout.title.text == "What the network sees"
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), img)
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # row 0 at the top


def test_explanation_overlay_is_centred_on_zero_with_a_transparent_middle():
    from cnnviz.viz import figures

    img = validation_digit(4)
    heat = np.linspace(-0.2, 0.6, 784).reshape(28, 28)
    fig = figures.explanation_overlay(img, heat, "Saliency", "gradient")
    base, over = fig.data
    assert over.zmin == pytest.approx(-0.6) and over.zmax == pytest.approx(0.6) and over.zmid == 0
    assert over.colorscale[2][1].endswith(", 0)")  # the middle of the scale is fully transparent
    assert over.colorbar.title.text == "gradient"
    np.testing.assert_array_equal(np.asarray(base.z), img)


def test_feature_maps_figure_tiles_every_map_with_labels():
    from cnnviz.viz import figures

    maps = np.random.default_rng(0).random((8, 28, 28)).astype(np.float32)
    fig = figures.feature_maps_figure(maps, "Feature maps", ncols=4)
    assert len(fig.data) == 1  # one tiled trace, cheap to redraw
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(z).any() and np.nanmax(z) == pytest.approx(maps.max())
    assert [a.text for a in fig.layout.annotations] == [f"map {k}" for k in range(1, 9)]
    with pytest.raises(ValueError):
        figures.feature_maps_figure(maps[0], "bad")


def test_presentation_canvas_fits_its_column_on_a_laptop():
    """Browser finding (1280×800, presentation mode): the canvas was always 448 px, but its column is ~330 px
    wide there, so its right third was cut off and strokes drawn there were lost."""
    from cnnviz.ui.canvas import COLUMN_SHARE, WINDOW_MARGINS, canvas_px

    for width in (1280, 1366):
        assert canvas_px(True, width) <= COLUMN_SHARE * (width - WINDOW_MARGINS)
        assert canvas_px(True, width) == canvas_px(False, width)
    assert canvas_px(True, 1920) == 448 and canvas_px(True, None) == 448  # a projector still gets the big one


def test_adding_the_same_drawing_twice_keeps_one_copy():
    """Browser finding: three clicks on "Add to my digits" for one drawing put three identical digits in the
    gallery and in the training data."""
    at = with_drawing(7)
    at.run()
    at.selectbox(key="draw_label").set_value(7)
    at.button(key="draw_add").click().run()
    at.button(key="draw_add").click().run()
    assert not at.exception
    a = at.session_state["cnnviz"]
    assert len(a.draw.user_digits) == 1 and a.trainer.n_user_examples == 1
    assert any("already in your digits" in m.value for m in at.success)

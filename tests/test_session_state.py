"""The typed session state (cnnviz.ui.state), its reload store, Undo, Reset's start weights, the replay that
follows the latest step, teaching the model on screen, and the names shown to people (issue 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz.serve.store import SessionStore
from cnnviz.viz import names

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "assets" / "models"
TIMEOUT = 60


def page_script(page: str = "train", setup: str = "") -> None:
    import importlib

    import streamlit as st

    from cnnviz.ui import common, sidebar, state

    state.init()
    state.attach_cookie()
    common.inject_css()
    if setup and not st.session_state.get("_test_setup_done"):
        st.session_state["_test_setup_done"] = True
        exec(setup)
    page = st.session_state.get("_page", page)
    state.page_switched(page)
    sidebar.render()
    importlib.import_module(f"cnnviz.ui.{page}").render()


def _app(page: str = "train", setup: str = "") -> AppTest:
    return AppTest.from_function(page_script, args=(page, setup), default_timeout=TIMEOUT).run()


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _step(at: AppTest, key: str = "btn_step") -> None:
    """Click a step button, then a full run (the click itself reruns only the live and replay fragments)."""
    at.button(key=key).click().run()
    at.run()


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.success, *at.info, *at.warning, *at.markdown,
                                           *at.caption])


# ----------------------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------------------
def test_store_expires_idle_sessions_and_stays_bounded():
    now = [0.0]
    s = SessionStore(ttl_s=60, max_entries=3, clock=lambda: now[0])
    s.put("a", 1)
    now[0] = 30
    s.put("b", 2)
    now[0] = 50
    assert s.get("a") == 1  # used at t=50: fresh again
    now[0] = 95
    assert s.get("b") is None  # idle 65 s > 60 s
    assert s.get("a") == 1  # idle 45 s
    now[0] = 200
    assert s.get("a") is None
    for k in "wxyz":
        s.put(k, k)
    assert len(s) == 3 and "w" not in s  # the least recently used went first


def test_store_bounds_memory_by_weight():
    s = SessionStore(ttl_s=60, max_entries=100, max_bytes=250, weigh=lambda obj: obj)
    for i, k in enumerate("abcd"):
        s.put(k, 100)
        assert s.total_bytes() <= 250, i
    assert "d" in s and "c" in s and "a" not in s


def test_a_reload_takes_the_same_state_back_from_the_store():
    from cnnviz.ui import state

    at = _app()
    first_run = [n.proto.body for n in _walk(at._tree) if type(n).__name__ == "Html"]
    _step(at)
    a = at.session_state["cnnviz"]
    assert len(a.token) == 32 and int(a.token, 16) >= 0  # 128 random bits, hex
    assert state.store().get(a.token) is a
    # the cookie-setting snippet carries the token, SameSite=Strict; nothing is put in a URL
    html = [b for b in first_run if "document.cookie" in b]  # a script-only st.html lands in the event block
    assert html and a.token in html[0] and "SameSite=Strict" in html[0]
    assert a.token not in str(at.query_params)


# ----------------------------------------------------------------------------------------------------------
# Apply, Undo, Reset
# ----------------------------------------------------------------------------------------------------------
def test_apply_lists_the_changes_and_undo_brings_the_model_back():
    at = _app()
    _step(at)
    a = at.session_state["cnnviz"]
    old_tr, old_cfg = a.trainer, a.config
    at.number_input(key="sb_filters").set_value(4).run()
    text = _texts(at)
    assert "Apply will change" in text and "Filters: 8 → **4**" in text and "will be replaced" in text
    at.button(key="sb_apply").click().run()
    assert not at.exception
    assert a.trainer is not old_tr and a.trainer.net.layers[0].params["W"].shape[0] == 4
    at.button(key="sb_undo").click().run()
    assert not at.exception
    assert a.trainer is old_tr and a.config == old_cfg and old_tr.step_count == 1
    assert at.number_input(key="sb_filters").value == 8  # the fields show the model that is back
    assert "Undone" in _texts(at)


@pytest.mark.skipif(not (MODELS / "classroom.npz").exists(), reason="assets/models not built")
def test_reset_after_pretrained_returns_to_the_pretrained_weights_and_says_so():
    from cnnviz.ui import resources

    at = _app(setup="state.load_pretrained('classroom')")
    a = at.session_state["cnnviz"]
    assert a.start.kind == "pretrained"
    _step(at)
    at.button(key="btn_reset").click().run()
    assert not at.exception
    shipped, _ = resources.pretrained("classroom")
    for (n, p), (_, q) in zip(a.trainer.net.named_params(), shipped.named_params(), strict=True):
        np.testing.assert_array_equal(p, q, err_msg=n)
    assert a.trainer.step_count == 0
    notice = " ".join(s.value for s in at.success)
    assert "pretrained Classroom weights" in notice and "seed" not in notice


def test_reset_of_a_seeded_run_says_fresh_weights_from_the_seed():
    at = _app()
    _step(at)
    at.button(key="btn_reset").click().run()
    assert "fresh weights from the seed" in " ".join(s.value for s in at.success)


def test_replay_follows_the_latest_step_unless_moved():
    at = _app()
    for _ in range(3):
        _step(at, "btn_step10")
    tr = at.session_state["cnnviz"].trainer
    assert at.select_slider(key="replay_step").value == tr.snapshots[-1].step == 30
    at.select_slider(key="replay_step").set_value(10).run()
    _step(at, "btn_step10")
    assert at.select_slider(key="replay_step").value == 10  # moved by the user: stays
    at.button(key="btn_replay_latest").click().run()
    at.button(key="btn_epoch").click().run()
    tr = at.session_state["cnnviz"].trainer
    assert at.select_slider(key="replay_step").value == tr.snapshots[-1].step == tr.step_count


def test_speed_keeps_its_selection_across_pages():
    at = _app()
    at.segmented_control(key="speed").set_value("Slow").run()
    at.session_state["_page"] = "evaluate"
    at.run()
    at.session_state["_page"] = "train"
    at.run()
    assert at.segmented_control(key="speed").value == "Slow"


def test_evaluate_never_claims_live_training():
    at = _app()
    at.session_state["cnnviz"].playing = True
    at.session_state["_page"] = "evaluate"
    at.run()
    assert not at.exception
    assert "Live training is on" not in _texts(at)
    assert at.session_state["cnnviz"].playing is False  # nothing trains off the Train page


def test_same_model_file_twice_loads_twice():
    """Re-uploading the same file is a new upload (the uploader gets a fresh key after each one)."""
    import threading

    from cnnviz.ui.common import _model_bytes

    at = _app()
    _step(at)
    a = at.session_state["cnnviz"]
    raw = _model_bytes(a.trainer, a.config, threading.Lock())
    for n in (1, 2):
        key = f"model_file_{a.ui.upload_rev}"
        at.file_uploader(key=key).set_value(("mine.npz", raw, "application/octet-stream")).run()
        assert not at.exception
        assert len(a.undo) == n and a.start.kind == "upload" and a.start.name == "mine.npz"
        assert "Model loaded from mine.npz" in " ".join(s.value for s in at.success)
        assert at.button(key="sb_undo").label == "Undo loading mine.npz"  # not "Undo the model mine.npz"


# ----------------------------------------------------------------------------------------------------------
# Teaching the model on screen
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not (MODELS / "draw.npz").exists(), reason="assets/models/draw.npz is not built")
def test_three_copies_of_a_misread_digit_raise_its_probability_clearly():
    from cnnviz.train import model_file as io
    from cnnviz.train.data import fixed_split, load_dataset, load_subset
    from cnnviz.train.finetune import fine_tune

    net, _ = io.load_model_and_config(str(MODELS / "draw.npz"))
    images, labels = load_subset()
    _, val_idx = fixed_split(labels)
    x = images[val_idx].astype(np.float32)[:, None] / 255  # (N, 1, 28, 28)
    y = labels[val_idx]
    wrong = np.flatnonzero(net.predict_proba(x).argmax(1) != y)
    assert len(wrong), "the draw model reads every validation digit right"
    i = int(wrong[0])
    before = float(net.predict_proba(x[i:i + 1])[0, y[i]])
    ds = load_dataset("digits", 4000)
    fine_tune(net, np.repeat(x[i:i + 1], 3, axis=0), np.full(3, y[i]), ds.x_train, ds.y_train, 10, lr=5e-4)
    after = float(net.predict_proba(x[i:i + 1])[0, y[i]])
    assert before < 0.5 and after > before + 0.3 and after > 0.5, (before, after)
    acc = float((net.predict_proba(x).argmax(1) == y).mean())
    assert acc > 0.95  # it did not forget the other digits


# ----------------------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------------------
def test_layer_names_for_people():
    from cnnviz.train.config import preset_config

    spec = preset_config("deeper").layers
    convs = [i for i, s in enumerate(spec) if s["type"] == "Conv2D"]
    dense = [i for i, s in enumerate(spec) if s["type"] == "Dense"]
    assert names.layer_param_label(convs[0], "Conv2D", "W", spec) == "conv 1 weights"
    assert names.layer_param_label(convs[1], "Conv2D", "b", spec) == "conv 2 bias"
    assert names.layer_param_label(dense[-1], "Dense", "b", spec) == "dense bias"
    assert names.param_label_from_name(f"{dense[-1]}.W", spec) == "dense weights"
    with pytest.raises(ValueError):
        names.layer_param_label(convs[0], "Dense", "W", spec)


def test_config_description_has_no_internal_codes():
    from cnnviz.train.config import preset_config

    for p in ("tutorial", "classroom", "deeper"):
        text = names.describe_config(preset_config(p))
        assert "softmax_ce" not in text and "gt4" not in text and "_" not in text, text
    assert "0–4 vs 5–9" in names.describe_config(preset_config("tutorial"))
    assert names.describe_config(preset_config("classroom")).startswith("Classroom: ")  # not the code


def test_activation_and_pooling_named_for_people():
    from cnnviz.train import config as C

    assert set(names.ACTIVATION_NAMES) == set(C.ACTIVATIONS) and set(names.POOLING_NAMES) == set(C.POOLINGS)
    assert names.ACTIVATION_NAMES["relu"] == "ReLU" and names.POOLING_NAMES["avg"] == "average"


def test_adam_with_the_sgd_learning_rate_gets_a_hint_and_keeps_the_value():
    """Optimiser SGD → Adam keeps lr 0.08 (nothing changes by itself), which makes the Classroom net stall at
    10 %: the sidebar says so before Apply."""
    at = _app()
    a = at.session_state["cnnviz"]
    assert a.settings.lr == 0.08 and "Adam usually learns best" not in _texts(at)
    at.selectbox(key="sb_optimizer").select("adam").run()
    assert not at.exception
    assert a.settings.lr == 0.08 and "Adam usually learns best near 0.001" in _texts(at)


def test_no_emoji_icons_in_the_app():
    """Chromium without a colour-emoji font drew the "other tab" warning's 🪟 as a box: every icon is a
    Material icon (":material/...") instead."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in [root / "app.py", *sorted((root / "cnnviz" / "ui").glob("*.py"))]:
        for m in re.finditer(r"icon=\"([^\"]*)\"", path.read_text(encoding="utf-8")):
            assert m.group(1).startswith(":material/"), f"{path.name}: icon={m.group(1)!r}"

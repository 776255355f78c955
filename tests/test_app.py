"""AppTest tests of the app shell, the sidebar, the Train and the Evaluate pages (no browser needed).

``run_every`` never ticks in AppTest, but every ``run()`` runs the live fragment once: with Play on, each run
trains one tick, which is how live training is tested here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import DIVERGING, chart_spec, plotly_array
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60


def page_script(page: str, setup: str = "") -> None:
    """An app that draws the sidebar and one page (AppTest cannot switch to callable st.navigation pages)."""
    import importlib

    import streamlit as st

    from cnnviz.ui import common, sidebar, state

    state.init()
    common.inject_css()
    if setup and not st.session_state.get("_test_setup_done"):
        st.session_state["_test_setup_done"] = True
        exec(setup)  # test-only hook, first run only: e.g. load a config or a model file
    sidebar.render()
    importlib.import_module(f"cnnviz.ui.{page}").render()


def page_test(page: str, setup: str = "") -> AppTest:
    return AppTest.from_function(page_script, args=(page, setup), default_timeout=TIMEOUT)


def _tutorial_json() -> str:
    from cnnviz.train.config import preset_config

    return json.dumps(preset_config("tutorial").to_dict())


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.success, *at.info, *at.warning])


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def test_app_opens_on_train_with_every_control(app):
    keys = {b.key for b in app.button}
    assert {"btn_step", "btn_step10", "btn_play", "btn_epoch", "btn_reset", "sb_apply"} <= keys
    tr = app.session_state["cnnviz"].trainer
    assert tr.step_count == 0 and app.session_state["cnnviz"].config.preset == "classroom"
    assert any(m.label == "Val accuracy" for m in app.metric)
    spec = chart_spec(app, "train_filters")
    assert spec["data"][0]["type"] == "heatmap"


def test_step_and_step10_grow_the_history_and_change_the_figures(app):
    before = chart_spec(app, "train_filters")["data"][0]["z"]
    app.button(key="btn_step").click().run()
    tr = app.session_state["cnnviz"].trainer
    assert tr.step_count == 1 and len(tr.history) == 1
    after = chart_spec(app, "train_filters")["data"][0]["z"]
    assert after != before
    app.button(key="btn_step10").click().run()
    assert app.session_state["cnnviz"].trainer.step_count == 11
    assert app.session_state["cnnviz"].trainer.last_val[0] == 11  # Step ×10 validates: the curves are current
    curves = chart_spec(app, "train_curves")
    assert max(len(plotly_array(t["x"])) for t in curves["data"]) == 11
    assert next(m for m in app.metric if m.label == "Step").value == "11"
    assert not app.exception


def test_play_trains_each_tick_and_pause_stops(app):
    app.button(key="btn_play").click().run()
    assert app.session_state["cnnviz"].playing is True
    n1 = app.session_state["cnnviz"].trainer.step_count
    assert n1 >= 1  # the fragment trained one tick during this run
    app.run()
    assert app.session_state["cnnviz"].trainer.step_count > n1
    app.button(key="btn_pause").click().run()
    assert app.session_state["cnnviz"].playing is False
    n2 = app.session_state["cnnviz"].trainer.step_count
    app.run()
    assert app.session_state["cnnviz"].trainer.step_count == n2


def test_epoch_button_trains_one_epoch():
    at = page_test("train", "state.apply_config({'preset': 'classroom', 'train_size': 500})").run()
    at.button(key="btn_epoch").click().run()
    tr = at.session_state["cnnviz"].trainer
    cfg = at.session_state["cnnviz"].config
    assert tr.step_count == tr.steps_per_epoch == math.ceil(500 / cfg.batch_size)
    assert "one epoch" in _texts(at)


def test_reset_clears_history(app):
    app.button(key="btn_step10").click().run()  # the first steps rerun the live and replay fragments only
    assert {"btn_step", "btn_replay_latest"} <= {b.key for b in app.button}
    app.run()  # the whole page again (AppTest keeps only the last run's elements)
    w_trained = app.session_state["cnnviz"].trainer.net.layers[0].params["W"].copy()
    app.button(key="btn_reset").click().run()
    tr = app.session_state["cnnviz"].trainer
    assert tr.step_count == 0 and tr.history == [] and len(tr.snapshots) == 1
    assert not np.array_equal(tr.net.layers[0].params["W"], w_trained)
    assert "Reset" in _texts(app)


def test_apply_a_preset_rebuilds_the_model(app):
    old = app.session_state["cnnviz"].trainer
    app.selectbox(key="sb_preset").select("tutorial").run()
    assert app.session_state["sb_task"] == "gt4"  # choosing a preset fills in its settings
    app.button(key="sb_apply").click().run()
    assert not app.exception
    cfg, tr = app.session_state["cnnviz"].config, app.session_state["cnnviz"].trainer
    assert tr is not old and cfg.preset == "tutorial" and cfg.train_size == 200 and cfg.batch_size == 0
    assert tr.net.layers[0].params["W"].shape == (3, 1, 5, 5)
    app.button(key="btn_step").click().run()  # full-batch step on the binary task works
    assert app.session_state["cnnviz"].trainer.step_count == 1 and not app.exception


def test_editing_the_architecture_makes_a_custom_net(app):
    app.number_input(key="sb_filters").set_value(4).run()
    assert app.session_state["sb_preset"] == "custom"
    app.selectbox(key="sb_activation").select("tanh").run()
    app.button(key="sb_apply").click().run()
    tr = app.session_state["cnnviz"].trainer
    assert tr.net.layers[0].params["W"].shape == (4, 1, 5, 5)
    assert type(tr.net.layers[1]).__name__ == "Tanh"
    assert app.session_state["cnnviz"].config.preset == "custom"


def test_invalid_settings_show_an_error_and_keep_the_model(app):
    app.button(key="btn_step").click().run()
    old = app.session_state["cnnviz"].trainer
    settings = app.session_state["cnnviz"].settings  # the typed state is what the sidebar shows and applies
    settings.preset = "custom"
    settings.n_conv = 3
    settings.kernel = 9  # the third 9x9 conv no longer fits its input
    app.run()
    app.button(key="sb_apply").click().run()
    assert not app.exception
    assert app.session_state["cnnviz"].trainer is old and old.step_count == 1
    assert any("not applied" in e.value and "kernel" in e.value for e in app.error)


def test_config_json_upload_good_and_bad():
    good = page_test("train", f"sidebar.load_config_upload('t.json', {_tutorial_json()!r}.encode())").run()
    assert not good.exception and good.session_state["cnnviz"].config.preset == "tutorial"
    bad = page_test("train", "sidebar.load_config_upload('b.json', b'{\"lr\": -1}')").run()
    assert not bad.exception and bad.session_state["cnnviz"].config.preset == "classroom"
    assert any("lr" in e.value and "kept" in e.value for e in bad.error)
    junk = page_test("train", "sidebar.load_config_upload('j.json', b'not json at all')").run()
    assert not junk.exception and any("not loaded" in e.value for e in junk.error)


def test_config_is_visible_and_downloadable(app):
    codes = [c.value for c in app.code]
    assert any('"preset": "classroom"' in c for c in codes)
    assert json.loads(next(c for c in codes if '"preset"' in c))["seed"] == 0


def test_diverging_learning_rate_pauses_with_a_message_and_keeps_working():
    at = page_test("train", f"state.apply_config({DIVERGING!r})").run()
    assert at.session_state["cnnviz"].config.lr == 10.0
    at.button(key="btn_play").click().run()
    for _ in range(30):
        if not at.session_state["cnnviz"].playing:
            break
        at.run()
    assert at.session_state["cnnviz"].playing is False, "live training stops on divergence"
    tr = at.session_state["cnnviz"].trainer
    assert all(np.isfinite(p).all() for _, p in tr.net.named_params())  # last good weights kept
    assert any("diverged" in e.value and "learning rate" in e.value for e in at.error)
    assert not at.exception
    at.button(key="btn_reset").click().run()  # still usable: reset, step, evaluate
    at.button(key="btn_step").click().run()
    assert at.session_state["cnnviz"].trainer.step_count == 1 and not at.exception


def test_model_download_roundtrip_and_bad_upload_keeps_the_model(tmp_path):
    from cnnviz.nn.network import build
    from cnnviz.train import model_file as io
    from cnnviz.train.config import preset_config

    net = build("tutorial", rng=np.random.default_rng(3))
    raw = io.model_to_bytes(net, preset_config("tutorial"))
    ok = page_test("train", f"common.load_model_upload('m.npz', {raw!r})").run()
    assert not ok.exception
    tr = ok.session_state["cnnviz"].trainer
    assert ok.session_state["cnnviz"].config.preset == "tutorial"
    np.testing.assert_array_equal(tr.net.layers[0].params["W"], net.layers[0].params["W"])
    assert any("Model loaded" in s.value for s in ok.success)

    bad = page_test("train", "state.get_trainer(); "
                             "common.load_model_upload('bad.npz', b'PK\\x03\\x04garbage')")
    bad.run()
    assert not bad.exception
    kept = bad.session_state["cnnviz"]
    assert kept.config.preset == "classroom" and kept.trainer.step_count == 0
    assert any("not loaded" in e.value and "kept" in e.value for e in bad.error)

    from cnnviz.ui.common import _model_bytes
    from cnnviz.ui.state import threading

    back, cfg = io.model_from_bytes(_model_bytes(tr, ok.session_state["cnnviz"].config, threading.Lock()))
    np.testing.assert_array_equal(back.layers[3].params["W"], net.layers[3].params["W"])
    assert cfg["preset"] == "tutorial"


def test_presentation_mode_hides_extras_and_scales_figures(app):
    h = chart_spec(app, "train_curves")["layout"]["height"]
    app.toggle(key="presentation").set_value(True).run()
    assert not app.exception
    assert chart_spec(app, "train_curves")["layout"]["height"] > h
    assert not [c for c in app.code if '"preset"' in c.value]  # config box hidden
    assert "sb_apply" in {b.key for b in app.button}  # essentials stay


def test_evaluate_page_ten_digits():
    at = page_test("evaluate", "state.train(20)").run()
    assert not at.exception
    cm = chart_spec(at, "eval_cm")
    assert plotly_array(cm["data"][0]["text"]).sum() == 1000 and len(cm["data"][0]["x"]) == 10
    assert chart_spec(at, "eval_wrong")["data"][0]["type"] == "heatmap"
    acc = next(m for m in at.metric if m.label == "Accuracy").value
    assert acc.endswith("%")
    at.selectbox(key="eval_true_digits").select(3).run()
    at.selectbox(key="eval_pred_digits").select(3).run()
    assert "True 3 correctly classified as 3" in chart_spec(at, "eval_cell")["layout"]["title"]["text"]
    assert not at.exception


def test_evaluate_page_binary_tutorial_net_and_training_images():
    at = page_test("evaluate", f"sidebar.load_config_upload('t.json', {_tutorial_json()!r}.encode())").run()
    assert not at.exception
    cm = chart_spec(at, "eval_cm")
    assert plotly_array(cm["data"][0]["text"]).shape == (2, 2)
    assert cm["data"][0]["x"] == ["0–4", "5–9"]
    at.segmented_control(key="eval_which").set_value("train").run()
    assert plotly_array(chart_spec(at, "eval_cm")["data"][0]["text"]).sum() == 200
    assert not at.exception


def test_full_mnist_from_idx_files_when_configured(tmp_path, monkeypatch):
    from cnnviz.train import data

    rng = np.random.default_rng(0)
    images, labels = data.load_subset()
    reps = np.resize(np.arange(len(images)), 6000)  # 6,000 "training" images built from the subset
    data.write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", images[reps])
    data.write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", labels[reps])
    test = rng.permutation(len(images))[:1000]
    data.write_idx_images(tmp_path / "t10k-images-idx3-ubyte", images[test])
    data.write_idx_labels(tmp_path / "t10k-labels-idx1-ubyte", labels[test])
    monkeypatch.setenv("CNNVIZ_MNIST_DIR", str(tmp_path))
    at = page_test("train", "state.apply_config({'preset': 'classroom', 'train_size': 5500})").run()
    assert not at.exception, at.exception
    tr = at.session_state["cnnviz"].trainer
    assert tr.n_train == 5500 and tr.data.source.startswith("idx:")
    assert 59_000 in at.select_slider(key="sb_train_size").options or "59,000" in at.select_slider(
        key="sb_train_size").options
    at.button(key="btn_step").click().run()
    assert at.session_state["cnnviz"].trainer.step_count == 1
    too_many = page_test("train", "state.apply_config({'preset': 'classroom', 'train_size': 9000})").run()
    assert too_many.session_state["cnnviz"].config.train_size != 9000
    assert any("6,000" in e.value or "5,000" in e.value or "train_size" in e.value for e in too_many.error)


def test_more_than_the_subset_without_idx_files_is_refused(monkeypatch):
    monkeypatch.delenv("CNNVIZ_MNIST_DIR", raising=False)
    at = page_test("train", "state.apply_config({'preset': 'classroom', 'train_size': 10000})").run()
    assert not at.exception and at.session_state["cnnviz"].config.train_size == 4000
    assert any("train_size" in e.value and "kept" in e.value for e in at.error)


def test_start_from_pretrained_weights_gives_a_trained_private_model():
    at = page_test("evaluate").run()
    assert not at.exception
    at.button(key="load_pretrained").click().run()
    assert not at.exception
    tr = at.session_state["cnnviz"].trainer
    shipped = np.load(Path(APP).parent / "assets/models/classroom.npz", allow_pickle=False)
    np.testing.assert_array_equal(tr.net.layers[0].params["W"], shipped["0.W"])
    acc = float(next(m for m in at.metric if m.label == "Accuracy").value.rstrip("%"))
    assert acc >= 97.0  # the shipped classroom model, evaluated on the 1,000 validation images
    tr.run(3)  # training the session's copy must leave the shared cached model untouched
    from cnnviz.ui import resources

    cached, _ = resources.pretrained("classroom")
    assert not np.array_equal(tr.net.layers[0].params["W"], shipped["0.W"])
    np.testing.assert_array_equal(cached.layers[0].params["W"], shipped["0.W"])

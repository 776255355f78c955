"""AppTest: health hints on the Train page (lr 10 → "learning rate too high" → fix → a learning run; no
success message for a stuck run, no hint for the presets) and the Compare page (sigmoid vs ReLU)."""

from __future__ import annotations

from apptest_helpers import app_state, chart_spec
from test_app import page_test

LR10 = ("from cnnviz.ui import state\n"
        "from cnnviz.train.config import preset_config\n"
        "state.apply_config(preset_config('classroom', lr=10.0, train_size=1000).to_dict())")


def _boxes(at) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.warning])


def test_lr_10_shows_learning_rate_too_high_within_20_steps_and_the_fix_learns():
    at = page_test("train", LR10).run()
    assert not at.exception, at.exception
    assert app_state(at).config.lr == 10.0
    assert "Learning rate too high" not in _boxes(at)  # nothing to say before training
    for _ in range(2):
        at.button(key="btn_step10").click().run()
    assert not at.exception, at.exception
    assert app_state(at).trainer.step_count <= 20
    text = _boxes(at)
    assert "Learning rate too high" in text and "jumped" in text
    fix = at.button(key="health_diverged_fix")
    assert "learning rate" in fix.label.lower()
    fix.click().run()
    assert not at.exception, at.exception
    cfg, tr = app_state(at).config, app_state(at).trainer
    assert cfg.lr == 0.08 and tr.step_count == 0
    undo = app_state(at).undo[-1]  # the fix can be undone: the diverged run is on the Undo stack
    assert undo.config.lr == 10.0 and undo.trainer.step_count > 0 and "fix" in undo.what
    for _ in range(6):
        at.button(key="btn_step10").click().run()
    tr = app_state(at).trainer
    assert tr.step_count == 60 and tr.last_val[2] > 0.6  # it learns
    assert "Learning rate too high" not in _boxes(at)
    assert "health_diverged_fix" not in [b.key for b in at.button]


def test_a_stuck_run_never_gets_a_success_message():
    at = page_test("train", LR10).run()
    at.button(key="btn_epoch").click().run()
    assert not at.exception, at.exception
    assert not any("Trained" in str(s.value) for s in at.success)
    assert any("not learning" in str(w.value) for w in at.warning)
    assert "Stuck" in _boxes(at)
    hist = [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("health_stuck_hist")]
    assert hist, "the stuck hint shows the histogram of predicted classes"


def test_preset_defaults_show_no_hint_and_get_their_success_message():
    setup = ("from cnnviz.ui import state\n"
             "from cnnviz.train.config import preset_config\n"
             "state.apply_config(preset_config('classroom', train_size=500).to_dict())")
    at = page_test("train", setup).run()
    for _ in range(3):  # 3 epochs of 16 steps
        at.button(key="btn_epoch").click().run()
        assert not at.exception, at.exception
        assert not at.error and not at.warning, _boxes(at)
        assert any("Trained" in str(s.value) for s in at.success)
    assert app_state(at).trainer.step_count == 48


def test_compare_sigmoid_vs_relu_two_colours_same_first_batch():
    at = page_test("compare").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cmp_source").value == "sigmoid vs ReLU"
    at.button(key="cmp_step").click().run()
    at.button(key="cmp_step10").click().run()
    assert not at.exception, at.exception
    cmp = app_state(at).compare.cmp
    assert [r.trainer.step_count for r in cmp.runs] == [11, 11]
    tr = app_state(at).trainer
    assert tr is None or tr.step_count == 0  # the session's own model is untouched
    first = [r.first_batch for r in cmp.runs]
    assert first[0] is not None and (first[0] == first[1]).all()
    spec = chart_spec(at, "cmp_curves")
    colours = {}
    for trace in spec["data"]:
        colours.setdefault(trace["legendgroup"], set()).add(trace["line"]["color"])
    assert set(colours) == {"ReLU", "sigmoid"}
    assert all(len(c) == 1 for c in colours.values())  # one colour per run, in every trace of the run
    assert colours["ReLU"] != colours["sigmoid"]
    grads = chart_spec(at, "cmp_grads")
    assert {t["line"]["color"] for t in grads["data"]} == colours["ReLU"] | colours["sigmoid"]
    assert any("Same images for every run" in str(c.value) for c in at.caption)


def test_compare_lesson_switch_reset_and_pin():
    at = page_test("compare").run()
    at.selectbox(key="cmp_source").set_value("learning rate ×0.1 / ×1 / ×10").run()
    assert not at.exception, at.exception
    assert app_state(at).compare.cmp.labels == ["lr 0.008", "lr 0.08", "lr 0.8"]
    at.button(key="cmp_step10").click().run()
    at.button(key="cmp_reset").click().run()
    assert app_state(at).compare.cmp.step_count == 0
    at.selectbox(key="cmp_source").set_value("pin the current run and change settings").run()
    at.selectbox(key="cmp_activation").set_value("sigmoid").run()
    at.button(key="cmp_pin").click().run()
    assert not at.exception, at.exception
    cmp = app_state(at).compare.cmp
    assert cmp.labels[0] == "pinned" and len(cmp.runs) == 2
    at.select_slider(key="cmp_lr").set_value(0.5).run()
    at.button(key="cmp_add").click().run()
    assert len(app_state(at).compare.cmp.runs) == 3
    # the page's values live in the typed state (a hidden widget loses nothing), and the reload store's
    # memory estimate counts the comparison's three trainers
    from cnnviz.ui import state

    a = app_state(at)
    assert (a.compare.source, a.compare.activation, a.compare.lr) == (
        "pin the current run and change settings", "sigmoid", 0.5)
    runs = sum(state._trainer_bytes(r.trainer) for r in a.compare.cmp.runs)
    assert runs > 0 and state.weigh(a) >= state._trainer_bytes(a.trainer) + runs


def test_curves_legend_has_one_entry_per_run_so_four_runs_fit_above_the_plot():
    """With an entry per curve (training and validation), 3–4 runs wrapped the legend over the title."""
    import numpy as np

    from cnnviz.viz.figures_compare import compare_curves, run_colour

    runs = [{"label": f"lr {lr}", "steps": np.arange(1, 11), "loss": np.linspace(2, 1, 10),
             "acc": np.linspace(0.1, 0.6, 10), "val_steps": np.array([0, 10]),
             "val_loss": np.array([2.4, 1.2]), "val_acc": np.array([0.1, 0.5])}
            for lr in (0.008, 0.08, 0.8, 8)]
    fig = compare_curves(runs, scale=1.5)
    shown = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in shown] == [r["label"] for r in runs]
    assert [t.line.color for t in shown] == [run_colour(i) for i in range(4)]
    assert fig.layout.title.text == "Loss and accuracy (dotted: validation)"
    assert fig.layout.legend.title.text.startswith("solid: training")

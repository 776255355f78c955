"""Model-based random test of the app's state: random sequences of what a student might click, over AppTest.

A Hypothesis ``RuleBasedStateMachine`` toggles presentation mode, changes sidebar fields, applies, resets,
steps, switches pages, uploads a config or a model, starts from pretrained weights and undoes; on the other
pages it steps the Compare page's runs, knocks out / scales / restores / keeps a filter on the Inspect page,
goes Next / Back in the Lesson and switches to the tutorial network there, and clicks a training-health fix;
all in any order. After every action it checks that nothing raised, that the applied config changed only on
Apply / upload / pretrained / Undo / health fix / the lesson's switch, that the weights changed only by
training / Apply / Reset / upload / pretrained / Undo / Keep (and those), that every sidebar widget on
screen shows the session's settings, and that the reload store can weigh the session. Bugs like
"presentation mode, then Apply: no key sb_task" took three clicks to find by hand; this finds them in a few
seconds.

The machine reads the model through ``_config`` / ``_trainer``, which also understand the session-state
layout before the typed state (keys "config" and "trainer"), so the same file shows those bugs on old code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as hs
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from streamlit.testing.v1 import AppTest

from cnnviz.ui.state import UNDO_DEPTH

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "assets" / "models"
TIMEOUT = 60
PAGES = ["train", "inside", "gradients", "evaluate", "draw", "compare", "lesson", "inspect"]
# a run that diverges within 20 steps (so that a health fix appears); small to stay cheap
DIVERGING = {"preset": "custom", "loss": "mse", "optimizer": "sgd", "lr": 10.0, "momentum": 0.9,
             "train_size": 500, "layers": [
                 {"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 5},
                 {"type": "ReLU"}, {"type": "MaxPool2D", "size": 2}, {"type": "Flatten"},
                 {"type": "Dense", "in_features": 576, "out_features": 10}]}


def machine_script() -> None:
    """The app with the page chosen by ``st.session_state["_page"]`` (AppTest cannot click st.navigation)."""
    import importlib

    import streamlit as st

    from cnnviz.ui import common, sidebar, state

    state.init()
    if hasattr(state, "attach_cookie"):
        state.attach_cookie()
    common.inject_css()
    page = st.session_state.get("_page", "train")
    if hasattr(state, "page_switched"):
        state.page_switched(page)
    sidebar.render()
    importlib.import_module(f"cnnviz.ui.{page}").render()


# field -> (widget key, kind, values to try); small values keep the networks cheap to build
FIELDS = {
    "preset": ("sb_preset", "selectbox", ["tutorial", "classroom", "custom"]),
    "task": ("sb_task", "selectbox", ["digits", "gt4"]),
    "loss": ("sb_loss", "selectbox", ["softmax_ce", "mse"]),
    "optimizer": ("sb_optimizer", "selectbox", ["adam", "sgd"]),
    "lr": ("sb_lr", "select_slider", [1e-3, 1e-2]),
    "momentum": ("sb_momentum", "slider", [0.5, 0.9]),
    "batch": ("sb_batch", "select_slider", [16, 64]),
    "train_size": ("sb_train_size", "select_slider", [200, 500]),
    "seed": ("sb_seed", "number_input", [0, 3]),
    "filters": ("sb_filters", "number_input", [2, 4]),
    "kernel": ("sb_kernel", "number_input", [3, 5]),
    "activation": ("sb_activation", "selectbox", ["relu", "tanh"]),
    "pooling": ("sb_pooling", "selectbox", ["max", "none"]),
}


def _typed(at):
    return at.session_state["cnnviz"] if "cnnviz" in at.session_state else None


def _config(at):
    a = _typed(at)
    return a.config if a is not None else at.session_state["config"]


def _trainer(at):
    a = _typed(at)
    return a.trainer if a is not None else at.session_state["trainer"]


def _fingerprint(at) -> str:
    tr = _trainer(at)
    h = hashlib.blake2b(digest_size=12)
    for name, p in tr.net.named_params():
        h.update(name.encode())
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def _widget(at, key: str):
    for kind in ("selectbox", "number_input", "select_slider", "slider", "toggle"):
        for w in getattr(at, kind):
            if w.key == key:
                return w
    return None


def _applied_fields(cfg) -> dict:
    """The sidebar fields of an applied config (what the sidebar must show after Apply)."""
    from cnnviz.ui.sidebar import arch_of

    d = {"preset": cfg.preset, "task": cfg.task, "loss": cfg.loss, "optimizer": cfg.optimizer, "lr": cfg.lr,
         "momentum": cfg.momentum, "batch": cfg.batch_size, "train_size": cfg.train_size, "seed": cfg.seed}
    return {**d, **arch_of(cfg.layers)}


def _page(at) -> str:
    return at.session_state["_page"] if "_page" in at.session_state else "train"


def _buttons(at, key: str) -> list:
    return [b for b in at.button if b.key == key]


def _presentation(at) -> bool:
    a = _typed(at)
    return bool(a.ui.presentation) if a is not None else bool(at.session_state["presentation"]) \
        if "presentation" in at.session_state else False


class AppMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.at = AppTest.from_function(machine_script, default_timeout=TIMEOUT).run()
        self.allowed_config = self.allowed_weights = True
        self._remember()

    # --- bookkeeping ------------------------------------------------------------------------------------
    def _remember(self) -> None:
        assert not self.at.exception, self.at.exception
        self.config = json.dumps(_config(self.at).to_dict(), sort_keys=True)
        self.weights = _fingerprint(self.at)

    def _go(self, page: str) -> None:
        if _page(self.at) != page:
            self.at.session_state["_page"] = page
            self.at.run()
            assert not self.at.exception, self.at.exception

    def _run(self, config_may_change: bool, weights_may_change: bool) -> None:
        self.allowed_config, self.allowed_weights = config_may_change, weights_may_change

    # --- rules ------------------------------------------------------------------------------------------
    @rule()
    def toggle_presentation(self):
        w = _widget(self.at, "presentation")
        w.set_value(not w.value).run()
        self._run(False, False)

    @rule(field=hs.sampled_from(sorted(FIELDS)), pick=hs.integers(0, 2))
    def change_field(self, field, pick):
        key, kind, values = FIELDS[field]
        value = values[pick % len(values)]
        w = _widget(self.at, key)
        if w is not None:
            if kind == "selectbox":
                w.select(value)
            else:
                w.set_value(value)
            self.at.run()
        elif _typed(self.at) is not None:  # a hidden field: through the typed state, as a callback would
            setattr(_typed(self.at).settings, field, value)
            self.at.run()
        self._run(False, False)

    @rule()
    def apply(self):
        button = self.at.button(key="sb_apply")
        if button.disabled:  # nothing to apply: a browser cannot click it either
            return
        button.click().run()
        self._run(True, True)
        if not self.at.error:  # an accepted Apply builds exactly what the fields show
            cfg = _config(self.at)
            applied = _applied_fields(cfg)
            for field, (key, _, _) in FIELDS.items():
                w = _widget(self.at, key)
                if w is None or (field == "momentum" and cfg.optimizer != "sgd"):
                    continue
                assert w.value == applied[field], f"Apply built {field}={applied[field]}, it shows {w.value}"

    @precondition(lambda self: self.at.session_state["_page"] == "train"
                  if "_page" in self.at.session_state else True)
    @rule()
    def reset(self):
        self.at.button(key="btn_reset").click().run()
        self._run(False, True)

    @precondition(lambda self: _page(self.at) == "train")
    @rule(key=hs.sampled_from(["btn_step", "btn_step10"]))
    def step(self, key):
        self.at.button(key=key).click().run()
        self.at.run()  # the click reran only the live fragment; a full run draws the sidebar again
        self._run(False, True)

    @rule(page=hs.sampled_from(PAGES))
    def switch_page(self, page):
        self.at.session_state["_page"] = page
        self.at.run()
        self._run(False, False)

    @precondition(lambda self: _typed(self.at) is not None)
    @rule(preset=hs.sampled_from(["tutorial", "classroom", "diverging"]), bad=hs.booleans())
    def upload_config(self, preset, bad):
        from cnnviz.train.config import preset_config
        from cnnviz.ui import state

        good = DIVERGING if preset == "diverging" else preset_config(preset).to_dict()
        raw = b'{"lr": -1}' if bad else json.dumps(good).encode()
        state.load_config_bytes(f"{preset}.json", raw, _typed(self.at))
        self.at.run()
        self._run(True, True)

    @precondition(lambda self: _typed(self.at) is not None and (MODELS / "tutorial.npz").exists())
    @rule(name=hs.sampled_from(["tutorial", "classroom", "junk"]))
    def upload_model(self, name):
        from cnnviz.ui import state

        raw = b"not a model" if name == "junk" else (MODELS / f"{name}.npz").read_bytes()
        state.load_model_bytes(f"{name}.npz", raw, _typed(self.at))
        self.at.run()
        self._run(True, True)

    @precondition(lambda self: _typed(self.at) is not None)
    @rule(preset=hs.sampled_from(["tutorial", "classroom"]))
    def start_from_pretrained(self, preset):
        from cnnviz.ui import state

        state.load_pretrained(preset, _typed(self.at))
        self.at.run()
        self._run(True, True)

    @rule()
    def health_fix(self):
        """A training-health hint's one-click fix (a new config from step 0, or "stop here")."""
        self._go("train")  # a student opens the page, then clicks
        fixes = [b for b in self.at.button
                 if str(b.key).startswith("health_") and str(b.key).endswith("_fix")]
        if not fixes:
            return
        n_undo = len(_typed(self.at).undo)
        fixes[0].click().run()
        self.at.run()
        self._run(True, True)
        n = len(_typed(self.at).undo)
        assert n in (n_undo, min(n_undo + 1, UNDO_DEPTH)), "a fix that rebuilds goes on the Undo stack"

    @rule()
    def compare_step(self):
        """One lockstep step of the Compare page's runs: the session's own model must not move."""
        self._go("compare")  # a student opens the page, then clicks
        cmp = _typed(self.at).compare.cmp
        before = cmp.step_count if cmp is not None else 0
        self.at.button(key="cmp_step").click().run()
        cmp = _typed(self.at).compare.cmp
        assert cmp is not None and cmp.step_count in (before, before + 1)
        self._run(False, False)

    @rule(action=hs.sampled_from(["knock out", "scale", "restore", "keep"]))
    def inspect_filter(self, action):
        """Inspect: a draft change (knock out, scale), Restore, or Keep (the only one that moves weights)."""
        self._go("inspect")  # a student opens the page, then clicks
        mode = [r for r in self.at.radio if r.key == "inspect_mode"]
        if not mode:  # a network without conv layers: nothing to inspect
            return
        if action in ("knock out", "scale"):
            mode[0].set_value(action).run()
            self._run(False, False)
            return
        button = self.at.button(key="inspect_restore" if action == "restore" else "inspect_keep")
        if button.disabled:  # the learned weights are shown: nothing to restore or keep
            return
        n_undo = len(_typed(self.at).undo)
        button.click().run()
        assert self.at.radio(key="inspect_mode").value == "learned"
        if action == "keep":
            assert len(_typed(self.at).undo) == min(n_undo + 1, UNDO_DEPTH) or self.at.error
        self._run(False, action == "keep")

    @rule(key=hs.sampled_from(["lesson_next", "lesson_back"]))
    def lesson_nav(self, key):
        self._go("lesson")  # a student opens the page, then clicks
        button = self.at.button(key=key)
        if button.disabled:
            return
        step = _typed(self.at).lesson.step
        button.click().run()
        assert _typed(self.at).lesson.step == step + (1 if key == "lesson_next" else -1)
        self._run(False, False)

    @rule()
    def use_tutorial_network(self):
        self._go("lesson")  # a student opens the page, then clicks
        buttons = _buttons(self.at, "lesson_use_tutorial")
        if not buttons:  # already the tutorial network
            return
        buttons[0].click().run()
        self._run(True, True)
        if not self.at.error:
            assert _config(self.at).preset == "tutorial"
            assert _typed(self.at).undo, "the switch can be undone"

    @rule()
    def undo(self):
        buttons = [b for b in self.at.button if b.key == "sb_undo"]
        if buttons:
            buttons[0].click().run()
        self._run(True, True)

    # --- invariants -------------------------------------------------------------------------------------
    @invariant()
    def nothing_raised_and_nothing_changed_by_itself(self):
        assert not self.at.exception, self.at.exception
        for e in self.at.error:  # no internal error text reaches the user (bugs 1 and 2: `no key "sb_task"`)
            assert "session_state" not in e.value and "no key" not in e.value, e.value
        config = json.dumps(_config(self.at).to_dict(), sort_keys=True)
        weights = _fingerprint(self.at)
        if not self.allowed_config:
            assert config == self.config, "the applied config changed without Apply, upload or Undo"
        if not self.allowed_weights:
            assert weights == self.weights, "the weights changed without training, Apply, Reset, upload, Undo"
        self.config, self.weights = config, weights
        self.allowed_config = self.allowed_weights = False
        from cnnviz.ui import state

        assert state.weigh(_typed(self.at)) > 0  # the reload store can estimate what this session holds

    @invariant()
    def widgets_show_the_settings(self):
        a = _typed(self.at)
        for field, (key, _, _) in FIELDS.items():
            w = _widget(self.at, key)
            if w is None:
                continue
            if a is not None:
                assert w.value == getattr(a.settings, field), (field, w.value, getattr(a.settings, field))
        if a is not None:
            w = _widget(self.at, "presentation")
            assert w is not None and w.value == a.ui.presentation


AppMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15, derandomize=True,
                                        deadline=None, suppress_health_check=list(HealthCheck),
                                        print_blob=True)


class TestAppStateMachine(AppMachine.TestCase):
    pass


def test_presentation_mode_then_apply_keeps_every_setting():
    """Bug 1 of issue 11, by hand: presentation mode on, Apply, presentation mode off: same model, same
    fields (before: `no key "sb_task"`, then every field at its minimum)."""
    at = AppTest.from_function(machine_script, default_timeout=TIMEOUT).run()
    at.button(key="btn_step").click().run()
    at.run()
    before = (_config(at).to_dict(), _fingerprint(at))
    fields = {k: _widget(at, FIELDS[k][0]).value for k in ("filters", "kernel", "optimizer", "lr", "batch")
              if _widget(at, FIELDS[k][0]) is not None}
    at.toggle(key="presentation").set_value(True).run()
    if not at.button(key="sb_apply").disabled:  # (disabled: nothing to apply; the old code offered it)
        at.button(key="sb_apply").click().run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]
    at.toggle(key="presentation").set_value(False).run()
    assert not at.exception
    assert (_config(at).to_dict(), _fingerprint(at)) == before
    at.run()
    assert {k: _widget(at, FIELDS[k][0]).value for k in fields} == fields
    assert not [b for b in at.button if b.key == "sb_apply" and "changes" in str(b.label)]


def test_optimiser_then_apply_works_the_first_time():
    """Bug 2 of issue 11: Optimiser Adam -> SGD (momentum appears) -> Apply must work at once."""
    at = AppTest.from_function(machine_script, default_timeout=TIMEOUT).run()
    opt = _widget(at, "sb_optimizer")
    opt.select("adam" if opt.value == "sgd" else "sgd").run()
    assert not at.button(key="sb_apply").disabled
    at.button(key="sb_apply").click().run()
    assert not at.exception, at.exception
    assert _config(at).optimizer == _widget(at, "sb_optimizer").value


def test_machine_scenario_health_fix_keep_and_lesson_switch_are_undoable():
    """A fixed path through the machine's rules that random sequences reach rarely: a diverging run, its
    health fix, Undo; Keep on the Inspect page; the lesson's switch to the tutorial network. Invariants are
    checked after every action, as Hypothesis does."""
    m = AppMachine()

    def do(rule, **kw):
        rule(**kw)
        m.nothing_raised_and_nothing_changed_by_itself()
        m.widgets_show_the_settings()

    do(m.upload_config, preset="diverging", bad=False)
    for _ in range(2):
        do(m.step, key="btn_step10")
    fixes = [b.key for b in m.at.button if str(b.key).endswith("_fix")]
    assert fixes, "the diverging run shows a health fix"
    lr_before = _config(m.at).lr
    do(m.health_fix)
    assert _config(m.at).lr < lr_before and _trainer(m.at).step_count == 0
    do(m.undo)
    assert _config(m.at).lr == lr_before
    do(m.start_from_pretrained, preset="classroom")
    do(m.switch_page, page="inspect")
    do(m.inspect_filter, action="knock out")
    weights = _fingerprint(m.at)
    do(m.inspect_filter, action="keep")
    assert _fingerprint(m.at) != weights
    do(m.undo)
    assert _fingerprint(m.at) == weights
    do(m.switch_page, page="lesson")
    do(m.lesson_nav, key="lesson_next")
    do(m.use_tutorial_network)
    assert _config(m.at).preset == "tutorial"
    do(m.switch_page, page="compare")
    do(m.compare_step)


def test_inside_step_through_and_evaluate_cell_survive_a_visit_to_another_page():
    """The step-through's example, filter, window position and play flag, and Evaluate's chosen confusion
    cell, live in the typed state: a page that does not draw their widgets no longer resets them."""
    at = AppTest.from_function(machine_script, default_timeout=TIMEOUT).run()
    at.session_state["_page"] = "inside"
    at.session_state["inside_tab"] = "Convolution step-through"
    at.run()
    at.radio(key="inside_step_example").set_value("This image with a learned filter").run()
    at.selectbox(key="inside_step_filter").select(3).run()
    at.slider(key="inside_step_pos").set_value(100).run()
    assert not at.exception
    at.session_state["_page"] = "evaluate"
    at.run()
    at.selectbox(key="eval_true_digits").select(4).run()
    at.selectbox(key="eval_pred_digits").select(9).run()
    assert not at.exception
    at.session_state["_page"] = "train"
    at.run()
    at.session_state["_page"] = "inside"
    at.run()  # no click on the tab: the page opens the step-through again by itself
    assert not at.exception
    assert at.session_state["inside_tab"] == "Convolution step-through"
    assert at.radio(key="inside_step_example").value == "This image with a learned filter"
    assert at.selectbox(key="inside_step_filter").value == 3
    assert at.slider(key="inside_step_pos").value == 100
    at.session_state["_page"] = "evaluate"
    at.run()
    assert (at.selectbox(key="eval_true_digits").value, at.selectbox(key="eval_pred_digits").value) == (4, 9)
    assert not at.exception

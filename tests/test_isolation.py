"""Two sessions never see each other's model, drawing, uploads or history; shared caches are never mutated.

Two AppTests in one process are two Streamlit sessions sharing the same ``st.cache_resource`` caches, as two
browser tabs on one server do. Session A uploads a model, trains, draws and adds "your digits"; session B
must be exactly as it was, and everything the caches hand out must be bit-for-bit unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from cnnviz.nn.network import build
from cnnviz.train import model_file as io
from cnnviz.train.config import preset_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60


def session_a(model_bytes: bytes) -> None:
    """Session A: upload a model, train, draw, teach it one digit, train again (first run only)."""
    import numpy as np
    import streamlit as st

    from cnnviz.ui import common, sidebar, state, train

    state.init()
    ss = st.session_state
    if "_a_done" not in ss:
        ss["_a_done"] = True
        assert common.load_model_upload("a.npz", model_bytes)
        state.train(5)
        img = np.zeros((28, 28), np.float32)
        img[4:24, 12:16] = 1.0
        state.app().draw.drawing = img
        state.app().draw.user_digits = [(img, 1)]
        state.get_trainer().add_examples(img[None, None], np.array([1]))
        state.train(2)
    sidebar.render()
    train.render()


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _shared_resources() -> dict[str, tuple[str, bool]]:
    """Digest and read-only flag of everything the app's caches hand out (dataset variants, models)."""
    from cnnviz.ui import resources

    out = {}
    for task, n in (("digits", 4000), ("gt4", 200), ("digits", 200)):
        ds = resources.dataset(task, n)
        arrays = (ds.x_train, ds.y_train, ds.x_val, ds.y_val)
        out[f"dataset {task} {n}"] = (_digest(*arrays), not any(a.flags.writeable for a in arrays))
    for name in ("tutorial", "classroom", "deeper", "draw"):
        try:
            got = resources.pretrained(name)
        except ValueError:  # a model file being rebuilt right now is not this test's subject
            continue
        if got is not None:
            params = [p for _, p in got[0].named_params()]
            out[f"model {name}"] = (_digest(*params), not any(p.flags.writeable for p in params))
    x, y = resources.validation_images()
    out["validation"] = (_digest(x, y), not (x.flags.writeable or y.flags.writeable))
    return out


def _state(at: AppTest) -> dict:
    ss = at.session_state
    a = ss["cnnviz"]
    tr = a.trainer
    return {"trainer": tr, "steps": tr.step_count, "history": len(tr.history),
            "config": a.config.to_dict(), "params": {n: p.copy() for n, p in tr.net.named_params()},
            "drawing": a.draw.drawing, "user_digits": len(a.draw.user_digits), "n_train": tr.n_train,
            "key": ss["_session_key"]}


def test_one_session_training_uploading_and_drawing_leaves_the_other_untouched():
    before_cache = _shared_resources()
    b = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not b.exception
    b_before = _state(b)

    uploaded = build("deeper", rng=np.random.default_rng(7))
    a = AppTest.from_function(session_a, args=(io.model_to_bytes(uploaded, preset_config("deeper")),),
                              default_timeout=TIMEOUT).run()
    assert not a.exception, a.exception
    a.button(key="btn_step").click().run()
    a.session_state["cnnviz"].playing = True
    a.run()  # one live tick
    assert not a.exception
    sa = _state(a)
    assert sa["config"]["layers"] == preset_config("deeper").layers  # A now has the uploaded network
    assert sa["steps"] >= 8 and sa["user_digits"] == 1
    assert sa["drawing"] is not None and sa["n_train"] == 4001

    b.run()
    assert not b.exception
    sb = _state(b)
    assert sb["trainer"] is b_before["trainer"]
    assert sb["steps"] == sb["history"] == 0 and sb["config"] == b_before["config"]
    assert sb["config"]["preset"] == "classroom" and sb["drawing"] is None and sb["user_digits"] == 0
    assert sb["n_train"] == 4000
    for name, p in sb["params"].items():
        np.testing.assert_array_equal(p, b_before["params"][name])
    assert sa["key"] != sb["key"]
    # no array is shared between the two sessions' models
    for (_, pa), (_, pb) in zip(a.session_state["cnnviz"].trainer.net.named_params(),
                                b.session_state["cnnviz"].trainer.net.named_params(), strict=False):
        assert not np.shares_memory(pa, pb)

    # B trains on: its run is the one a fresh session with its seed gives, whatever A did
    b.button(key="btn_step").click().run()
    c = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    c.button(key="btn_step").click().run()
    for (n1, p1), (n2, p2) in zip(b.session_state["cnnviz"].trainer.net.named_params(),
                                  c.session_state["cnnviz"].trainer.net.named_params(), strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(p1, p2)

    after_cache = _shared_resources()
    assert set(before_cache) <= set(after_cache) and len(before_cache) >= 5
    for name, (digest, read_only) in before_cache.items():
        assert after_cache[name][0] == digest, f"the shared {name} was changed by a session"
        assert read_only, f"the shared {name} is writeable: a session could change it for everyone"


def test_shared_dataset_cannot_be_written_by_a_session():
    from cnnviz.ui import resources

    ds = resources.dataset("digits", 4000)
    for a in (ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        try:
            a[0] = 0
        except ValueError:
            continue
        raise AssertionError("a cached dataset array accepted a write")
    mine = resources.dataset("digits", 4000)
    mine.x_train = mine.x_train[:10]  # a session re-binding its copy changes nothing for the others
    assert resources.dataset("digits", 4000).x_train.shape[0] == 4000

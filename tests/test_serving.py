"""Serving a classroom from one process: the fair CPU limiter, the session registry, cost and memory bounds,
and their wiring into the app (waiting message, idle pause)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnnviz.serve import serving
from cnnviz.serve.serving import FairLimiter, SessionRegistry, TickCost, live_interval
from cnnviz.train.config import RunConfig, custom_layers, preset_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _wait_for(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


# ----------------------------------------------------------------------------------------------------------
# FairLimiter
# ----------------------------------------------------------------------------------------------------------
def test_never_more_than_slots_at_once():
    lim = FairLimiter(slots=2)
    lock, running, peak = threading.Lock(), [0], [0]

    def worker(k: int) -> None:
        for _ in range(15):
            with lim.slot(f"s{k}", timeout=10) as res:
                assert res.granted
                with lock:
                    running[0] += 1
                    peak[0] = max(peak[0], running[0])
                time.sleep(0.001)
                with lock:
                    running[0] -= 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert peak[0] == 2
    assert lim.stats()["running"] == 0 and lim.granted_total == 8 * 15


def _waiter(lim: FairLimiter, key: str, order: list, timeout: float = 10.0) -> threading.Thread:
    def run() -> None:
        res = lim.acquire(key, timeout)
        if res.granted:
            order.append(key)
            lim.release(key)

    t = threading.Thread(target=run)
    t.start()
    _wait_for(lambda: lim.position(key) is not None or key in order)
    return t


def test_free_slot_goes_to_the_longest_waiting_session():
    lim = FairLimiter(slots=1)
    assert lim.acquire("holder", 0).granted
    order: list[str] = []
    threads = [_waiter(lim, k, order) for k in ("b", "c", "d")]
    assert [lim.position(k) for k in ("b", "c", "d")] == [0, 1, 2]
    lim.release("holder")
    for t in threads:
        t.join(10)
    assert order == ["b", "c", "d"]


def test_a_session_that_gave_up_keeps_its_place_in_line():
    lim = FairLimiter(slots=1)
    assert lim.acquire("holder", 0).granted
    res = lim.acquire("b", 0.01)  # a live tick that could not wait longer
    assert not res.granted and res.ahead == 0
    order: list[str] = []
    tc = _waiter(lim, "c", order)  # c arrives later and waits
    assert lim.position("c") == 1
    tb = _waiter(lim, "b", order)  # b's next tick: still first in line
    lim.release("holder")
    tb.join(10)
    tc.join(10)
    assert order == ["b", "c"]


def test_an_absent_session_does_not_block_the_others():
    lim = FairLimiter(slots=1)
    assert lim.acquire("holder", 0).granted
    assert not lim.acquire("gone", 0.01).granted  # first in line, then its tab closed
    order: list[str] = []
    t = _waiter(lim, "c", order)
    lim.release("holder")
    t.join(10)
    assert order == ["c"]  # the slot went to the session that was actually waiting


def test_stale_places_are_dropped():
    clock = FakeClock()
    lim = FairLimiter(slots=1, stale_after=10.0, clock=clock)
    assert lim.acquire("holder", 0).granted
    assert not lim.acquire("b", 0).granted
    assert lim.position("b") == 0 and lim.stats()["waiting"] == 1
    clock.t += 11
    assert lim.stats()["waiting"] == 0 and lim.position("b") is None
    lim.leave("holder")  # leaving without a place in line is harmless
    lim.release("holder")
    assert lim.stats()["running"] == 0


def test_one_session_never_holds_two_slots():
    lim = FairLimiter(slots=2)
    assert lim.acquire("a", 0).granted
    assert not lim.acquire("a", 0.02).granted  # e.g. a full rerun while its fragment tick trains
    assert lim.acquire("b", 0).granted
    lim.release("a")
    lim.leave("a")
    assert lim.acquire("a", 0.5).granted


def test_sessions_training_continuously_share_slots_fairly():
    lim = FairLimiter(slots=1)
    counts = {f"s{k}": 0 for k in range(4)}
    stop = time.monotonic() + 1.0

    def player(key: str) -> None:
        while time.monotonic() < stop:
            with lim.slot(key, timeout=0.05) as res:  # like a live tick: short waits, keep the place
                if res.granted:
                    counts[key] += 1
                    time.sleep(0.004)

    threads = [threading.Thread(target=player, args=(k,)) for k in counts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert min(counts.values()) > 0
    assert max(counts.values()) <= 1.5 * min(counts.values()) + 2, counts


def test_limiter_rejects_zero_slots_and_reads_environment(monkeypatch):
    with pytest.raises(ValueError, match="at least one slot"):
        FairLimiter(slots=0)
    monkeypatch.setenv("CNNVIZ_TRAIN_SLOTS", "3")
    assert FairLimiter().slots == 3
    monkeypatch.delenv("CNNVIZ_TRAIN_SLOTS")
    assert FairLimiter().slots == max(1, __import__("os").cpu_count() or 1)
    monkeypatch.setenv("CNNVIZ_TRAIN_SLOTS", "many")
    with pytest.raises(ValueError, match="CNNVIZ_TRAIN_SLOTS"):
        serving.default_slots()


# ----------------------------------------------------------------------------------------------------------
# SessionRegistry
# ----------------------------------------------------------------------------------------------------------
def test_registry_pauses_unattended_sessions_and_forgets_old_ones():
    clock = FakeClock()
    reg = SessionRegistry(idle_pause_s=100, forget_after_s=1000, reap_every_s=10, clock=clock)
    reg.interaction("a")
    reg.interaction("b")
    clock.t += 50
    reg.tick("a")  # live ticks are not interactions
    assert not reg.unattended("a")
    clock.t += 60
    assert reg.unattended("a") and reg.unattended("b")
    reg.interaction("a")
    assert not reg.unattended("a") and not reg.unattended("unknown")
    assert reg.counts(window_s=5) == {"known": 2, "active": 1, "training": 0}
    clock.t += 1001
    reg.tick("c")  # triggers the periodic reap
    assert "a" not in reg and "b" not in reg and "c" in reg and len(reg) == 1
    reg.forget("c")
    assert len(reg) == 0


def test_registry_size_is_bounded():
    reg = SessionRegistry(max_sessions=5)
    for k in range(20):
        reg.interaction(f"s{k}")
    assert len(reg) == 5 and "s19" in reg and "s0" not in reg


def test_registry_knows_who_ticked_recently():
    clock = FakeClock()
    reg = SessionRegistry(clock=clock)
    reg.interaction("looker")
    reg.tick("player")
    assert reg.ticked_within("player", 10) and not reg.ticked_within("looker", 10)
    assert not reg.ticked_within("unknown", 10)
    clock.t += 11
    assert not reg.ticked_within("player", 10)


# ----------------------------------------------------------------------------------------------------------
# Fair share of live ticks
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_playing", "expected"), [
    (0, 0.25), (1, 0.25),  # alone: the speed's own interval, whatever a tick costs
    (2, 0.5),  # 2 x 0.15 s / 0.6 core = 0.5 s
    (3, 1.0), (4, 1.0),  # 0.75 s -> 1 s; 1.0 s
    (5, 2.0), (8, 2.0),  # 1.25 s -> 2 s; 2.0 s
    (10, 4.0),  # 2.5 s -> 4 s
    (30, 8.0), (60, 8.0),  # 7.5 s -> 8 s; 15 s: the longest level (the limiter's line does the rest)
])
def test_live_interval_worked_examples(n_playing, expected):
    """Budget on 2 cores: 0.6 of one core (one process); a tick costs 0.15 CPU-s."""
    assert live_interval(n_playing, tick_cost_s=0.15, cores=2) == expected


def test_live_interval_follows_the_measured_cost_and_the_process_capacity():
    assert live_interval(10, tick_cost_s=0.03, cores=2) == 0.5  # 10 x 0.03 / 0.6 = 0.5 s
    assert live_interval(10, tick_cost_s=0.0, cores=2) == 0.25
    assert live_interval(4, tick_cost_s=0.15, cores=16) == 1.0  # more cores do not lift the GIL's one core
    assert live_interval(4, tick_cost_s=0.15, cores=0.5) == 2.0  # half a core: 4 x 0.15 / 0.3 = 2 s
    assert live_interval(4, tick_cost_s=0.15, cores=2, share=0.3) == 2.0


def test_live_interval_never_runs_faster_than_the_sessions_own_speed():
    assert live_interval(1, tick_cost_s=0.15, cores=2, base=0.5) == 0.5  # Slow, alone
    assert live_interval(2, tick_cost_s=0.03, cores=2, base=0.5) == 0.5  # 0.1 s would fit; Slow stays 0.5
    assert live_interval(10, tick_cost_s=0.04, cores=2, base=0.5) == 1.0  # 0.67 s -> 1 s
    assert live_interval(3, tick_cost_s=0.1, cores=2, base=3.0) == 4.0  # an unusual base: the next level up
    assert live_interval(3, tick_cost_s=0.1, cores=2, base=9.0) == 9.0  # beyond every level: the base


def test_live_interval_slows_at_once_but_speeds_up_only_with_room_to_spare():
    cost = {"tick_cost_s": 0.15, "cores": 2}
    assert live_interval(10, current=1.0, **cost) == 4.0  # more players: slower at once
    assert live_interval(7, current=4.0, **cost) == 4.0  # 2 s would fit (1.75 s), but not within 75 %
    assert live_interval(5, current=4.0, **cost) == 2.0  # 1.25 s / 0.75 = 1.67 s: 2 s fits with room
    assert live_interval(1, current=4.0, **cost) == 0.25  # alone again: the speed's own interval
    assert live_interval(4, current=2.0, **cost) == 2.0  # 1 s fits exactly, not with room: stays at 2 s
    assert live_interval(3, current=2.0, **cost) == 1.0  # 0.75 s / 0.75 = 1 s


def test_tick_cost_is_a_moving_average_that_ignores_nonsense():
    cost = TickCost(initial_s=0.15, alpha=0.5)
    assert cost.seconds == pytest.approx(0.15) and cost.samples == 0
    cost.add(0.25)
    assert cost.seconds == pytest.approx(0.2)
    cost.add(0.2)
    assert cost.seconds == pytest.approx(0.2) and cost.samples == 2
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        cost.add(bad)
    assert cost.seconds == pytest.approx(0.2) and cost.samples == 2


# ----------------------------------------------------------------------------------------------------------
# Compute cost
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["tutorial", "classroom", "deeper"])
def test_every_preset_at_every_offered_batch_size_fits_the_server(preset):
    for batch in (0, 8, 64, 256, 512):
        try:
            cfg = preset_config(preset, batch_size=batch)
        except ValueError:
            continue  # refused already by the config's memory limit
        cost = serving.check_server_cost(cfg)
        assert cost["step_gflop"] <= serving.SERVER_LIMITS["step_gflop"]


def test_costly_custom_networks_are_refused_with_a_clear_message():
    layers = custom_layers(n_conv=3, filters=32, kernel=9, padding=4)
    cfg = RunConfig.from_dict({"preset": "custom", "layers": layers, "batch_size": 64})  # memory allows it
    with pytest.raises(ValueError, match=r"GFLOP.*smaller batch size"):
        serving.check_server_cost(cfg)
    small = RunConfig.from_dict({"preset": "custom", "layers": layers, "batch_size": 1})
    with pytest.raises(ValueError, match="validation images"):
        serving.check_server_cost(small)


def test_forward_flops_counts_the_classroom_network():
    cfg = preset_config("classroom")
    conv = 2 * 8 * 25 * 24 * 24
    dense = 2 * 1152 * 10
    elementwise = 8 * 24 * 24 + 8 * 12 * 12 + 1152
    assert serving.forward_flops(cfg.layers) == conv + dense + elementwise


# ----------------------------------------------------------------------------------------------------------
# Memory of a session
# ----------------------------------------------------------------------------------------------------------
def test_private_nbytes_splits_shared_read_only_arrays():
    shared = np.zeros((100, 100), dtype=np.float32)
    shared.flags.writeable = False
    own = np.ones(1000, dtype=np.float32)
    state = {"a": own, "b": [own[:10], shared], "c": {"d": shared[5:]}}
    n = serving.private_nbytes(state)
    assert n == {"private": 4000, "shared": 40000, "arrays": 2}


def test_session_memory_stays_bounded_while_training(monkeypatch):
    """History and snapshots are capped by the trainer: a session's private arrays stop growing."""
    from cnnviz.train import trainer as T
    from cnnviz.train.data import load_dataset

    monkeypatch.setattr(T, "HISTORY_CAP", 60)
    monkeypatch.setattr(T, "SNAPSHOT_CAP", 12)
    monkeypatch.setattr(T, "SNAPSHOT_DENSE_STEPS", 5)
    cfg = preset_config("classroom", train_size=200, batch_size=8, val_every=1000)
    ds = load_dataset(cfg.task, cfg.train_size)
    for a in (ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        a.flags.writeable = False  # as resources.dataset shares them
    tr = T.Trainer(cfg, ds)
    tr.run(100)
    n1 = serving.private_nbytes(tr)
    tr.run(300)
    n2 = serving.private_nbytes(tr)
    assert len(tr.history) <= 60 and len(tr.snapshots) <= 13
    assert n2["private"] <= n1["private"] * 1.1, (n1, n2)
    assert n2["shared"] >= ds.x_train.nbytes  # the dataset is referenced, not copied
    assert n2["private"] < 8 * 2**20


def test_rss_is_measured():
    assert serving.rss_bytes() > 10 * 2**20


# ----------------------------------------------------------------------------------------------------------
# In the app
# ----------------------------------------------------------------------------------------------------------
def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=60)


def test_a_session_waiting_for_a_slot_says_so_and_trains_when_free(monkeypatch):
    from cnnviz.ui import session_guard

    monkeypatch.setattr(session_guard, "LIVE_WAIT_S", 0.3)
    at = _app().run()
    assert not at.exception
    limiter = session_guard.server().limiter
    held = [f"other-{k}" for k in range(limiter.slots)]
    for k in held:
        assert limiter.acquire(k, 5).granted
    try:
        at.session_state["cnnviz"].playing = True
        at.run()  # the fragment's tick: no slot comes free
        assert not at.exception
        captions = " ".join(c.value for c in at.caption)
        assert "Waiting for a free CPU slot" in captions
        assert at.session_state["cnnviz"].trainer.step_count == 0
    finally:
        for k in held:
            limiter.release(k)
    at.run()
    assert at.session_state["cnnviz"].trainer.step_count > 0
    assert "Training live" in " ".join(c.value for c in at.caption)


def test_a_session_left_playing_unattended_is_paused(monkeypatch):
    from cnnviz.ui import session_guard

    at = _app().run()
    reg = session_guard.server().registry
    monkeypatch.setattr(reg, "idle_pause_s", 0.0)
    at.session_state["cnnviz"].playing = True
    time.sleep(0.01)
    at.run()
    assert not at.exception
    assert at.session_state["cnnviz"].playing is False
    assert at.session_state["cnnviz"].trainer.step_count == 0
    assert any("paused" in s.value for s in at.success)


def test_a_closed_session_leaves_nothing_behind():
    """When Streamlit drops a session, its model can be freed: nothing server-wide holds a reference, no
    slot stays taken, and the registry keeps only timestamps under a random key until it is reaped."""
    import gc
    import weakref

    from cnnviz.ui import session_guard, state

    at = _app().run()
    at.button(key="btn_step").click().run()
    at.session_state["cnnviz"].playing = True
    at.run()  # a live tick: it took (and gave back) a slot
    trainer = weakref.ref(at.session_state["cnnviz"].trainer)
    key = at.session_state["_session_key"]
    token = at.session_state["cnnviz"].token
    srv = session_guard.server()
    assert key in srv.registry and not srv.limiter.holds(key)
    del at
    gc.collect()
    # the reload store (bounded, time-limited) is the one server-side holder, by design: once it lets the
    # session go (expiry or eviction), nothing else keeps the model alive
    kept = state.store()
    assert token in kept and trainer() is not None
    kept.forget(token)
    gc.collect()
    assert trainer() is None, "something outside the session still holds its Trainer"
    assert srv.limiter.position(key) is None and not srv.limiter.holds(key)
    srv.registry.forget(key)
    assert key not in srv.registry


def test_many_players_slow_the_redraws_and_the_page_says_so(monkeypatch):
    """With nine other sessions ticking, a tick costing 0.15 s and 2 cores, this session's timer gets 4 s
    (10 x 0.15 / 0.6 = 2.5 s) and its status line tells the student why; alone, it keeps 0.25 s."""
    from cnnviz.ui import session_guard, train

    monkeypatch.setattr(session_guard.os, "cpu_count", lambda: 2)
    at = _app().run()
    srv = session_guard.server()
    monkeypatch.setattr(srv, "tick_cost", TickCost(initial_s=0.15, alpha=0.0))  # alpha 0: stays 0.15
    monkeypatch.setattr(srv, "registry", SessionRegistry())  # no sessions of earlier tests
    at.session_state["cnnviz"].playing = True
    at.run()
    assert at.session_state["cnnviz"].caches[train.INTERVAL_CACHE] == 0.25
    assert "redraws every" not in " ".join(c.value for c in at.caption)
    for k in range(9):
        srv.registry.tick(f"player-{k}")
    at.run()  # a full run: the fragment is registered with the class's interval
    assert not at.exception
    assert at.session_state["cnnviz"].caches[train.INTERVAL_CACHE] == 4.0
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert "redraws every 4 s instead of every 0.25 s" in captions, captions

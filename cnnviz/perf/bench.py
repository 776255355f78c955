"""Benchmarks: `python -m cnnviz bench` (or `python -m cnnviz.perf.bench`).

From one run it prints a table of per-step times (full forward + loss + backward on the batch passed in,
nothing cached across steps) for the tutorial network on 200 images -- the tutorial's own Python loops,
cnnviz and PyTorch CPU (when importable; a measurement tool only, never a dependency) -- the classroom
preset at batch 64 and 256, single-image predict latency, and the peak memory added by one training step
of the tutorial net on 5,000 images in one batch (each library in a fresh subprocess, measured the same
way: resident-set high-water mark). Times are medians, and best-of-N, of samples taken in alternating
blocks after warm-up, so that load from other processes hits every library alike; compare numbers from the
same run only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnviz.nn.network import PRESET_LAYERS, PRESET_LOSS, build
from cnnviz.perf.blas import AVX512_KERNELS, openblas_kernels
from cnnviz.perf.parallel import ParallelStep

TARGETS = {  # the targets: cnnviz / PyTorch time ratios, and the speed-up over the loops
    "tutorial200": 1.5,
    "classroom64": 1.0,
    "speedup_vs_loops": 1000.0,
    "predict_ms": 0.1,
    "memory_ratio": 1.0,
}


# ----------------------------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------------------------
def _n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _import_torch():
    """torch, or None when it is not installed (the bench then says so)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def environment(torch=None) -> dict:
    """Machine, versions and BLAS threading (threadpoolctl when installed) for the table's header."""
    info = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": _n_cores(),
        "loadavg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "blas_kernels": openblas_kernels(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "blas": None,
        "torch": None,
        "torch_threads": None,
    }
    try:
        import threadpoolctl

        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        pass
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


# ----------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------
def time_interleaved(fns: dict[str, Callable[[], object]], repeat: int, warmup: int, block: int = 5,
                     gap_s: float = 0.15, min_sample_s: float = 0.002) -> dict[str, dict]:
    """Time several functions in alternating blocks: per function the median (and min) seconds per call.

    Each function first runs ``warmup`` times; then rounds of ``block`` samples of each function in turn
    until every one has ``repeat`` samples, a sample being ``number`` back-to-back calls (``number`` set so a
    sample lasts about ``min_sample_s``). Alternating spreads other processes' load over the contenders;
    the ``gap_s`` pause before each block lets the previous library's worker threads (OpenBLAS, OpenMP),
    which spin for a while after their last job, go to sleep so they do not steal the next one's cores.
    """
    numbers = {}
    for name, fn in fns.items():
        time.sleep(gap_s)
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        numbers[name] = max(1, int(min_sample_s / max(dt, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc.collect()
    while any(len(s) < repeat for s in samples.values()):
        for name, fn in fns.items():
            if len(fns) > 1:
                time.sleep(gap_s)
            n = numbers[name]
            fn()  # re-warm caches after the pause
            for _ in range(min(block, repeat - len(samples[name]))):
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                samples[name].append((time.perf_counter() - t0) / n)
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "repeat": repeat,
                   "number": numbers[name]} for name, s in samples.items()}


# ----------------------------------------------------------------------------------------------------------
# Workloads
# ----------------------------------------------------------------------------------------------------------
def load_data(n_max: int = 5000) -> tuple[np.ndarray, np.ndarray, str]:
    """Images (N, 1, 28, 28) float32 in [0, 1] and digit labels (N,) int64 from the shipped subset, in the
    stratified training order (then the validation images); random data if the subset is missing."""
    try:
        from cnnviz.train.data import fixed_split, load_subset, to_input

        images, labels = load_subset()
        train_idx, val_idx = fixed_split(labels)
        order = np.concatenate([train_idx, val_idx])[:n_max]
        return to_input(images[order]), labels[order].astype(np.int64), "shipped MNIST subset"
    except (FileNotFoundError, ValueError, ImportError):
        rng = np.random.default_rng(0)
        x = rng.random((n_max, 1, 28, 28), dtype=np.float32)
        return x, rng.integers(0, 10, n_max), "random data (assets/mnist_5k.npz missing)"


def _targets(preset: str, labels: np.ndarray) -> np.ndarray:
    """The preset's loss targets: float (N, 1) for the tutorial's MSE on digit > 4, int labels otherwise."""
    if preset == "tutorial":
        return (labels > 4).astype(np.float32)[:, None]  # (N, 1)
    return labels


def cnnviz_step_fn(preset: str, x: np.ndarray, labels: np.ndarray, parallel=None) -> Callable[[], float]:
    """One cnnviz training step on (x, labels): forward, loss, backward (no update, as for PyTorch); split
    over the processes of ``parallel`` (a ``ParallelStep`` for this preset) when given."""
    from cnnviz.nn.losses import get_loss

    net = build(preset, rng=np.random.default_rng(0))
    loss = get_loss(PRESET_LOSS[preset])
    t = _targets(preset, labels)
    if parallel is not None:
        return lambda: parallel.step(net, loss, x, t)[0]

    def step() -> float:
        value = loss.forward(net.forward(x), t)
        net.backward(loss.backward())
        return value

    return step


def cnnviz_predict_fn(preset: str, x: np.ndarray) -> Callable[[], np.ndarray]:
    net = build(preset, rng=np.random.default_rng(0))
    return lambda: net.predict_proba(x)


def _torch_model(torch, preset: str):
    nn = torch.nn
    if preset == "tutorial":
        return nn.Sequential(nn.Conv2d(1, 3, 5), nn.Sigmoid(), nn.Flatten(), nn.Linear(1728, 1),
                             nn.Sigmoid())
    if preset == "classroom":
        return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(1152, 10))
    raise ValueError(f"no PyTorch model for preset {preset!r}")


def torch_step_fn(torch, preset: str, x: np.ndarray, labels: np.ndarray) -> Callable[[], float]:
    """The same step in PyTorch: conv, activation(s), linear, loss (the tutorial's MSE E = mean (y-O)^2/2, or
    cross-entropy), backward; gradients reset to None each step, the input needs no gradient."""
    model = _torch_model(torch, preset)
    params = list(model.parameters())
    xt = torch.from_numpy(np.ascontiguousarray(x))
    if preset == "tutorial":
        yt = torch.from_numpy(_targets(preset, labels))

        def loss_fn(out):
            return 0.5 * ((out - yt) ** 2).sum(dim=1).mean()
    else:
        yt = torch.from_numpy(np.asarray(labels, dtype=np.int64))

        def loss_fn(out):
            return torch.nn.functional.cross_entropy(out, yt)

    def step() -> float:
        for p in params:
            p.grad = None
        loss = loss_fn(model(xt))
        loss.backward()
        return float(loss.detach())

    return step


def torch_predict_fn(torch, preset: str, x: np.ndarray) -> Callable[[], object]:
    model = _torch_model(torch, preset).eval()
    xt = torch.from_numpy(np.ascontiguousarray(x))
    final_sigmoid = preset == "tutorial"

    def predict():
        with torch.no_grad():
            out = model(xt)
            return out if final_sigmoid else torch.softmax(out, dim=1)

    return predict


def time_tutorial_loops(x: np.ndarray, labels: np.ndarray, n_images: int, repeat: int) -> dict:
    """The tutorial's own loop step on ``n_images`` images, scaled linearly to 200 images.

    As in the tutorial, the patches are built once before training (timed separately, also scaled); the
    step is its loop forward, loss and loop backward (``cnnviz.nn.tutorial.tutorial_step``).
    """
    from cnnviz.nn import tutorial as T

    params = T.init_params(np.random.default_rng(0))
    X = T.to_tutorial_layout(x[:n_images])  # (28, 28, n)
    y = (labels[:n_images] > 4).astype(np.float64)
    t0 = time.perf_counter()
    patches = T.extract_patches(X)
    t_patch = time.perf_counter() - t0
    steps = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        T.tutorial_step(X, y, params, new_image=patches)
        steps.append(time.perf_counter() - t0)
    scale = 200 / n_images
    return {"median_s": statistics.median(steps) * scale, "min_s": min(steps) * scale, "repeat": repeat,
            "n_images_timed": n_images, "scale": scale, "patches_s": t_patch * scale}


# ----------------------------------------------------------------------------------------------------------
# Memory (each library in its own subprocess, measured the same way)
# ----------------------------------------------------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(lib: str, n_images: int) -> dict:
    """In a fresh process: peak RSS added by one tutorial-net training step on ``n_images`` images.

    Imports the library, loads the data and builds the net, runs a small warm-up step, then resets the
    high-water mark and reads it again after the big step: added = VmHWM - RSS before the step.
    For cnnviz, tracemalloc's peak of the step (NumPy reports its buffers to it) is given too.
    """
    x, labels, _ = load_data(n_images)
    torch = None
    if lib == "torch":
        torch = _import_torch()
        if torch is None:
            return {"error": "PyTorch not installed"}
        torch.set_num_threads(_n_cores())
        step = torch_step_fn(torch, "tutorial", x, labels)
        torch_step_fn(torch, "tutorial", x[:8], labels[:8])()  # warm-up: load kernels, thread pool
    else:
        step = cnnviz_step_fn("tutorial", x, labels)
        cnnviz_step_fn("tutorial", x[:8], labels[:8])()
    gc.collect()
    before = _proc_status_kib("VmRSS")
    exact = _reset_peak_rss()
    result: dict = {"lib": lib, "n_images": int(len(x)), "peak_reset": exact}
    if lib == "cnnviz":
        import tracemalloc

        tracemalloc.start()
        step()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["tracemalloc_peak_mib"] = peak / 2**20
        gc.collect()
        before = _proc_status_kib("VmRSS")  # tracemalloc's own tables are not the step's memory
        exact = _reset_peak_rss()
        result["peak_reset"] = exact
    step()
    hwm = _proc_status_kib("VmHWM")
    if before is None or hwm is None:
        result["error"] = "no /proc/self/status on this system"
        return result
    result["rss_before_mib"] = before / 1024
    result["rss_peak_mib"] = hwm / 1024
    result["added_mib"] = max(0.0, (hwm - before) / 1024)
    return result


def measure_memory(lib: str, n_images: int, timeout: float = 300) -> dict:
    """Run ``memory_child`` in a subprocess (fresh interpreter) and return its JSON result."""
    code = (f"import json; from cnnviz.perf.bench import memory_child; "
            f"print(json.dumps(memory_child({lib!r}, {int(n_images)})))")
    root = str(Path(__file__).resolve().parents[2])  # the project folder, so the child imports this cnnviz
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                             env=env, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------
def run(quick: bool = False, repeat: int | None = None, warmup: int | None = None,
        loop_images: int | None = None, loop_repeat: int | None = None, memory_images: int | None = None,
        use_torch: bool = True, memory: bool = True, threads: int | None = None) -> dict:
    """Run every benchmark once; returns a JSON-able dict (``format_table`` prints it).

    Defaults: 30 timed samples after 5 warm-up calls, the loops on all 200 images 3 times, memory on 5,000
    images, threads = the cores; ``quick`` uses 4 samples, the loops on 4 images (scaled) and 300 images
    for memory, for a smoke run.
    """
    repeat = repeat or (4 if quick else 30)
    warmup = warmup if warmup is not None else (1 if quick else 5)
    loop_images = loop_images or (4 if quick else 200)
    loop_repeat = loop_repeat or (1 if quick else 3)
    memory_images = memory_images or (300 if quick else 5000)
    threads = threads or _n_cores()
    torch = _import_torch() if use_torch else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    args = (quick, repeat, warmup, loop_images, loop_repeat, memory_images, torch, use_torch, memory, threads)
    if threadpool_limits is not None:
        with threadpool_limits(limits=threads, user_api="blas"):
            return _run(*args)
    return _run(*args)


def _run(quick, repeat, warmup, loop_images, loop_repeat, memory_images, torch, use_torch, memory,  # noqa: C901
         threads) -> dict:
    gap = 0.02 if quick else 0.15  # pause before each timed block (see time_interleaved)
    x_all, labels_all, source = load_data(256)  # the memory child loads its own
    env = environment(torch)
    env["data"] = source
    env["threads"] = threads
    env["torch_skipped"] = torch is None and not use_torch
    rows: list[dict] = []

    def add(case: str, unit: str, timings: dict[str, dict], target_key: str | None, target_text: str):
        row = {"case": case, "unit": unit, "target_key": target_key, "target": target_text}
        for lib in ("loops", "cnnviz", "torch"):
            row[lib] = timings[lib]["median_s"] * 1e3 if lib in timings else None
        row["ratio"] = row["cnnviz"] / row["torch"] if row["cnnviz"] and row["torch"] else None
        row["timings"] = timings
        rows.append(row)

    # tutorial net, 200 images: split over one process per core (as PyTorch uses a thread per core), and
    # in one process
    x, lab = x_all[:200], labels_all[:200]
    with ParallelStep(PRESET_LAYERS["tutorial"], PRESET_LOSS["tutorial"], workers=threads) as parallel:
        fns = {"cnnviz": cnnviz_step_fn("tutorial", x, lab, parallel)}
        if threads > 1:
            fns["cnnviz_one"] = cnnviz_step_fn("tutorial", x, lab)
        if torch is not None:
            fns["torch"] = torch_step_fn(torch, "tutorial", x, lab)
        timings = time_interleaved(fns, repeat, warmup, gap_s=gap)
    timings["loops"] = time_tutorial_loops(x, lab, loop_images, loop_repeat)
    one = timings.pop("cnnviz_one", timings["cnnviz"])
    add("tutorial net, 200 images: train step", "ms", timings, "tutorial200", "<= 1.5")
    if threads > 1:
        add("  the same, cnnviz in one process", "ms", {**timings, "cnnviz": one}, None, "")

    # classroom preset, batch 64 and 256
    for batch, key, target in ((64, "classroom64", "<= 1.0"), (256, None, "")):
        x, lab = x_all[:batch], labels_all[:batch]
        fns = {"cnnviz": cnnviz_step_fn("classroom", x, lab)}
        if torch is not None:
            fns["torch"] = torch_step_fn(torch, "classroom", x, lab)
        add(f"classroom, batch {batch}: train step", "ms", time_interleaved(fns, repeat, warmup, gap_s=gap),
            key, target)

    # single-image predict latency
    for preset in ("classroom", "tutorial"):
        x1 = np.ascontiguousarray(x_all[:1])
        fns = {"cnnviz": cnnviz_predict_fn(preset, x1)}
        if torch is not None:
            fns["torch"] = torch_predict_fn(torch, preset, x1)
        add(f"{preset}: predict 1 image", "ms", time_interleaved(fns, repeat, warmup, gap_s=gap),
            "predict_ms" if preset == "classroom" else None, "< 0.1 ms" if preset == "classroom" else "")

    mem = None
    if memory:
        mem = {"n_images": memory_images, "cnnviz": measure_memory("cnnviz", memory_images)}
        mem["torch"] = (measure_memory("torch", memory_images) if torch is not None
                        else {"error": "PyTorch not installed" if use_torch else "skipped (--no-torch)"})

    by_key = {r["target_key"]: r for r in rows if r["target_key"]}
    tut, cls = by_key["tutorial200"], by_key["classroom64"]
    loops, cnn = tut["loops"], tut["cnnviz"]
    lt = tut["timings"]["loops"]
    def best_ratio(row: dict, a: str, b: str) -> float | None:
        t = row["timings"]
        return t[a]["min_s"] / t[b]["min_s"] if a in t and b in t else None

    summary = {"speedup_vs_loops": loops / cnn if loops and cnn else None,
               "speedup_vs_loops_best": best_ratio(tut, "loops", "cnnviz"),
               "speedup_vs_loops_one_process": loops / one["median_s"] / 1e3 if loops else None,
               "tutorial200_ratio": tut["ratio"], "classroom64_ratio": cls["ratio"],
               "tutorial200_ratio_best": best_ratio(tut, "cnnviz", "torch"),
               "classroom64_ratio_best": best_ratio(cls, "cnnviz", "torch"),
               "predict_ms": by_key["predict_ms"]["cnnviz"]}
    if mem and "added_mib" in mem["cnnviz"] and "added_mib" in mem["torch"] and mem["torch"]["added_mib"] > 0:
        summary["memory_ratio"] = mem["cnnviz"]["added_mib"] / mem["torch"]["added_mib"]
    return {"environment": env, "quick": quick, "repeat": repeat, "warmup": warmup, "rows": rows,
            "memory": mem, "summary": summary, "targets": dict(TARGETS),
            "loops_note": (f"tutorial loops: timed on {lt['n_images_timed']} image(s), {loop_repeat} "
                           f"repetition(s), scaled x{lt['scale']:g} to 200 images (its cost is linear in the "
                           "images); patches built once before the step as the tutorial does (patch "
                           f"extraction: {lt['patches_s'] * 1e3:.0f} ms per 200 images, not counted)")}


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _verdict(value: float | None, limit: float, below: bool = True) -> str:
    if value is None:
        return ""
    ok = value <= limit if below else value >= limit
    return "met" if ok else "NOT met"


def format_table(res: dict) -> str:
    """The human-readable report of ``run``'s result."""
    return "\n".join(_header_lines(res) + _timing_lines(res) + _memory_lines(res) + _summary_lines(res))


def _header_lines(res: dict) -> list[str]:
    """Machine, versions, BLAS, PyTorch and the notes on kernels, processes and load."""
    env = res["environment"]
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
                     for b in env["blas"] or []) or "unknown (threadpoolctl not installed)"
    if env["torch"]:
        torch_line = f"PyTorch {env['torch']} CPU, {env['torch_threads']} threads"
    elif env.get("torch_skipped"):
        torch_line = "PyTorch skipped (--no-torch)"
    else:
        torch_line = "PyTorch not installed (pip install torch==2.13.0 to compare)"
    lines = [
        f"cnnviz bench  {env['date_utc']}"
        + ("  [--quick: few repeats, small samples]" if res["quick"] else ""),
        f"machine: {env['machine']}, {env['cores']} cores, load average {env['loadavg']}; "
        f"Python {env['python']}; NumPy {env['numpy']}",
        f"BLAS: {blas}; kernels {env['blas_kernels'] or 'unknown'}; OPENBLAS_CORETYPE="
        f"{env['OPENBLAS_CORETYPE']}; OMP_NUM_THREADS={env['OMP_NUM_THREADS']}",
        torch_line,
        f"data: {env['data']}. Times: median of {res['repeat']} samples (alternating blocks) after "
        f"{res['warmup']} warm-up calls; a train step is a full forward + loss + backward on the batch "
        "passed in, nothing cached.",
    ]
    core = env["OPENBLAS_CORETYPE"]
    if core and core.lower() not in AVX512_KERNELS:
        lines.append(f"OPENBLAS_CORETYPE={core} pins OpenBLAS's kernels; on a CPU with AVX-512 its own "
                     "choice runs cnnviz faster. To compare: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
                     "python -m cnnviz bench")
    if env["threads"] > 1:
        lines.append(f"cnnviz splits the tutorial net's batch over {env['threads']} processes "
                     "(perf.parallel; PyTorch gets as many threads); the next row shows it in one process.")
    load = (env.get("loadavg") or [0])[0]
    if load > env["cores"]:
        lines.append(f"WARNING: the machine is busy (load {load:.1f} on {env['cores']} cores): medians "
                     "include waiting for a CPU, multi-threaded libraries suffer most; the best-of-N table "
                     "shows the least disturbed samples. Compare within this run only; try --threads 1.")
    return lines


def _timing_lines(res: dict) -> list[str]:
    """The two tables: medians and best-of-N, one row per case."""
    lines: list[str] = []
    for stat, title in (("median_s", f"median of {res['repeat']}"), ("min_s", f"best of {res['repeat']}")):
        lines += ["", f"{title} (loops: of their repetitions)",
                  f"{'case':40s} {'tutorial loops':>15s} {'cnnviz':>10s} {'PyTorch':>10s} "
                  f"{'cnnviz/PyTorch':>15s} {'target':>9s}"]
        lines += [_timing_row(r, stat) for r in res["rows"]]
    return lines


def _timing_row(r: dict, stat: str) -> str:
    t = {lib: (r["timings"][lib][stat] * 1e3 if lib in r["timings"] else None)
         for lib in ("loops", "cnnviz", "torch")}
    ratio = t["cnnviz"] / t["torch"] if t["cnnviz"] and t["torch"] else None
    verdict = ""
    if r["target_key"] in ("tutorial200", "classroom64") and ratio is not None:
        verdict = " " + _verdict(ratio, TARGETS[r["target_key"]])
    elif r["target_key"] == "predict_ms":
        verdict = " " + _verdict(t["cnnviz"], TARGETS["predict_ms"])
    loops = (_fmt(t["loops"]) + " *") if t["loops"] is not None else "-"
    return (f"{r['case'] + ' (' + r['unit'] + ')':40s} {loops:>15s} {_fmt(t['cnnviz']):>10s} "
            f"{_fmt(t['torch']):>10s} {_fmt(ratio):>15s} {r['target']:>9s}{verdict}")


def _memory_lines(res: dict) -> list[str]:
    mem = res["memory"]
    if not mem:
        return []

    def mem_text(m: dict) -> str:
        if "error" in m:
            return m["error"]
        text = f"+{m['added_mib']:.0f} MiB (peak RSS {m['rss_peak_mib']:.0f} MiB)"
        if "tracemalloc_peak_mib" in m:
            text += f", tracemalloc peak {m['tracemalloc_peak_mib']:.0f} MiB"
        return text + ("" if m.get("peak_reset") else " [peak not resettable: approximate]")

    return ["", f"peak memory added by one tutorial-net train step on {mem['n_images']} images in one "
            "batch (fresh subprocess each, resident-set high-water mark):",
            f"  cnnviz:  {mem_text(mem['cnnviz'])}", f"  PyTorch: {mem_text(mem['torch'])}"]


def _summary_lines(res: dict) -> list[str]:
    s = res["summary"]
    lines = ["", "* " + res["loops_note"], "", "Summary (medians; best-of-N in brackets):"]
    if s["speedup_vs_loops"]:
        lines.append(f"cnnviz vs the tutorial's loops: {s['speedup_vs_loops']:,.0f}x faster "
                     f"[{s['speedup_vs_loops_best']:,.0f}x] (target >= {TARGETS['speedup_vs_loops']:,.0f}x: "
                     f"{_verdict(s['speedup_vs_loops'], TARGETS['speedup_vs_loops'], below=False)})")
        if s.get("speedup_vs_loops_one_process") and res["environment"]["threads"] > 1:
            lines.append(f"  in one process: {s['speedup_vs_loops_one_process']:,.0f}x")
    for key, label, verdict_key in (("tutorial200_ratio", "tutorial net on 200 images", "tutorial200"),
                                    ("classroom64_ratio", "classroom at batch 64", "classroom64"),
                                    ("memory_ratio", "memory added by the step", "memory_ratio")):
        if s.get(key) is not None:
            limit = TARGETS[verdict_key]
            best = f" [{s[key + '_best']:.2f}]" if s.get(key + "_best") is not None else ""
            lines.append(f"cnnviz / PyTorch, {label}: {s[key]:.2f}{best} (target <= {limit}: "
                         f"{_verdict(s[key], limit)})")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m cnnviz bench [--quick] [--repeat N] [--json] ...``."""
    p = argparse.ArgumentParser(
        prog="cnnviz bench",
        description="Per-step time, predict latency and peak memory: the tutorial's loops vs cnnviz vs "
                    "PyTorch CPU (when installed), from one run. Compare numbers within one run only.")
    p.add_argument("--quick", action="store_true", help="few repeats and small samples (a smoke run, ~10 s)")
    p.add_argument("--repeat", type=int, default=None, help="timed samples per case (default 30, quick 4)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per case (default 5, quick 1)")
    p.add_argument("--loop-images", type=int, default=None,
                   help="images the tutorial's loops are timed on, scaled to 200 (default 200, quick 4)")
    p.add_argument("--memory-images", type=int, default=None,
                   help="batch for the memory measurement (default 5000, quick 300)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for PyTorch and NumPy's BLAS (the latter only when threadpoolctl is "
                        "installed) (default: the cores)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    args = p.parse_args(argv)
    for name in ("repeat", "loop_images", "memory_images", "threads"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.loop_images is not None and args.loop_images > 200:
        p.error("--loop-images must be at most 200")
    res = run(quick=args.quick, repeat=args.repeat, warmup=args.warmup, loop_images=args.loop_images,
              memory_images=args.memory_images, use_torch=not args.no_torch, memory=not args.no_memory,
              threads=args.threads)
    if args.json:
        print(json.dumps(res, indent=2, default=float))
    else:
        print(format_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

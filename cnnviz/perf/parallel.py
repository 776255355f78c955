"""Data-parallel training steps: one minibatch split across worker processes.

``ParallelStep(spec, loss_name, workers=2)`` starts ``workers - 1`` helper processes, each with its own copy
of the network. ``step(net, loss_fn, x, t)`` gives every process a slice of the batch: this process runs
forward, loss and backward on the first slice while the helpers run theirs; then the gradients and losses
are combined, weighted by slice size. Every loss here is a mean over the batch, so the weighted sum is
exactly the full batch's loss and gradient (up to float rounding).

Why processes and not threads: each slice is about a hundred small NumPy calls, and two threads hand the
GIL to each other at every one of them, so threads gain less than processes (docs/performance.md).

Weights, inputs, targets, gradients and outputs pass through one shared-memory block per helper; a pipe
carries a few bytes per step. The helpers never update weights: they read the caller's weights each step.
Used by the command line (``train --workers``) and the benchmark; the app keeps one process per session.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import struct
import sys
import time
import traceback
import types
import weakref
from multiprocessing import shared_memory

import numpy as np

from cnnviz.nn.losses import Loss, get_loss
from cnnviz.nn.network import Network, from_spec, infer_shapes, validate_spec

__all__ = ["ParallelStep"]

MIN_SLICE = 32  # a batch gives each helper a slice of at least this many images, or runs in one process
SPIN_S = 0.002  # how long a waiting process polls before it sleeps


def _layout(n_params: int, n_rows: int, x_shape: tuple, t_shape: tuple, t_dtype: str, out_shape: tuple):
    """(offset, shape, dtype) of each region of one helper's shared block, and the block's size in bytes."""
    regions, offset = {}, 0
    for name, shape, dtype in (("params", (n_params,), "float32"), ("grads", (n_params,), "float32"),
                               ("x", (n_rows, *x_shape), "float32"), ("t", (n_rows, *t_shape), t_dtype),
                               ("out", (n_rows, *out_shape), "float32")):
        regions[name] = (offset, shape, dtype)
        offset += int(np.prod(shape)) * np.dtype(dtype).itemsize
        offset += -offset % 64  # cache-line aligned
    return regions, offset


def _views(buf, regions) -> dict[str, np.ndarray]:
    return {name: np.ndarray(shape, dtype=dtype, buffer=buf, offset=off)
            for name, (off, shape, dtype) in regions.items()}


def _worker_main(conn, spec: list[dict], loss_name: str) -> None:
    """A helper's loop: (re)attach to a shared block on "C", run one slice on "S", stop on "Q" or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it then closes us
    net, loss_fn = from_spec(spec), get_loss(loss_name)
    shm, arrays = None, None
    conn.send_bytes(b"R")
    while True:
        try:
            msg = _wait(conn)
        except EOFError:
            break
        kind = msg[:1]
        try:
            if kind == b"Q":
                break
            if kind == b"C":
                if shm is not None:
                    arrays = None
                    shm.close()
                name, regions = _decode_layout(msg[1:])
                shm = shared_memory.SharedMemory(name=name)
                arrays = _views(shm.buf, regions)
                start = 0
                for layer in net.layers:  # the weights are views of the shared block, written by the caller
                    for key, p in list(layer.params.items()):
                        layer.params[key] = arrays["params"][start:start + p.size].reshape(p.shape)
                        start += p.size
                conn.send_bytes(b"R")
                continue
            n, total = struct.unpack("<qq", msg[1:17])
            value, out = _run_slice(net, loss_fn, arrays["x"][:n], arrays["t"][:n], n / total)
            arrays["out"][:n] = out
            start = 0
            for _, g in net.named_grads():
                arrays["grads"][start:start + g.size] = g.ravel()
                start += g.size
            conn.send_bytes(b"D" + struct.pack("<d", value))
        except Exception:  # noqa: BLE001 -- reported to the caller, who raises it
            conn.send_bytes(b"E" + traceback.format_exc().encode())
    arrays = None
    net = None
    if shm is not None:
        shm.close()


def _encode_layout(name: str, regions: dict) -> bytes:
    parts = [name] + [f"{key}:{off}:{','.join(map(str, shape))}:{dtype}"
                      for key, (off, shape, dtype) in regions.items()]
    return ";".join(parts).encode()


def _decode_layout(data: bytes):
    """Decode ``_encode_layout`` (plain text, never pickle)."""
    name, *parts = data.decode().split(";")
    regions = {}
    for part in parts:
        key, off, shape, dtype = part.split(":")
        regions[key] = (int(off), tuple(int(s) for s in shape.split(",") if s), dtype)
    return name, regions


class ParallelStep:
    """Forward, loss and backward of a minibatch split over ``workers`` processes (this one included).

    ``step`` fills ``net``'s gradients exactly as ``net.forward``, ``loss_fn.forward`` and ``net.backward``
    on the whole batch would (up to float rounding) and returns (loss, outputs (N, K)). ``net.outputs``
    then holds only the first slice's activations. Close it (or use ``with``) to stop the helpers.
    """

    def __init__(self, spec: list[dict], loss_name: str, workers: int = 2):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.spec = from_spec(validate_spec(spec)).spec()  # normalised, as Network.spec() gives it
        self.loss_name = loss_name
        self.workers = int(workers)
        self._procs, self._conns, self._shms, self._arrays = [], [], [], []
        self._key = None  # (rows, x shape, t shape, t dtype) the current shared blocks were made for
        ctx = mp.get_context("spawn")  # never fork: the app's process has threads
        for _ in range(self.workers - 1):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(theirs, self.spec, loss_name), daemon=True,
                               name="cnnviz-parallel")
            with _bare_main():
                proc.start()
            theirs.close()
            self._procs.append(proc)
            self._conns.append(mine)
        for conn in self._conns:
            self._expect(conn, b"R")
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns, self._shms)

    def __enter__(self) -> ParallelStep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the helpers and free the shared memory (idempotent)."""
        self._arrays = []
        self._finalizer()

    def _expect(self, conn, kind: bytes) -> bytes:
        try:
            msg = _wait(conn)
        except EOFError:
            raise RuntimeError("a cnnviz worker process exited unexpectedly") from None
        if msg[:1] == b"E":
            raise RuntimeError("a cnnviz worker process failed:\n" + msg[1:].decode(errors="replace"))
        if msg[:1] != kind:
            raise RuntimeError(f"unexpected reply from a cnnviz worker process: {msg[:1]!r}")
        return msg[1:]

    def _reply(self, conn) -> bytes | RuntimeError:
        """A helper's step result, or the error it reported (returned, not raised)."""
        try:
            return self._expect(conn, b"D")
        except RuntimeError as exc:
            return exc

    def _configure(self, net: Network, rows: int, x: np.ndarray, t: np.ndarray) -> None:
        """(Re)create the shared blocks for slices of up to ``rows`` images of this shape."""
        key = (rows, x.shape[1:], t.shape[1:], t.dtype.str)
        if self._key is not None and self._key[1:] == key[1:] and self._key[0] >= rows:
            return
        out_shape = infer_shapes(self.spec, x.shape[1:])[-1]
        n_params = int(sum(p.size for _, p in net.named_params()))
        self._arrays = []
        for shm in self._shms:
            shm.close()
            shm.unlink()
        self._shms.clear()
        regions, size = _layout(n_params, rows, x.shape[1:], t.shape[1:], t.dtype.str, out_shape)
        for conn in self._conns:
            shm = shared_memory.SharedMemory(create=True, size=max(size, 1))
            self._shms.append(shm)
            self._arrays.append(_views(shm.buf, regions))
            _send(conn, b"C" + _encode_layout(shm.name, regions))
        for conn in self._conns:
            self._expect(conn, b"R")
        self._key = key

    def step(self, net: Network, loss_fn: Loss, x: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
        """x (N, C, H, W), targets t (N, ...) -> (mean loss, outputs (N, K)); fills ``net``'s grads."""
        if not self._finalizer.alive:
            raise RuntimeError("this ParallelStep is closed: its worker processes have exited")
        n = len(x)
        if self.workers == 1 or n // self.workers < MIN_SLICE:
            return _run_slice(net, loss_fn, x, t, 1.0)
        if net.spec() != self.spec:
            raise ValueError("ParallelStep: the network's layers differ from the spec its workers were given")
        if loss_fn.name != self.loss_name:
            raise ValueError(f"ParallelStep: the loss is {loss_fn.name!r}, "
                             f"its workers use {self.loss_name!r}")
        cuts = [n * k // self.workers for k in range(self.workers + 1)]  # slice k is x[cuts[k]:cuts[k + 1]]
        x, t = np.asarray(x, dtype=np.float32), np.asarray(t)
        self._configure(net, n - cuts[-2], x, t)
        params = [p.ravel() for _, p in net.named_params()]
        for k, (conn, arr) in enumerate(zip(self._conns, self._arrays, strict=True), start=1):
            a, b = cuts[k], cuts[k + 1]
            arr["x"][:b - a] = x[a:b]
            arr["t"][:b - a] = t[a:b]
            np.concatenate(params, out=arr["params"])
            _send(conn, b"S" + struct.pack("<qq", b - a, n))
        try:
            value, out0 = _run_slice(net, loss_fn, x[:cuts[1]], t[:cuts[1]], cuts[1] / n)
        finally:  # every helper's reply, even when this slice failed, so that none is left a step behind
            replies = [self._reply(conn) for conn in self._conns]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        grads = [g for _, g in net.named_grads()]
        outs = [out0]
        for k, (arr, reply) in enumerate(zip(self._arrays, replies, strict=True), start=1):
            value += struct.unpack("<d", reply)[0]
            start = 0
            for g in grads:
                g += arr["grads"][start:start + g.size].reshape(g.shape)
                start += g.size
            outs.append(arr["out"][:cuts[k + 1] - cuts[k]])
        return value, np.concatenate(outs)


def _run_slice(net: Network, loss_fn: Loss, x: np.ndarray, t: np.ndarray, share: float):
    """Forward, loss and backward of one slice that is ``share`` of the batch: the slice's mean loss and
    its gradients are scaled by ``share``, so that the slices' results add up to the batch's."""
    out = net.forward(x)
    value = loss_fn.forward(out, t)
    dout = loss_fn.backward()
    if share != 1.0:
        dout *= np.asarray(share, dtype=dout.dtype)
    net.backward(dout)
    return value * share, out


@contextlib.contextmanager
def _bare_main():
    """Hide the ``__main__`` module while a helper starts. A spawned process first re-runs its parent's main
    script, which is wrong here: the helpers need only cnnviz, and the script may be anything (a Streamlit
    page run by a test harness, say)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _send(conn, msg: bytes) -> None:
    try:
        conn.send_bytes(msg)
    except OSError:
        raise RuntimeError("a cnnviz worker process has exited (closed, or killed)") from None


def _wait(conn, spin_s: float = SPIN_S):
    """Receive the next message, polling for ``spin_s`` before blocking: waking a sleeping process costs
    tens of microseconds here, as much as a tenth of a step."""
    deadline = time.perf_counter() + spin_s
    while not conn.poll() and time.perf_counter() < deadline:
        pass
    return conn.recv_bytes()


def _shutdown(procs, conns, shms) -> None:
    for conn in conns:
        try:
            conn.send_bytes(b"Q")
        except OSError:
            pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
    for conn in conns:
        conn.close()
    for shm in shms:
        try:
            shm.close()
        except BufferError:  # a view of it is still alive somewhere; the mapping goes when that view goes
            pass
        shm.unlink()
    procs.clear()
    conns.clear()
    shms.clear()

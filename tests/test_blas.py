"""perf.blas reads back the kernel set NumPy's OpenBLAS runs; the layers choose their products by it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnnviz.nn import fast_conv
from cnnviz.perf import blas


def test_the_kernel_name_is_read_from_the_library():
    name = blas.openblas_kernels()
    assert name  # NumPy's wheels bundle OpenBLAS on Linux
    assert blas._loaded_openblas_paths(), "OpenBLAS should be mapped into this process"
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if pinned:  # a pinned kernel set is what the library runs
        assert name.lower() == pinned.lower()


def test_it_agrees_with_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    infos = threadpoolctl.threadpool_info()
    names = [d["architecture"] for d in infos if d.get("internal_api") == "openblas"]
    assert names and blas.openblas_kernels() in names


def test_the_kernel_names_that_multiply_small_matrices_fast():
    for name in ("SkylakeX", "COOPERLAKE", "sapphirerapids"):
        assert fast_conv.fast_small_products(name)
    for name in ("Haswell", "Zen", "SandyBridge", "Prescott", ""):
        assert not fast_conv.fast_small_products(name)


def _small_products_under(coretype: str) -> str:
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    code = "from cnnviz.nn import fast_conv; print(fast_conv.FAST_SMALL_PRODUCTS)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_conv_follows_the_kernels_openblas_loaded():
    """The choice is made from the kernels the library really runs (pinned here with OPENBLAS_CORETYPE)."""
    assert _small_products_under("Haswell") == "False"
    with open("/proc/cpuinfo") as f:
        has_avx512 = "avx512f" in f.read()
    if has_avx512:  # OpenBLAS ignores a pin to kernels the CPU cannot run
        assert _small_products_under("SkylakeX") == "True"

"""perf.blas reads back the kernel set NumPy's OpenBLAS runs; the layers choose their products by it."""

from __future__ import annotations

import os

import pytest

from cnnviz.nn import layers
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


def test_the_layers_use_one_product_for_few_filters_only_on_avx512_kernels():
    assert layers.FAST_SMALL_PRODUCTS == (blas.openblas_kernels().lower() in blas.AVX512_KERNELS)

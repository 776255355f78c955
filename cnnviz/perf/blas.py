"""Which kernels NumPy's OpenBLAS runs, read back from the library itself.

OpenBLAS picks a kernel set when NumPy loads: from the CPU model (e.g. "SkylakeX", its AVX-512 kernels, on
an AVX-512 CPU) or from the environment variable OPENBLAS_CORETYPE. The choice changes which way of writing
a small matrix product is fastest (see ``nn.fast_conv.FAST_SMALL_PRODUCTS``), so the convolution asks once.
"""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np  # noqa: F401 -- loads OpenBLAS, so that it is in this process's memory map

__all__ = ["openblas_kernels", "AVX512_KERNELS"]

AVX512_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}  # OpenBLAS's names, lower case

_SYMBOLS = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
            "openblas_get_corename")


def _loaded_openblas_paths() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(maxsplit=5)[-1].strip() for line in f if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and ".so" in p)


@functools.cache
def openblas_kernels() -> str:
    """OpenBLAS's kernel set ("Haswell", "SkylakeX", ...) as the library reports it; else the value of
    OPENBLAS_CORETYPE, else "" (unknown, e.g. another BLAS)."""
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                fn.argtypes = []
                value = fn()
                if value:
                    return value.decode(errors="replace").strip()
    return os.environ.get("OPENBLAS_CORETYPE", "")

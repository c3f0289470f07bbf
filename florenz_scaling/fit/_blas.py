"""Run fits with single-threaded OpenBLAS.

The fits do tiny linear algebra (5×5 L-BFGS-B updates, 240-point vectors). A multi-threaded OpenBLAS wakes
its worker threads even for these, and on a loaded machine the spinning workers starve the main thread:
measured here, a loop of scipy L-BFGS-B fits ran 12× slower with default threads than with one. Without
adding a dependency (threadpoolctl), we call OpenBLAS's own ``*_set_num_threads`` on every OpenBLAS build
loaded into the process (numpy and scipy each ship one) and restore the old counts afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (setter, getter) symbol names: numpy's 64-bit-integer build, scipy's build, a plain system OpenBLAS.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


_CACHE: list[tuple[Any, Any]] | None = None


def _loaded_openblas() -> list[tuple[Any, Any]]:
    """(setter, getter) of the thread count of each OpenBLAS in this process, found once and cached.

    scipy.linalg is imported first so scipy's own OpenBLAS (used by L-BFGS-B) is loaded before the search.
    """
    global _CACHE
    if _CACHE is None:
        import scipy.linalg  # noqa: F401 - loads scipy's OpenBLAS

        _CACHE = _find_openblas()
    return _CACHE


def _find_openblas() -> list[tuple[Any, Any]]:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    paths = set()
    for line in maps.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and "openblas" in Path(parts[-1]).name.lower():
            paths.add(parts[-1])
    libs = []
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p)  # already loaded: this returns the same handle, loads nothing new
        except OSError:
            continue
        for setter, getter in _SYMBOLS:
            if hasattr(lib, setter) and hasattr(lib, getter):
                libs.append((getattr(lib, setter), getattr(lib, getter)))
                break
    return libs


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Context manager: OpenBLAS uses one thread inside, its previous thread count after."""
    saved = []
    try:
        for setter, getter in _loaded_openblas():
            n = int(getter())
            setter(ctypes.c_int(1))
            saved.append((setter, n))
    except (OSError, AttributeError):
        pass  # best effort: without it the fit is only slower
    try:
        yield
    finally:
        for setter, n in saved:
            setter(ctypes.c_int(n))

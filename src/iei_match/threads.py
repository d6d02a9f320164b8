"""Independent pieces of work run side by side in threads."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

__all__ = ["in_threads", "numba_threadsafe"]

T = TypeVar("T")


def in_threads(tasks: list[Callable[[], T]], n_jobs: int) -> list[T]:
    """Each task's result, in order: run in up to ``n_jobs`` threads (in this thread when
    ``n_jobs`` is 1 or there is one task). Worth it where the work releases the GIL (numpy,
    scipy's sparse arithmetic, numba ``nogil`` kernels)."""
    if n_jobs <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(min(n_jobs, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]


@lru_cache(maxsize=1)
def numba_threadsafe() -> bool:
    """Whether numba's threading layer lets two threads launch parallel kernels at once
    (``omp`` and ``tbb`` do; ``workqueue`` aborts the process)."""
    import numba
    import numpy as np
    import scipy.sparse as sp

    from .retrieval import PostingIndex

    PostingIndex(sp.identity(2, dtype=np.float32, format="csr")).search(
        sp.identity(2, dtype=np.float32, format="csr"), 1)  # starts the threading layer
    return numba.threading_layer() != "workqueue"

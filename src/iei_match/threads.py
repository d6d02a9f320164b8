"""Independent pieces of work run side by side in threads."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["in_threads"]

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

"""A Dask client for one batch job: local or remote, with a bounded number of tasks in flight."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from distributed import Client, LocalCluster, as_completed

from .errors import InputError
from .threads import numba_threadsafe

__all__ = ["DaskRunner", "LOCAL_SCHEDULERS"]

LOCAL_SCHEDULERS = ("threads", "processes")


class DaskRunner:
    """Runs tasks on a local Dask cluster it starts, or on an existing one.

    Parameters
    ----------
    scheduler : None, "threads", "processes", str or distributed.Client
        ``None``/"threads": a cluster of threads in this process (of processes when numba's
        threading layer is ``workqueue``, which one thread at a time only may use);
        "processes": a cluster of local worker processes; any other string: the address of
        a running scheduler (``tcp://HOST:PORT``); a Client is used as it is and left open.
    n_workers : int, optional
        Threads or processes of a local cluster (default: the number of CPUs).
    """

    def __init__(self, scheduler=None, n_workers: int | None = None):
        self.scheduler = scheduler
        self.n_workers = n_workers or os.cpu_count() or 1
        self.client: Client | None = None
        self.task_threads: int | None = None  # native threads per task on a local cluster
        self._owned: list = []
        self._pending: set = set()

    def __enter__(self) -> DaskRunner:
        s = self.scheduler
        if isinstance(s, Client):
            self.client = s
            return self
        if s is None or s in LOCAL_SCHEDULERS:
            processes = s == "processes" or (self.n_workers > 1 and not numba_threadsafe())
            self.task_threads = max(1, (os.cpu_count() or 1) // self.n_workers)
            cluster = LocalCluster(
                n_workers=self.n_workers if processes else 1,
                threads_per_worker=1 if processes else self.n_workers,
                processes=processes, dashboard_address=None, silence_logs=logging.ERROR)
            self._owned.append(cluster)
            self.client = Client(cluster)
        elif isinstance(s, str) and "://" in s:
            try:
                self.client = Client(s, timeout="20s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {s}: {exc}") from exc
        else:
            raise InputError(f"scheduler must be 'threads', 'processes', an address such as "
                             f"tcp://HOST:PORT or a distributed.Client, got {s!r}")
        self._owned.insert(0, self.client)
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None and self._pending:
            self.client.cancel(list(self._pending))
        for thing in self._owned:
            thing.close()
        self._owned.clear()

    @property
    def _client(self) -> Client:
        if self.client is None:
            raise RuntimeError("use DaskRunner in a with block")
        return self.client

    @property
    def slots(self) -> int:
        """Threads over all the cluster's workers (at least 1)."""
        return max(1, sum(self._client.nthreads().values()))

    def share(self, obj: Any):
        """Send ``obj`` to every worker once; the returned future stands for it in tasks."""
        return self._client.scatter(obj, broadcast=True, hash=False)

    def submit(self, fn: Callable, *args):
        """Submit ``fn(*args)`` (not cached by Dask: each call is its own task)."""
        return self._client.submit(fn, *args, pure=False)

    def run(self, tasks: Iterable, submit: Callable) -> Iterator[tuple[Any, Any]]:
        """Yield ``(task, result)`` as tasks finish, keeping two per worker thread in flight.

        ``submit(task)`` returns the task's future. A task's error is raised here; leaving
        the ``with`` block cancels the tasks still pending.
        """
        queue = iter(tasks)
        owner: dict = {}

        def add(ac) -> None:
            task = next(queue, None)
            if task is not None:
                future = submit(task)
                owner[future.key] = task
                self._pending.add(future)
                ac.add(future)

        ac = as_completed()
        for _ in range(2 * self.slots):
            add(ac)
        for future in ac:
            result = future.result()
            self._pending.discard(future)
            task = owner.pop(future.key)
            future.release()
            add(ac)
            yield task, result

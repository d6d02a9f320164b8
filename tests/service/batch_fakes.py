"""Stand-ins for a batch job's work, called in the job's child process by
:func:`iei_match_service.batch_process.run_in_child`; they take and ignore the job's own
arguments, and use the standard library only, so that the child starts in a moment."""

from __future__ import annotations

import os
import threading
import time


def thread_nices(pid: int | str = "self") -> dict[int, int]:
    """The nice value of every thread of a process (Linux: nice is per thread)."""
    out: dict[int, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:  # the process has ended
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread has just ended
            continue
        out[int(tid)] = int(fields[16])  # field 19 of stat; fields[0] is field 3
    return out


def describe(report, cancelled, threads: int = 2, **_) -> dict:
    """Start a few threads, report progress, and say how the process runs."""
    stop = threading.Event()
    started = [threading.Thread(target=stop.wait) for _ in range(threads)]
    for t in started:
        t.start()
    report(0.25, "a quarter")
    report(0.5, "half")
    nices = thread_nices()
    stop.set()
    for t in started:
        t.join()
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                                         "OMP_WAIT_POLICY")}
    return {"pid": os.getpid(), "ppid": os.getppid(), "nices": sorted(nices.values()),
            "threads": len(nices), "env": env}


def slow(report, cancelled, seconds: float = 60.0, obey: bool = True, **_):
    """Work until cancelled (or, with ``obey=False``, ignore the cancel)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if obey and cancelled():
            raise RuntimeError("stopped on request")
        report(0.1, "working")
        time.sleep(0.05)
    raise AssertionError("never cancelled")


def fail(report, cancelled, **_):
    raise LookupError("no such need: N9")


def table(report, cancelled, table, **_) -> dict:
    """What arrived of a table: its columns' types, index and rows."""
    return {"dtypes": {c: str(t) for c, t in table.dtypes.items()},
            "index": [table.index.name, *map(int, table.index)],
            "rows": table.astype(object).where(table.notna(), None).values.tolist()}


class QuietJob:
    """A job context that is never cancelled and keeps no progress."""

    job_id = 0
    cancelled = False

    def report(self, progress: float, message: str) -> None:
        pass


def job_processes(parent=None) -> list:
    """The batch job processes below ``parent`` (a psutil.Process; this one by default),
    at any depth."""
    import psutil

    from iei_match_service.batch_process import MODULE

    out = []
    for p in (parent or psutil.Process()).children(recursive=True):
        try:
            if MODULE in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:  # gone meanwhile
            pass
    return out

"""A batch job in a child process of the service, at a lower CPU priority.

(Retraining jobs use the same process: :func:`run_in_child` with
``iei_match_service.retrain:compute``.)

A batch job ranks every need against every program (minutes of CPU on a large alliance),
then allocates and reports the gaps. In the service's own process it would compete with the
interactive requests for the GIL and, at their priority, for the cores. So each job runs in
a child process (``python -m iei_match_service.batch_process``) which

- lowers its own CPU priority by ``IEI_MATCH_BATCH_NICE`` (``os.nice``, first thing, while
  it has one thread: every thread and process it starts later inherits it), so that the OS
  scheduler gives the cores to the service whenever it wants them; the service's own
  priority is never changed;
- caps the native thread pools (OpenMP: LightGBM and numba; BLAS) at the threads each of
  its Dask workers may use, so that the job never runs more threads than there are cores,
  and lets idle OpenMP threads sleep instead of spinning;
- hosts the job's local Dask cluster (or is the client of the cluster
  ``IEI_MATCH_BATCH_SCHEDULER`` names, whose workers' priority is up to whoever runs it),
  and writes the results and the plots itself;
- exits at once when the service goes away, even after ``kill -9``: its command pipe
  closes.

The service's job thread only follows it: it forwards progress to the job's row, passes a
cancel on (and ends the process if it has not stopped by itself within ``GRACE_S``), and
always waits for it to exit. The two talk over two pipes in JSON; tables go as Parquet
bytes. Nothing is pickled.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the child imports nothing of the service before lowering its priority
    import pandas as pd

    from .jobs import JobContext

log = logging.getLogger("iei_match_service.batch")

MODULE = "iei_match_service.batch_process"
GRACE_S = 3.0    # a cancelled job's process stops by itself within this, or is ended
EXIT_S = 15.0    # a process that reported its end exits within this, or is ended
POLL_S = 0.2     # how often the job thread looks for a cancel
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")
_PARENT_GONE = 3  # the child's exit code when its command pipe closes


def native_threads(n_workers: int) -> int:
    """Native threads (LightGBM, numba, BLAS) each of ``n_workers`` local Dask workers may
    use so that together they use every core and no more (as ``DaskRunner`` gives them)."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))


def child_env(threads: int) -> dict[str, str]:
    """The service's environment, with the thread pools of the child capped at ``threads``."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # idle OpenMP threads sleep rather than spin
    return env


def _send(conn: Connection, msg) -> None:
    conn.send_bytes(json.dumps(msg).encode())


def _recv(conn: Connection):
    return json.loads(conn.recv_bytes())


def run_in_child(ctx: JobContext, target: str, kwargs: dict, *, nice: int, threads: int,
                 frames: dict[str, pd.DataFrame] | None = None) -> Any:
    """Call ``target(report=..., cancelled=..., **kwargs, **frames)`` in a child process
    niced by ``nice``, and return what it returns.

    ``target`` is ``"module:function"``; ``kwargs`` and what it returns are JSON values;
    ``frames`` are tables, sent as Parquet. ``report(progress, message)`` reaches
    ``ctx.report`` and ``cancelled()`` turns true once the job is cancelled. The function
    stops by raising :class:`~iei_match.errors.JobCancelledError` (or any exception once
    cancelled), and :class:`~.jobs.Cancelled` is raised here; any other error is raised here
    as :class:`~.jobs.JobFailed` saying ``"<error type>: <message>"``. When this returns or
    raises, the child has exited.
    """
    tables = {name: _parquet(frame) for name, frame in (frames or {}).items()}
    cmd_r, cmd_w = os.pipe()
    msg_r, msg_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, str(cmd_r), str(msg_w), str(int(nice))],
            pass_fds=(cmd_r, msg_w), env=child_env(threads), stdin=subprocess.DEVNULL)
    except BaseException:
        for fd in (cmd_r, cmd_w, msg_r, msg_w):
            os.close(fd)
        raise
    os.close(cmd_r)
    os.close(msg_w)
    commands, messages = Connection(cmd_w, readable=False), Connection(msg_r, writable=False)
    log.info("job %s runs in process %s (nice +%s, %s threads)", ctx.job_id, proc.pid, nice,
             threads)
    settled: list[str] = []
    try:
        return _follow(ctx, proc, commands, messages, settled,
                       {"op": "run", "target": target, "path": list(sys.path),
                        "kwargs": kwargs, "frames": list(tables)}, tables)
    finally:
        _reap(proc, EXIT_S if settled else 0.0)
        commands.close()
        messages.close()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def _follow(ctx: JobContext, proc: subprocess.Popen, commands: Connection,
            messages: Connection, settled: list, run: dict, tables: dict[str, bytes]) -> Any:
    """Relay the child's messages until it reports its end (then ``settled`` is not empty)."""
    from .jobs import Cancelled, JobFailed

    cancel_sent: float | None = None
    while True:
        if cancel_sent is None and ctx.cancelled:
            _tell(commands, {"op": "cancel"})
            cancel_sent = time.monotonic()
        if cancel_sent is not None and time.monotonic() - cancel_sent > GRACE_S:
            raise Cancelled()  # the caller ends the process
        try:
            if not messages.poll(POLL_S):
                continue
            msg = _recv(messages)
        except (EOFError, OSError):  # the process is gone without a last word
            break
        op = msg["op"]
        if op in ("done", "cancelled", "failed"):
            settled.append(op)
        if op == "ready":
            if cancel_sent is None:
                _tell(commands, run, *tables.values())
        elif op == "progress":
            try:
                ctx.report(msg["progress"], msg["message"])
            except Cancelled:
                pass  # passed on to the process at the top of the loop
        elif op == "done":
            return msg["result"]
        elif op == "cancelled":
            raise Cancelled()
        elif op == "failed":
            log.error("job %s failed in process %s:\n%s", ctx.job_id, proc.pid, msg["trace"])
            raise JobFailed(f"{msg['type']}: {msg['message']}")
    code = proc.wait()
    if cancel_sent is not None:
        raise Cancelled()
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    raise RuntimeError(f"the batch job's process ended ({how}) before finishing the job")


def _tell(conn: Connection, msg: dict, *blobs: bytes) -> None:
    try:
        _send(conn, msg)
        for blob in blobs:
            conn.send_bytes(blob)
    except OSError:  # the process has gone: the loop reads the end of its messages
        pass


def _reap(proc: subprocess.Popen, patience: float) -> None:
    """Wait ``patience`` seconds for the process to exit, then end it (SIGTERM, SIGKILL)."""
    try:
        proc.wait(patience)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the child ---------------------------------------------------------------------------

def _is_cancel(exc: Exception) -> bool:
    errors = sys.modules.get("iei_match.errors")  # not imported: cannot have been raised
    return errors is not None and isinstance(exc, errors.JobCancelledError)


def _watch(commands: Connection, cancel: threading.Event, started: threading.Event,
           send) -> None:
    """Set ``cancel`` when asked (and leave if the work has not started: there is nothing to
    stop cleanly); leave at once when the service is gone."""
    while True:
        try:
            msg = _recv(commands)
        except (EOFError, OSError):
            os._exit(_PARENT_GONE)  # nothing of the job is wanted any more
        if msg["op"] == "cancel":
            cancel.set()
            if not started.is_set():  # still loading
                send({"op": "cancelled"})
                os._exit(0)


def main(argv: list[str] | None = None) -> int:
    cmd_fd, msg_fd, nice = (int(a) for a in (sys.argv[1:] if argv is None else argv))
    if nice > 0:  # while this process has one thread: all later ones inherit it
        os.nice(nice)
    for fd in (cmd_fd, msg_fd):
        os.set_inheritable(fd, False)
    commands = Connection(cmd_fd, writable=False)
    out = Connection(msg_fd, readable=False)
    lock = threading.Lock()

    def send(msg: dict) -> None:
        with lock:
            _send(out, msg)

    send({"op": "ready", "pid": os.getpid()})
    try:
        run = _recv(commands)
        blobs = [commands.recv_bytes() for _ in run.get("frames", ())]
    except (EOFError, OSError):
        return _PARENT_GONE
    if run["op"] != "run":  # cancelled before it started
        send({"op": "cancelled"})
        return 0
    sys.path[:0] = [p for p in run["path"] if p not in sys.path]
    cancel, started = threading.Event(), threading.Event()
    threading.Thread(target=_watch, args=(commands, cancel, started, send),
                     name="iei-batch-commands", daemon=True).start()
    try:
        module, _, name = run["target"].partition(":")
        fn = getattr(importlib.import_module(module), name)
        kwargs = dict(run["kwargs"])
        if blobs:
            import pandas as pd

            kwargs.update({key: pd.read_parquet(io.BytesIO(blob))
                           for key, blob in zip(run["frames"], blobs, strict=True)})
        started.set()
        result = fn(report=lambda progress, message: send(
            {"op": "progress", "progress": float(progress), "message": str(message)}),
            cancelled=cancel.is_set, **kwargs)
        send({"op": "done", "result": result})
    except Exception as exc:
        if cancel.is_set() or _is_cancel(exc):
            send({"op": "cancelled"})
            return 0
        send({"op": "failed", "type": type(exc).__name__, "message": str(exc),
              "trace": "".join(traceback.format_exception(exc))})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

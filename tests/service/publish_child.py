"""Publishes a model as the service does (ModelHost.publish), for a test to kill -9.

    python publish_child.py ROOT SOURCE STOP_AT

Loads the model in SOURCE, prints ``go``, publishes it into the models root ROOT and prints
``done VERSION``. Every file-system step of the publish (each file written in two halves,
each directory fsync, rename, replace and removal) is announced on stdout as ``step N
WHAT`` before it happens; at step STOP_AT (0: none) the process waits there for its kill,
so a test can kill it at a known point.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from iei_match import artifacts
from iei_match_service.model_host import ModelHost

root, source, stop_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
step = 0


def mark(what: str) -> None:
    global step
    step += 1
    print(f"step {step} {what}", flush=True)
    if step == stop_at:
        time.sleep(3600)


def traced(name: str, real):
    def call(*args, **kwargs):
        mark(f"{name} {' '.join(Path(str(a)).name for a in args)}")
        return real(*args, **kwargs)
    return call


def write_in_halves(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        mark(f"half-written {path.name}")
        fh.write(data[len(data) // 2:])
        fh.flush()
        os.fsync(fh.fileno())


matcher = artifacts.load_model(source)
artifacts._write = write_in_halves
artifacts._fsync_dir = traced("fsync-dir", artifacts._fsync_dir)
os.rename = traced("rename", os.rename)
os.replace = traced("replace", os.replace)
shutil.rmtree = traced("rmtree", shutil.rmtree)
print("go", flush=True)
live = ModelHost(root).publish(matcher, {"purpose": "kill test"}, "0" * 64)
print(f"done {live.version}", flush=True)

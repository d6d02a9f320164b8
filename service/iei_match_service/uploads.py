"""Uploaded files: saved under a fixed name, parsed in a bounded pool, removed always.

A file's cost is bounded by the read limits (:class:`iei_match.bounded_read.ReadLimits`,
from the settings); on top of that, at most ``upload_parsers`` files are parsed at once by
the whole service and ``uploads_per_key`` by one key, so that one client's files queue
behind each other, not in front of everyone else's requests.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from iei_match.io import EXTENSIONS

from .errors import Invalid, RateLimited, Unavailable


class UploadSlots:
    """The parse pool's admission: a service-wide bound and a per-key bound."""

    def __init__(self, parsers: int, per_key: int, timeout: float):
        self._sem = threading.BoundedSemaphore(parsers)
        self.per_key, self.timeout = per_key, timeout
        self._busy: dict[int, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, key_id: int) -> Iterator[None]:
        with self._lock:
            if self._busy.get(key_id, 0) >= self.per_key:
                raise RateLimited(f"this key is already uploading {self.per_key} files; "
                                  "send the next when one is done",
                                  extra={"retry_after": 1})
            self._busy[key_id] = self._busy.get(key_id, 0) + 1
        try:
            if not self._sem.acquire(timeout=self.timeout):
                raise Unavailable("the service is busy reading other uploads; retry shortly",
                                  code="overloaded")
            try:
                yield
            finally:
                self._sem.release()
        finally:
            with self._lock:
                self._busy[key_id] -= 1
                if not self._busy[key_id]:
                    del self._busy[key_id]


def client_name(upload: UploadFile, stem: str) -> tuple[str, str]:
    """(name shown in messages, extension) of an uploaded file. Only the extension of the
    client's file name is used; the name never becomes a path."""
    name = Path((upload.filename or stem).replace("\\", "/")).name[:100] or stem
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSIONS:
        raise Invalid(f"{stem}: the file must be one of {', '.join(EXTENSIONS)}; got "
                      f"{suffix or 'no extension'!r}", code="unsupported_file_type")
    return name, suffix


@contextmanager
def upload_dir(prefix: str) -> Iterator[Path]:
    """A fresh private directory for a request's files, removed when the request ends,
    however it ends (an error, a client that went away, a cancelled task)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save(upload: UploadFile, folder: Path, stem: str, suffix: str) -> Path:
    path = folder / f"{stem}{suffix}"
    with open(path, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)
    upload.file.close()
    return path

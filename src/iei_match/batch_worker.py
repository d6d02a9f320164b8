"""The part of a batch job that runs on a Dask worker: load the model once, score partitions.

The model travels as the bytes of its artifact files (:class:`ModelPayload`), never as a
pickled object: a worker writes them to a temporary directory and reads them back with
:func:`~iei_match.artifacts.load_model`, which checks every file against the sha256 in the
manifest. A worker keeps the loaded matcher for the whole job, and the side every partition
is searched against (every program when needs are ranked, every need when programs are)
prepared once as a :class:`~iei_match.catalog.Catalog` (vectors, retrieval indexes, link
history), so that a partition only vectorises its own rows. Scores are those of
:meth:`Matcher.rank` and :meth:`Matcher.partners` on the same rows: a need's result does
not depend on the other needs of its call, nor a program's on the other programs.
"""

from __future__ import annotations

import copy
import hashlib
import io
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from .artifacts import (
    MANIFEST,
    load_model,
    read_manifest,
    resolve_model_dir,
    save_model,
    verify_model,
)
from .catalog import Catalog
from .catalog_files import load_catalog
from .matcher import Matcher

__all__ = ["ModelPayload", "CatalogFrame", "CatalogFiles", "score_partition", "forget", "ID_COLUMN"]

ID_COLUMN = {"need": "need_id", "program": "program_id"}
_CACHE_SIZE = 2  # models and prepared catalogs a worker keeps (one job, both directions)
_lock = threading.Lock()
_models: OrderedDict[str, Matcher] = OrderedDict()
_prepared: OrderedDict[tuple, tuple[Matcher, Catalog]] = OrderedDict()


def _content_digest(files: dict[str, bytes]) -> str:
    """sha256 of what a model's files hold; ``.npz`` archives by their arrays, not their zip
    bytes (which carry a timestamp), so the same model saved twice has one digest."""
    h = hashlib.sha256()
    for name in sorted(files):
        if name == MANIFEST:  # creation time and library versions: not the model itself
            continue
        h.update(name.encode() + b"\0")
        if name.endswith(".npz"):
            with np.load(io.BytesIO(files[name]), allow_pickle=False) as npz:
                for key in sorted(npz.files):
                    arr = np.ascontiguousarray(npz[key])
                    h.update(f"{key}:{arr.dtype.str}:{arr.shape}".encode())
                    h.update(arr.tobytes())
        else:
            h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class ModelPayload:
    """A fitted model as the bytes of its artifact files, ready to ship to workers.

    Attributes
    ----------
    files : dict of str to bytes
        ``manifest.json`` and the files it lists.
    digest : str
        sha256 of the model's content (the same for the same model saved twice).
    """

    files: dict[str, bytes]
    digest: str

    @classmethod
    def from_directory(cls, path) -> ModelPayload:
        """Read a model directory, or the live version of a models root, after verifying it."""
        directory = resolve_model_dir(path)
        verify_model(directory)
        names = [MANIFEST, *read_manifest(directory)["files"]]
        files = {name: (directory / name).read_bytes() for name in names}
        return cls(files, _content_digest(files))

    @classmethod
    def from_matcher(cls, matcher: Matcher) -> ModelPayload:
        """Save a fitted matcher in the artifact format (no pickle) and read it back as bytes."""
        with tempfile.TemporaryDirectory(prefix="iei-match-payload-") as tmp:
            return cls.from_directory(save_model(matcher, Path(tmp) / "model"))

    def load(self) -> Matcher:
        """Write the files to a temporary directory and load them (sha256-checked)."""
        with tempfile.TemporaryDirectory(prefix="iei-match-model-") as tmp:
            for name, data in self.files.items():
                if Path(name).name != name:
                    raise ValueError(f"model file name {name!r} is not a plain file name")
                (Path(tmp) / name).write_bytes(data)
            return load_model(tmp)


@dataclass(frozen=True)
class CatalogFiles:
    """The side every partition is searched against, prepared once and written with
    :func:`~iei_match.catalog_files.save_catalog` where every worker can read it (a local
    cluster); workers map its arrays instead of preparing it themselves.

    Attributes
    ----------
    path : str
        The directory the catalog was written to.
    key : str
        A fingerprint of the rows (what a worker caches the catalog under).
    """

    path: str
    key: str


@dataclass(frozen=True)
class CatalogFrame:
    """The side every partition is searched against: all programs, or all needs.

    Attributes
    ----------
    frame : DataFrame
    key : str
        A fingerprint of ``frame`` (what a worker caches its prepared catalog under).
    """

    frame: pd.DataFrame
    key: str


def _remember(cache: OrderedDict, key, make):
    """``cache[key]``, made by ``make()`` on a miss; the oldest entries are dropped."""
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = make()  # under the lock: two threads never build the same thing twice
        cache[key] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
        return value


def forget() -> None:
    """Drop the models and catalogs this process keeps for jobs (a local cluster of threads
    runs in the caller's process: a long-running caller frees them after each job)."""
    with _lock:
        _models.clear()
        _prepared.clear()


def _prepared_catalog(payload: ModelPayload, catalog: CatalogFrame | CatalogFiles,
                      direction: str, threads: int | None) -> tuple[Matcher, Catalog]:
    """The payload's matcher (a copy with ``n_jobs=threads``) and the catalog it searches,
    prepared (or read from its files) once per worker."""
    base = _remember(_models, payload.digest, payload.load)

    def prepare() -> tuple[Matcher, Catalog]:
        m = copy.copy(base)  # shares the fitted state, so the catalog fits both
        if threads is not None:
            m.n_jobs = threads
        if isinstance(catalog, CatalogFiles):
            return m, load_catalog(catalog.path, m)
        kind = "program" if direction == "need" else "need"
        return m, m.prepare(catalog.frame, kind)

    return _remember(_prepared, (payload.digest, catalog.key, direction, threads), prepare)


def score_partition(payload: ModelPayload, catalog: CatalogFrame | CatalogFiles,
                    queries: pd.DataFrame,
                    direction: str, top_k: int, explain: int,
                    threads: int | None = None, min_fit: float | None = None) -> pd.DataFrame:
    """Rank one partition: its needs' best programs, or its programs' best needs.

    Parameters
    ----------
    payload : ModelPayload
    catalog : CatalogFrame or CatalogFiles
        All programs (``direction="need"``) or all needs (``direction="program"``).
    queries : DataFrame
        The partition's needs or programs.
    direction : {"need", "program"}
    top_k : int
    explain : int
        Rows of each list that get ``top_factors`` (0: no explanation columns).
    threads : int, optional
        Native threads (numba kernels, LightGBM) for this task; by default the model's
        ``n_jobs`` and numba's default. Results do not depend on it.
    min_fit : float, optional
        Leave out pairs whose fit is below this.

    Returns
    -------
    DataFrame
        What :meth:`Matcher.rank` (or :meth:`Matcher.partners`) returns for these rows.
    """
    matcher, prepared = _prepared_catalog(payload, catalog, direction, threads)
    if threads is not None:  # numba's setting belongs to the calling thread
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    if direction == "need":
        return matcher.rank(queries, prepared, k=top_k, explain=explain, min_fit=min_fit)
    return matcher.partners(queries, prepared, k=top_k, explain=explain, min_fit=min_fit)

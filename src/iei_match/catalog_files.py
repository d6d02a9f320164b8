"""A prepared :class:`~iei_match.catalog.Catalog` written as plain array files, and read
back memory-mapped.

A batch job searches every partition against the same catalog (all programs, or all
needs). Preparing it once and letting every local worker map the same files costs one
preparation instead of one per worker, and the workers share its pages instead of each
holding a copy. Only ``.npy`` files are written (strings as UTF-8 bytes and offsets; no
pickle), and a catalog read back is used with the model that prepared it: the reader
passes its own copy of that model, whose vectorizers and memory the catalog then refers to.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .catalog import Catalog
from .errors import InputError
from .retrieval import PostingIndex
from .sides import Side
from .vectorize import FieldMatrices

__all__ = ["save_catalog", "load_catalog"]

_META = "catalog.json"
_STRINGS = ("ids", "codes", "titles", "texts")


def _put_strings(arrays: dict, name: str, values) -> None:
    encoded = [str(v).encode("utf-8", "surrogatepass") for v in values]
    arrays[f"{name}.offsets"] = np.cumsum([0] + [len(b) for b in encoded], dtype=np.int64)
    arrays[f"{name}.bytes"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)


def _get_strings(directory: Path, name: str) -> np.ndarray:
    offsets = np.load(directory / f"{name}.offsets.npy")
    blob = np.load(directory / f"{name}.bytes.npy").tobytes()
    return np.array([blob[a:b].decode("utf-8", "surrogatepass")
                     for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)],
                    dtype=object)


def _put_csr(arrays: dict, name: str, m: sp.csr_matrix) -> dict:
    m = sp.csr_matrix(m)
    arrays[f"{name}.data"], arrays[f"{name}.indices"] = m.data, m.indices
    arrays[f"{name}.indptr"] = m.indptr
    return {"shape": list(m.shape), "sorted": bool(m.has_sorted_indices)}


def _get_csr(directory: Path, name: str, meta: dict) -> sp.csr_matrix:
    parts = (np.load(directory / f"{name}.{p}.npy", mmap_mode="c")
             for p in ("data", "indices", "indptr"))
    m = sp.csr_matrix(tuple(parts), shape=tuple(meta["shape"]), copy=False)
    if meta["sorted"]:
        m.has_sorted_indices = True
    return m


def save_catalog(catalog: Catalog, directory, reach: np.ndarray | None = None) -> Path:
    """Write ``catalog`` (not restricted) under ``directory`` (created).

    Parameters
    ----------
    catalog : Catalog
    directory : path
    reach : ndarray, optional
        ``matcher.memory_.reach(catalog.side, catalog.kind)``, kept with the rows so that a
        reader does not search for it again.

    Returns
    -------
    Path
    """
    if catalog.blocked is not None:
        raise InputError("save the catalog before restricting it")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    side = catalog.side
    arrays: dict[str, np.ndarray] = {"level": side.level}
    meta: dict = {"kind": catalog.kind, "csr": {}, "index": {}, "dense": side.dense is not None,
                  "fingerprints": catalog.fingerprints is not None, "reach": reach is not None}
    for name in _STRINGS:
        values = getattr(side, name)
        if values is None:
            raise InputError(f"the catalog's side has no {name}")
        _put_strings(arrays, name, values)
    attrs = side.attrs
    if attrs is None:
        raise InputError("the catalog's side has no place and capacity attributes")
    for name in ("province", "city"):
        _put_strings(arrays, f"attrs.{name}", attrs[name])
    arrays["attrs.capacity"] = attrs["capacity"]
    for kind in ("word", "char"):
        fm: FieldMatrices = getattr(side, kind)
        for f in fields(FieldMatrices):
            meta["csr"][f"{kind}.{f.name}"] = _put_csr(arrays, f"{kind}.{f.name}",
                                                       getattr(fm, f.name))
        index: PostingIndex = getattr(catalog, f"{kind}_index")
        arrays[f"{kind}_index.ptr"], arrays[f"{kind}_index.ind"] = index._ptr, index._ind
        arrays[f"{kind}_index.val"] = index._val
        meta["index"][kind] = {"n_docs": index.n_docs, "n_terms": index.n_terms,
                               "positive": index._positive}
    meta["csr"]["history"] = _put_csr(arrays, "history", catalog.history)
    if side.dense is not None:
        arrays["dense"] = side.dense
    if catalog.fingerprints is not None:
        arrays["fingerprints"] = catalog.fingerprints
    if reach is not None:
        arrays["reach"] = reach
    for name, a in arrays.items():
        np.save(directory / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
    (directory / _META).write_text(json.dumps(meta))
    return directory


def load_catalog(directory, matcher) -> Catalog:
    """Read a catalog :func:`save_catalog` wrote, its arrays memory-mapped (copy on write).

    Parameters
    ----------
    directory : path
    matcher : Matcher
        The model that prepared the catalog (a copy loaded from the same files is fine):
        the catalog is tied to its vectorizers, and its rows' reach to its memory.

    Returns
    -------
    Catalog
        Equal to the catalog that was saved.
    """
    directory = Path(directory)
    meta = json.loads((directory / _META).read_text())

    def array(name: str) -> np.ndarray:
        return np.load(directory / f"{name}.npy", mmap_mode="c")

    strings = {name: _get_strings(directory, name) for name in _STRINGS}
    mats = {kind: FieldMatrices(*(_get_csr(directory, f"{kind}.{f.name}",
                                           meta["csr"][f"{kind}.{f.name}"])
                                  for f in fields(FieldMatrices)))
            for kind in ("word", "char")}
    side = Side(strings["ids"], mats["word"], mats["char"], np.load(directory / "level.npy"),
                strings["codes"], dense=array("dense") if meta["dense"] else None,
                titles=strings["titles"], texts=strings["texts"],
                attrs={"province": _get_strings(directory, "attrs.province"),
                       "city": _get_strings(directory, "attrs.city"),
                       "capacity": np.load(directory / "attrs.capacity.npy")})
    if meta["reach"]:
        side._reach[meta["kind"]] = (matcher.memory_, np.load(directory / "reach.npy"))
    indexes = {}
    for kind in ("word", "char"):
        m = meta["index"][kind]
        indexes[kind] = PostingIndex.from_arrays(
            array(f"{kind}_index.ptr"), array(f"{kind}_index.ind"), array(f"{kind}_index.val"),
            m["n_docs"], m["n_terms"], m["positive"], docs=mats[kind].full)
    return Catalog(meta["kind"], side, indexes["word"], indexes["char"],
                   _get_csr(directory, "history", meta["csr"]["history"]),
                   (matcher.word_, matcher.char_),
                   fingerprints=array("fingerprints") if meta["fingerprints"] else None)

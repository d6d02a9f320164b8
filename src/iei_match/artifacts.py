"""Model artifacts: versioned, hashed, pickle-free, published atomically.

Layout of a models root (one per model name)::

    ROOT/
      CURRENT                 one line: the live version
      20261122T043000Z/       one directory per version, never changed once published
        manifest.json         format, library versions, config, data hash, metrics, sha256s
        state.json            parameters, vocabularies, ids (plain JSON)
        arrays.npz            numeric arrays and sparse matrices (loaded with allow_pickle=False)
        ranker-need.txt       LightGBM boosters in their text format: the rankers...
        ranker-program.txt
        fit.txt               ...and the fit's classifier

Loading checks every file's sha256 against the manifest before parsing anything, so a
tampered or truncated file is refused; nothing in an artifact is ever unpickled. A file whose
manifest was edited to match but that has no valid format is refused too: the LightGBM
models are parsed in a throwaway process first, since LightGBM's parser can abort the
process on a malformed file instead of raising.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from .errors import ModelCompatibilityError, ModelIntegrityError, ModelNotFoundError
from .fit import FitModel, SimilarityFit
from .matcher import Matcher
from .memory import Memory
from .rankers import ranker_from_state
from .vectorize import FieldVectorizer

__all__ = ["save_model", "load_model", "publish_model", "resolve_model_dir", "list_versions",
           "activate_version", "data_fingerprint", "remove_stale_publishing", "FORMAT_VERSION"]

FORMAT_VERSION = 3  # 2: the calibrated fit (fit.txt), rankers and parts with their own state;
# 3: no region or capacity features
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_LIBRARIES = ("iei-match", "numpy", "scipy", "scikit-learn", "pandas", "lightgbm", "rjieba")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(*frames: pd.DataFrame) -> str:
    """sha256 of the training tables' content (row order included)."""
    h = hashlib.sha256()
    for frame in frames:
        if frame is None:
            continue
        h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_model(matcher: Matcher, directory: str | os.PathLike, *, metrics: dict | None = None,
               data_sha256: str | None = None) -> Path:
    """Write a fitted matcher into ``directory`` (which must not exist yet).

    Each part writes its own state: the vectorizers, the link memory, the rankers (one
    LightGBM text file per direction for the learned ones) and the fit (``fit.txt`` for
    the calibrated classifier).
    """
    matcher._check_fitted()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=False)
    arrays: dict[str, np.ndarray] = {}
    texts: dict[str, str] = {}
    word_state, arrays["word.idf"] = matcher.word_.get_state()
    char_state, arrays["char.idf"] = matcher.char_.get_state()
    rankers = {}
    for direction, ranker in matcher.rankers_.items():
        rankers[direction], ranker_texts = ranker.get_state()
        for name, text in ranker_texts.items():
            texts[f"ranker-{direction}.txt" if name == "booster" else
                  f"ranker-{direction}-{name}.txt"] = text
    fit_state, fit_arrays, fit_text = matcher.fit_model_.get_state()
    arrays.update(fit_arrays)
    if fit_text is not None:
        texts["fit.txt"] = fit_text
    state = {
        "params": matcher.get_params(),
        "feature_names": list(matcher.feature_names_),
        "dense": bool(matcher.dense_),
        "dense_cache_keys": list(matcher.dense_cache_),
        "word": word_state,
        "char": char_state,
        "memory": matcher.memory_.get_state(arrays),
        "rankers": rankers,
        "fit": fit_state,
    }
    if matcher.dense_cache_:
        arrays["dense_cache"] = np.stack(list(matcher.dense_cache_.values()))
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # names are array keys, not options
    _write(directory / "arrays.npz", buf.getvalue())
    _write(directory / "state.json", json.dumps(state, ensure_ascii=False).encode())
    for name, text in texts.items():
        _write(directory / name, text.encode())
    files = {p.name: _sha256(p) for p in sorted(directory.iterdir())}
    manifest = {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": matcher.mode_,
        "calibrated": matcher.calibrated_,
        "fit_levels": dict(matcher.fit_model_.thresholds_),
        "libraries": _versions(),
        "config": matcher.get_params(),
        "training_data_sha256": data_sha256,
        "metrics": metrics or {},
        "files": files,
    }
    _write(directory / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2).encode())
    _fsync_dir(directory)
    return directory


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a model directory (raises if absent or unreadable)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ModelNotFoundError(f"no model in {directory}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"{path} is not a readable manifest: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ModelIntegrityError(f"{path} is not a readable manifest: not a JSON object")
    return manifest


def verify_model(directory: str | os.PathLike) -> dict:
    """Check format version and every file's sha256; return the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelCompatibilityError(
            f"{directory} has model format {manifest.get('format_version')!r}; this version of "
            f"iei-match reads format {FORMAT_VERSION}: retrain the model")
    files = manifest.get("files")
    required = {"state.json", "arrays.npz"}
    if manifest.get("mode") == "learned":
        required |= {"ranker-need.txt", "ranker-program.txt", "fit.txt"}
    elif manifest.get("mode") != "content-only":
        raise ModelIntegrityError(f"{directory}/{MANIFEST} has an unknown mode "
                                  f"{manifest.get('mode')!r}")
    if not isinstance(files, dict) or not required <= set(files):
        raise ModelIntegrityError(f"{directory}/{MANIFEST} does not list the model's files "
                                  f"({', '.join(sorted(required))})")
    for name, digest in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise ModelIntegrityError(f"{directory}: file {name!r} is missing")
        if _sha256(path) != digest:
            raise ModelIntegrityError(
                f"{path} does not match the sha256 in its manifest: the file was changed or "
                f"truncated; refusing to load it")
    return manifest


def load_model(path: str | os.PathLike) -> Matcher:
    """Load a matcher from a model directory or a models root (its ``CURRENT`` version).

    Every file is verified against the manifest before it is parsed; a model whose files
    match but whose content is incomplete or inconsistent raises ModelIntegrityError too.
    """
    directory = resolve_model_dir(path)
    manifest = verify_model(directory)
    try:
        return _rebuild(directory, manifest)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError,
            lgb.basic.LightGBMError) as exc:
        raise ModelIntegrityError(f"{directory} is not a complete model: {exc!r}") from exc


def _rebuild(directory: Path, manifest: dict) -> Matcher:
    try:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelIntegrityError(f"{directory} cannot be read: {exc}") from exc
    m = Matcher(**state["params"])
    m.word_ = FieldVectorizer.from_state(state["word"], arrays["word.idf"])
    m.char_ = FieldVectorizer.from_state(state["char"], arrays["char.idf"])
    m.memory_ = Memory.from_state(state["memory"], arrays, m.word_.idf_)
    m.feature_names_ = list(state["feature_names"])
    m.dense_ = bool(state.get("dense", False))
    keys = state.get("dense_cache_keys", [])
    m.dense_cache_ = dict(zip(keys, arrays["dense_cache"], strict=True)) if keys else {}
    boosters = sorted(p for p in manifest["files"] if p.endswith(".txt"))
    if boosters:
        _check_rankers([directory / p for p in boosters])

    def text(name: str) -> str:
        return (directory / name).read_text(encoding="utf-8")

    m.rankers_ = {}
    for direction, ranker_state in state["rankers"].items():
        texts = {"booster": text(f"ranker-{direction}.txt")} if (
            f"ranker-{direction}.txt" in manifest["files"]) else {}
        m.rankers_[direction] = ranker_from_state(ranker_state, texts)
    if m.mode_ != manifest.get("mode"):
        raise ValueError(f"state mode {m.mode_!r} differs from the manifest's")
    fit_state = state["fit"]
    if fit_state.get("kind") == "calibrated":
        m.fit_model_ = FitModel.from_state(fit_state, arrays, text("fit.txt"))
    else:
        m.fit_model_ = SimilarityFit.from_state(fit_state, arrays, None)
    m.model_dir_ = str(directory)
    return m


# Parses LightGBM model files with LightGBM's C library alone (no Python package imports).
_PARSE_RANKERS = """
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1])
lib.LGBM_GetLastError.restype = ctypes.c_char_p
for path in sys.argv[2:]:
    with open(path, "rb") as fh:
        text = fh.read()
    booster, iterations = ctypes.c_void_p(), ctypes.c_int()
    if lib.LGBM_BoosterLoadModelFromString(ctypes.c_char_p(text), ctypes.byref(iterations),
                                           ctypes.byref(booster)) != 0:
        error = lib.LGBM_GetLastError().decode(errors="replace")[:300]
        sys.exit(os.path.basename(path) + ": " + error)
    lib.LGBM_BoosterFree(booster)
"""


def _check_rankers(paths: list[Path]) -> None:
    """Parse the rankers in a throwaway process before this one does.

    LightGBM's parser aborts or crashes the whole process on some malformed files (a
    truncated tree, a cut parameter section) instead of raising; a file with a matching
    sha256 but no valid format (a manifest edited to match) must not take a serving process
    down with it.
    """
    lib = lgb.basic._LIB._name
    try:
        done = subprocess.run([sys.executable, "-c", _PARSE_RANKERS, lib, *map(str, paths)],
                              capture_output=True, encoding="utf-8", errors="replace",
                              timeout=300,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ModelIntegrityError(f"{paths[0].parent}: LightGBM did not finish reading the "
                                  f"rankers; refusing to load them") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [""])[-1]
        if done.returncode < 0 or not why:
            why = f"LightGBM's parser crashed on them (exit {done.returncode})"
        raise ModelIntegrityError(f"{paths[0].parent}: the rankers are not LightGBM models "
                                  f"this version can read: {why}")


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model directory itself, or the version a models root's ``CURRENT`` points to."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    current = path / CURRENT
    if current.is_file():
        version = current.read_text(encoding="utf-8").strip()
        if not version or Path(version).name != version or version in (".", ".."):
            raise ModelIntegrityError(f"{current} does not name a version")
        target = path / version
        if not (target / MANIFEST).is_file():
            raise ModelNotFoundError(f"{current} points to {version}, which has no model")
        return target
    raise ModelNotFoundError(f"no model at {path}: train one with `iei-match train`")


def list_versions(root: str | os.PathLike) -> list[dict]:
    """Published versions under a models root, oldest first, with their metrics."""
    root = Path(root)
    if not root.is_dir():
        return []
    live = (root / CURRENT).read_text().strip() if (root / CURRENT).is_file() else None
    out = []
    dirs = [p for p in root.iterdir() if (p / MANIFEST).is_file()]
    for d in sorted(dirs, key=lambda p: (p.name.split("-")[0], len(p.name), p.name)):
        try:
            man = read_manifest(d)
        except ModelIntegrityError:  # not a version that could be loaded; not listed
            continue
        out.append({"version": d.name, "live": d.name == live, "created": man.get("created"),
                    "mode": man.get("mode"), "metrics": man.get("metrics", {})})
    return out


def _point_current(root: Path, version: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".CURRENT.")
    with os.fdopen(fd, "w") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    _fsync_dir(root)


def activate_version(root: str | os.PathLike, version: str) -> Path:
    """Make an already published, intact version the live one (e.g. to roll back)."""
    root = Path(root)
    if Path(version).name != version or not (root / version / MANIFEST).is_file():
        raise ModelNotFoundError(f"no version {version!r} under {root}")
    verify_model(root / version)
    _point_current(root, version)
    return root / version


def remove_stale_publishing(root: str | os.PathLike, older_than: float = 3600.0) -> list[str]:
    """Delete the temporary directories of publishes that were killed (``.publishing-*``
    not changed for ``older_than`` seconds); returns their names.

    A publish in progress writes its files within seconds, so a directory in which nothing
    changed for an hour is a leftover. Versions themselves are never touched.
    """
    root = Path(root)
    now, removed = time.time(), []
    for d in root.glob(".publishing-*") if root.is_dir() else ():
        try:
            if d.is_symlink() or not d.is_dir():
                continue
            changed = max([d.stat().st_mtime, *(f.lstat().st_mtime for f in d.rglob("*"))])
            if now - changed >= older_than:
                shutil.rmtree(d)
                removed.append(d.name)
        except OSError:  # taken by someone else meanwhile
            continue
    return removed


def publish_model(matcher: Matcher, root: str | os.PathLike, *, metrics: dict | None = None,
                  data_sha256: str | None = None, activate: bool = True) -> Path:
    """Save ``matcher`` as a new version under ``root`` and (by default) make it live.

    The version is written in a hidden temporary directory and renamed into place, and
    ``CURRENT`` is replaced atomically, so a crash leaves the previous version live.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    version, n = base, 1
    while (root / version).exists():
        n += 1
        version = f"{base}-{n}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".publishing-"))
    try:
        save_model(matcher, tmp / "model", metrics=metrics, data_sha256=data_sha256)
        os.rename(tmp / "model", root / version)
        _fsync_dir(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if activate:
        _point_current(root, version)
    return root / version

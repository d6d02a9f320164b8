"""Tests for iei_match.artifacts: versioned, hashed, pickle-free model files."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from iei_match.artifacts import (
    FORMAT_VERSION,
    activate_version,
    list_versions,
    load_model,
    publish_model,
    resolve_model_dir,
    save_model,
)
from iei_match.errors import (
    ModelCompatibilityError,
    ModelIntegrityError,
    ModelNotFoundError,
    NotFittedError,
)
from iei_match.matcher import Matcher
from synthetic import make_catalog

PARAMS = {"n_folds": 3, "n_estimators": 30, "random_state": 0, "n_jobs": 1}


class Evil:
    """Unpickling this object creates the file ``path`` (it calls ``open(path, "w")``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def data():
    needs, programs, links, _ = make_catalog("zh", seed=0, needs_per_category=6)
    new, _, _, _ = make_catalog("zh", seed=1, needs_per_category=2, need_prefix="new")
    return needs, programs, links, new


@pytest.fixture(scope="module")
def learned(data):
    needs, programs, links, _ = data
    return Matcher(**PARAMS).fit(needs, programs, links)


@pytest.fixture(scope="module")
def content_only(data):
    needs, programs, _, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Matcher(**PARAMS).fit(needs, programs, None)


@pytest.fixture(scope="module")
def published(learned, tmp_path_factory):
    """A models root with one published (learned) version; tests must not modify it."""
    root = tmp_path_factory.mktemp("models")
    version = publish_model(learned, root, metrics={"ndcg@10": 0.5})
    return root, version


@pytest.fixture
def model_copy(published, tmp_path):
    """A private copy of the published version directory, free to be tampered with."""
    _, version = published
    target = tmp_path / version.name
    shutil.copytree(version, target)
    return target


def outputs(matcher, data):
    _, programs, _, new = data
    return (matcher.rank(new, programs, k=5), matcher.partners(programs, new, k=5))


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_manifest(directory, **changes):
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(changes)
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def rehash(directory, name):
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][name] = sha256(directory / name)
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


# --- round trip and versions -----------------------------------------------------------


def test_publish_and_load_round_trip_gives_identical_output(published, learned, data):
    root, version = published
    loaded = load_model(root)
    assert loaded.mode_ == "learned"
    assert loaded.model_dir_ == str(version)
    assert loaded.get_params() == learned.get_params()
    assert loaded.feature_names_ == learned.feature_names_
    for a, b in zip(outputs(loaded, data), outputs(learned, data), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # loading the version directory itself works the same
    pd.testing.assert_frame_equal(outputs(load_model(version), data)[0],
                                  outputs(learned, data)[0], check_exact=True)


def test_published_version_layout(published):
    root, version = published
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == version.name
    names = {p.name for p in version.iterdir()}
    assert names == {"manifest.json", "state.json", "arrays.npz", "ranker-need.txt",
                     "ranker-program.txt", "fit.txt"}
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["metrics"] == {"ndcg@10": 0.5}
    assert manifest["files"] == {name: sha256(version / name)
                                 for name in names - {"manifest.json"}}
    # no temporary directories left behind
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_content_only_round_trip(content_only, data, tmp_path):
    path = save_model(content_only, tmp_path / "m")
    assert not (path / "ranker-need.txt").exists()
    loaded = load_model(path)
    assert loaded.mode_ == "content-only"
    for a, b in zip(outputs(loaded, data), outputs(content_only, data), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_save_refuses_an_unfitted_matcher_and_an_existing_directory(learned, tmp_path):
    with pytest.raises(NotFittedError):
        save_model(Matcher(), tmp_path / "m")
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        save_model(learned, tmp_path / "exists")


def test_new_version_becomes_current_and_rollback(learned, content_only, tmp_path):
    root = tmp_path / "models"
    first = publish_model(learned, root)
    second = publish_model(content_only, root)
    assert first != second and first.name < second.name
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == second.name
    assert load_model(root).mode_ == "content-only"
    versions = list_versions(root)
    assert [v["version"] for v in versions] == [first.name, second.name]
    assert [v["live"] for v in versions] == [False, True]
    # roll back
    assert activate_version(root, first.name) == first
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == first.name
    assert load_model(root).mode_ == "learned"
    assert resolve_model_dir(root) == first
    # publishing without activating leaves the live version alone
    third = publish_model(content_only, root, activate=False)
    assert third.is_dir()
    assert resolve_model_dir(root) == first


def test_activate_refuses_unknown_or_tampered_versions(learned, tmp_path):
    root = tmp_path / "models"
    good = publish_model(learned, root)
    bad = publish_model(learned, root)
    (bad / "state.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelNotFoundError):
        activate_version(root, "20000101T000000Z")
    with pytest.raises(ModelNotFoundError):
        activate_version(root, "../" + good.name)
    with pytest.raises(ModelIntegrityError):
        activate_version(root, bad.name)
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == bad.name
    activate_version(root, good.name)
    assert resolve_model_dir(root) == good


# --- integrity -------------------------------------------------------------------------


def flip_byte(path, offset=None):
    raw = bytearray(path.read_bytes())
    i = len(raw) // 2 if offset is None else offset
    raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("tamper", [
    "flip-arrays", "edit-state", "truncate-ranker", "append-ranker", "empty-state",
])
def test_tampered_files_are_refused(model_copy, tamper):
    if tamper == "flip-arrays":
        flip_byte(model_copy / "arrays.npz")
    elif tamper == "edit-state":
        state = json.loads((model_copy / "state.json").read_text(encoding="utf-8"))
        state["mode"] = "content-only"
        (model_copy / "state.json").write_text(json.dumps(state), encoding="utf-8")
    elif tamper == "truncate-ranker":
        path = model_copy / "ranker-need.txt"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif tamper == "append-ranker":
        with open(model_copy / "ranker-program.txt", "a", encoding="utf-8") as fh:
            fh.write("\nTree=999\n")
    elif tamper == "empty-state":
        (model_copy / "state.json").write_bytes(b"")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(model_copy)


@pytest.mark.parametrize("name", ["arrays.npz", "state.json", "ranker-need.txt",
                                  "ranker-program.txt"])
def test_a_missing_file_is_refused(model_copy, name):
    (model_copy / name).unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_model(model_copy)


def test_a_manifest_that_does_not_list_the_model_files_is_refused(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["arrays.npz"]
    (model_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)


def test_a_manifest_naming_a_file_outside_the_directory_is_refused(model_copy):
    outside = model_copy.parent / "outside.txt"
    outside.write_text("x", encoding="utf-8")
    manifest = json.loads((model_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["../outside.txt"] = sha256(outside)
    (model_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)


def test_an_unreadable_manifest_is_an_integrity_error(model_copy):
    (model_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, "1", None])
def test_a_wrong_format_version_is_a_compatibility_error(model_copy, version):
    rewrite_manifest(model_copy, format_version=version)
    with pytest.raises(ModelCompatibilityError, match="format"):
        load_model(model_copy)


def test_missing_models_are_not_found(tmp_path):
    empty = tmp_path / "empty-root"
    empty.mkdir()
    for path in (empty, tmp_path / "does-not-exist"):
        with pytest.raises(ModelNotFoundError) as info:
            load_model(path)
        assert isinstance(info.value, FileNotFoundError)
    assert list_versions(empty) == []
    (empty / "CURRENT").write_text("20990101T000000Z\n", encoding="utf-8")
    with pytest.raises(ModelNotFoundError):
        load_model(empty)


def test_a_current_file_pointing_outside_the_root_is_refused(published, tmp_path):
    _, version = published
    root = tmp_path / "root"
    root.mkdir()
    (root / "CURRENT").write_text(f"../{version.name}\n", encoding="utf-8")
    with pytest.raises(ModelIntegrityError):
        load_model(root)


# --- no pickle, ever -------------------------------------------------------------------


def test_the_evil_object_really_creates_its_marker(tmp_path):
    # Guard for the tests below: unpickling Evil is what would create the marker.
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(Evil(marker))).close()
    assert marker.exists()


def test_a_pickle_dropped_into_the_model_directory_is_never_loaded(model_copy, tmp_path, data):
    marker = tmp_path / "pwned"
    for name in ("evil.pkl", "model.pkl", "model.joblib", "ranker-need.pkl"):
        (model_copy / name).write_bytes(pickle.dumps(Evil(marker)))
    loaded = load_model(model_copy)
    assert not marker.exists()
    assert len(outputs(loaded, data)[0]) > 0


def test_a_manifest_listing_a_pickle_does_not_unpickle_it(model_copy, tmp_path):
    marker = tmp_path / "pwned"
    (model_copy / "evil.pkl").write_bytes(pickle.dumps(Evil(marker)))
    rehash(model_copy, "evil.pkl")
    load_model(model_copy)
    assert not marker.exists()


def test_load_never_calls_pickle(model_copy, monkeypatch, tmp_path):
    marker = tmp_path / "pwned"
    (model_copy / "evil.pkl").write_bytes(pickle.dumps(Evil(marker)))
    rehash(model_copy, "evil.pkl")

    def refuse(*args, **kwargs):
        raise AssertionError("load_model unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = load_model(model_copy)
    assert loaded.mode_ == "learned"
    assert not marker.exists()


def test_an_object_array_in_arrays_npz_is_refused_even_with_a_matching_hash(model_copy,
                                                                            tmp_path):
    marker = tmp_path / "pwned"
    with np.load(model_copy / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["evil"] = np.array([Evil(marker)], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (model_copy / "arrays.npz").write_bytes(buf.getvalue())
    rehash(model_copy, "arrays.npz")
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)
    assert not marker.exists()


def test_an_object_array_replacing_a_real_array_is_refused(model_copy, tmp_path):
    marker = tmp_path / "pwned"
    with np.load(model_copy / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["word.idf"] = np.array([Evil(marker)] * 3, dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (model_copy / "arrays.npz").write_bytes(buf.getvalue())
    rehash(model_copy, "arrays.npz")
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)
    assert not marker.exists()


# --- files the manifest does not vouch for ---------------------------------------------



def test_an_unlisted_missing_ranker_is_an_integrity_error(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["ranker-need.txt"]
    (model_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (model_copy / "ranker-need.txt").unlink()
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)


def test_an_unlisted_replaced_ranker_is_not_loaded(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["ranker-need.txt"]
    (model_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (model_copy / "ranker-need.txt").write_bytes((model_copy / "ranker-program.txt").read_bytes())
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)


def _drop_state_key(directory):
    state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
    del state["memory"]
    (directory / "state.json").write_text(json.dumps(state), encoding="utf-8")
    rehash(directory, "state.json")


def _drop_array(directory):
    with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "word.idf"}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (directory / "arrays.npz").write_bytes(buf.getvalue())
    rehash(directory, "arrays.npz")


def _garbage_ranker(directory):
    (directory / "ranker-need.txt").write_text("not a lightgbm model\n", encoding="utf-8")
    rehash(directory, "ranker-need.txt")


def _unknown_mode(directory):
    state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
    state["rankers"]["need"]["kind"] = "telepathic"
    (directory / "state.json").write_text(json.dumps(state), encoding="utf-8")
    rehash(directory, "state.json")


def _cut_ranker(directory):  # LightGBM's own parser aborts the process on this one
    path = directory / "ranker-need.txt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rehash(directory, "ranker-need.txt")


def _flipped_ranker(directory):
    raw = bytearray((directory / "ranker-program.txt").read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 16):
        raw[i] ^= 0xFF
    (directory / "ranker-program.txt").write_bytes(bytes(raw))
    rehash(directory, "ranker-program.txt")


def _cut_arrays(directory):
    path = directory / "arrays.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rehash(directory, "arrays.npz")


def _flipped_arrays(directory):
    flip_byte(directory / "arrays.npz")
    rehash(directory, "arrays.npz")


@pytest.mark.parametrize("damage", [_drop_state_key, _drop_array, _garbage_ranker,
                                    _unknown_mode, _cut_ranker, _flipped_ranker, _cut_arrays,
                                    _flipped_arrays])
def test_a_consistently_hashed_but_incomplete_model_is_an_integrity_error(model_copy, damage):
    damage(model_copy)
    with pytest.raises(ModelIntegrityError):
        load_model(model_copy)


@pytest.mark.parametrize("manifest", ["[1, 2]", '"model"', "\udcff{"])
def test_a_manifest_that_is_not_an_object_is_refused_and_not_listed(published, tmp_path,
                                                                    manifest):
    root = tmp_path / "root"
    shutil.copytree(published[0], root)
    bad = root / "20990101T000000Z"
    shutil.copytree(published[1], bad)
    (bad / "manifest.json").write_bytes(manifest.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelIntegrityError):
        load_model(bad)
    with pytest.raises(ModelIntegrityError):
        activate_version(root, bad.name)
    assert [v["version"] for v in list_versions(root)] == [published[1].name]


def test_a_killed_publish_leaves_nothing_after_the_next_start(tmp_path):
    import os
    import time

    from iei_match.artifacts import remove_stale_publishing

    old, fresh = tmp_path / ".publishing-old", tmp_path / ".publishing-fresh"
    for d in (old, fresh):
        (d / "model").mkdir(parents=True)
        (d / "model" / "arrays.npz").write_bytes(b"partial")
    version = tmp_path / "20260101T000000Z"
    version.mkdir()
    hour_ago = time.time() - 3700
    for p in (old, old / "model", old / "model" / "arrays.npz", version):
        os.utime(p, (hour_ago, hour_ago))
    assert remove_stale_publishing(tmp_path) == [".publishing-old"]
    assert not old.exists() and fresh.exists() and version.exists()
    # A directory whose files are still being written is kept, however old the directory.
    os.utime(fresh, (hour_ago, hour_ago))
    assert remove_stale_publishing(tmp_path) == [] and fresh.exists()
    assert remove_stale_publishing(tmp_path / "missing") == []

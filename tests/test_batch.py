"""Batch scoring on Dask: the same lists as rank/partners, on any scheduler, resumable."""

from __future__ import annotations

import logging
import threading

import pandas as pd
import pytest
from distributed import LocalCluster

from iei_match import batch as batch_module
from iei_match import batch_worker
from iei_match.artifacts import publish_model
from iei_match.batch import default_outputs, run_batch
from iei_match.batch_store import JobStore
from iei_match.batch_worker import CatalogFrame, ModelPayload, score_partition
from iei_match.errors import DataFileError, InputError, JobCancelledError, JobConflictError
from iei_match.matcher import Matcher
from synthetic import make_catalog


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    needs, programs, links, _ = make_catalog("zh", seed=0, programs_per_category=5,
                                             needs_per_category=12)
    matcher = Matcher(n_folds=3, n_estimators=60, min_rounds=10).fit(needs, programs, links)
    root = tmp_path_factory.mktemp("models") / "zh"
    publish_model(matcher, root)
    new, _, _, _ = make_catalog("zh", seed=5, programs_per_category=5, needs_per_category=12,
                                need_prefix="new")
    return {"matcher": matcher, "model": root, "needs": new, "programs": programs}


@pytest.fixture(scope="module")
def reference(world):
    m, new, programs = world["matcher"], world["needs"], world["programs"]
    return {"need": m.rank(new, programs, k=4), "program": m.partners(programs, new, k=4)}


def run(world, tmp_path, name="out.parquet", **kw):
    kw = {"partition_size": 7, "scheduler": "threads", "work_dir": tmp_path / "jobs", **kw}
    return run_batch(world["model"], world["needs"], world["programs"], tmp_path / name,
                     top_k=4, **kw)


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"matched_terms": str, "top_factors": str},
                       keep_default_na=False) if str(path).endswith(".csv") \
        else pd.read_parquet(path)


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False, rtol=0, atol=0)


def test_batch_gives_the_lists_of_rank_and_partners(world, reference, tmp_path):
    result = run(world, tmp_path)
    assert result.partitions == -(-len(world["needs"]) // 7) + -(-len(world["programs"]) // 7)
    assert result.outputs == default_outputs(tmp_path / "out.parquet")
    for direction in ("need", "program"):
        got = read(result.outputs[direction])
        assert list(got.columns[:4]) == list(reference[direction].columns[:4])
        assert_same(got, reference[direction])
        assert result.rows[direction] == len(got)
    assert not batch_worker._prepared and not batch_worker._models  # freed after the job
    by_need = read(result.outputs["need"]).groupby("need_id")["rank"].apply(list)
    assert set(by_need.index) == set(world["needs"]["need_id"])
    assert all(ranks == list(range(1, len(ranks) + 1)) for ranks in by_need)


def test_local_threads_and_a_cluster_of_two_processes_agree(world, reference, tmp_path):
    local = run(world, tmp_path, "local.csv", job_id="local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        remote = run(world, tmp_path, "remote.csv", job_id="remote",
                     scheduler=cluster.scheduler_address)
    for direction in ("need", "program"):
        a, b = read(local.outputs[direction]), read(remote.outputs[direction])
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert_same(a, reference[direction])


def test_one_direction_goes_to_the_output_itself(world, reference, tmp_path):
    result = run(world, tmp_path, "programs.xlsx", directions=("program",))
    assert set(result.outputs) == {"program"}
    got = pd.read_excel(result.outputs["program"], dtype={"matched_terms": str},
                        keep_default_na=False)
    assert list(got.columns[:4]) == ["program_id", "need_id", "rank", "score"]
    assert got["program_id"].tolist() == reference["program"]["program_id"].tolist()
    assert got["score"].round(9).tolist() == reference["program"]["score"].round(9).tolist()


def test_a_second_run_reuses_every_partition(world, reference, tmp_path):
    first = run(world, tmp_path, job_id="again")
    reports = []
    second = run(world, tmp_path, job_id="again", progress=reports.append,
                 scheduler="no-such-scheduler")  # never contacted: nothing is left to do
    assert second.reused == first.partitions == reports[0].reused
    assert [r.stage for r in reports] == ["running", "assembling", "done"]
    assert reports[-1].rows == sum(second.rows.values())
    assert_same(read(second.outputs["need"]), reference["need"])


def test_cancel_keeps_finished_partitions_and_a_rerun_completes(world, reference, tmp_path):
    reports = []
    stop = threading.Event()

    def progress(report):
        reports.append(report)
        if report.done >= 2:
            stop.set()

    with pytest.raises(JobCancelledError, match="same job id"):
        run(world, tmp_path, job_id="cancelled", partition_size=3, progress=progress,
            cancel=stop)
    done = len(list((tmp_path / "jobs" / "cancelled").glob("*/part-*.parquet")))
    assert 2 <= done < reports[0].total
    resumed = run(world, tmp_path, job_id="cancelled", partition_size=3)
    assert resumed.reused == done
    for direction in ("need", "program"):
        assert_same(read(resumed.outputs[direction]), reference[direction])


def test_a_partition_cut_short_is_computed_again(world, reference, tmp_path):
    first = run(world, tmp_path, job_id="cut", directions=("need",))
    part = JobStore(tmp_path / "jobs", "cut").partition_path("need", 1)
    part.write_bytes(part.read_bytes()[:20])  # a file a machine crash left half-written
    (part.parent / ".part-00003.parquet.x.tmp.parquet").write_bytes(b"junk")
    again = run(world, tmp_path, job_id="cut", directions=("need",))
    assert again.reused == first.partitions - 1
    assert not list(part.parent.glob(".part-*"))
    assert_same(read(again.outputs["need"]), reference["need"])


def test_a_job_id_used_with_other_settings_is_refused(world, tmp_path):
    run(world, tmp_path, job_id="taken", directions=("need",))
    with pytest.raises(JobConflictError, match="partition_size"):
        run(world, tmp_path, job_id="taken", directions=("need",), partition_size=5)


def test_a_job_running_elsewhere_is_refused(world, tmp_path):
    store = JobStore(tmp_path / "jobs", "busy")
    store.open({"x": 1})
    try:
        with pytest.raises(JobConflictError, match="running in another process"):
            run(world, tmp_path, job_id="busy")
    finally:
        store.close()


def test_cleanup_removes_the_job_directory(world, tmp_path):
    result = run(world, tmp_path, job_id="tidy", directions=("need",), cleanup=True)
    assert result.outputs["need"].is_file()
    assert not (tmp_path / "jobs" / "tidy").exists()


def test_too_many_rows_for_a_worksheet_are_refused_before_writing(world, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(batch_module, "XLSX_MAX_ROWS", 10)
    with pytest.raises(DataFileError, match="XLSX"):
        run(world, tmp_path, "big.xlsx", job_id="big", directions=("need",))
    assert not (tmp_path / "big.xlsx").exists()
    result = run(world, tmp_path, "big.parquet", job_id="big", directions=("need",))
    assert result.reused == result.partitions


@pytest.mark.parametrize("kwargs, error, message", [
    ({"job_id": "../escape"}, InputError, "job id"),
    ({"scheduler": "nonsense"}, InputError, "scheduler"),
    ({"partition_size": 0}, InputError, "partition_size"),
    ({"directions": ("need", "sideways")}, InputError, "directions"),
    ({"explain": -1}, InputError, "explain"),
])
def test_bad_settings_are_refused(world, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        run(world, tmp_path, **kwargs)


def test_bad_inputs_are_refused_before_any_work(world, tmp_path):
    with pytest.raises(DataFileError, match="unsupported output"):
        run(world, tmp_path, "out.json")
    with pytest.raises(InputError, match="lack the column"):
        run_batch(world["model"], world["needs"].drop(columns="text"), world["programs"],
                  tmp_path / "x.csv", work_dir=tmp_path / "jobs")
    with pytest.raises(InputError, match="top_k"):
        run_batch(world["model"], world["needs"], world["programs"], tmp_path / "x.csv",
                  top_k=0, work_dir=tmp_path / "jobs")
    assert not (tmp_path / "jobs").exists()


def test_the_model_travels_as_its_files_with_a_stable_digest(world):
    from_dir = ModelPayload.from_directory(world["model"])
    from_matcher = ModelPayload.from_matcher(world["matcher"])
    assert from_dir.digest == from_matcher.digest == ModelPayload.from_matcher(
        world["matcher"]).digest
    assert "manifest.json" in from_dir.files and all(isinstance(v, bytes)
                                                      for v in from_dir.files.values())
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in from_dir.files)
    tampered = dict(from_dir.files)
    tampered["state.json"] = tampered["state.json"].replace(b"{", b"{ ", 1)
    from iei_match.errors import ModelIntegrityError

    with pytest.raises(ModelIntegrityError):
        ModelPayload(tampered, "x").load()


def test_a_worker_vectorises_the_catalog_once(world, reference):
    payload = ModelPayload.from_directory(world["model"])
    catalog = CatalogFrame(world["programs"], "programs-key")
    needs = world["needs"]
    parts = [score_partition(payload, catalog, needs.iloc[i:i + 10], "need", 4, 5)
             for i in range(0, len(needs), 10)]
    assert_same(pd.concat(parts), reference["need"])
    matcher, prepared = batch_worker._prepared[(payload.digest, "programs-key", "need", None)]
    assert len(batch_worker._prepared) == 1  # one preparation served every partition
    assert list(prepared.ids) == world["programs"]["program_id"].astype(str).tolist()
    calls = []
    real_prepare = type(matcher).prepare
    try:
        type(matcher).prepare = lambda self, *a: calls.append(a) or real_prepare(self, *a)
        score_partition(payload, catalog, needs.iloc[:5], "need", 4, 5)
    finally:
        type(matcher).prepare = real_prepare
    assert calls == []


def test_a_local_job_prepares_each_catalog_once_and_workers_map_its_files(
        world, reference, tmp_path, monkeypatch):
    """Local workers read the catalog the job prepared (one preparation per direction, in
    the caller), and the lists are those of rank and partners; a remote cluster's workers
    prepare it themselves (the test above)."""
    calls = []
    real_prepare = Matcher.prepare
    monkeypatch.setattr(Matcher, "prepare",
                        lambda self, frame, kind="program", previous=None:
                        calls.append(kind) or real_prepare(self, frame, kind, previous))
    result = run(world, tmp_path, "shared.parquet", n_workers=2)
    assert sorted(calls) == ["need", "program"]
    for direction in ("need", "program"):
        assert (result.job_dir / f"catalog-{direction}" / "catalog.json").exists()
        assert_same(read(result.outputs[direction]), reference[direction])

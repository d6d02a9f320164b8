"""The live model: swapped under concurrent requests without losing one; retrained on
recorded outcomes behind a not-worse gate, in a process of its own; rolled back."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import psutil
import pytest

from iei_match.bundled import catalog_dir
from iei_match_service import catalogs
from iei_match_service.reference import _Reference as Reference

from .conftest import SMALL_MODEL, make_world


def wait_job(client, job_id: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def test_model_swap_under_concurrent_requests_loses_none(tmp_path, model_root):
    # Two published versions to swap between.
    root = tmp_path / "two"
    shutil.copytree(model_root, root)
    (first,) = [p.name for p in root.iterdir() if p.is_dir()]
    second = first + "-b"
    shutil.copytree(root / first, root / second)
    # The four clients ask faster than a key's rate limit allows; that is not tested here.
    world = make_world(tmp_path, root, rate_limit_per_minute=100_000)
    try:
        stop = threading.Event()
        seen: list[tuple[int, str]] = []

        def hammer() -> None:
            with world.client("herbal") as c:
                while not stop.is_set():
                    r = c.post("/api/v1/match", json={"description": "中药提取浓缩与制粒",
                                                      "k": 5})
                    seen.append((r.status_code, r.json().get("model_version", r.text)))

        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(hammer)
            with world.client("admin") as c:
                for i in range(6):
                    r = c.post(f"/api/v1/models/{(second, first)[i % 2]}/activate")
                    assert r.status_code == 200, r.text
                    time.sleep(0.15)
            stop.set()
        statuses = {s for s, _ in seen}
        assert statuses == {200}, [v for s, v in seen if s != 200][:3]
        assert {v for _, v in seen} == {first, second}
        assert len(seen) > 20
        with world.client("nanhai") as c:
            live = [v["version"] for v in c.get("/api/v1/models").json()["items"] if v["live"]]
        assert live == [first]
    finally:
        world.server.stop()


def test_a_model_is_warmed_before_it_is_made_live(tmp_path, model_root, monkeypatch):
    # Every preparation the service makes, counted (the real ones run).
    made: list[str] = []
    build, reference = catalogs._build, Reference.of.__func__

    def counted_build(kind, *args):
        made.append(kind)
        return build(kind, *args)

    def counted_reference(cls, *args):
        made.append("reference")
        return reference(cls, *args)

    monkeypatch.setattr(catalogs, "_build", counted_build)
    monkeypatch.setattr(Reference, "of", classmethod(counted_reference))
    root = tmp_path / "two"
    shutil.copytree(model_root, root)
    (first,) = [p.name for p in root.iterdir() if p.is_dir()]
    shutil.copytree(root / first, root / (first + "-b"))
    world = make_world(tmp_path, root)
    try:
        with world.client("herbal") as c:
            need = c.post("/api/v1/needs", json={"title": "中药制剂技术员",
                                                 "description": "中药提取浓缩与制粒"}).json()
        ask = [("herbal", "post", "/api/v1/match", {"description": "中药提取浓缩与制粒"}),
               ("herbal", "get", f"/api/v1/needs/{need['id']}/recommendations", None),
               ("fsvc", "get", "/api/v1/programs", None)]
        programs = None

        def requests() -> None:
            nonlocal programs
            for who, method, url, body in ask:
                with world.client(who) as c:
                    r = c.request(method, url, json=body)
                    assert r.status_code == 200, r.text
                    if url.endswith("programs"):
                        programs = r.json()["items"]
            with world.client("fsvc") as c:
                r = c.get(f"/api/v1/programs/{programs[0]['id']}/partners")
                assert r.status_code == 200, r.text

        requests()
        assert {"program", "need", "reference"} <= set(made)
        for version in (first + "-b", first, first + "-b"):
            made.clear()
            with world.client("admin") as c:
                r = c.post(f"/api/v1/models/{version}/activate")
                assert r.status_code == 200, r.text
            # Activating prepared the tables and the catalog for the new model ...
            assert sorted(made) == ["need", "program", "reference"], made
            made.clear()
            requests()
            # ... so that its first requests prepare nothing.
            assert made == [], made
        # The replaced model's tables are kept for requests still running on it, and let
        # go once no request has looked at them for a while.
        kept = world.server.app.state.services.catalogs
        assert len(kept.models("program")) == 2 and kept.models("program")[0] == version
        kept.OTHER_MODEL_S = 0.0
        requests()
        assert kept.models("program") == kept.models("need") == [version]
    finally:
        world.server.stop()


@pytest.mark.slow  # ~50 s on 2 cores: a real retraining
def test_retrain_learns_new_vocabulary_and_outcomes_and_publishes(tmp_path, model_root):
    # A small catalog keeps retraining quick; the gate and the publishing are the same.
    src = catalog_dir("cn-vocational")
    small = tmp_path / "catalog"
    small.mkdir()
    needs = pd.read_csv(src / "needs.csv", dtype=str).iloc[:150]
    links = pd.read_csv(src / "links.csv", dtype=str)
    links = links[links.need_id.isin(needs.need_id)]
    programs = pd.read_csv(src / "programs.csv", dtype=str)
    programs = programs[programs.program_id.isin(links.program_id)
                        | (programs.index % 4 == 0)]
    needs.to_csv(small / "needs.csv", index=False)
    links.to_csv(small / "links.csv", index=False)
    programs.to_csv(small / "programs.csv", index=False)
    world = make_world(tmp_path, model_root, catalog_dir=small, train_params=SMALL_MODEL)
    try:
        with world.client("cdit") as c:
            english = c.post("/api/v1/programs", json={
                "title": "Aircraft Structure Repair", "level": "高职专科",
                "description": "Riveting, sealing and repair of fuselage panels and composite "
                               "structures; reading assembly drawings."}).json()["id"]
        query = {"title": "Aircraft structure assembly technician",
                 "description": "riveting and sealing of fuselage panels", "k": 3}
        with world.client("soft") as c:
            before = c.post("/api/v1/match", json=query).json()
            need = c.post("/api/v1/needs", json={"title": "Fuselage riveter",
                                                 "description": "riveting fuselage panels"})
            c.post("/api/v1/outcomes", json={"need_id": need.json()["id"],
                                             "program_id": english, "event": "hired"})
        for other in ("herbal", "chengyu"):  # not an admin: one model serves every alliance
            with world.client(other) as c:
                assert c.post("/api/v1/models/retrain", json={}).status_code == 403
        with world.client("admin") as c:
            r = c.post("/api/v1/models/retrain", json={"force": True})
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["id"])
            assert job["state"] == "succeeded", job
            result = job["result"]
            assert result["published"] and result["labels"] >= 1
            assert result["version"] != before["model_version"]
            versions = c.get("/api/v1/models").json()["items"]
        assert [v["version"] for v in versions if v["live"]] == [result["version"]]
        assert versions[-1]["metrics"]["holdout_ndcg10"] == result["candidate_ndcg10"]
        with world.client("soft") as c:
            after = c.post("/api/v1/match", json=query).json()
        # The words of the new program are known to the retrained model only.
        def terms(answer: dict) -> set[str]:
            return {t for item in answer["items"] if item["id"] == english
                    for t in item["explanation"]["matched_terms"]}
        assert not terms(before) & {"fuselage", "sealing", "aircraft"}, before
        assert after["model_version"] == result["version"]
        assert after["items"][0]["id"] == english
        assert terms(after) & {"fuselage", "sealing", "aircraft"}, after
        # Rollback to the first version.
        with world.client("chengyu") as c:
            r = c.post(f"/api/v1/models/{before['model_version']}/activate")
            assert r.status_code == 403
        with world.client("admin") as c:
            r = c.post(f"/api/v1/models/{before['model_version']}/activate")
            assert r.status_code == 200
        with world.client("soft") as c:
            assert c.post("/api/v1/match", json=query).json()["model_version"] == before[
                "model_version"]
    finally:
        world.server.stop()


def test_a_retraining_trains_in_a_niced_child_and_a_cancel_does_not_wait_for_the_fit(
        tmp_path, model_root):
    """Training holds the GIL and the cores for tens of seconds: it runs in a child process
    at the batch jobs' lower priority, requests are answered meanwhile, and a cancel (as a
    shutdown) ends it within seconds, leaving the live model as it was."""
    world = make_world(tmp_path, model_root)  # the whole bundled catalog: a fit of ~30 s
    try:
        with world.client("admin") as c:
            live = [v["version"] for v in c.get("/api/v1/models").json()["items"] if v["live"]]
            job_id = c.post("/api/v1/models/retrain", json={"force": True}).json()["id"]
            deadline = time.monotonic() + 120
            while "training a candidate" not in (c.get(f"/api/v1/jobs/{job_id}").json()
                                                 ["message"] or ""):
                assert time.monotonic() < deadline, c.get(f"/api/v1/jobs/{job_id}").json()
                time.sleep(0.2)
            children = [p for p in psutil.Process().children(recursive=True)
                        if "iei_match_service.batch_process" in p.cmdline()]
            assert len(children) == 1 and children[0].nice() == 10  # IEI_MATCH_BATCH_NICE
            with world.client("herbal") as h:
                r = h.post("/api/v1/match", json={"description": "中药提取浓缩与制粒", "k": 5})
                assert r.status_code == 200 and r.json()["model_version"] == live[0]
            t0 = time.monotonic()
            assert c.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
            job = wait_job(c, job_id, timeout=60)
            assert job["state"] == "cancelled" and time.monotonic() - t0 < 10, job
            assert not children[0].is_running() or children[0].status() == psutil.STATUS_ZOMBIE
            now = [v["version"] for v in c.get("/api/v1/models").json()["items"] if v["live"]]
            assert now == live and len(c.get("/api/v1/models").json()["items"]) == 1
    finally:
        world.server.stop()

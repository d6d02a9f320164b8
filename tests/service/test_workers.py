"""``iei-match serve`` with several worker processes: how many by default, what each
computes at once, and two real workers sharing the port, the database and the model."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time

import pytest

from iei_match_service.settings import Settings, default_workers

from .conftest import SMALL_MODEL
from .faultkit import ServiceProcess, prepare


def test_one_worker_per_core_beyond_two_cores_and_at_most_eight():
    assert [default_workers(n) for n in (1, 2, 3, 4, 8, 64)] == [1, 1, 3, 4, 8, 8]
    assert Settings.from_env({}).workers == default_workers()
    assert Settings.from_env({"IEI_MATCH_WORKERS": "3"}).workers == 3


def test_each_worker_computes_its_share_of_the_rankings():
    env = {"IEI_MATCH_MAX_CONCURRENT_RANKINGS": "4"}
    assert Settings.from_env({**env, "IEI_MATCH_WORKERS": "1"}).rankings_per_worker == 4
    assert Settings.from_env({**env, "IEI_MATCH_WORKERS": "3"}).rankings_per_worker == 2
    assert Settings.from_env({**env, "IEI_MATCH_WORKERS": "8"}).rankings_per_worker == 1


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_two_workers_share_the_port_the_database_and_the_model_and_stop_on_sigterm(
        tmp_path, model_root):
    prep = prepare(tmp_path / "data", model_root)
    svc = ServiceProcess(prep, IEI_MATCH_WORKERS="2")
    try:
        svc.start(timeout=300)
        deadline = time.monotonic() + 120  # the second worker may still be starting
        while len(pids := set(re.findall(r"Started server process \[(\d+)\]", svc.log()))) < 2:
            assert time.monotonic() < deadline, svc.log()[-3000:]
            time.sleep(0.5)
        assert "2 worker processes" in svc.log()
        key = prep.keys["herbal"]
        with svc.client(key) as c:
            r = c.post("/api/v1/needs", json={"title": "中药制剂工", "description": "中药提取浓缩",
                                              "skills": ["中药制剂"]})
            assert r.status_code == 201, r.text
            need = r.json()["id"]
        versions = set()
        for _ in range(8):  # a new connection each time: either worker may take it
            with svc.client(key) as c:
                r = c.get(f"/api/v1/needs/{need}/recommendations", params={"k": 3})
                assert r.status_code == 200, r.text
                assert r.json()["items"] and r.json()["reference_majors"]
                versions.add(r.json()["model_version"])
        assert len(versions) == 1
        svc.signal(signal.SIGTERM)
        assert svc.wait(90) == 0, svc.log()[-3000:]
        assert all(_gone(int(pid)) for pid in pids)
    finally:
        svc.stop()


def test_the_workers_of_one_models_root_take_turns_to_train_the_first_model(tmp_path):
    from iei_match_service.model_host import ModelHost

    first, second = ModelHost(tmp_path / "models"), ModelHost(tmp_path / "models")
    order: list[str] = []

    def wait_then_train() -> None:
        with second.first_training_turn():
            order.append("second")

    with first.first_training_turn():
        waiting = threading.Thread(target=wait_then_train)
        waiting.start()
        time.sleep(0.3)
        order.append("first")  # the second is still waiting for its turn
    waiting.join(10)
    assert order == ["first", "second"]


@pytest.mark.slow
def test_two_workers_that_trained_the_first_model_stop_without_leaking(tmp_path, model_root):
    # The first model is trained inside a worker. Its progress bars used to leave a
    # multiprocessing semaphore behind, which the supervisor's resource tracker reported
    # ("leaked semaphore objects") when the service stopped.
    prep = prepare(tmp_path / "data", model_root)
    shutil.rmtree(prep.models_dir)
    svc = ServiceProcess(prep, IEI_MATCH_WORKERS="2",
                         IEI_MATCH_TRAIN_PARAMS=json.dumps(SMALL_MODEL))
    try:
        svc.start(timeout=300)
        assert (prep.models_dir / "CURRENT").exists()
        svc.signal(signal.SIGTERM)
        assert svc.wait(90) == 0, svc.log()[-3000:]
        assert "leaked" not in svc.log(), svc.log()[-3000:]
    finally:
        svc.stop()

"""Overload is shed at once: rankings beyond the running ones and a bounded queue get a
503 ``overloaded`` without waiting for a worker thread or a database connection, and the
process keeps answering /healthz."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from iei_match_service.errors import Unavailable
from iei_match_service.limits import Gate

from .conftest import make_world


def test_gate_admits_the_running_and_a_bounded_queue():
    gate = Gate(limit=2, timeout=0.05, queue=1)
    with ExitStack() as held:
        for _ in range(3):
            held.enter_context(gate.admitted())
        with pytest.raises(Unavailable) as refused, gate.admitted():
            pass
        assert refused.value.code == "overloaded"
    with gate.admitted():  # released: admitted again
        pass
    assert Gate(limit=3, timeout=1).queue == 6  # default: twice the running rankings


def test_gate_slot_times_out_with_a_503():
    gate = Gate(limit=1, timeout=0.05)
    with gate.slot():
        t0 = time.monotonic()
        with pytest.raises(Unavailable), gate.slot():
            pass
        assert time.monotonic() - t0 < 1


@pytest.fixture
def busy_world(tmp_path, model_root):
    w = make_world(tmp_path, model_root, max_concurrent_rankings=1)
    yield w
    w.server.stop()
    w.db.dispose()


def test_a_full_service_refuses_rankings_at_once_and_answers_healthz(busy_world):
    gate = busy_world.server.app.state.services.gate
    with busy_world.client("herbal") as c, busy_world.client("fsvc") as col:
        need = c.get("/api/v1/needs").json()["items"][0]["id"]
        program = col.get("/api/v1/programs").json()["items"][0]["id"]
        assert c.get(f"/api/v1/needs/{need}/recommendations").status_code == 200
        with ExitStack() as held:
            for _ in range(gate.limit + gate.queue):  # as many as may be in the service
                held.enter_context(gate.admitted())
            for r in (c.get(f"/api/v1/needs/{need}/recommendations"),
                      c.post("/api/v1/match", json={"title": "数控车工"}),
                      col.get(f"/api/v1/programs/{program}/partners")):
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "overloaded"
                assert r.elapsed.total_seconds() < gate.timeout  # not queued
            assert c.get("/healthz").status_code == 200
            assert c.get("/api/v1/needs").status_code == 200  # other routes are not gated
        assert c.get(f"/api/v1/needs/{need}/recommendations").status_code == 200

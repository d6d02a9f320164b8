"""Overload is shed at once: rankings beyond the running ones and a bounded queue get a
503 ``overloaded`` without waiting for a worker thread or a database connection, and the
process keeps answering /healthz."""

from __future__ import annotations

import asyncio
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from iei_match_service.errors import Unavailable
from iei_match_service.limits import Gate, WriteSlots

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


def test_write_slots_take_turns_and_time_out_with_a_503():
    async def turns() -> None:
        slots = WriteSlots(1, timeout=0.05)
        await slots.acquire()
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            await slots.acquire()
        assert refused.value.code == "overloaded" and time.monotonic() - t0 < 1
        waiting = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        assert not waiting.done()  # its turn comes when the holder gives it back
        slots.release()
        await waiting
        slots.release()
        await slots.acquire()  # free again

    with ThreadPoolExecutor(1) as own:  # a loop of its own (this thread may have one)
        own.submit(asyncio.run, turns()).result()


def test_writes_take_turns_give_them_back_when_refused_and_leave_rankings_alone(
        tmp_path, model_root):
    w = make_world(tmp_path, model_root, writes_at_once=1, queue_timeout_s=0.2)
    try:
        assert w.server.app.state.services.writes.limit == 1
        refused = [("post", "/api/v1/needs", None, {"title": "焊工"}, 401),  # a wrong key
                   ("post", "/api/v1/needs", "herbal", {"headcount": 2}, 422),  # no title
                   ("patch", "/api/v1/needs/999999", "herbal", {"headcount": 2}, 404)]
        for method, path, who, body, status in refused * 3:
            with (w.client(who) if who else w.server.client("iem_x_wrongkey")) as c:
                r = c.request(method, path, json=body)
                assert r.status_code == status, r.text

        def write(i: int) -> list[int]:  # each refusal gave its turn back: none waits long
            with w.client("herbal") as c:
                made = c.post("/api/v1/needs", json={"title": f"焊工{i}", "headcount": 2})
                changed = c.patch(f"/api/v1/needs/{made.json()['id']}",
                                  json={"headcount": 3})
                return [made.status_code, changed.status_code]

        # A client sending its body slowly holds no turn: the others' writes go on.
        head = (f"POST /api/v1/needs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                f"{w.keys['herbal']}\r\nContent-Type: application/json\r\n"
                f"Content-Length: 40\r\n\r\n{{\"title\": ").encode()
        with socket.create_connection(("127.0.0.1", w.server.settings.port)) as slow:
            slow.sendall(head)
            time.sleep(0.3)
            with ThreadPoolExecutor(6) as pool:
                got = [s for pair in pool.map(write, range(24)) for s in pair]
            assert got == [201, 200] * 24
        with w.client("herbal") as c:  # a ranking is a POST, and takes no write turn
            assert c.post("/api/v1/match", json={"title": "焊工"}).status_code == 200
    finally:
        w.server.stop()
        w.db.dispose()


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

"""Several workers on one port (``handoff.py``): the supervisor hands each connection to
the worker that holds the fewest, replaces a worker that dies, and on SIGTERM stops taking
connections and lets the workers finish what is in flight. Real processes and real HTTP;
the app is a tiny one that names the worker that answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


class Supervised:
    """``handoff.Supervisor`` serving ``handoff_app`` with ``workers`` processes."""

    def __init__(self, tmp_path: Path, workers: int = 2, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        code = textwrap.dedent(f"""
            import uvicorn
            from iei_match_service.handoff import Supervisor
            Supervisor(uvicorn.Config("tests.service.handoff_app:app", host="127.0.0.1",
                                      port={self.port}, workers={workers},
                                      log_level="info")).run()
        """)
        self.log = tmp_path / "supervisor.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                                         env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                         stdout=log, stderr=subprocess.STDOUT)
        self.workers = workers

    def ready(self, timeout: float = 60) -> None:
        """Until every worker has answered (a new connection each time goes to the worker
        that holds the fewest: all of them answer within a few)."""
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        while len(seen) < self.workers:
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                with httpx.Client(base_url=self.url, timeout=5) as c:
                    seen.add(c.get("/pid").json()["pid"])
            except httpx.TransportError:
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def supervised(tmp_path):
    s = Supervised(tmp_path)
    try:
        s.ready()
        yield s
    finally:
        s.stop()


def _pids(clients: list[httpx.Client]) -> list[int]:
    """The worker of each client's keep-alive connection, asked for by all at once."""
    out: list[int] = [0] * len(clients)

    def ask(i: int) -> None:
        out[i] = clients[i].get("/pid").json()["pid"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _clients(url: str, n: int) -> list[httpx.Client]:
    return [httpx.Client(base_url=url, timeout=10) for _ in range(n)]


def test_keep_alive_clients_that_connect_together_are_shared_evenly(supervised):
    clients = _clients(supervised.url, 4)
    try:
        pids = _pids(clients)
        assert sorted(Counter(pids).values()) == [2, 2], pids
        # Each client stays on its connection, with the worker it was handed to.
        assert _pids(clients) == pids
    finally:
        for c in clients:
            c.close()


def test_a_new_connection_goes_to_the_worker_that_holds_the_fewest(supervised):
    clients = _clients(supervised.url, 4)
    try:
        pids = _pids(clients)
        # Close both connections of one worker: it holds none, the other two.
        emptied = pids[0]
        for c, pid in zip(clients, pids, strict=True):
            if pid == emptied:
                c.close()
        time.sleep(0.3)  # the worker tells the supervisor of each close
        fresh = _clients(supervised.url, 2)
        clients += fresh
        for c in fresh:  # one after the other: each goes to the emptied worker
            assert c.get("/pid").json()["pid"] == emptied
    finally:
        for c in clients:
            c.close()


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(supervised):
    with httpx.Client(base_url=supervised.url, timeout=10) as c:
        victim = c.get("/pid").json()["pid"]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while len(seen - {victim}) < 2:  # the survivor and the replacement
        assert time.monotonic() < deadline, supervised.log.read_text()[-3000:]
        with httpx.Client(base_url=supervised.url, timeout=10) as c:
            try:
                seen.add(c.get("/pid").json()["pid"])
            except httpx.TransportError:
                time.sleep(0.2)
    assert victim not in seen


def test_a_worker_told_to_stop_loses_no_connection_and_is_replaced(supervised):
    with httpx.Client(base_url=supervised.url, timeout=10) as c:
        leaver = c.get("/pid").json()["pid"]
    os.kill(leaver, signal.SIGTERM)
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while len(set(seen) - {leaver}) < 2:  # the other worker and the replacement
        assert time.monotonic() < deadline, supervised.log.read_text()[-3000:]
        with httpx.Client(base_url=supervised.url, timeout=10) as c:
            seen.append(c.get("/pid").json()["pid"])  # a new connection: none may fail
    assert _alive(leaver) is False


def test_sigterm_finishes_the_request_in_flight_then_stops_with_status_0(supervised):
    answer: list[httpx.Response] = []
    with httpx.Client(base_url=supervised.url, timeout=10) as c:
        slow = threading.Thread(target=lambda: answer.append(c.get("/slow")))
        slow.start()
        time.sleep(0.2)
        supervised.proc.send_signal(signal.SIGTERM)
        slow.join(10)
    assert answer and answer[0].status_code == 200
    assert supervised.proc.wait(30) == 0, supervised.log.read_text()[-3000:]
    with pytest.raises(httpx.TransportError):  # nobody accepts any more
        httpx.get(supervised.url + "/pid", timeout=2)


def test_workers_end_when_their_supervisor_is_killed(supervised):
    clients = _clients(supervised.url, 2)
    try:
        pids = set(_pids(clients))
    finally:
        for c in clients:
            c.close()
    assert len(pids) == 2
    supervised.proc.kill()  # no chance to stop them: each sees its channel close
    supervised.proc.wait(10)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_while_no_worker_is_ready_connections_wait_in_the_kernel_not_the_supervisor(tmp_path):
    import psutil

    s = Supervised(tmp_path, HANDOFF_APP_STARTUP_S="4")
    try:
        time.sleep(1.0)  # the workers are starting
        supervisor = psutil.Process(s.proc.pid)
        before = supervisor.num_fds()
        answers: list[int] = []

        def ask() -> None:
            with httpx.Client(base_url=s.url, timeout=30) as c:
                answers.append(c.get("/pid").status_code)

        threads = [threading.Thread(target=ask) for _ in range(20)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        assert supervisor.num_fds() <= before + 2  # none of the 20 accepted yet
        for t in threads:
            t.join(60)
        assert answers == [200] * 20  # all answered once the workers were ready
    finally:
        s.stop()


def _take_all(channel: socket.socket, timeout: float = 0.5) -> list[socket.socket]:
    """The connections handed over ``channel`` until it stays quiet for ``timeout``."""
    out = []
    channel.settimeout(timeout)
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(channel, 16, 4)
        except TimeoutError:
            return out
        out += [socket.socket(fileno=fd) for fd in fds]


def test_a_worker_whose_channel_is_full_is_passed_over_then_served_again():
    from iei_match_service.handoff import READY, Dealer

    listener = socket.create_server(("127.0.0.1", 0))
    dealer = Dealer(listener)
    dealing = threading.Thread(target=dealer.run, daemon=True)
    dealing.start()
    busy, free = dealer.seat(), dealer.seat()
    busy.send(READY)
    free.send(READY)
    clients, got = [], []
    try:
        # The busy worker reads nothing: once its channel is full, the free one gets the
        # rest (it reads as it goes); nothing is lost and the dealer keeps accepting.
        for _ in range(600):
            clients.append(socket.create_connection(listener.getsockname()))
            got += _take_all(free, 0.001)
        got += _take_all(free)
        busy_got = _take_all(busy)
        got += busy_got
        assert len(got) == 600
        assert 0 < len(busy_got) < 300  # its channel filled before it had its share
        # Read again, the busy worker holds fewer connections: it gets the next ones.
        more = [socket.create_connection(listener.getsockname()) for _ in range(5)]
        clients += more
        again = _take_all(busy)
        got += again
        assert len(again) == 5
    finally:
        dealer.stop()
        dealing.join(10)
        for c in clients + got:
            c.close()


def test_the_supervisor_process_does_not_load_the_engine():
    # serve replaces itself with `python -m iei_match_service.handoff`: what that imports
    # is all the supervisor holds (the workers load the engine).
    code = ("import sys, runpy; sys.argv = ['x', '--help']\n"
            "try:\n    runpy.run_module('iei_match_service.handoff', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('iei_match', 'pandas', 'sklearn', 'lightgbm', 'numba')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "--workers" in result.stdout

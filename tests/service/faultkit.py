"""Helpers for the fault tests: the service as a real process, a cuttable TCP proxy, and a
prepared data directory (models, database, demo organisations, keys)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from iei_match_service.auth import create_key
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.demo import seed

from .conftest import KEYS, free_port


@dataclass
class Prepared:
    """A data directory with a models root, a migrated and seeded database and API keys."""

    data_dir: Path
    database_url: str
    orgs: dict
    keys: dict

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def prepare(data_dir: Path, model_root: Path, database_url: str = "") -> Prepared:
    """Copy ``model_root`` into ``data_dir/models``, seed the demo alliances, make keys."""
    shutil.copytree(model_root, data_dir / "models")
    url = database_url or f"sqlite:///{(data_dir / 'iei-match.db').as_posix()}"
    db = Database(url)
    try:
        upgrade(db.engine)
        with db.session() as s:
            orgs = {k: v.id for k, v in seed(s).items()}
            keys = {name: create_key(s, orgs[org], role) for name, (org, role) in KEYS.items()}
    finally:
        db.dispose()
    return Prepared(data_dir, url, orgs, keys)


class ServiceProcess:
    """``python -m iei_match_service.cli serve`` in its own process, configured by the
    environment as a user would; its output goes to a log file."""

    def __init__(self, prepared: Prepared, database_url: str | None = None, **env: str):
        self.prepared = prepared
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "IEI_MATCH_DATA_DIR": str(prepared.data_dir),
                    "IEI_MATCH_DATABASE_URL": database_url or prepared.database_url,
                    "IEI_MATCH_MODELS_DIR": str(prepared.models_dir),
                    "IEI_MATCH_HOST": "127.0.0.1", "IEI_MATCH_PORT": str(self.port),
                    "IEI_MATCH_RATE_LIMIT_PER_MINUTE": "1000000",
                    # one process (the default on 2 cores), whatever the machine: the tests
                    # kill it, count its limits and read its log as one process's
                    "IEI_MATCH_WORKERS": "1", **env}
        self.log_path = prepared.data_dir / f"service-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, ready: bool = True, timeout: float = 120) -> ServiceProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iei_match_service.cli", "serve"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        path = "/readyz" if ready else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the service at {self.url} did not answer {path}:\n"
                           f"{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Kill the process if it still runs (this process only, by its id)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers,
                            timeout=kwargs.pop("timeout", 60), **kwargs)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class TcpProxy:
    """Forwards a local port to ``target``. ``cut()`` closes the listener and every
    connection (the database is gone: connections are refused); ``stall()`` drops every
    connection and leaves new ones waiting unanswered (a network partition or a hung
    server); ``restore()`` forwards again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._open = False
        self._stalled = False
        self.accepted = 0

    def restore(self) -> TcpProxy:
        with self._lock:
            self._stalled = False
            if self._listener is not None:
                return self
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        with self._lock:
            self._listener, self._open = listener, True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    start = restore

    def _accept(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
                stalled = self._stalled
            if stalled:  # the kernel completes their handshakes; nobody answers
                time.sleep(0.05)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._open:
                    client.close()
                    upstream.close()
                    return
                if self._stalled:  # stalled while this one connected: dropped like the rest
                    client.close()
                    upstream.close()
                    continue
                self._sockets |= {client, upstream}
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def stall(self) -> None:
        with self._lock:
            self._stalled = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def cut(self) -> None:
        with self._lock:
            listener, self._listener, self._open = self._listener, None, False
            sockets = list(self._sockets)
        if listener is not None:
            listener.close()
        for sock in sockets:
            self._close(sock)

    close = cut


class SlowRequest:
    """An HTTP/1.1 request on its own connection whose body is sent in two parts: it is in
    flight (the server has started it) until ``finish()`` sends the rest."""

    def __init__(self, port: int, method: str, path: str, key: str, body: dict):
        data = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        self.sock.sendall(head + data[: len(data) // 2])
        self.rest = data[len(data) // 2:]

    def finish(self) -> tuple[int, dict]:
        """Send the rest of the body; the status and the complete JSON answer."""
        try:
            self.sock.sendall(self.rest)
            response = http.client.HTTPResponse(self.sock)
            response.begin()
            return response.status, json.loads(response.read())
        finally:
            self.sock.close()


def in_flight(url: str, admin_key: str) -> int:
    """Requests the service is serving, the asking one excluded (from /metrics, which needs
    an admin key)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    for line in httpx.get(url + "/metrics", headers=headers, timeout=10).text.splitlines():
        if line.startswith("iei_match_requests_in_flight "):
            return int(float(line.split()[1])) - 1
    raise AssertionError("no in-flight gauge in /metrics")

"""Fixtures for the service tests: a small trained model, databases (SQLite and the
machine's PostgreSQL), and the real app served by uvicorn on a real port."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn

from iei_match.artifacts import publish_model
from iei_match.bundled import catalog_dir
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher
from iei_match_service.app import create_app
from iei_match_service.auth import create_key
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.demo import seed
from iei_match_service.settings import Settings

PG_ADMIN_URL = os.environ.get("IEI_MATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SMALL_MODEL = {"n_estimators": 40, "n_folds": 3, "early_stopping_rounds": 10, "min_rounds": 10,
               "random_state": 0}


@pytest.fixture(scope="session")
def model_root(tmp_path_factory):
    """A models root with one small model trained on the bundled Chinese catalog."""
    root = tmp_path_factory.mktemp("models")
    src = catalog_dir("cn-vocational")
    needs, programs = load_needs(src / "needs.csv"), load_programs(src / "programs.csv")
    matcher = Matcher(**SMALL_MODEL).fit(needs, programs, load_links(src / "links.csv"))
    publish_model(matcher, root, metrics={"purpose": "tests"})
    return root


def _pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_factory():
    """Creates fresh PostgreSQL databases (dropped at the end); skips without a server,
    except under CI, where PostgreSQL is part of the machine and its absence is a failure."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not answering on 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"iei_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The same test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_factory")()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app under uvicorn on a free local port, in a background thread."""

    def __init__(self, settings: Settings):
        self.settings = settings.with_(port=free_port())
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1",
                                                    port=self.settings.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, ready: bool = True) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = httpx.get(self.url + ("/readyz" if ready else "/healthz"), timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server at {self.url} did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@dataclass
class World:
    """A running server over the demo alliances, with keys for several organisations."""

    server: LiveServer
    db: Database
    orgs: dict
    keys: dict = field(default_factory=dict)

    def client(self, who: str | None = None) -> httpx.Client:
        return self.server.client(self.keys[who] if who else None)


KEYS = {  # name: (organisation short name, role)
    "herbal": ("herbal", "enterprise"),   # enterprise, Nanhai alliance
    "soft": ("soft", "enterprise"),       # enterprise, Chengdu-Chongqing alliance
    "fsvc": ("fsvc", "college"),          # college, Nanhai alliance
    "cdit": ("cdit", "college"),          # college, Chengdu-Chongqing alliance
    "nanhai": ("nanhai", "coordinator"),
    "chengyu": ("chengyu", "coordinator"),
    "admin": ("shanghai", "admin"),
}


def make_world(tmp_path, model_root, database_url: str | None = None, **settings) -> World:
    data_dir = tmp_path / "data"
    shutil.copytree(model_root, data_dir / "models")
    # Tests send many keyless requests from one address; the failed-authentication budget
    # has its own tests (test_floods.py).
    settings.setdefault("auth_failures_per_minute", 1_000_000)
    cfg = Settings(data_dir=data_dir, database_url=database_url or "", **settings)
    db = Database(cfg.database_url)
    upgrade(db.engine)
    with db.session() as s:
        orgs = {k: v.id for k, v in seed(s).items()}
        keys = {name: create_key(s, orgs[org], role) for name, (org, role) in KEYS.items()}
    server = LiveServer(cfg).start()
    return World(server, db, orgs, keys)


@pytest.fixture
def world(tmp_path, model_root):
    w = make_world(tmp_path, model_root)
    yield w
    w.server.stop()
    w.db.dispose()


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory, model_root):
    """One server for a module's read-mostly tests."""
    w = make_world(tmp_path_factory.mktemp("world"), model_root)
    yield w
    w.server.stop()
    w.db.dispose()

"""Fixtures for the browser tests: the real app under uvicorn (access log on and recorded)
over a SQLite database seeded with the demo alliances, and headless Debian Chromium driven
by Playwright. Chromium is installed with apt-get when it is missing; without it the tests
are skipped locally and fail under CI=true."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import uvicorn

from iei_match.artifacts import list_versions, publish_model
from iei_match.bundled import catalog_dir
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher
from iei_match_service.auth import create_key
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.demo import seed
from iei_match_service.settings import Settings
from service.conftest import KEYS, SMALL_MODEL, LiveServer

from .browser import LAUNCH_ARGS, SCREENSHOTS, Tab, saved, sign_in
from .chromium import ensure_chromium


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run: {reason}")
    pytest.skip(f"browser tests cannot run: {reason}")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    path, why = ensure_chromium()
    if path is None:
        _unavailable(why)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install '.[test]')")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=str(chromium_path), headless=True,
                               args=LAUNCH_ARGS)
    except Exception as exc:  # a broken browser install
        pw.stop()
        _unavailable(f"Chromium at {chromium_path} did not start: {exc}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="session")
def web_model_root(tmp_path_factory) -> Path:
    """A small trained model: the one tests/service's ``model_root`` published earlier in
    this session when there is one (training takes a while on 2 cores), or the published
    model root named by IEI_MATCH_TEST_MODEL_ROOT, else our own."""
    if os.environ.get("IEI_MATCH_TEST_MODEL_ROOT"):
        return Path(os.environ["IEI_MATCH_TEST_MODEL_ROOT"])
    for current in sorted(tmp_path_factory.getbasetemp().glob("models*/CURRENT")):
        live = [v for v in list_versions(current.parent) if v["live"]]
        if live and live[0]["metrics"] == {"purpose": "tests"}:  # tests/service's, not another
            return current.parent
    root = tmp_path_factory.mktemp("web-models")
    src = catalog_dir("cn-vocational")
    matcher = Matcher(**SMALL_MODEL).fit(load_needs(src / "needs.csv"),
                                         load_programs(src / "programs.csv"),
                                         load_links(src / "links.csv"))
    publish_model(matcher, root, metrics={"purpose": "web tests"})
    return root


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> Path:
    """A slice of the Chinese catalog (60 needs and the programs they link to), so that
    retraining from the page takes seconds, not minutes."""
    src = catalog_dir("cn-vocational")
    out = tmp_path_factory.mktemp("small-catalog")
    needs = pd.read_csv(src / "needs.csv", dtype=str).iloc[:60]
    links = pd.read_csv(src / "links.csv", dtype=str)
    links = links[links.need_id.isin(needs.need_id)]
    programs = pd.read_csv(src / "programs.csv", dtype=str)
    needs.to_csv(out / "needs.csv", index=False)
    links.to_csv(out / "links.csv", index=False)
    programs[programs.program_id.isin(links.program_id)].to_csv(out / "programs.csv",
                                                                index=False)
    return out


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a record that cannot format is still a line
            self.lines.append(str(record.msg))


LOGGERS = ("uvicorn.access", "uvicorn.error", "iei_match_service")


class LoggedServer(LiveServer):
    """The live server with uvicorn's access log on; every log line is kept in ``log``."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.settings.port, log_level="info",
            log_config=None, access_log=True))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.log: list[str] = []
        self._handler = _Lines(self.log)
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self._handler)

    def stop(self) -> None:
        super().stop()
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)


@dataclass
class WebWorld:
    server: LoggedServer
    db: Database
    orgs: dict
    keys: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, who: str | None = None):
        return self.server.client(self.keys[who] if who else None)

    def sign_in(self, tab: Tab, who: str) -> None:
        """Sign ``tab`` in with the key of ``who`` (a name in ``KEYS``)."""
        sign_in(tab, self.url, self.keys[who], KEYS[who][1])


@pytest.fixture(scope="module")
def world(tmp_path_factory, web_model_root, small_catalog):
    """A fresh demo world per test module: SQLite, the small model, keys for each role."""
    data_dir = tmp_path_factory.mktemp("web-world") / "data"
    shutil.copytree(web_model_root, data_dir / "models")
    # Batch jobs run on threads in this process: no local Dask cluster to start per job.
    cfg = Settings(data_dir=data_dir, catalog_dir=small_catalog, train_params=SMALL_MODEL,
                   batch_scheduler="threads")
    db = Database(cfg.database_url)
    upgrade(db.engine)
    with db.session() as s:
        orgs = {k: v.id for k, v in seed(s).items()}
        keys = {name: create_key(s, orgs[org], role) for name, (org, role) in KEYS.items()}
    server = LoggedServer(cfg).start()
    yield WebWorld(server, db, orgs, keys)
    server.stop()
    db.dispose()


@pytest.fixture
def tab(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    t = Tab(page, [], [], [])

    def on_request(req):
        t.urls.append(req.url)
        auth = req.headers.get("authorization")
        if auth:
            t.auth_headers.append(auth)

    page.on("request", on_request)
    page.on("console", lambda m: t.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.console_errors.append(f"page error: {e}"))
    yield t
    context.close()
    # Failed API calls (401/404/422 answers) are logged by the browser as resource errors;
    # anything else (a script error, a blocked inline script or style) is a defect.
    unexpected = [e for e in t.console_errors if "Failed to load resource" not in e]
    assert not unexpected, unexpected


def pytest_terminal_summary(terminalreporter):
    if saved:
        terminalreporter.write_line(f"web page screenshots ({len(saved)}): {SCREENSHOTS}")

"""Security evidence: keys hashed at rest and compared in constant time, revocation, per-key
rate limiting, pickles in the models directory never loaded, safe defaults.

(The route inventory and the cross-tenant matrix are test_route_inventory.py and
test_access_matrix.py.)
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from iei_match.artifacts import load_model
from iei_match.errors import IeiMatchError
from iei_match_service import auth
from iei_match_service.api import orgs as orgs_api
from iei_match_service.app import create_app
from iei_match_service.auth import authenticate, create_key
from iei_match_service.cli import build_parser
from iei_match_service.cli import main as cli_main
from iei_match_service.db.tables import ApiKey
from iei_match_service.errors import RateLimited
from iei_match_service.limits import RateLimiter
from iei_match_service.model_host import ModelHost
from iei_match_service.settings import Settings

from .conftest import make_world

ROOT = Path(__file__).resolve().parents[2]
RATE = 60  # requests a minute per key in this module's server: one token a second


@pytest.fixture(scope="module")
def sec_world(tmp_path_factory, model_root):
    w = make_world(tmp_path_factory.mktemp("security"), model_root, rate_limit_per_minute=RATE)
    yield w
    w.server.stop()
    w.db.dispose()


def fresh_key(world, org: str = "herbal", role: str = "enterprise") -> str:
    with world.db.session() as s:
        return create_key(s, world.orgs[org], role)


# -- keys ---------------------------------------------------------------------------------

def test_keys_are_stored_only_as_sha256(sec_world):
    keys = list(sec_world.keys.values())
    with sec_world.db.session() as s:
        rows = {r.prefix: r for r in s.scalars(select(ApiKey))}
    for key in keys:
        prefix = key.split("_")[1]
        row = rows[prefix]
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in (row.prefix, row.key_hash)
    # Nowhere in the database files (main file, write-ahead log) is a key or its secret.
    # Read by another process: closing a file this process opened on the database would
    # drop the server's SQLite locks here (POSIX locks are per process).
    data = sec_world.server.settings.data_dir
    files = [str(p) for p in data.glob("iei-match.db*") if p.is_file()]
    assert files
    needles = {k: [k, k.split("_", 2)[2], hashlib.sha256(k.encode()).hexdigest()]
               for k in keys}
    script = ("import json, sys; files, needles = json.load(sys.stdin); "
              "blob = b''.join(open(f, 'rb').read() for f in files); "
              "print(json.dumps({k: [n.encode() in blob for n in v] "
              "for k, v in needles.items()}))")
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps([files, needles]),
                         capture_output=True, text=True, timeout=60, check=True)
    for whole, secret, digest in json.loads(out.stdout).values():
        assert not whole and not secret, "a key is stored in plain text"
        assert digest, "the key's sha256 is not in the database"


def test_keys_are_compared_in_constant_time(sec_world, monkeypatch):
    """authenticate() compares the SHA-256 digests with hmac.compare_digest, once per call,
    whether the prefix exists or not (so timing does not tell which prefixes exist)."""
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    good = sec_world.keys["herbal"]
    headers = {"valid": f"Bearer {good}", "wrong secret": f"Bearer {good[:-3]}xyz",
               "unknown prefix": "Bearer iem_000000000000_" + "a" * 43,
               "not a key shape": "Bearer hello"}
    with sec_world.db.session() as s:
        for label, header in headers.items():
            calls.clear()
            try:
                who = authenticate(s, header)
                assert label == "valid" and who.org_id == sec_world.orgs["herbal"]
            except auth.Unauthorized:
                assert label != "valid"
            assert len(calls) == 1, label
            assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in calls[0]), label


def test_revoked_keys_are_refused_at_once(sec_world, capsys):
    """`iei-match admin revoke-key PREFIX` (the way to rotate: create the new key, move the
    clients, revoke the old one); the server refuses the key from the next request on."""
    key = fresh_key(sec_world)
    prefix = key.split("_")[1]
    with sec_world.server.client(key) as c:
        assert c.get("/api/v1/me").status_code == 200
    data_dir = str(sec_world.server.settings.data_dir)

    def admin(*args):
        code = cli_main(["admin", *args, "--data-dir", data_dir])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    listed = admin("list-keys")
    assert listed.returncode == 0, listed.stderr
    assert prefix in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    r = admin("revoke-key", prefix)
    assert r.returncode == 0, r.stderr
    assert f"key {prefix}" in r.stdout and "revoked" in r.stdout
    with sec_world.server.client(key) as c:
        r = c.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    again = admin("revoke-key", f"iem_{prefix}")
    assert again.returncode == 0 and "already revoked" in again.stdout
    unknown = admin("revoke-key", "000000000000")
    assert unknown.returncode == 2 and "no API key with prefix" in unknown.stderr
    # Other keys of the same organisation still work.
    with sec_world.client("herbal") as c:
        assert c.get("/api/v1/me").status_code == 200


# -- rate limiting ------------------------------------------------------------------------

def test_rate_limit_is_per_key_with_retry_after(sec_world):
    a, b = fresh_key(sec_world), fresh_key(sec_world, "fsvc", "college")
    served = 0
    with sec_world.server.client(a) as ca:
        for _ in range(RATE * 2):
            r = ca.get("/api/v1/me")
            if r.status_code != 200:
                break
            served += 1
        assert r.status_code == 429, r.text
        # the bucket holds RATE requests; a few more refill while the loop runs
        assert RATE <= served <= RATE + 15, served
        err = r.json()["error"]
        assert err["code"] == "rate_limited" and err["retry_after"] > 0
        wait = int(r.headers["Retry-After"])
        assert 1 <= wait <= 2
        with sec_world.server.client(b) as cb:  # another key is not affected
            assert cb.get("/api/v1/me").status_code == 200
        time.sleep(wait)
        assert ca.get("/api/v1/me").status_code == 200  # the bucket refills


def test_rate_limiter_refills_to_its_capacity(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("iei_match_service.limits.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=3)
    for _ in range(3):
        limiter.check(1)
    with pytest.raises(RateLimited) as info:
        limiter.check(1)
    assert info.value.status == 429 and info.value.extra["retry_after"] == pytest.approx(20)
    limiter.check(2)  # a different key has its own bucket
    now[0] += 60  # a minute later the bucket is full again, and no fuller
    for _ in range(3):
        limiter.check(1)
    with pytest.raises(RateLimited):
        limiter.check(1)


# -- pickles in the models directory ------------------------------------------------------

class Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plant_pickles(root: Path, marker: Path) -> list[str]:
    """Malicious pickles under every name a loader might try; returns the planted versions
    (each newer than the good one, so a loader looking for the newest tries them first)."""
    evil = pickle.dumps(Payload(marker))
    for name in ("model.joblib", "model.pkl", "model.pickle", "matcher.pkl"):
        (root / name).write_bytes(evil)
    good = root / (root / "CURRENT").read_text().strip()
    versions = []

    def version(name: str, files: dict[str, bytes], mode: str = "learned") -> None:
        d = root / name
        d.mkdir()
        for fname, data in files.items():
            (d / fname).write_bytes(data)
        manifest = json.loads((good / "manifest.json").read_text())
        manifest.update(mode=mode, files={f: _sha(d / f) for f in files})
        (d / "manifest.json").write_text(json.dumps(manifest))
        versions.append(name)

    # Every model file a pickle, with matching hashes in the manifest.
    version("29990101T000000Z-1", {n: evil for n in ("state.json", "arrays.npz",
                                                   "ranker-need.txt", "ranker-program.txt",
                                                   "model.pkl")})
    # A real model whose arrays hold a pickled object array.
    buf = io.BytesIO()
    arrays = dict(np.load(good / "arrays.npz"))
    arrays["word.idf"] = np.array([Payload(marker)], dtype=object)
    np.savez(buf, **arrays)
    files = {p.name: p.read_bytes() for p in good.iterdir() if p.name != "manifest.json"}
    files["arrays.npz"] = buf.getvalue()
    version("29990101T000000Z-2", files)
    # A manifest that names only pickles.
    version("29990101T000000Z-3", {"model.pkl": evil, "model.joblib": evil})
    return versions


@pytest.fixture(scope="module")
def pickled_root(tmp_path_factory, model_root):
    base = tmp_path_factory.mktemp("pickles")
    root = base / "models"
    shutil.copytree(model_root, root)
    marker = base / "PWNED"
    # The payload is live: unpickling it does create the marker.
    probe = base / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()
    versions = plant_pickles(root, marker)
    return root, marker, versions


def test_pickled_model_versions_are_refused_without_running_code(pickled_root):
    root, marker, versions = pickled_root
    for v in versions:
        with pytest.raises(IeiMatchError):
            load_model(root / v)
        assert not marker.exists(), v


def test_a_start_on_a_pickled_version_serves_the_good_one(pickled_root, tmp_path):
    root, marker, versions = pickled_root
    copy = tmp_path / "models"
    shutil.copytree(root, copy)
    good = (copy / "CURRENT").read_text().strip()
    for v in versions:
        (copy / "CURRENT").write_text(v + "\n")
        host = ModelHost(copy)
        live = host.load_current()
        assert not marker.exists(), v
        assert live is not None and live.version == good, (v, host.last_error)
        assert host.fallback_from == v  # what /readyz reports (test_ready_names_a_fallback)


def test_service_refuses_pickled_versions_and_keeps_serving(pickled_root, tmp_path):
    root, marker, versions = pickled_root
    w = make_world(tmp_path, root)
    try:
        assert not marker.exists()
        with w.client("admin") as c:
            live = c.get("/readyz").json()["model_version"]
            assert live not in versions
            for v in versions:
                r = c.post(f"/api/v1/models/{v}/activate")
                assert r.status_code == 409, (v, r.status_code, r.text)
                err = r.json()["error"]
                assert err["code"].startswith("model_") and err["message"], err
                assert str(root) not in err["message"] and str(tmp_path) not in err["message"]
                assert not marker.exists(), v
            listed = {m["version"]: m["live"] for m in c.get("/api/v1/models").json()["items"]}
            assert listed[live] is True and not any(listed.get(v) for v in versions)
            r = c.post("/api/v1/match", json={"title": "数控车工", "k": 3})
            assert r.status_code == 200 and r.json()["model_version"] == live
        assert not marker.exists()
    finally:
        w.server.stop()
        w.db.dispose()


def test_no_code_path_unpickles():
    """The engine and the service never call a loader that unpickles."""
    pattern = re.compile(r"pickle\.loads?\(|joblib\.load\(|allow_pickle\s*=\s*True|"
                         r"torch\.load\(|read_pickle\(|dill\.|cloudpickle\.loads?\(")
    found = [f"{p.relative_to(ROOT)}:{n}" for base in ("src", "service", "training")
             for p in (ROOT / base).rglob("*.py")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert not found, found


# -- safe defaults ------------------------------------------------------------------------

def test_defaults_bind_to_localhost_without_debug(tmp_path, monkeypatch):
    assert Settings().host == "127.0.0.1"
    assert Settings.from_env({}).host == "127.0.0.1"
    app = create_app(Settings(data_dir=tmp_path / "d"))
    assert app.debug is False
    seen = {}
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    for var in ("IEI_MATCH_HOST", "IEI_MATCH_PORT"):
        monkeypatch.delenv(var, raising=False)
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path / "d")])
    assert args.func(args) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    assert not seen.get("reload") and seen.get("log_level") != "debug"


def test_unexpected_errors_show_no_stack_trace(sec_world, monkeypatch):
    def boom(*_):
        raise RuntimeError("secret detail at /srv/iei/app.py line 1")

    monkeypatch.setattr(orgs_api, "alliances_of", boom)
    with sec_world.client("herbal") as c:
        r = c.get("/api/v1/me")
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal",
                                  "message": "an unexpected error occurred; it has been logged"}}
    assert "Traceback" not in r.text and "secret" not in r.text


def test_ready_names_a_fallback_and_a_good_current_clears_it(pickled_root, tmp_path):
    root, marker, versions = pickled_root
    copy = tmp_path / "models"
    shutil.copytree(root, copy)
    good = (copy / "CURRENT").read_text().strip()
    (copy / "CURRENT").write_text(versions[0] + "\n")
    w = make_world(tmp_path, copy)
    try:
        with w.client() as c:
            ready = c.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["model_version"] == good
            assert versions[0] in body["model_note"] and "refused" in body["model_note"]
        with w.client("admin") as c:  # the admin activates the good version again
            assert c.post(f"/api/v1/models/{good}/activate").status_code == 200
            body = c.get("/readyz").json()
            assert body["model_version"] == good and "model_note" not in body
    finally:
        w.server.stop()
        w.db.dispose()
    assert not marker.exists()

"""`iei-match admin ...` and `iei-match demo --no-serve` as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import func, select

from iei_match_service.auth import authenticate
from iei_match_service.cli import main as cli_main
from iei_match_service.db.engine import Database
from iei_match_service.db.tables import ApiKey, Need
from iei_match_service.errors import Unauthorized


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iei_match_service.cli", *args,
                           "--data-dir", str(tmp_path / "data")], capture_output=True,
                          text=True, timeout=300)


def run_here(capsys, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """The same command in this process (``cli.main``): the admin commands' own logic
    without a fresh interpreter importing the engine each time (~4 s a command). The
    entry point itself runs as a process in the demo test below."""
    argv = [*args, "--data-dir", str(tmp_path / "data")]
    capsys.readouterr()
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


def test_admin_creates_orgs_and_keys_and_imports(tmp_path, capsys):
    def run(tmp_path, *args):
        return run_here(capsys, tmp_path, *args)

    r = run(tmp_path, "admin", "create-org", "--kind", "alliance", "--name", "测试联盟")
    assert r.returncode == 0, r.stderr
    alliance = int(r.stdout.strip())
    r = run(tmp_path, "admin", "create-org", "--kind", "enterprise", "--name", "测试企业",
            "--alliance", str(alliance), "--province", "广东省", "--city", "佛山市")
    enterprise = int(r.stdout.strip())
    r = run(tmp_path, "admin", "create-key", "--org", str(enterprise), "--role", "enterprise")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    db = Database(f"sqlite:///{tmp_path / 'data' / 'iei-match.db'}")
    with db.session() as s:
        who = authenticate(s, f"Bearer {key}")
        assert (who.role, who.org_id) == ("enterprise", enterprise)
        assert key not in {k.key_hash for k in s.scalars(select(ApiKey))}
    # A college key for an enterprise is refused.
    r = run(tmp_path, "admin", "create-key", "--org", str(enterprise), "--role", "college")
    assert r.returncode == 2 and "error:" in r.stderr
    # Import: one bad row refuses the file; a good file goes in.
    bad = tmp_path / "needs.csv"
    pd.DataFrame({"title": ["焊工", ""], "description": ["焊接", "x"],
                  "headcount": ["2", "-1"]}).to_csv(bad, index=False)
    r = run(tmp_path, "admin", "import", "--kind", "needs", "--file", str(bad), "--org",
            str(enterprise))
    assert r.returncode == 2
    assert "row 3" in r.stderr and "needs.csv" in r.stderr
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Need)) == 0
    pd.DataFrame({"title": ["焊工", "电工"], "description": ["焊接", "电工作业"],
                  "headcount": ["2", "1"]}).to_csv(bad, index=False)
    r = run(tmp_path, "admin", "import", "--kind", "needs", "--file", str(bad), "--org",
            str(enterprise))
    assert r.returncode == 0, r.stderr
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Need)) == 2
    db.dispose()


def test_demo_seeds_once_and_prints_a_key_per_role(tmp_path):
    first = run(tmp_path, "demo", "--no-serve")
    second = run(tmp_path, "demo", "--no-serve")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    for role in ("enterprise", "college", "coordinator", "admin"):
        assert role in first.stdout
    keys = [line.strip() for line in first.stdout.splitlines() if line.strip().startswith("iem_")]
    assert len(keys) == 4 and len(set(keys)) == 4
    again = [line.strip() for line in second.stdout.splitlines()
             if line.strip().startswith("iem_")]
    db = Database(f"sqlite:///{tmp_path / 'data' / 'iei-match.db'}")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Need)) == 7  # seeded once
        # each run leaves one valid key per role: the first run's keys are revoked
        for key in keys:
            with pytest.raises(Unauthorized):
                authenticate(s, f"Bearer {key}")
        assert sorted(authenticate(s, f"Bearer {k}").role for k in again) == [
            "admin", "college", "coordinator", "enterprise"]
        live = s.scalar(select(func.count()).select_from(ApiKey)
                        .where(ApiKey.revoked_at.is_(None)))
        assert live == 4
    db.dispose()

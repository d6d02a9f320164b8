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
from iei_match_service.db.tables import ApiKey, Need, Organization
from iei_match_service.demo import ALLIANCES, COLLEGES, ENTERPRISES
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
    # One key per demo organisation, labelled with its role and name (and an admin key).
    lines = [line.strip() for line in first.stdout.splitlines()]
    labelled = {(lines[i - 1].split(maxsplit=1)[0], lines[i - 1].split(maxsplit=1)[1]): line
                for i, line in enumerate(lines) if line.startswith("iem_")}
    expected = ({("coordinator", name) for name, *_ in ALLIANCES.values()}
                | {("enterprise", name) for _, _, name, *_ in ENTERPRISES}
                | {("college", name) for _, _, name, *_ in COLLEGES})
    assert expected <= set(labelled) and len(labelled) == len(expected) + 1
    assert {role for role, _ in labelled} == {"enterprise", "college", "coordinator", "admin"}
    assert len(set(labelled.values())) == len(labelled)
    db = Database(f"sqlite:///{tmp_path / 'data' / 'iei-match.db'}")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Need)) == 8  # seeded once
        names = dict(s.execute(select(Organization.id, Organization.name)).all())
        for key in labelled.values():  # the first run's keys were revoked by the second
            with pytest.raises(Unauthorized):
                authenticate(s, f"Bearer {key}")
        lines = [line.strip() for line in second.stdout.splitlines()]
        again = {(lines[i - 1].split(maxsplit=1)[0], lines[i - 1].split(maxsplit=1)[1]): line
                 for i, line in enumerate(lines) if line.startswith("iem_")}
        assert set(again) == set(labelled)
        for (role, name), key in again.items():  # each key is what its label says
            who = authenticate(s, f"Bearer {key}")
            assert who.role == role and names[who.org_id] == name, (role, name)
        live = s.scalar(select(func.count()).select_from(ApiKey)
                        .where(ApiKey.revoked_at.is_(None)))
        assert live == len(again) == len(labelled)  # one per organisation and role
    db.dispose()


@pytest.mark.slow  # trains the default model on the bundled catalog: about 30 s on 2 cores
def test_first_demo_start_is_ready_within_the_readme_figure(tmp_path):
    import re
    import time
    from pathlib import Path

    import httpx

    from .conftest import free_port

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    minutes = int(re.search(r"first start\s+trains the default model.*?takes about\s+(\d+)"
                            r"\s+minutes?", readme, re.S).group(1))
    port = free_port()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from iei_match_service.cli import main; "
         "sys.exit(main(sys.argv[1:]))", "demo", "--data-dir", str(tmp_path / "data"),
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = None
        while time.monotonic() - start < 2 * 60 * minutes and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    ready = time.monotonic() - start
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"the first demo start was ready after {ready:.1f} s (README: about {minutes} min)")
    # "about": within half as much again, on a machine whose cores may be shared
    assert ready is not None and ready <= 90 * minutes, (ready, minutes)

"""The engine is a plain library: no web, database, service or training code, no env vars."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import iei_match

FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "psycopg", "psycopg2", "uvicorn", "service",
             "iei_match_service",
             "training")
ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(iei_match.__file__).resolve().parent

PROBE = """
import importlib, json, pkgutil, sys
import iei_match
names = ["iei_match"] + sorted(m.name for m in pkgutil.walk_packages(iei_match.__path__,
                                                                     "iei_match."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
"""


def submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(iei_match.__path__, "iei_match."))


def test_every_submodule_is_covered():
    names = submodules()
    for expected in ("iei_match.cli", "iei_match.matcher", "iei_match.artifacts",
                     "iei_match.evaluate", "iei_match.io", "iei_match.features",
                     "iei_match.retrieval", "iei_match.kernels", "iei_match.text",
                     "iei_match.vectorize", "iei_match.errors", "iei_match.bundled",
                     "iei_match.metrics", "iei_match.peers"):
        assert expected in names


def test_importing_the_engine_pulls_in_no_service_code():
    # Run from the repository root, where ``service`` and ``training`` are importable, so
    # that an import of them anywhere in the engine would succeed and show up here.
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(report["imported"]) >= set(submodules())
    leaked = sorted(m for m in report["modules"]
                    if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert leaked == []


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """Lines of ``path`` that touch the process environment (os.environ, os.getenv, ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv",
                                                             "getenvb", "putenv", "unsetenv"):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv", "environb"):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in ("environ", "getenv", "environb") for a in node.names):
            found.append((node.lineno, "from os import ..."))
    return found


def allowed_in_embeddings(path: Path, lineno: int) -> bool:
    """embeddings.py may set the Hugging Face offline switches, and nothing else."""
    line = path.read_text(encoding="utf-8").splitlines()[lineno - 1].strip()
    return path.name == "embeddings.py" and line in (
        'os.environ.setdefault("HF_HUB_OFFLINE", "1")',
        'os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")',
    )


def test_the_engine_reads_no_environment_variables():
    files = sorted(SOURCE.rglob("*.py"))
    assert SOURCE / "matcher.py" in files
    offending = []
    for path in files:
        for lineno, text in environment_reads(path):
            if not allowed_in_embeddings(path, lineno):
                offending.append(f"{path.relative_to(SOURCE)}:{lineno}: {text}")
    assert offending == []


def test_the_environment_check_would_catch_a_read(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n"
                      "from os import environ\n", encoding="utf-8")
    assert {line for line, _ in environment_reads(sample)} == {2, 3, 4}

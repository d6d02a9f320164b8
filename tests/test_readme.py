"""The README's promises: its Python example runs, and CI runs the README's test command."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs_and_prints_what_it_says(capsys):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "p1"
    assert "数控" in out[1] or "车床" in out[1]


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```\n(pip install[^\n]*)\n```", README)
    assert len(commands) == 2, "the README starts with exactly two commands"
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")

"""End-to-end tests of the ``iei-match`` command line, run as a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iei_match import cli

CATALOG = Path(__file__).resolve().parents[1] / "data" / "catalogs" / "cn-vocational"


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "iei_match.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """~120 linked needs with their links, the programs they link to plus 100 others, and
    20 needs the model never sees, written as CSV files."""
    needs = pd.read_csv(CATALOG / "needs.csv", dtype=str, keep_default_na=False)
    programs = pd.read_csv(CATALOG / "programs.csv", dtype=str, keep_default_na=False)
    links = pd.read_csv(CATALOG / "links.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    linked = np.sort(links["need_id"].unique())
    chosen = rng.choice(linked, 140, replace=False)
    train_ids, new_ids = set(chosen[:120]), set(chosen[120:])
    train_links = links[links["need_id"].isin(train_ids)]
    linked_programs = set(train_links["program_id"]) | set(
        links.loc[links["need_id"].isin(new_ids), "program_id"])
    others = rng.choice(sorted(set(programs["program_id"]) - linked_programs), 100,
                        replace=False)
    keep = programs["program_id"].isin(linked_programs | set(others))
    d = tmp_path_factory.mktemp("sample")
    files = {
        "needs": d / "needs.csv", "programs": d / "programs.csv", "links": d / "links.csv",
        "new": d / "new_needs.csv", "new_links": d / "new_links.csv",
        "all_needs": d / "all_needs.csv", "all_links": d / "all_links.csv",
    }
    needs[needs["need_id"].isin(train_ids)].to_csv(files["needs"], index=False)
    needs[needs["need_id"].isin(new_ids)].to_csv(files["new"], index=False)
    needs[needs["need_id"].isin(train_ids | new_ids)].to_csv(files["all_needs"], index=False)
    programs[keep].to_csv(files["programs"], index=False)
    train_links.to_csv(files["links"], index=False)
    links[links["need_id"].isin(new_ids)].to_csv(files["new_links"], index=False)
    links[links["need_id"].isin(train_ids | new_ids)].to_csv(files["all_links"], index=False)
    return files


@pytest.fixture(scope="module")
def model(sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("models") / "cn"
    out = run_cli("train", "--needs", sample["needs"], "--programs", sample["programs"],
                  "--links", sample["links"], "--model-dir", root)
    assert out.returncode == 0, out.stderr
    assert "published" in out.stderr
    return root


def test_train_publishes_a_live_learned_version(model, capsys):
    versions = [p for p in model.iterdir() if (p / "manifest.json").is_file()]
    assert len(versions) == 1
    assert (model / "CURRENT").read_text(encoding="utf-8").strip() == versions[0].name
    assert cli.main(["models", "--model-dir", str(model)]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("* " + versions[0].name) and "learned" in listing


def test_rank_writes_csv(model, sample, tmp_path):
    output = tmp_path / "run.csv"
    out = run_cli("rank", "--model-dir", model, "--needs", sample["new"], "--programs",
                  sample["programs"], "--top-k", 5, "--output", output)
    assert out.returncode == 0, out.stderr
    run = pd.read_csv(output, dtype={"need_id": str, "program_id": str})
    assert list(run.columns[:4]) == ["need_id", "program_id", "rank", "score"]
    new = pd.read_csv(sample["new"], dtype=str)
    programs = pd.read_csv(sample["programs"], dtype=str)
    assert set(run["need_id"]) == set(new["need_id"])
    assert set(run["program_id"]) <= set(programs["program_id"])
    for _, group in run.groupby("need_id"):
        assert group["rank"].tolist() == [1, 2, 3, 4, 5]
        assert (np.diff(group["score"].to_numpy()) <= 0).all()
    # The model is useful: most new needs find one of their linked programs in the top 5.
    truth = pd.read_csv(sample["new_links"], dtype=str)
    hits = run.merge(truth, on=["need_id", "program_id"])
    assert hits["need_id"].nunique() >= 0.5 * len(new)


def test_partners_writes_xlsx(model, sample, tmp_path):
    output = tmp_path / "run.xlsx"
    out = run_cli("partners", "--model-dir", model, "--needs", sample["new"], "--programs",
                  sample["programs"], "--top-k", 3, "--output", output)
    assert out.returncode == 0, out.stderr
    run = pd.read_excel(output, dtype={"program_id": str, "need_id": str}, engine="openpyxl")
    assert list(run.columns[:4]) == ["program_id", "need_id", "rank", "score"]
    programs = pd.read_csv(sample["programs"], dtype=str)
    new = pd.read_csv(sample["new"], dtype=str)
    assert set(run["program_id"]) <= set(programs["program_id"])
    assert set(run["need_id"]) <= set(new["need_id"])
    assert run["program_id"].nunique() >= 0.5 * len(programs)
    for _, group in run.groupby("program_id"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert len(group) <= 3


@pytest.mark.slow  # trains two models with the default parameters: ~40 s on 2 cores
def test_evaluate_prints_ndcg(sample, tmp_path):
    report = tmp_path / "report.csv"
    out = run_cli("evaluate", "--needs", sample["needs"], "--programs", sample["programs"],
                  "--links", sample["links"], "--no-peers", "--top-k", 20,
                  "--output", report)
    assert out.returncode == 0, out.stderr
    assert "ndcg@10" in out.stdout
    assert "iei-match" in out.stdout
    table = pd.read_csv(report)
    assert set(table["direction"]) == {"need->program", "program->need"}
    assert set(table["method"]) == {"iei-match"}
    assert table["ndcg@10"].between(0, 1).all()


def test_a_file_missing_a_column_exits_2_and_writes_nothing(model, sample, tmp_path):
    bad = tmp_path / "bad_needs.csv"
    pd.read_csv(sample["new"], dtype=str).drop(columns="text").to_csv(bad, index=False)
    output = tmp_path / "run.csv"
    out = run_cli("rank", "--model-dir", model, "--needs", bad, "--programs",
                  sample["programs"], "--output", output)
    assert out.returncode == 2, out.stderr
    assert str(bad) in out.stderr
    assert "column text" in out.stderr and "missing required column 'text'" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert list(tmp_path.iterdir()) == [bad]


# --- the same contract, in process (faster: no interpreter start-up) ---------------------


def test_rank_to_stdout_without_explanations(model, sample, capsys):
    code = cli.main(["rank", "--model-dir", str(model), "--needs", str(sample["new"]),
                     "--programs", str(sample["programs"]), "--top-k", "2", "--no-explain"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "need_id,program_id,rank,score,fit,fit_level"
    assert len(lines) == 1 + 2 * 20


def test_partners_with_a_bad_programs_file_writes_nothing(model, sample, tmp_path, capsys):
    bad = tmp_path / "bad_programs.xlsx"
    pd.read_csv(sample["programs"], dtype=str).drop(columns="program_id").to_excel(
        bad, index=False)
    output = tmp_path / "run.xlsx"
    code = cli.main(["partners", "--model-dir", str(model), "--needs", str(sample["new"]),
                     "--programs", str(bad), "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err and "program_id" in err
    assert sorted(tmp_path.iterdir()) == [bad]


def test_train_with_a_bad_file_exits_2_and_publishes_nothing(sample, tmp_path, capsys):
    bad = tmp_path / "bad_programs.csv"
    pd.read_csv(sample["programs"], dtype=str).drop(columns="title").to_csv(bad, index=False)
    root = tmp_path / "models"
    code = cli.main(["train", "--needs", str(sample["needs"]), "--programs", str(bad),
                     "--links", str(sample["links"]), "--model-dir", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err and "title" in err
    assert not root.exists()


def test_train_with_links_to_unknown_programs_exits_2(sample, tmp_path, capsys):
    links = pd.read_csv(sample["links"], dtype=str)
    links.loc[len(links)] = [links["need_id"].iloc[0], "999999", "1"]
    bad = tmp_path / "bad_links.csv"
    links.to_csv(bad, index=False)
    code = cli.main(["train", "--needs", str(sample["needs"]), "--programs",
                     str(sample["programs"]), "--links", str(bad), "--model-dir",
                     str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err and "999999" in err
    assert f"row {len(links) + 1}" in err  # the header is row 1
    assert not (tmp_path / "models").exists()


def test_rank_without_a_model_exits_2(sample, tmp_path, capsys):
    code = cli.main(["rank", "--model-dir", str(tmp_path / "nothing"), "--needs",
                     str(sample["new"]), "--programs", str(sample["programs"])])
    assert code == 2
    assert "no model" in capsys.readouterr().err


@pytest.mark.parametrize("top_k", ["0", "-1", "two"])
def test_bad_top_k_is_a_usage_error(sample, top_k, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["rank", "--model-dir", "m", "--needs", str(sample["new"]), "--programs",
                  str(sample["programs"]), "--top-k", top_k])
    assert info.value.code == 2
    assert "--top-k" in capsys.readouterr().err

"""The coordinator's commands end to end: batch (killed with SIGKILL and resumed), allocate,
gap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from iei_match import cli
from iei_match.artifacts import load_model, publish_model
from iei_match.matcher import Matcher
from synthetic import make_catalog


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "iei_match.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    needs, programs, links, _ = make_catalog("zh", seed=0, programs_per_category=5,
                                             needs_per_category=12)
    root = tmp_path_factory.mktemp("models") / "zh"
    publish_model(Matcher(n_folds=3, n_estimators=60, min_rounds=10).fit(needs, programs, links),
                  root)
    new, _, _, _ = make_catalog("zh", seed=5, programs_per_category=5, needs_per_category=12,
                                need_prefix="new")
    rng = np.random.default_rng(1)
    new = new.assign(headcount=rng.integers(1, 6, len(new)),
                     province=rng.choice(["广东", "江苏"], len(new)),
                     level=rng.choice(["高职专科", "本科"], len(new)))
    programs = programs.assign(graduates_per_year=rng.integers(0, 12, len(programs)),
                               org_id=[f"college-{i % 4}" for i in range(len(programs))],
                               province=rng.choice(["广东", "江苏"], len(programs)),
                               level=rng.choice(["高职专科", "本科"], len(programs)))
    d = tmp_path_factory.mktemp("files")
    new.to_csv(d / "needs.csv", index=False)
    programs.to_csv(d / "programs.csv", index=False)
    return {"model": root, "needs": d / "needs.csv", "programs": d / "programs.csv",
            "frames": (new, programs)}


def batch_args(world, output, *extra):
    return ["batch", "--model-dir", world["model"], "--needs", world["needs"], "--programs",
            world["programs"], "--top-k", 3, "--output", output, *extra]


def test_batch_writes_both_directions_like_rank_and_partners(world, tmp_path, capsys):
    out = tmp_path / "run.csv"
    assert cli.main(list(map(str, batch_args(world, out, "--partition-size", 10,
                                             "--quiet")))) == 0
    err = capsys.readouterr().err
    assert "rows (need direction)" in err and "rows (program direction)" in err
    run = pd.read_csv(out, dtype=str, keep_default_na=False)
    partners = pd.read_csv(tmp_path / "run.partners.csv", dtype=str, keep_default_na=False)
    assert list(run.columns) == ["need_id", "program_id", "rank", "score", "fit", "fit_level",
                                 "matched_terms", "top_factors"]
    assert list(partners.columns[:4]) == ["program_id", "need_id", "rank", "score"]
    matcher = load_model(world["model"])
    needs, programs = world["frames"]
    expected = matcher.rank(needs, programs, k=3)
    assert run["need_id"].tolist() == expected["need_id"].tolist()
    assert run["program_id"].tolist() == expected["program_id"].tolist()
    assert cli.main(list(map(str, batch_args(world, out, "--partition-size", 10,
                                             "--quiet")))) == 0
    assert "job resumed" in capsys.readouterr().err


def test_a_job_killed_with_sigkill_resumes_with_every_need_once(world, tmp_path):
    out, jobs = tmp_path / "killed.parquet", tmp_path / "jobs"
    args = batch_args(world, out, "--direction", "need", "--partition-size", 2, "--job-id",
                      "k9", "--work-dir", jobs, "--workers", 1, "--quiet")
    proc = subprocess.Popen([sys.executable, "-m", "iei_match.cli", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = jobs / "k9" / "need"
    total = -(-len(world["frames"][0]) // 2)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(parts.glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the job ended before it could be killed: " + \
        proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = len(list(parts.glob("part-*.parquet")))
    assert 3 <= done < total and not out.exists()
    resumed = run_cli(*args[:-1])
    assert resumed.returncode == 0, resumed.stderr
    assert f"job resumed: {done} of {total} partitions were done" in resumed.stderr
    run = pd.read_parquet(out)
    assert not run.duplicated(["need_id", "program_id"]).any()
    lists = run.groupby("need_id", sort=False)["rank"].apply(list)
    assert sorted(lists.index) == sorted(world["frames"][0]["need_id"])
    assert all(ranks == list(range(1, len(ranks) + 1)) for ranks in lists)
    expected = load_model(world["model"]).rank(*world["frames"], k=3)
    pd.testing.assert_frame_equal(run, expected, check_dtype=False, rtol=0, atol=0)


def test_batch_reports_a_bad_file_with_its_column(world, tmp_path, capsys):
    bad = tmp_path / "needs.csv"
    bad.write_text("need_id,title\nn1,焊工\n", encoding="utf-8")
    args = batch_args(world, tmp_path / "x.csv")
    args[args.index("--needs") + 1] = bad
    assert cli.main(list(map(str, args))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "column text" in err
    assert not (tmp_path / ".iei-match-jobs").exists()


@pytest.fixture(scope="module")
def scores(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "scores.csv"
    assert cli.main(list(map(str, batch_args(world, out, "--direction", "need",
                                             "--quiet")))) == 0
    return out


def test_allocate_prints_objective_unmet_demand_and_gini(world, scores, tmp_path, capsys):
    out = tmp_path / "plan.xlsx"
    code = cli.main(["allocate", "--scores", str(scores), "--needs", str(world["needs"]),
                     "--programs", str(world["programs"]), "--output", str(out),
                     "--max-partners-per-college", "4", "--min-score", "0.1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "objective (score x people)" in printed and "unmet demand" in printed
    assert "Gini" in printed
    plan = pd.read_excel(out)
    assert list(plan.columns) == ["need_id", "program_id", "assigned", "score"]
    needs, programs = world["frames"]
    per_prog = plan.groupby("program_id")["assigned"].sum()
    assert (per_prog <= programs.set_index("program_id")["graduates_per_year"]
            .reindex(per_prog.index)).all()
    assert (plan["score"] >= 0.1).all()


def test_allocate_names_the_file_and_column_of_a_bad_scores_file(world, tmp_path, capsys):
    bad = tmp_path / "scores.csv"
    bad.write_text("need_id,program_id,rank\nn1,p1,1\n", encoding="utf-8")
    code = cli.main(["allocate", "--scores", str(bad), "--needs", str(world["needs"]),
                     "--programs", str(world["programs"]), "--output", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and str(bad) in err and "score" in err


def test_gap_writes_the_table_and_both_plots(world, scores, tmp_path):
    table = tmp_path / "gap.csv"
    for plot in ("gap.png", "gap.html"):
        out = run_cli("gap", "--needs", world["needs"], "--programs", world["programs"],
                      "--scores", scores, "--output", table, "--plot", tmp_path / plot)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / plot).stat().st_size > 500
    gap = pd.read_csv(table)
    needs, programs = world["frames"]
    assert gap["demand"].sum() == needs["headcount"].sum()
    assert gap["supply"].sum() == programs["graduates_per_year"].sum()
    assert f"demand {needs['headcount'].sum()} people" in out.stdout


def test_gap_names_the_row_and_column_of_a_bad_headcount(world, tmp_path):
    needs = pd.read_csv(world["needs"], dtype=str)
    needs.loc[1, "headcount"] = "several"
    bad = tmp_path / "needs.csv"
    needs.to_csv(bad, index=False)
    out = run_cli("gap", "--needs", bad, "--programs", world["programs"], "--output",
                  tmp_path / "gap.csv")
    assert out.returncode == 2
    assert "row 3, column headcount" in out.stderr and str(bad) in out.stderr

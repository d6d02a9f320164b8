"""Evaluation over several hold-out splits: each seed's rows are those of one evaluation,
and the spread over the seeds is computed from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from iei_match import evaluate as evaluate_module
from iei_match.errors import InputError
from iei_match.evaluate import evaluate, evaluate_seeds, seed_summary
from iei_match.matcher import Matcher
from test_matcher import PARAMS, make_catalog

CATALOG = Path(__file__).resolve().parents[1] / "data" / "catalogs" / "cn-vocational"


def cheap(seed: int) -> Matcher:
    return Matcher(**{**PARAMS, "random_state": seed})


def test_each_seed_is_one_evaluation_and_the_summary_is_their_spread():
    needs, programs, links, _ = make_catalog("zh", seed=0)
    kwargs = {"peers": ("tfidf-char", "bm25"), "no_fit": False, "k": 20}
    report = evaluate_seeds(needs, programs, links, [0, 3], matcher_for=cheap, **kwargs)
    assert report.columns[0] == "seed" and sorted(report["seed"].unique()) == [0, 3]
    for seed in (0, 3):
        alone = evaluate(needs, programs, links, random_state=seed, matcher=cheap(seed),
                         **kwargs)
        rows = report[report["seed"] == seed].drop(columns=["seed", "fit_s", "rank_s"])
        pd.testing.assert_frame_equal(rows.reset_index(drop=True),
                                      alone.drop(columns=["fit_s", "rank_s"]))
    summary = seed_summary(report)
    ours = summary[(summary["method"] == "iei-match")
                   & (summary["direction"] == "need->program")].iloc[0]
    values = report[(report["method"] == "iei-match")
                    & (report["direction"] == "need->program")].set_index("seed")["ndcg@10"]
    assert ours["mean"] == pytest.approx(values.mean())
    assert ours["std"] == pytest.approx(values.std(ddof=1))
    assert (ours["min"], ours["max"], ours["seeds"]) == (values.min(), values.max(), 2)
    peers = report[(report["method"] != "iei-match")
                   & (report["direction"] == "need->program")]
    best = peers.groupby("seed")["ndcg@10"].max()
    gains = values / best - 1
    assert ours["gain_mean"] == pytest.approx(gains.mean())
    assert ours["gain_min"] == pytest.approx(gains.min())
    assert summary.loc[summary["method"] != "iei-match", "gain_mean"].isna().all()


def test_seeds_must_be_distinct_and_given():
    needs, programs, links, _ = make_catalog("zh", seed=0)
    for seeds in ([], [1, 1]):
        with pytest.raises(InputError, match="distinct"):
            evaluate_seeds(needs, programs, links, seeds)


def test_doctests():
    import doctest

    assert doctest.testmod(evaluate_module).failed == 0


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "iei_match.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("extra, message", [
    (["--seeds", "0,x"], "whole numbers separated by commas"),
    (["--seeds", "1,1"], "distinct seeds"),
    (["--seeds", "0,1", "--plot", "{tmp}/fit.png"], "--plot draws one split"),
])
def test_the_command_line_refuses_bad_seeds_before_any_training(extra, message, tmp_path):
    extra = [a.format(tmp=tmp_path) for a in extra]
    out = run_cli("evaluate", "--needs", CATALOG / "needs.csv", "--programs",
                  CATALOG / "programs.csv", "--links", CATALOG / "links.csv", *extra,
                  "--output", tmp_path / "report.csv")
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []  # no report, no plot

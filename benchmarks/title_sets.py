"""Needs as enterprises write them: the hand-made title test sets against the peers.

Run from the repository root::

    python benchmarks/title_sets.py --model-dir M [--train D] [--sets zh,zh2,zh3,en] [--output F]

``M`` is a model trained on the benchmark's training split of cn-vocational (``iei-match
train --needs D/needs.csv --programs D/programs.csv --links D/links.csv --model-dir M``);
with ``--train D`` the script trains it there first. Each title of a set is one need with
an empty text, ranked against every program of ``D/programs.csv``; a program is relevant
when its title is one of the title's expected majors (at any level). The sets:

- ``zh``: ``benchmarks/data/recruitment_titles_zh.csv``, recruitment-style Chinese titles
  (the engine was developed while looking at it);
- ``zh2``: ``benchmarks/data/recruitment_titles_zh_2.csv``, a second set of the same
  kind, written before any model was scored on it (blind until 2026-12-07, when the
  engine's errors on it were read);
- ``zh3``: ``benchmarks/data/recruitment_titles_zh_3.csv``, a third set of the same kind,
  the blind one since 2026-12-07;
- ``en``: ``benchmarks/data/job_titles_en.csv``, English job titles.

Each Chinese set is also scored in two parts: the titles the engine's table of the
market's short forms expands (``skills.expand_title`` changes them: "质检员", "幼师") and
the titles it leaves untouched; the table was written by someone who had read the first
set, so its untouched part is the fairer figure. NDCG@10 (binary gain), Recall@10, MRR and
``answered`` (the share of titles with at least one expected major in the top 10), averaged
over titles, for iei-match and the peers (TF-IDF words, TF-IDF char n-grams, BM25) given
the same title, and for iei-match the fit on these titles (see :func:`fit_columns`). The
sets are test sets only: nothing here trains on them. See ``benchmarks/data/README.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from iei_match.artifacts import load_model
from iei_match.fit import expected_calibration_error
from iei_match.metrics import evaluate_run
from iei_match.peers import PEERS, rank_peer
from iei_match.skills import expand_title
from iei_match.text import has_cjk

HERE = Path(__file__).resolve().parent
SETS = {"zh": HERE / "data" / "recruitment_titles_zh.csv",
        "zh2": HERE / "data" / "recruitment_titles_zh_2.csv",
        "zh3": HERE / "data" / "recruitment_titles_zh_3.csv",
        "en": HERE / "data" / "job_titles_en.csv"}
K = 100


def title_set(name: str, programs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The set's needs (``need_id, title, text``) and its qrels (``need_id, program_id,
    grade``): every program whose title is an expected major of the title."""
    table = pd.read_csv(SETS[name], dtype=str, keep_default_na=False)
    needs = pd.DataFrame({"need_id": [f"{name}{i:03d}" for i in range(len(table))],
                          "title": table["title"], "text": ""})
    by_title = programs.groupby("title")["program_id"].apply(list)
    rows = []
    for need_id, majors in zip(needs["need_id"], table["majors"], strict=True):
        for major in majors.split(";"):
            if major not in by_title:
                raise SystemExit(f"{SETS[name].name}: {major!r} is not a program title")
            rows += [(need_id, pid, 1) for pid in by_title[major]]
    return needs, pd.DataFrame(rows, columns=["need_id", "program_id", "grade"])


def parts(needs: pd.DataFrame) -> dict[str, pd.Index]:
    """The need ids of the whole set and, when its titles are Chinese, of the titles the
    market's short forms expand (``expanded``) and of those they leave as they are
    (``untouched``)."""
    out = {"all": pd.Index(needs["need_id"])}
    cjk = needs["title"].map(has_cjk)
    if cjk.any():
        expanded = needs["title"].map(lambda t: has_cjk(t) and expand_title(t) != t)
        out["expanded"] = pd.Index(needs["need_id"][expanded])
        out["untouched"] = pd.Index(needs["need_id"][~expanded])
    return out


def answered(run: pd.DataFrame, qrels: pd.DataFrame, k: int = 10) -> float:
    """The share of the queries of ``qrels`` with at least one relevant program in the
    top ``k`` of ``run``."""
    truth = qrels[qrels["grade"] > 0]
    top = run[run["rank"] <= k].merge(truth, on=["need_id", "program_id"])
    return top["need_id"].nunique() / truth["need_id"].nunique()


def fit_columns(frame: pd.DataFrame, qrels: pd.DataFrame) -> dict:
    """How the fit reads on these titles: its calibration over the top 10 rows of each
    list (the expected majors are the truth; a set written by hand misses some fitting
    majors, so real fits look over-confident), the share of titles whose first program is
    called ``high``, and how often a ``high`` is right."""
    top10 = frame[frame["rank"] <= 10]
    truth = set(zip(qrels["need_id"], qrels["program_id"], strict=True))
    y = np.array([pair in truth for pair in zip(top10["need_id"], top10["program_id"],
                                                 strict=True)], dtype=float)
    high = (top10["fit_level"] == "high").to_numpy()
    return {"ece@10": expected_calibration_error(top10["fit"].to_numpy(float), y, 10),
            "top1_high": float((frame[frame["rank"] == 1]["fit_level"] == "high").mean()),
            "high_precision": float(y[high].mean()) if high.any() else float("nan"),
            "high_rows": int(high.sum())}


def score_set(matcher, needs: pd.DataFrame, programs: pd.DataFrame, qrels: pd.DataFrame,
              peers=PEERS) -> list[dict]:
    """One row per part of the set (:func:`parts`) and method: iei-match, then each peer."""
    out = []
    run = matcher.rank(needs, programs, k=K, explain=False)
    out.append(("iei-match", run))
    docs = (programs["title"] + " " + programs["text"]).tolist()
    for peer in peers:
        idx, val = rank_peer(peer, needs["title"].tolist(), docs, K)
        kk = idx.shape[1]
        out.append((peer, pd.DataFrame({
            "need_id": np.repeat(needs["need_id"].to_numpy(), kk),
            "program_id": programs["program_id"].to_numpy()[idx.ravel()],
            "rank": np.tile(np.arange(1, kk + 1), len(needs)),
            "score": val.ravel()})))
    rows = []
    for part, ids in parts(needs).items():
        if ids.empty:
            continue
        q = qrels[qrels["need_id"].isin(ids)]
        for method, full in out:
            frame = full[full["need_id"].isin(ids)]
            s = evaluate_run(frame, q, "need_id", "program_id", ks=(10,))
            row = {"part": part, "method": method, "ndcg@10": s["ndcg@10"],
                   "recall@10": s["recall@10"], "mrr": s["mrr"],
                   "answered": answered(frame, q), "queries": len(ids)}
            if "fit_level" in frame:
                row.update(fit_columns(frame, q))
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--train", help="benchmark folder to train the model on first")
    ap.add_argument("--programs", help="programs file (default: TRAIN/programs.csv or the "
                                       "bundled cn-vocational catalog)")
    ap.add_argument("--sets", default="zh,zh2,zh3,en")
    ap.add_argument("--output")
    args = ap.parse_args(argv)
    names = args.sets.split(",")
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"--sets: unknown set(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(SETS)}")
    if args.train:
        from iei_match.cli import main as cli

        d = Path(args.train)
        cli(["train", "--needs", str(d / "needs.csv"), "--programs", str(d / "programs.csv"),
             "--links", str(d / "links.csv"), "--model-dir", args.model_dir])
    from iei_match.bundled import catalog_dir

    path = Path(args.programs) if args.programs else (
        Path(args.train) / "programs.csv" if args.train
        else catalog_dir("cn-vocational") / "programs.csv")
    programs = pd.read_csv(path, dtype=str, keep_default_na=False)
    matcher = load_model(args.model_dir)
    rows = []
    for name in names:
        needs, qrels = title_set(name, programs)
        rows += [{"set": name, **r} for r in score_set(matcher, needs, programs, qrels)]
    report = pd.DataFrame(rows)
    # NDCG@10 of iei-match over the best peer's on the same titles, on iei-match's rows.
    best_peer = (report[report["method"] != "iei-match"]
                 .groupby(["set", "part"])["ndcg@10"].max().rename("best_peer"))
    report = report.join(best_peer, on=["set", "part"])
    report["gain"] = np.where(report["method"] == "iei-match",
                              report["ndcg@10"] / report["best_peer"] - 1, np.nan)
    report = report.drop(columns="best_peer")
    print(report.round(4).to_string(index=False))
    if args.output:
        report.to_csv(args.output, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

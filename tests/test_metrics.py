import doctest
import math

import numpy as np
import pandas as pd
import pytest

from iei_match import metrics
from iei_match.errors import InputError
from iei_match.metrics import evaluate_run


def reference(run, qrels, ks=(10, 50)):
    """Slow, obvious per-query version of evaluate_run."""
    rel = {}
    for q, d, g in qrels.itertuples(index=False):
        if g > 0:
            rel.setdefault(q, set()).add(d)
    ranked = {}
    for q, d, r in run.itertuples(index=False):
        ranked.setdefault(q, {})
        ranked[q][d] = min(r, ranked[q].get(d, r))
    sums = {f"ndcg@{k}": 0.0 for k in ks} | {f"recall@{k}": 0.0 for k in ks} | {"mrr": 0.0}
    for q, docs in rel.items():
        got = ranked.get(q, {})
        hit = sorted(r for d, r in got.items() if d in docs)
        for k in ks:
            dcg = sum(1 / math.log2(r + 1) for r in hit if r <= k)
            idcg = sum(1 / math.log2(i + 1) for i in range(1, min(k, len(docs)) + 1))
            sums[f"ndcg@{k}"] += dcg / idcg
            sums[f"recall@{k}"] += sum(r <= k for r in hit) / len(docs)
        sums["mrr"] += 1 / hit[0] if hit else 0.0
    return {m: v / len(rel) for m, v in sums.items()} | {"queries": len(rel)}


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_random_runs(seed):
    rng = np.random.default_rng(seed)
    n_q, n_d = 40, 120
    rows = []
    for q in range(n_q + 5):  # a few run-only queries, absent from qrels
        depth = int(rng.integers(0, 80))
        docs = rng.choice(n_d, size=depth, replace=False)
        rows += [(f"q{q}", int(d), r + 1) for r, d in enumerate(docs)]
    run = pd.DataFrame(rows, columns=["q", "d", "rank"])
    again = run.sample(frac=0.1, random_state=seed)  # duplicate pairs, ranked worse or better
    again["rank"] = np.maximum(1, again["rank"] + rng.integers(-5, 5, len(again)))
    run = pd.concat([run, again])
    qrels = pd.DataFrame(
        {
            "q": [f"q{q}" for q in rng.integers(0, n_q + 10, 600)],  # some never in the run
            "d": rng.integers(0, n_d, 600),
            "grade": rng.integers(-1, 3, 600),
        }
    )
    ks = (1, 10, 50) if seed % 2 else (10, 50)
    got, want = evaluate_run(run, qrels, "q", "d", ks=ks), reference(run, qrels, ks)
    assert got.keys() == want.keys()
    for m in want:
        assert got[m] == pytest.approx(want[m], abs=1e-12), m


def test_hand_computed():
    run = pd.DataFrame({"q": [*"aaaabb"], "d": [*"xyzwxy"], "rank": [1, 2, 3, 4, 1, 2]})
    qrels = pd.DataFrame(
        {"q": ["a", "a", "a", "b", "c"], "d": ["y", "w", "v", "x", "x"], "grade": [2, 1, 1, 1, 0]}
    )
    m = evaluate_run(run, qrels, "q", "d", ks=(2, 10))
    # a: relevant y@2, w@4, v missing; b: x@1; c has no relevant doc -> not counted.
    assert m["queries"] == 2
    assert m["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["recall@2"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["recall@10"] == pytest.approx((2 / 3 + 1) / 2)
    ndcg_a = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert m["ndcg@10"] == pytest.approx((ndcg_a + 1) / 2)
    assert m["ndcg@2"] == pytest.approx(((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1) / 2)


def test_perfect_and_empty_runs():
    qrels = pd.DataFrame({"q": [1, 1, 2], "d": [5, 6, 7], "grade": [1, 1, 3]})
    perfect = pd.DataFrame({"q": [1, 1, 2], "d": [6, 5, 7], "rank": [1, 2, 1]})
    assert evaluate_run(perfect, qrels, "q", "d") == {
        "ndcg@10": 1.0,
        "ndcg@50": 1.0,
        "recall@10": 1.0,
        "recall@50": 1.0,
        "mrr": 1.0,
        "queries": 2,
    }
    empty = perfect.iloc[:0]
    assert evaluate_run(empty, qrels, "q", "d")["mrr"] == 0.0


def test_bad_input():
    qrels = pd.DataFrame({"q": [1], "d": [5], "grade": [1]})
    run = pd.DataFrame({"q": [1], "d": [5], "rank": [1]})
    with pytest.raises(InputError, match="rank"):
        evaluate_run(run.drop(columns="rank"), qrels, "q", "d")
    with pytest.raises(InputError, match=">= 1"):
        evaluate_run(run.assign(rank=0), qrels, "q", "d")
    with pytest.raises(InputError):
        evaluate_run(run, qrels, "q", "d", ks=(0,))
    with pytest.raises(InputError, match="no relevant"):
        evaluate_run(run, qrels.assign(grade=0), "q", "d")


def test_docstring_examples():
    assert doctest.testmod(metrics).failed == 0

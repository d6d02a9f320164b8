import doctest

import bm25s
import numpy as np
import pytest

from iei_match import peers
from iei_match.errors import InputError
from iei_match.peers import PEERS, rank_peer, word_tokens

DOCS = [
    "数控机床操作与编程，负责零件加工",
    "护理专业，负责病人护理与健康照护",
    "Registered nurses assess patient health and provide nursing care",
    "Welders join metal parts using welding equipment",
    "会计：财务报表编制与税务申报",
    "Software developers design and build computer applications",
]
QUERIES = ["病人健康护理", "welding metal parts", "财务会计税务", "software application developers"]
ANSWERS = [1, 3, 4, 5]


@pytest.mark.parametrize("name", PEERS)
def test_known_answers(name):
    idx, scores = rank_peer(name, QUERIES, DOCS, k=3)
    assert idx[:, 0].tolist() == ANSWERS
    assert (scores[:, 0] > scores[:, 1]).all()


@pytest.mark.parametrize("name", PEERS)
def test_shape_order_and_ties(name):
    rng = np.random.default_rng(0)
    words = ["机床", "护理", "metal", "nurse", "会计", "code", "数据", "care"]
    docs = [" ".join(rng.choice(words, 3)) for _ in range(40)] + ["", "zzz"] * 5
    queries = [" ".join(rng.choice(words, 2)) for _ in range(30)] + ["", "unknownword"]
    idx, scores = rank_peer(name, queries, docs, k=25)
    assert idx.shape == scores.shape == (32, 25)
    assert idx.dtype.kind == "i" and scores.dtype.kind == "f"
    assert (np.diff(scores, axis=1) <= 0).all()
    assert all(len(set(row)) == 25 for row in idx.tolist())
    # Equal scores go to the lower document index, and the top k is the true top k.
    full_idx, full = rank_peer(name, queries, docs, k=len(docs))
    for r in range(len(queries)):
        want = sorted(range(len(docs)), key=lambda j: (-full[r][list(full_idx[r]).index(j)], j))
        assert full_idx[r].tolist() == want
        assert idx[r].tolist() == want[:25]
    assert idx[-1].tolist() == list(range(25))  # nothing matches: index order
    again = rank_peer(name, queries, docs, k=25)
    assert np.array_equal(again[0], idx) and np.array_equal(again[1], scores)


def test_k_is_cut_to_docs_and_empty_queries():
    idx, scores = rank_peer("tfidf-char", ["a b"], ["a", "b"], k=10)
    assert idx.shape == (1, 2)
    idx, scores = rank_peer("bm25", [], ["a", "b"], k=2)
    assert idx.shape == scores.shape == (0, 2)
    idx, _ = rank_peer("tfidf-word", ["...", "，"], ["。", "!"], k=2)  # no tokens anywhere
    assert idx.tolist() == [[0, 1], [0, 1]]


def test_bm25_scores_match_bm25s():
    index = bm25s.BM25()
    index.index([word_tokens(d) for d in DOCS], show_progress=False)
    queries = QUERIES + ["nurse nurse patient 护理 护理", "nothing known here"]
    idx, scores = rank_peer("bm25", queries, DOCS, k=len(DOCS))
    for r, q in enumerate(queries):
        tokens = word_tokens(q)
        want = index.get_scores(tokens) if index.get_tokens_ids(tokens) else np.zeros(len(DOCS))
        np.testing.assert_allclose(scores[r], want[idx[r]], rtol=1e-5, atol=1e-6)


def test_word_tokens():
    assert word_tokens("ＡＢＣ　Data-Science 2024") == ["abc", "data", "science", "2024"]
    assert word_tokens("数据分析师，负责Python建模") == ["数据", "分析师", "负责", "python", "建模"]


def test_bad_input():
    with pytest.raises(InputError, match="unknown peer"):
        rank_peer("dense", ["a"], ["a"], k=1)
    with pytest.raises(InputError, match="k must"):
        rank_peer("bm25", ["a"], ["a"], k=0)
    with pytest.raises(InputError, match="empty"):
        rank_peer("bm25", ["a"], [], k=1)
    with pytest.raises(InputError, match="str"):
        rank_peer("bm25", [None], ["a"], k=1)


def test_docstring_examples():
    assert doctest.testmod(peers).failed == 0

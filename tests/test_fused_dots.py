"""dots_many gives each dot exactly what pair_dots gives it, on every path: one request's
pairs, a batch's chunks in threads, pairs merged one by one, either side spread, passes
that split when a pattern holds more dots or data arrays than one pass takes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from iei_match import fused_dots, kernels
from iei_match.csr import csr_of
from iei_match.errors import InputError
from iei_match.fused_dots import MAX_SLOTS, dots_many, mark_ones
from iei_match.kernels import PairRows, pair_dots


def _on(m: sp.csr_matrix, data: np.ndarray) -> sp.csr_matrix:
    """A matrix of ``m``'s pattern (its very index arrays) with other values."""
    return csr_of(data, m.indices, m.indptr, m.shape)


def _ones(m: sp.csr_matrix) -> sp.csr_matrix:
    return _on(m, mark_ones(np.ones(m.nnz, dtype=np.float32)))


def _side(rng, n_rows: int, n_cols: int, density: float) -> dict[str, sp.csr_matrix]:
    """A side's matrices as the pair features read them: TF-IDF (float64), BM25 weights
    (float32) and binary counts on the TF-IDF's index arrays, and a title of its own."""
    full = sp.random(n_rows, n_cols, density=density, random_state=rng, format="csr")
    full.indices, full.indptr = full.indices.astype(np.int32), full.indptr.astype(np.int32)
    title = sp.random(n_rows, n_cols, density=density / 5, random_state=rng, format="csr")
    return {"full": full, "bm25": _on(full, (rng.random(full.nnz) * 3).astype(np.float32)),
            "binary": _ones(full), "title": title, "title_binary": _ones(title)}


def _dots(a: dict, b: dict) -> list[tuple[sp.csr_matrix, sp.csr_matrix]]:
    """The pair features' dots: four walk b's full pattern, two its title's."""
    return [(a["full"], b["full"]), (a["binary"], b["bm25"]), (a["bm25"], b["binary"]),
            (a["title_binary"], b["binary"]), (a["title"], b["title"]),
            (a["title_binary"], b["title_binary"]), (a["full"], b["title"])]


def _same_as_one_by_one(pairs: PairRows, dots, fused: int | None = None,
                        monkeypatch=None) -> None:
    """Each dot of ``dots_many`` equals ``pair_dots``; with ``fused``, that many dots were
    computed in passes of several (not one at a time)."""
    passes: list[int] = []
    if monkeypatch is not None:
        walk = fused_dots._walk

        def counted(spread, w, taken, *rest):
            passes.append(len(taken))
            return walk(spread, w, taken, *rest)

        monkeypatch.setattr(fused_dots, "_walk", counted)
    got = dots_many(pairs, dots)
    if fused is not None:
        assert sum(passes) == fused
    assert len(got) == len(dots)
    for (a, b), g in zip(dots, got, strict=True):
        want = pair_dots(a, b, pairs.rows, pairs.cols)
        assert g.dtype == want.dtype == np.float32
        assert g.tobytes() == want.tobytes()
        assert np.allclose(g, np.asarray(a[pairs.rows].multiply(b[pairs.cols]).sum(axis=1))
                           .ravel(), rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_one_need_against_its_candidates(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    need, programs = _side(rng, 1, 2000, 0.05), _side(rng, 300, 2000, 0.04)
    cols = rng.choice(300, 150, replace=False)
    _same_as_one_by_one(PairRows(np.zeros(150, dtype=np.int64), cols), _dots(need, programs),
                        fused=7, monkeypatch=monkeypatch)  # the 4 on full, 3 on title


@pytest.mark.parametrize("seed", range(3))
def test_one_program_against_needs_spreads_the_program(seed):
    rng = np.random.default_rng(seed)
    needs, program = _side(rng, 200, 1500, 0.05), _side(rng, 1, 1500, 0.08)
    rows = rng.choice(200, 120, replace=False)
    _same_as_one_by_one(PairRows(rows, np.zeros(120, dtype=np.int64)), _dots(needs, program))


def test_many_lists_serial_and_in_threads(monkeypatch):
    rng = np.random.default_rng(7)
    needs, programs = _side(rng, 40, 1200, 0.05), _side(rng, 500, 1200, 0.04)
    rows = np.repeat(np.arange(40), 60)  # runs of one need, as a batch's pairs come
    cols = rng.integers(0, 500, len(rows))
    pairs = PairRows(rows, cols)
    _same_as_one_by_one(pairs, _dots(needs, programs))
    monkeypatch.setattr(kernels, "SERIAL_BELOW", 0)  # chunks of pairs in threads
    _same_as_one_by_one(pairs, _dots(needs, programs), fused=7, monkeypatch=monkeypatch)
    shuffled = rng.permutation(len(rows))  # no runs: every pair merged on its own
    _same_as_one_by_one(PairRows(rows[shuffled], cols[shuffled]), _dots(needs, programs))


def test_passes_split_where_one_cannot_hold_the_dots():
    rng = np.random.default_rng(3)
    need, programs = _side(rng, 1, 800, 0.1), _side(rng, 200, 800, 0.05)
    other64 = _on(programs["full"], rng.random(programs["full"].nnz))  # a second float64
    dots = [(need["full"], programs["full"]), (need["title"], other64)]
    dots += [(need["bm25"], programs["binary"])] * (MAX_SLOTS + 2)
    dots += [(need["full"], programs["full"].astype(np.int64))]  # not float: on its own
    pairs = PairRows(np.zeros(100, dtype=np.int64), rng.choice(200, 100, replace=False))
    _same_as_one_by_one(pairs, dots)


def test_ones_are_read_as_ones_only_when_marked():
    """An unmarked array of ones is read like any data; a marked one is never read."""
    rng = np.random.default_rng(5)
    need, programs = _side(rng, 1, 600, 0.1), _side(rng, 100, 600, 0.05)
    unmarked = _on(programs["full"], np.ones(programs["full"].nnz, dtype=np.float32))
    pairs = PairRows(np.zeros(60, dtype=np.int64), rng.choice(100, 60, replace=False))
    _same_as_one_by_one(pairs, [(need["full"], programs["full"]), (need["bm25"], unmarked),
                                (need["title_binary"], programs["binary"])])


def test_no_pairs():
    rng = np.random.default_rng(0)
    need, programs = _side(rng, 1, 100, 0.1), _side(rng, 10, 100, 0.1)
    empty = np.zeros(0, dtype=np.int64)
    got = dots_many(PairRows(empty, empty), _dots(need, programs))
    assert [g.shape for g in got] == [(0,)] * 7


def test_rows_at_places_each_row_and_leaves_the_others_empty():
    from iei_match.features import _rows_at

    m = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    out = _rows_at(m, np.array([1, 3]), 5)
    assert out.shape == (5, 3)
    assert out.toarray().tolist() == [[0, 0, 0], [1, 0, 2], [0, 0, 0], [0, 3, 0], [0, 0, 0]]
    assert out.data is m.data and out.indices is m.indices


def test_matrices_of_different_widths_are_refused():
    rng = np.random.default_rng(1)
    need, programs = _side(rng, 1, 100, 0.1), _side(rng, 10, 120, 0.1)
    pairs = PairRows(np.zeros(3, dtype=np.int64), np.arange(3))
    with pytest.raises(InputError, match="100 columns with one of 120"):
        dots_many(pairs, [(need["full"], programs["full"])])

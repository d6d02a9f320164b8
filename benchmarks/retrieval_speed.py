"""Sparse top-k retrieval speed: iei-match's posting-list kernel next to the references.

    python benchmarks/retrieval_speed.py [--needs 10000] [--programs 100000] [--k 10]

Synthetic TF-IDF-like rows (skewed term frequencies, ~180 non-zeros per row, L2-normalised),
as in shared/PERFORMANCE.md. Prints pairs scored per second (needs x programs / seconds)
for iei-match's ``PostingIndex.search``, ``sparse_dot_topn`` (2 threads) and chunked scipy
``A @ B.T`` + ``argpartition``, the ratio to sparse_dot_topn, and checks that the top-k
scores agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from iei_match.retrieval import PostingIndex


def tfidf_like(n_rows: int, n_terms: int, nnz: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    # Skewed term frequencies: the most frequent 1% of terms take ~20% of the entries.
    ranks = (n_terms * rng.random(n_rows * nnz) ** 3).astype(np.int64)
    cols = rng.permutation(n_terms)[ranks]
    rows = np.repeat(np.arange(n_rows), nnz)
    m = sp.csr_matrix((rng.random(len(cols)).astype(np.float32) + 0.1, (rows, cols)),
                      shape=(n_rows, n_terms))
    m.sum_duplicates()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-12)) @ m, dtype=np.float32)


def scipy_topk(q, d, k, chunk=200):
    out = []
    dt = d.T.tocsr()
    for s in range(0, q.shape[0], chunk):
        scores = (q[s:s + chunk] @ dt).toarray()
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out.append(np.sort(np.take_along_axis(scores, part, 1), axis=1)[:, ::-1])
    return np.vstack(out)


def timed(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--needs", type=int, default=10_000)
    p.add_argument("--programs", type=int, default=100_000)
    p.add_argument("--terms", type=int, default=200_000)
    p.add_argument("--nnz", type=int, default=180)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--scipy-needs", type=int, default=1_000,
                   help="scipy is slow: time it on this many needs and scale")
    args = p.parse_args()
    q = tfidf_like(args.needs, args.terms, args.nnz, 1)
    d = tfidf_like(args.programs, args.terms, args.nnz, 2)
    pairs = args.needs * args.programs
    index = PostingIndex(d)
    index.search(q[:10], args.k)  # compile / load the numba cache
    t_ours, (_, ours) = timed(lambda: index.search(q, args.k), args.repeat)
    rows = {"iei-match PostingIndex": t_ours}
    try:
        import sparse_dot_topn as sdt

        dt = d.T.tocsr()
        t_sdt, ref = timed(lambda: sdt.sp_matmul_topn(q, dt, top_n=args.k, n_threads=2,
                                                      sort=True), args.repeat)
        rows["sparse_dot_topn (2 threads)"] = t_sdt
        ref_scores = np.zeros_like(ours)
        for i in range(ref.shape[0]):
            row = np.sort(ref.data[ref.indptr[i]:ref.indptr[i + 1]])[::-1]
            ref_scores[i, : len(row)] = row
        agree = bool(np.allclose(ref_scores, ours, atol=1e-4))
    except ImportError:
        t_sdt, agree = None, None
    n_sc = min(args.scipy_needs, args.needs)
    t_sc, sc = timed(lambda: scipy_topk(q[:n_sc], d, args.k), 1)
    rows["scipy chunked + argpartition"] = t_sc * args.needs / n_sc
    assert np.allclose(sc, ours[:n_sc], atol=1e-4), "iei-match disagrees with scipy"
    print(f"{args.needs} needs x {args.programs} programs, {d.nnz / d.shape[0]:.0f} nnz/row, "
          f"top-{args.k}, median of {args.repeat}")
    for name, t in rows.items():
        ratio = f"{t_sdt / t:5.2f}x sparse_dot_topn" if t_sdt else ""
        print(f"  {name:<32} {t:8.2f} s  {pairs / t:9.2e} pairs/s  {ratio}")
    print(f"  scores agree with scipy: True; with sparse_dot_topn: {agree}")


if __name__ == "__main__":
    main()

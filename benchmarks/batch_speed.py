"""Batch speed: retrieval and the whole pipeline, in pairs scored per second, 1 vs 2 workers.

    pip install sparse_dot_topn   # the reference; not a dependency of iei-match
    python benchmarks/batch_speed.py [--needs 10000] [--programs 100000] [--k 50]
                                     [--runs threads:1,threads:2] [--explain 0]
                                     [--skip-synthetic] [--skip-retrieval]

Three measurements, each as pairs scored per second (needs x programs / seconds):

1. Retrieval on synthetic TF-IDF-like matrices shaped as in shared/PERFORMANCE.md (~180
   non-zeros per row, skewed term frequencies, L2-normalised): iei-match's
   ``PostingIndex.search`` next to ``sparse_dot_topn`` (2 threads) on the same matrices.
2. The same two on the word and the character n-gram TF-IDF matrices of the pipeline's
   own documents (below): the two searches of a need's candidates. iei-match's search
   says how it went (blocks of queries scored from the documents' rows, or the posting
   lists); it is also timed the other ways, with whether they gave the same answers: by
   the posting lists (when it chose blocks) and, for an index large enough to prune
   (``retrieval.PRUNE_MIN_DOCS``), with every posting walked.
3. The whole pipeline: ``run_batch`` (retrieval by words, character n-grams and past
   links, pair features, the LightGBM ranker; the model shipped to the workers, the
   programs vectorised once per worker) ranking the top ``k`` programs of every need, on
   a local Dask cluster of 1 and of 2 workers.

The documents are synthetic: ``--topics`` topics, each with its own Zipf-distributed
vocabulary of pseudo-words, plus words shared by all; a need or program takes 70% of its
words from its topic. A model is trained first on ``--train-needs`` needs linked to
programs of their topic among the first ``--train-programs`` programs (which are part of
the catalog, so past links count for them too).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from retrieval_speed import scipy_topk, tfidf_like, timed

from iei_match import retrieval
from iei_match.artifacts import publish_model
from iei_match.batch import run_batch
from iei_match.matcher import Matcher
from iei_match.retrieval import PostingIndex
from iei_match.sides import document_texts

INSTALL = "pip install sparse_dot_topn"


def pseudo_words(n: int, rng) -> np.ndarray:
    consonants, vowels = list("bcdfghklmnprstvz"), list("aeiou")
    words = set()
    while len(words) < n:
        size = int(rng.integers(2, 5))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(size)))
    return np.array(sorted(words))


class Corpus:
    """Documents drawn from topics: 70% topic words, 30% shared words (Zipf within each)."""

    def __init__(self, n_topics: int, seed: int = 0, topic_vocab: int = 150,
                 shared_vocab: int = 5000):
        self.rng = np.random.default_rng(seed)
        words = pseudo_words(n_topics * topic_vocab + shared_vocab, self.rng)
        self.rng.shuffle(words)
        self.shared = words[:shared_vocab]
        self.topics = words[shared_vocab:].reshape(n_topics, topic_vocab)

    def _zipf(self, size: int, n: int) -> np.ndarray:
        weights = 1.0 / np.arange(1, size + 1)  # Zipf's law, exponent 1, on a finite vocabulary
        return self.rng.choice(size, n, p=weights / weights.sum())

    def documents(self, n: int, length: int, id_col: str,
                  prefix: str) -> tuple[pd.DataFrame, np.ndarray]:
        topic = self.rng.integers(0, len(self.topics), n)
        own = self.rng.random((n, length)) < 0.7
        words = np.where(own, self.topics[topic[:, None], self._zipf(self.topics.shape[1],
                                                                     n * length).reshape(n, -1)],
                         self.shared[self._zipf(len(self.shared), n * length).reshape(n, -1)])
        titles = [" ".join(row[:3]) for row in self.topics[topic][:, :3]]
        frame = pd.DataFrame({id_col: [f"{prefix}{i:06d}" for i in range(n)],
                              "title": titles, "text": [" ".join(row) for row in words]})
        return frame, topic


def train(corpus: Corpus, programs: pd.DataFrame, prog_topic: np.ndarray, args) -> Matcher:
    needs, topic = corpus.documents(args.train_needs, args.need_words, "need_id", "train")
    known = programs.iloc[: args.train_programs]
    by_topic = pd.Series(np.arange(len(known))).groupby(prog_topic[: len(known)]).apply(list)
    links = []
    for nid, t in zip(needs["need_id"], topic, strict=True):
        for j in corpus.rng.permutation(by_topic.get(t, []))[:2]:
            links.append((nid, known["program_id"].iloc[j], int(corpus.rng.integers(1, 4))))
    links = pd.DataFrame(links, columns=["need_id", "program_id", "grade"])
    m = Matcher(n_folds=3, n_estimators=150, random_state=0)
    return m.fit(needs, known, links)


def pairs_per_second(n_q: int, n_d: int, seconds: float) -> str:
    return f"{n_q * n_d / seconds:9.2e}"


def retrieval_rows(q, d, k: int, label: str, repeat: int) -> list[str]:
    """Median seconds of ``repeat`` top-k searches, iei-match and sparse_dot_topn."""
    index = PostingIndex(d)
    index.search(q[:10], k)  # compile / load the numba cache
    ours, found = timed(lambda: index.search(q, k), repeat)
    q_csr = sp.csr_matrix(q)
    lanes = index._matrix_lanes(q_csr, q_csr.indices.astype(np.int64),
                                q_csr.data.astype(np.float32), True)
    how = f"blocks of {lanes} queries from the rows" if lanes else "posting lists"
    rows = [f"| {label} | iei-match PostingIndex ({how}) | {ours:.2f} | "
            f"{pairs_per_second(q.shape[0], d.shape[0], ours)} |"]
    # The same search by the other ways (the same answers, to the bit): the posting lists
    # when the cost model chose blocks, and every posting walked where pruning applies.
    others = [("posting lists, pruned", False, True)] if lanes else []
    if d.shape[0] >= retrieval.PRUNE_MIN_DOCS:
        others.append(("every posting walked", False, False))
    for name, matrix, prune in others:
        retrieval.MATRIX, retrieval.PRUNE = matrix, prune
        try:
            seconds, other = timed(lambda: index.search(q, k), repeat)
        finally:
            retrieval.MATRIX, retrieval.PRUNE = True, True
        same = all(np.array_equal(a, b) for a, b in zip(found, other, strict=True))
        rows.append(f"| {label} | iei-match PostingIndex, {name} (same answers: "
                    f"{'yes' if same else 'NO'}) | {seconds:.2f} | "
                    f"{pairs_per_second(q.shape[0], d.shape[0], seconds)} |")
    try:
        import sparse_dot_topn as sdt
    except ImportError:  # a reference in the same run: scipy's product (one thread)
        n = min(q.shape[0], 500)
        ref, _ = timed(lambda: scipy_topk(q[:n], d, k), 1)
        ref *= q.shape[0] / n
        return rows + [f"| {label} | sparse_dot_topn: not installed ({INSTALL}) | | |",
                       f"| {label} | scipy A @ B.T + argpartition, 1 thread (timed on {n} "
                       f"queries, scaled) | {ref:.2f} | "
                       f"{pairs_per_second(q.shape[0], d.shape[0], ref)} |",
                       f"| {label} | ratio iei-match / scipy | {ref / ours:.2f} | |"]
    dt = d.T.tocsr()
    ref, _ = timed(lambda: sdt.sp_matmul_topn(q, dt, top_n=k, n_threads=2, sort=True), repeat)
    return rows + [f"| {label} | sparse_dot_topn (2 threads) | {ref:.2f} | "
                   f"{pairs_per_second(q.shape[0], d.shape[0], ref)} |",
                   f"| {label} | ratio iei-match / sparse_dot_topn | {ref / ours:.2f} | |"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--needs", type=int, default=10_000)
    p.add_argument("--programs", type=int, default=100_000)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--topics", type=int, default=400)
    p.add_argument("--need-words", type=int, default=60)
    p.add_argument("--program-words", type=int, default=120)
    p.add_argument("--train-needs", type=int, default=2000)
    p.add_argument("--train-programs", type=int, default=5000)
    p.add_argument("--partition-size", type=int, default=1000)
    p.add_argument("--explain", type=int, default=0, help="rows per list with SHAP factors")
    p.add_argument("--runs", default="threads:1,threads:2",
                   help="comma-separated SCHEDULER:WORKERS for the pipeline ('' for none)")
    p.add_argument("--repeat", type=int, default=3, help="retrieval timings: median of this")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--skip-retrieval", action="store_true",
                   help="leave out the retrieval rows on the pipeline's matrices")
    args = p.parse_args()
    print(f"{args.needs} needs x {args.programs} programs, top-{args.k}; retrieval: median "
          f"of {args.repeat}\n")
    print("| matrices | method | seconds | pairs scored / s |\n|---|---|---|---|")
    if not args.skip_synthetic:
        q, d = tfidf_like(args.needs, 200_000, 180, 1), tfidf_like(args.programs, 200_000, 180, 2)
        print("\n".join(retrieval_rows(q, d, args.k, "synthetic TF-IDF, "
                                       f"{d.nnz / d.shape[0]:.0f} nnz/row", args.repeat)),
              flush=True)
        del q, d
    corpus = Corpus(args.topics)
    programs, prog_topic = corpus.documents(args.programs, args.program_words, "program_id",
                                              "prog")
    needs, _ = corpus.documents(args.needs, args.need_words, "need_id", "need")
    t0 = time.perf_counter()
    matcher = train(corpus, programs, prog_topic, args)
    fit = time.perf_counter() - t0
    for name, vectorizer in (() if args.skip_retrieval else (
            ("words", matcher.word_), ("character n-grams", matcher.char_))):
        q, d = (vectorizer.transform(*document_texts(frame)).full for frame in (needs, programs))
        print("\n".join(retrieval_rows(q, d, args.k, f"pipeline {name}, {d.nnz / d.shape[0]:.0f}"
                                       f" nnz/row", args.repeat)), flush=True)
        del q, d
    work = Path(tempfile.mkdtemp(prefix="iei-batch-speed-"))
    try:
        model = publish_model(matcher, work / "model")
        for run in filter(None, args.runs.split(",")):
            scheduler, workers = run.split(":")
            finished: list[float] = []
            t0 = time.perf_counter()
            run_batch(model, needs, programs, work / "out.parquet", args.k,
                      directions=("need",), job_id=f"bench-{scheduler}-{workers}",
                      work_dir=work / "jobs", scheduler=scheduler, n_workers=int(workers),
                      partition_size=args.partition_size, explain=args.explain,
                      progress=lambda r, done=finished: done.append(time.perf_counter())
                      if r.stage == "running" and r.direction else None)
            seconds = time.perf_counter() - t0
            print(f"| whole pipeline, explain={args.explain} | run_batch, {scheduler}, "
                  f"{workers} worker(s) | {seconds:.1f} | "
                  f"{pairs_per_second(args.needs, args.programs, seconds)} |", flush=True)
            # Once every worker has its catalog, the partitions alone:
            first = int(workers)
            if len(finished) > first + 1:
                rate = (len(finished) - first) / (finished[-1] - finished[first - 1])
                steady = (len(finished) - first) / rate
                print(f"| partitions after the first {first}, explain={args.explain} | "
                      f"{scheduler}, {workers} worker(s) | {steady:.1f} | "
                      f"{pairs_per_second(rate * args.partition_size, args.programs, 1.0)} |",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n(model trained in {fit:.1f} s on {args.train_needs} needs; "
          f"{args.programs} programs, {args.partition_size} needs per partition; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB here, "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20:.2f} GB in the "
          f"largest finished child; load average {os.getloadavg()})")


if __name__ == "__main__":
    main()

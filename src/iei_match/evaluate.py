"""Hold-out evaluation of the matcher next to the peers a user would use instead."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import InputError
from .fit import expected_calibration_error, reliability_table
from .matcher import Matcher
from .metrics import evaluate_run
from .peers import PEERS, rank_peer

__all__ = ["holdout_split", "evaluate", "evaluate_seeds", "seed_summary", "default_peers",
           "calibration", "no_fit_detection", "roc_auc", "as_queries", "ALLIANCE_SIZE",
           "QUERIES"]

ALLIANCE_SIZE = 30  # programs of an alliance in the no-fit detection test
QUERIES = ("full", "title")  # how held-out needs are asked: title and text, or title alone


def as_queries(needs: pd.DataFrame, queries: str = "full") -> pd.DataFrame:
    """The held-out needs as they are asked: ``"full"`` (title and text) or ``"title"``
    (the title alone, as an enterprise that types only "电工"; ``text`` and any
    ``code`` are emptied, since such a need comes without them)."""
    if queries not in QUERIES:
        raise InputError(f"queries must be one of {list(QUERIES)}, got {queries!r}")
    if queries == "full":
        return needs
    out = needs.copy()
    out["text"] = ""
    if "code" in out:
        out["code"] = ""
    return out


def holdout_split(needs: pd.DataFrame, links: pd.DataFrame, test_size: float = 0.2,
                  random_state: int = 0):
    """Split needs (and their links) into a training part and an unseen test part.

    Returns
    -------
    train_needs, test_needs, train_links, test_links : DataFrame
    """
    if not 0 < test_size < 1:
        raise InputError(f"test_size must be between 0 and 1, got {test_size}")
    ids = np.sort(needs["need_id"].astype(str).unique())
    n_test = max(1, int(round(len(ids) * test_size)))
    if n_test >= len(ids):
        raise InputError("too few needs to hold some out")
    test = set(np.random.default_rng(random_state).choice(ids, n_test, replace=False))
    is_test = needs["need_id"].astype(str).isin(test)
    link_test = links["need_id"].astype(str).isin(test)
    return needs[~is_test], needs[is_test], links[~link_test], links[link_test]


def _doc(frame: pd.DataFrame) -> list[str]:
    return (frame["title"].astype(str) + " " + frame["text"].astype(str)).tolist()


def _dense_peer(queries: list[str], docs: list[str], k: int):
    from .embeddings import DenseEncoder
    from .memory import dense_topk

    enc = DenseEncoder()
    q, d = enc.encode(queries), enc.encode(docs)
    idx = dense_topk(q, d, k)
    return idx, np.take_along_axis(q @ d.T, idx, axis=1)


def default_peers(texts: list[str] | None = None) -> tuple[str, ...]:
    """The sparse peers, plus dense embeddings when the ``embeddings`` extra is installed
    and ``texts`` are mostly not Chinese (the embedding model is English-only)."""
    from . import embeddings
    from .text import has_cjk

    sample = (texts or [])[:: max(1, len(texts or []) // 500)]
    english = not sample or np.mean([has_cjk(t) for t in sample]) < 0.5
    return PEERS + (("dense",) if english and embeddings.available() else ())


def _peer_run(name, queries, docs, q_col, d_col, k) -> pd.DataFrame:
    if name == "dense":
        idx, score = _dense_peer(_doc(queries), _doc(docs), k)
    else:
        idx, score = rank_peer(name, _doc(queries), _doc(docs), k)
    kk = idx.shape[1]
    return pd.DataFrame({
        q_col: np.repeat(queries[q_col].astype(str).to_numpy(), kk),
        d_col: docs[d_col].astype(str).to_numpy()[idx.ravel()],
        "rank": np.tile(np.arange(1, kk + 1), len(queries)),
        "score": score.ravel(),
    })


def _truth(links: pd.DataFrame) -> set[tuple[str, str]]:
    grade = pd.to_numeric(links.get("grade", 1), errors="coerce").fillna(1)
    pos = links[grade > 0]
    return set(zip(pos["need_id"].astype(str), pos["program_id"].astype(str), strict=True))


def calibration(run: pd.DataFrame, links: pd.DataFrame, bins: int = 10) -> dict:
    """How well a run's ``fit`` matches reality: ECE, Brier score and the reliability table.

    Parameters
    ----------
    run : DataFrame
        A ranking with ``need_id``, ``program_id`` and ``fit`` (e.g. the top 100 of each
        list).
    links : DataFrame
        The known links of the queries; a pair is real when it is among them (grade > 0).

    Returns
    -------
    dict
        ``ece`` (``bins`` equal-width bins), ``brier``, ``rows``, ``links`` (real pairs
        among the rows) and ``table`` (:func:`~iei_match.fit.reliability_table`).
    """
    truth = _truth(links)
    y = np.array([(a, b) in truth for a, b in zip(run["need_id"].astype(str),
                                                     run["program_id"].astype(str),
                                                     strict=True)], dtype=float)
    p = run["fit"].to_numpy(np.float64)
    return {"ece": expected_calibration_error(p, y, bins),
            "brier": float(np.mean((p - y) ** 2)) if len(y) else 0.0,
            "rows": int(len(y)), "links": int(y.sum()),
            "table": reliability_table(p, y, bins)}


def roc_auc(positive, negative) -> float:
    """Probability that a random positive scores above a random negative (ties: half)."""
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    both = np.r_[pos, neg]
    ranks = pd.Series(both).rank(method="average").to_numpy()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2)
                 / (len(pos) * len(neg)))


def no_fit_detection(matcher: Matcher, needs: pd.DataFrame, programs: pd.DataFrame,
                     links: pd.DataFrame, *, size: int = ALLIANCE_SIZE, random_state: int = 0,
                     peers: tuple[str, ...] = ("tfidf-word", "tfidf-char")) -> dict:
    """Can the top-1 fit tell an alliance that holds a fitting program from one that does
    not?

    For every need with a link, two alliances of ``size`` programs are drawn (seeded): one
    holds one of the need's linked programs and ``size - 1`` programs not linked to it;
    the other holds ``size`` programs not linked to it. The need is ranked against each,
    and the fit of the program ranked first is the signal: ROC AUC of "holds a fitting
    program" against it. The same alliances are scored by each peer's top-1 similarity.

    Two kinds of alliances are drawn: ``random`` (the other programs uniformly from the
    catalog) and ``near`` (half of them the need's most similar unlinked programs by word
    TF-IDF, which is what a real alliance of one industry looks like to a need of it).

    Returns
    -------
    dict
        ``{kind: {"iei-match": auc, peer: auc, ..., "needs": n}}``.
    """
    truth = _truth(links)
    rng = np.random.default_rng(random_state)
    pids = programs["program_id"].astype(str).to_numpy()
    catalog = matcher.prepare(programs, "program")
    queries = needs[needs["need_id"].astype(str).isin({a for a, _ in truth})]
    peer_scores = {}
    q_docs, p_docs = _doc(queries), _doc(programs)
    for name in peers:
        idx, val = rank_peer(name, q_docs, p_docs, len(p_docs))
        full = np.zeros((len(q_docs), len(p_docs)))
        np.put_along_axis(full, idx, val, axis=1)
        peer_scores[name] = full
    near = peer_scores.get("tfidf-word")
    if near is None:
        idx, val = rank_peer("tfidf-word", q_docs, p_docs, len(p_docs))
        near = np.zeros((len(q_docs), len(p_docs)))
        np.put_along_axis(near, idx, val, axis=1)
    out: dict = {}
    for kind in ("random", "near"):
        signals: dict[str, dict[bool, list]] = {m: {True: [], False: []}
                                                for m in ("iei-match", *peers)}
        for qi, need_id in enumerate(queries["need_id"].astype(str)):
            linked = np.array([(need_id, p) in truth for p in pids])
            unlinked = np.flatnonzero(~linked)
            if linked.sum() == 0 or len(unlinked) < size:
                continue
            for holds in (True, False):
                n_other = size - 1 if holds else size
                if kind == "near":
                    by_sim = unlinked[np.argsort(-near[qi, unlinked], kind="stable")]
                    n_near = n_other // 2
                    rest = by_sim[n_near:]
                    others = np.r_[by_sim[:n_near],
                                   rng.choice(rest, n_other - n_near, replace=False)]
                else:
                    others = rng.choice(unlinked, n_other, replace=False)
                members = others if not holds else np.r_[
                    others, rng.choice(np.flatnonzero(linked), 1)]
                mask = np.zeros(len(pids), dtype=bool)
                mask[members] = True
                top = matcher.rank(queries.iloc[[qi]], catalog.restrict(mask), k=1,
                                   explain=False)
                signals["iei-match"][holds].append(float(top["fit"].iloc[0]) if len(top)
                                                   else 0.0)
                for name in peers:
                    signals[name][holds].append(float(peer_scores[name][qi, members].max()))
        out[kind] = {m: roc_auc(v[True], v[False]) for m, v in signals.items()}
        out[kind]["needs"] = len(signals["iei-match"][True])
    return out


def evaluate(needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame, *,
             test_size: float = 0.2, random_state: int = 0, k: int = 100,
             peers: tuple[str, ...] | None = None, matcher: Matcher | None = None,
             no_fit: bool = True, queries: str = "full", progress: bool = False
             ) -> pd.DataFrame:
    """Train on most needs, then rank the held-out ones in both directions.

    The matcher and every peer (by default TF-IDF words, TF-IDF char n-grams, BM25, and
    dense embeddings when installed) are scored in the same run on the same split: NDCG@10,
    Recall@10, Recall@50 and MRR, averaged over held-out needs (``need->program``) or over
    programs with at least one held-out link (``program->need``). The matcher's ``fit`` is
    judged too: expected calibration error (10 equal-width bins) and Brier score over the
    top ``k`` rows of every list.

    ``queries="title"`` asks the held-out needs by their title alone (:func:`as_queries`),
    for the matcher and the peers alike; training is unchanged.

    Returns
    -------
    DataFrame
        One row per (method, direction) with the metrics and the seconds taken (``ece``
        and ``brier`` are NaN for the peers, which have no probability). Its ``attrs``
        hold ``calibration`` (per direction, :func:`calibration` of the matcher's run) and,
        with ``no_fit``, ``no_fit`` (:func:`no_fit_detection`).
    """
    tr_needs, te_needs, tr_links, te_links = holdout_split(needs, links, test_size, random_state)
    te_needs = as_queries(te_needs, queries)
    if (pd.to_numeric(te_links.get("grade", 1), errors="coerce").fillna(1) > 0).sum() == 0:
        raise InputError("the held-out needs have no links to evaluate against")
    matcher = matcher if matcher is not None else Matcher(random_state=random_state)
    peers = default_peers(_doc(programs)) if peers is None else peers
    rows = []
    t0 = time.perf_counter()
    matcher.fit(tr_needs, programs, tr_links, progress=progress)
    fit_s = time.perf_counter() - t0
    runs = {}
    t0 = time.perf_counter()
    runs[("iei-match", "need->program")] = matcher.rank(te_needs, programs, k=k, explain=False)
    runs[("iei-match", "program->need")] = matcher.partners(programs, te_needs, k=k,
                                                            explain=False)
    rank_s = time.perf_counter() - t0
    seconds = {"iei-match": (fit_s, rank_s)}
    for name in tqdm(peers, desc="peers", disable=not progress):
        t0 = time.perf_counter()
        runs[(name, "need->program")] = _peer_run(name, te_needs, programs, "need_id",
                                                  "program_id", k)
        runs[(name, "program->need")] = _peer_run(name, programs, te_needs, "program_id",
                                                  "need_id", k)
        seconds[name] = (0.0, time.perf_counter() - t0)
    calibrations = {}
    for (name, direction), run in runs.items():
        q_col, d_col = ("need_id", "program_id") if direction == "need->program" else \
            ("program_id", "need_id")
        scores = evaluate_run(run, te_links, q_col, d_col, ks=(10, 50))
        cal = calibration(run, te_links) if "fit" in run else None
        if cal is not None:
            calibrations[direction] = cal
        rows.append({"method": name, "direction": direction,
                     "ndcg@10": scores["ndcg@10"], "recall@10": scores["recall@10"],
                     "recall@50": scores["recall@50"], "mrr": scores["mrr"],
                     "ece": cal["ece"] if cal else np.nan,
                     "brier": cal["brier"] if cal else np.nan,
                     "queries": scores["queries"], "fit_s": seconds[name][0],
                     "rank_s": seconds[name][1]})
    report = pd.DataFrame(rows)
    report.attrs["calibration"] = calibrations
    if no_fit:
        report.attrs["no_fit"] = no_fit_detection(matcher, te_needs, programs, te_links,
                                                  random_state=random_state)
    return report


def evaluate_seeds(needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame,
                   seeds, *, matcher_for=None, **kwargs) -> pd.DataFrame:
    """:func:`evaluate` on several hold-out splits: one per seed, each with a matcher of that
    ``random_state`` (``matcher_for(seed)`` when given).

    A small change of the training data moves the matcher's NDCG@10 on one split by up to
    about a hundredth (a change of a few training titles moved the Chinese full texts by
    -0.009 to +0.001 from seed to seed), so a decision on one split reads noise as signal;
    :func:`seed_summary` gives the spread.

    Returns
    -------
    DataFrame
        :func:`evaluate`'s rows of every seed, with a first column ``seed``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct whole numbers, got {seeds}")
    parts = []
    for seed in seeds:
        matcher = matcher_for(seed) if matcher_for is not None else None
        report = evaluate(needs, programs, links, random_state=seed, matcher=matcher,
                          **kwargs)
        parts.append(report.assign(seed=seed)[["seed", *report.columns]])
    return pd.concat(parts, ignore_index=True)


def seed_summary(report: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """The spread of ``metric`` over the seeds of :func:`evaluate_seeds`'s report.

    One row per method and direction: the mean, standard deviation (n - 1; NaN for one
    seed), smallest and largest value over the seeds; for iei-match also its gain over the
    best peer of the same seed and direction (``ndcg / best - 1``), as the mean and the
    smallest gain over the seeds (NaN without peers).

    Examples
    --------
    >>> r = pd.DataFrame({"seed": [0, 0, 1, 1], "method": ["iei-match", "bm25"] * 2,
    ...                   "direction": ["need->program"] * 4,
    ...                   "ndcg@10": [0.8, 0.5, 0.9, 0.6]})
    >>> s = seed_summary(r)
    >>> s[["method", "mean", "min", "gain_mean", "gain_min"]].round(3).to_dict("records")[0]
    {'method': 'iei-match', 'mean': 0.85, 'min': 0.8, 'gain_mean': 0.55, 'gain_min': 0.5}
    """
    keys = ["method", "direction"]
    stats = (report.groupby(keys, sort=False)[metric]
             .agg(mean="mean", std="std", min="min", max="max", seeds="count").reset_index())
    peers = report[report["method"] != "iei-match"]
    best = peers.groupby(["seed", "direction"])[metric].max().rename("best")
    ours = report[report["method"] == "iei-match"].join(best, on=["seed", "direction"])
    gain = (ours[metric] / ours["best"] - 1).groupby(ours["direction"]).agg(
        gain_mean="mean", gain_min="min")
    stats = stats.join(gain, on="direction")
    stats.loc[stats["method"] != "iei-match", ["gain_mean", "gain_min"]] = np.nan
    return stats

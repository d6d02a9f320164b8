"""Training in one place: fit, calibrate, evaluate, and decide whether a model may go live.

Every caller that makes a model (``iei-match train``, ``training/train.py``, the service's
first model and its retraining) calls :func:`train_model` and writes the metrics it returns
into the model's manifest, so that every model carries the same figures:

``schema``
    The version of this layout (1).
``data``
    Needs, programs and links trained on.
``mode``, ``calibrated``, ``fit_levels``, ``best_iterations``, ``fit_seconds``
    What was learned, and how long it took.
``fit_oof``
    The fit's out-of-fold figures (:attr:`~iei_match.fit.FitModel.report_`): ECE, Brier,
    each level's share of pairs and of links.
``holdout`` (with a hold-out)
    Per direction (``need->program``, ``program->need``): NDCG@10, Recall@10, Recall@50,
    MRR, ECE and Brier of a model trained without the held-out needs, on them;
    ``holdout_ndcg10`` and ``holdout_ece`` repeat the need->program figures.
``live_holdout`` (when compared with a live model)
    The same figures of the live model on the same needs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from .evaluate import calibration, holdout_split
from .fit import FitModel
from .matcher import Matcher
from .metrics import evaluate_run

__all__ = ["train_model", "holdout_metrics", "TrainingResult", "METRICS_SCHEMA",
           "MAX_HOLDOUT_ECE"]

METRICS_SCHEMA = 1
# A candidate whose held-out ECE is above this (and above the live model's) is not
# published: its fit would mislead.
MAX_HOLDOUT_ECE = 0.05

Report = Callable[[float, str], None]


def _quiet(progress: float, message: str) -> None:
    pass


@dataclass
class TrainingResult:
    """What :func:`train_model` made and decided.

    Attributes
    ----------
    matcher : Matcher or None
        The model trained on all the data, to publish; None when the live model is kept.
    metrics : dict
        The manifest's metrics (see the module's documentation).
    accepted : bool
        Whether ``matcher`` may replace the live model.
    reason : str
        Why, in a sentence.
    notes : list of str
        Warnings raised while fitting (e.g. the content-only fallback).
    """

    matcher: Matcher | None
    metrics: dict
    accepted: bool
    reason: str
    notes: list[str] = field(default_factory=list)


def holdout_metrics(matcher: Matcher, needs: pd.DataFrame, programs: pd.DataFrame,
                    links: pd.DataFrame, k: int = 100) -> dict[str, dict[str, float]]:
    """NDCG@10, Recall@10, Recall@50, MRR, ECE and Brier of ``matcher`` on needs it did not
    see, in both directions (the top ``k`` of every list)."""
    out = {}
    runs = {"need->program": (matcher.rank(needs, programs, k=k, explain=False),
                              "need_id", "program_id"),
            "program->need": (matcher.partners(programs, needs, k=k, explain=False),
                              "program_id", "need_id")}
    for direction, (run, q_col, d_col) in runs.items():
        scores = evaluate_run(run, links, q_col, d_col, ks=(10, 50))
        cal = calibration(run, links)
        out[direction] = {"ndcg@10": round(scores["ndcg@10"], 4),
                          "recall@10": round(scores["recall@10"], 4),
                          "recall@50": round(scores["recall@50"], 4),
                          "mrr": round(scores["mrr"], 4), "ece": round(cal["ece"], 4),
                          "brier": round(cal["brier"], 4), "queries": int(scores["queries"])}
    return out


def _fit(params: dict, needs, programs, links, progress: bool, notes: list[str]) -> Matcher:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        matcher = Matcher(**params).fit(needs, programs, links, progress=progress)
    notes.extend(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    return matcher


def train_model(needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame | None, *,
                params: dict | None = None, test_size: float = 0.0, random_state: int = 0,
                live: Matcher | None = None, force: bool = False, progress: bool = False,
                report: Report = _quiet) -> TrainingResult:
    """Fit a matcher (with its calibrated fit), evaluate it, and decide whether it may go live.

    Parameters
    ----------
    needs, programs, links : DataFrame
        The training data (``links`` may be None: content-only).
    params : dict, optional
        :class:`~iei_match.matcher.Matcher` parameters (``random_state`` defaults to
        ``random_state``).
    test_size : float, default=0
        Share of the needs held out (seeded) to evaluate a model trained on the rest. 0
        skips the hold-out: the metrics then hold the fit's out-of-fold figures only.
    random_state : int
    live : Matcher, optional
        The live model. With a hold-out, it is judged on the same needs, and the new model
        is accepted only if its need->program NDCG@10 is not lower and its ECE is at most
        ``max(MAX_HOLDOUT_ECE, the live model's)``. The live model may have seen those
        needs in its own training, which favours it: the test is conservative.
    force : bool
        Accept regardless of the comparison.
    progress : bool
        Progress bars while fitting.
    report : callable, optional
        ``report(fraction_done, message)`` at each step.

    Returns
    -------
    TrainingResult
    """
    params = {"random_state": random_state, **(params or {})}
    notes: list[str] = []
    metrics: dict = {"schema": METRICS_SCHEMA,
                     "data": {"needs": len(needs), "programs": len(programs),
                              "links": 0 if links is None else len(links)}}
    accepted, reason = True, "no live model to compare with"
    has_links = links is not None and len(links) > 0
    if test_size and has_links:
        tr_needs, te_needs, tr_links, te_links = holdout_split(needs, links, test_size,
                                                               random_state)
        report(0.1, f"training a candidate on {len(tr_needs)} needs (holding out "
                    f"{len(te_needs)})")
        candidate = _fit(params, tr_needs, programs, tr_links, progress, notes)
        report(0.45, "evaluating on the held-out needs")
        holdout = holdout_metrics(candidate, te_needs, programs, te_links)
        metrics["holdout"] = holdout
        metrics["holdout_ndcg10"] = holdout["need->program"]["ndcg@10"]
        metrics["holdout_ece"] = holdout["need->program"]["ece"]
        metrics["held_out_needs"] = len(te_needs)
        if live is not None:
            mine = holdout["need->program"]
            theirs = holdout_metrics(live, te_needs, programs, te_links)
            metrics["live_holdout"] = theirs
            worse_rank = mine["ndcg@10"] < theirs["need->program"]["ndcg@10"]
            worse_fit = mine["ece"] > max(MAX_HOLDOUT_ECE, theirs["need->program"]["ece"])
            if force:
                accepted, reason = True, "forced"
            elif worse_rank or worse_fit:
                accepted = False
                reason = (f"held-out NDCG@10 {mine['ndcg@10']:.4f} vs live "
                          f"{theirs['need->program']['ndcg@10']:.4f}, ECE {mine['ece']:.4f} "
                          f"vs live {theirs['need->program']['ece']:.4f}")
            else:
                reason = (f"held-out NDCG@10 {mine['ndcg@10']:.4f} >= live "
                          f"{theirs['need->program']['ndcg@10']:.4f}")
    if not accepted:
        report(1.0, f"kept the live model: {reason}")
        return TrainingResult(None, metrics, False, reason, notes)
    report(0.55, "training on all the data")
    t0 = time.perf_counter()
    final = _fit(params, needs, programs, links, progress, notes)
    metrics.update({
        "fit_seconds": round(time.perf_counter() - t0, 2),
        "mode": final.mode_,
        "calibrated": final.calibrated_,
        "fit_levels": dict(final.fit_model_.thresholds_),
        "best_iterations": final.best_iterations_,
    })
    if isinstance(final.fit_model_, FitModel):
        metrics["fit_oof"] = dict(final.fit_model_.report_)
    return TrainingResult(final, metrics, True, reason, notes)

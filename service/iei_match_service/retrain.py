"""Training the service's models: the first one, and retraining on recorded outcomes.

Training data are the bundled catalog (or ``IEI_MATCH_CATALOG_DIR``) plus every need and
program in the database, with the graded labels of partnerships (:mod:`.labels`).

A retrained model is published only if it is not worse than the live one: both rank the
same held-out 20% of the needs (seeded) and are compared by NDCG@10. The live model may
have seen those needs in its own training, which favours it; the test is conservative.
``force`` publishes regardless.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import pandas as pd
from sqlalchemy import select

from iei_match.artifacts import data_fingerprint
from iei_match.bundled import catalog_dir
from iei_match.evaluate import holdout_split
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher
from iei_match.metrics import evaluate_run

from .db.engine import Database
from .db.tables import Need, Partnership, Program
from .frames import need_key, needs_frame, program_key, programs_frame
from .model_host import LiveModel, ModelHost
from .settings import Settings

Report = Callable[[float, str], None]


def _quiet(progress: float, message: str) -> None:
    pass


def training_tables(settings: Settings, db: Database):
    """Needs, programs and links: the catalog's and the database's, in engine form."""
    src = settings.catalog_dir or catalog_dir(settings.catalog)
    needs, programs = load_needs(src / "needs.csv"), load_programs(src / "programs.csv")
    links = load_links(src / "links.csv")
    for frame, id_col in ((needs, "need_id"), (programs, "program_id")):
        if "code" not in frame:  # catalog ids are taxonomy codes
            frame["code"] = frame[id_col].astype(str)
    with db.session() as s:
        db_needs = needs_frame(s.scalars(select(Need).order_by(Need.id)))
        db_programs = programs_frame(s.scalars(select(Program).order_by(Program.id)))
        labelled = s.execute(select(Partnership.need_id, Partnership.program_id,
                                    Partnership.grade)
                             .where(Partnership.grade.is_not(None))
                             .order_by(Partnership.id)).all()
    db_links = pd.DataFrame({"need_id": [need_key(r[0]) for r in labelled],
                             "program_id": [program_key(r[1]) for r in labelled],
                             "grade": [int(r[2]) for r in labelled]})
    needs = pd.concat([needs, db_needs], ignore_index=True)
    programs = pd.concat([programs, db_programs], ignore_index=True)
    links = pd.concat([links[["need_id", "program_id", "grade"]], db_links], ignore_index=True)
    for frame in (needs, programs):
        for col in frame.columns:
            if frame[col].dtype == object:
                frame[col] = frame[col].fillna("").astype(str)
    return needs, programs, links


def _fit(settings: Settings, needs, programs, links) -> Matcher:
    params = {"random_state": settings.seed, **settings.train_params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # content-only fallback is recorded
        return Matcher(**params).fit(needs, programs, links)


def train_first(settings: Settings, db: Database, host: ModelHost,
                report: Report = _quiet) -> LiveModel:
    """Train and publish the first model (no live model to compare with)."""
    report(0.05, "reading training data")
    needs, programs, links = training_tables(settings, db)
    report(0.1, f"training on {len(needs)} needs, {len(programs)} programs, "
                f"{len(links)} links")
    t0 = time.perf_counter()
    matcher = _fit(settings, needs, programs, links)
    metrics = {"fit_seconds": round(time.perf_counter() - t0, 2), "needs": len(needs),
               "programs": len(programs), "links": len(links), "mode": matcher.mode_}
    live = host.publish(matcher, metrics, data_fingerprint(needs, programs, links))
    report(1.0, f"published {live.version}")
    return live


def _ndcg(matcher: Matcher, test_needs, programs, test_links) -> float:
    run = matcher.rank(test_needs, programs, k=10, explain=False)
    return float(evaluate_run(run, test_links, "need_id", "program_id", ks=(10,))["ndcg@10"])


def retrain(settings: Settings, db: Database, host: ModelHost, *, force: bool = False,
            report: Report = _quiet) -> dict:
    """Train a new model on the catalog plus the database's labels; publish it if it is
    not worse than the live one on held-out needs (or if ``force``).

    Returns
    -------
    dict
        ``published`` (bool), ``version`` (the live version afterwards), ``candidate_ndcg10``
        and ``live_ndcg10`` on the held-out needs, ``labels`` (database labels used).
    """
    live = host.live()
    report(0.02, "reading training data")
    needs, programs, links = training_tables(settings, db)
    db_labels = int(links["need_id"].str.startswith("db-need-").sum())
    tr_needs, te_needs, tr_links, te_links = holdout_split(needs, links, 0.2, settings.seed)
    report(0.1, f"training a candidate on {len(tr_needs)} needs (holding out {len(te_needs)})")
    candidate = _fit(settings, tr_needs, programs, tr_links)
    report(0.45, "comparing with the live model on the held-out needs")
    cand_score = _ndcg(candidate, te_needs, programs, te_links)
    live_score = _ndcg(live.matcher, te_needs, programs, te_links)
    result = {"candidate_ndcg10": round(cand_score, 4), "live_ndcg10": round(live_score, 4),
              "held_out_needs": len(te_needs), "labels": db_labels, "forced": force,
              "previous_version": live.version}
    if cand_score < live_score and not force:
        result.update(published=False, version=live.version)
        report(1.0, f"kept {live.version}: candidate NDCG@10 {cand_score:.4f} < live "
                    f"{live_score:.4f}")
        return result
    report(0.55, "training on all the data")
    t0 = time.perf_counter()
    final = _fit(settings, needs, programs, links)
    metrics = {"fit_seconds": round(time.perf_counter() - t0, 2), "needs": len(needs),
               "programs": len(programs), "links": len(links), "db_labels": db_labels,
               "holdout_ndcg10": result["candidate_ndcg10"],
               "previous_holdout_ndcg10": result["live_ndcg10"], "mode": final.mode_}
    published = host.publish(final, metrics, data_fingerprint(needs, programs, links))
    result.update(published=True, version=published.version)
    report(1.0, f"published {published.version}")
    return result


__all__ = ["training_tables", "train_first", "retrain"]

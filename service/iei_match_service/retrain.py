"""Training the service's models: the first one, and retraining on recorded outcomes.

Training data are the bundled catalog (or ``IEI_MATCH_CATALOG_DIR``) plus every need and
program in the database, with the graded labels of partnerships (:mod:`.labels`).

Training, evaluation and the decision are the engine's
(:func:`iei_match.training.train_model`), as for every other model: a retrained model is
published only if it is not worse than the live one on the same held-out 20% of the needs
(seeded): NDCG@10 not lower, and its fit as well calibrated (ECE). The live model may have
seen those needs in its own training, which favours it; the test is conservative.
``force`` publishes regardless.

A retraining job (:func:`run`) trains in a child process of the service at the batch jobs'
lower priority (``IEI_MATCH_BATCH_NICE``, see :mod:`.batch_process`): training holds the
GIL and the cores for tens of seconds, and in the service's process it slowed every
request meanwhile; a cancel or a shutdown had to wait for the fit. The child reads the
training data from the database itself, compares with the live model loaded from its
directory, and saves the new model (no pickle) for the service to load and publish.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from iei_match.artifacts import data_fingerprint, load_model, save_model
from iei_match.bundled import catalog_dir
from iei_match.errors import JobCancelledError
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher
from iei_match.training import train_model

from .batch_process import run_in_child
from .db.engine import Database
from .db.tables import Need, Partnership, Program
from .frames import need_key, needs_frame, program_key, programs_frame
from .jobs import JobContext
from .model_host import LiveModel, ModelHost
from .settings import Settings

Report = Callable[[float, str], None]


def _quiet(progress: float, message: str) -> None:
    pass


def training_tables(settings: Settings, db: Database):
    """Needs, programs and links: the catalog's and the database's, in engine form.

    Of the database's labels, each organisation (the owner of the need) contributes at most
    ``settings.max_labels_per_org``, its most recently updated first, so that no member
    can steer the model every alliance is served by flooding it with labels.
    """
    src = settings.catalog_dir or catalog_dir(settings.catalog)
    needs, programs = load_needs(src / "needs.csv"), load_programs(src / "programs.csv")
    links = load_links(src / "links.csv")
    for frame, id_col in ((needs, "need_id"), (programs, "program_id")):
        if "code" not in frame:  # catalog ids are taxonomy codes
            frame["code"] = frame[id_col].astype(str)
    with db.session() as s:
        db_needs = needs_frame(s.scalars(select(Need).order_by(Need.id)))
        db_programs = programs_frame(s.scalars(select(Program).order_by(Program.id)))
        rows = s.execute(select(Partnership.need_id, Partnership.program_id,
                                Partnership.grade, Need.org_id)
                         .join(Need, Need.id == Partnership.need_id)
                         .where(Partnership.grade.is_not(None))
                         .order_by(Partnership.updated_at.desc(), Partnership.id.desc())).all()
    per_org: dict[int, int] = {}
    labelled = []
    for need_id, program_id, grade, org in rows:
        per_org[org] = per_org.get(org, 0) + 1
        if per_org[org] <= settings.max_labels_per_org:
            labelled.append((need_id, program_id, grade))
    labelled.sort()
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


def train_first(settings: Settings, db: Database, host: ModelHost,
                report: Report = _quiet) -> LiveModel:
    """Train and publish the first model (no live model to compare with)."""
    report(0.05, "reading training data")
    needs, programs, links = training_tables(settings, db)
    report(0.1, f"training on {len(needs)} needs, {len(programs)} programs, "
                f"{len(links)} links")
    result = train_model(needs, programs, links, params=settings.train_params,
                         random_state=settings.seed, report=report)
    live = host.publish(result.matcher, result.metrics,
                        data_fingerprint(needs, programs, links), first=True)
    report(1.0, f"published {live.version}")
    return live


def train_candidate(settings: Settings, db: Database, live: Matcher, live_version: str, *,
                    force: bool = False, report: Report = _quiet
                    ) -> tuple[dict, Matcher | None, dict, str]:
    """Train a model on the catalog plus the database's labels and decide whether it should
    replace ``live`` (:func:`iei_match.training.train_model`: not worse on held-out needs
    by NDCG@10, a fit as well calibrated, or ``force``).

    Returns
    -------
    result : dict
        ``candidate_ndcg10`` / ``live_ndcg10`` and ``candidate_ece`` / ``live_ece`` on the
        held-out needs, ``held_out_needs``, ``labels`` (database labels used), ``forced``,
        ``previous_version``, ``reason``; and, when the model is kept, ``published``
        (False) and ``version``.
    final : Matcher or None
        The model trained on all the data, to publish (None when the live one is kept).
    metrics : dict
        What to publish with it.
    fingerprint : str
        The training data's :func:`~iei_match.artifacts.data_fingerprint`.
    """
    report(0.02, "reading training data")
    needs, programs, links = training_tables(settings, db)
    db_labels = int(links["need_id"].str.startswith("db-need-").sum())
    trained = train_model(needs, programs, links, params=settings.train_params,
                          test_size=0.2, random_state=settings.seed, live=live, force=force,
                          report=report)
    m = trained.metrics
    mine = m.get("holdout", {}).get("need->program", {})
    theirs = m.get("live_holdout", {}).get("need->program", {})
    result = {"candidate_ndcg10": mine.get("ndcg@10"), "live_ndcg10": theirs.get("ndcg@10"),
              "candidate_ece": mine.get("ece"), "live_ece": theirs.get("ece"),
              "held_out_needs": m.get("held_out_needs", 0), "labels": db_labels,
              "forced": force, "previous_version": live_version, "reason": trained.reason}
    fingerprint = data_fingerprint(needs, programs, links)
    if not trained.accepted:
        result.update(published=False, version=live_version)
        return result, None, {}, fingerprint
    metrics = {**m, "db_labels": db_labels,
               "previous_holdout_ndcg10": result["live_ndcg10"]}
    return result, trained.matcher, metrics, fingerprint


WORK = "iei_match_service.retrain:compute"  # what the job's process calls
SETTINGS_PASSED = ("data_dir", "database_url", "models_dir", "catalog", "catalog_dir", "seed",
                   "train_params")  # what training reads of the settings


def run(ctx: JobContext, settings: Settings, host: ModelHost, *, force: bool = False) -> dict:
    """A retraining job: :func:`compute` trains in a child process, the service publishes.

    Returns the job's ``result``: :func:`train_candidate`'s, with ``published`` and the
    live ``version`` afterwards.
    """
    live = host.live()
    staging = Path(settings.jobs_dir) / str(int(ctx.job_id)) / "model"
    shutil.rmtree(staging, ignore_errors=True)  # an earlier, interrupted attempt
    fields = {name: getattr(settings, name) for name in SETTINGS_PASSED}
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}
    work = {"settings": fields, "live_dir": str(Path(host.root) / live.version),
            "live_version": live.version, "staging": str(staging), "force": force}
    try:
        result = run_in_child(ctx, WORK, work, nice=settings.batch_nice,
                              threads=os.cpu_count() or 1)
        staged = result.pop("staged", None)
        if staged is not None:
            published = host.publish(load_model(staging), staged["metrics"],
                                     staged["fingerprint"])
            result.update(published=True, version=published.version)
            ctx.report(1.0, f"published {published.version}")
        return result
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)


def handler(settings: Settings, host: ModelHost):
    """What runs a retraining job from its row, in any process of the service."""
    def handle(ctx: JobContext, job) -> dict:
        return run(ctx, settings, host, force=bool(job.params.get("force")))

    return handle


def compute(settings: dict, live_dir: str, live_version: str, staging: str, force: bool,
            report: Report, cancelled: Callable[[], bool]) -> dict:
    """In the job's process: train, compare, and save the model to publish in ``staging``.

    Returns :func:`train_candidate`'s result; with ``staged`` (the metrics and data
    fingerprint to publish with) when a model was saved.
    """
    def step(progress: float, message: str) -> None:
        if cancelled() and progress < 1.0:
            raise JobCancelledError("the retraining was cancelled")
        report(progress, message)

    own = Settings(**{k: Path(v) if k in ("data_dir", "models_dir", "catalog_dir") and v
                      else v for k, v in settings.items()})
    db = Database(own.database_url)
    try:
        result, final, metrics, fingerprint = train_candidate(
            own, db, load_model(live_dir), live_version, force=force, report=step)
    finally:
        db.dispose()
    if final is not None:
        step(0.95, "saving the new model")
        save_model(final, staging, metrics=metrics)
        result["staged"] = {"metrics": metrics, "fingerprint": fingerprint}
    return result


__all__ = ["training_tables", "train_first", "train_candidate", "run", "handler", "compute"]

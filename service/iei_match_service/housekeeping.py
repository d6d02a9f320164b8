"""Housekeeping: old model versions and old jobs' files are removed.

Kept: the live version, the one published before it (what a rollback goes to), the
``IEI_MATCH_KEEP_VERSIONS`` newest, and every version a queued or running batch job scores
with; and the files of every job that ended less than ``IEI_MATCH_KEEP_JOB_DAYS`` ago or has
not ended. Each process prunes every ``IEI_MATCH_PRUNE_INTERVAL_S`` seconds;
``iei-match admin prune`` does it on demand. Pruning is safe to run in several processes at
once: a version is renamed away (atomically) before it is deleted, and a job's folder is
removed only once its row says it ended long ago. On PostgreSQL, the shared rate limit's
counts of past minutes go too.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import timedelta

from sqlalchemy import select

from iei_match.artifacts import current_version, list_versions, prune_versions

from .db.engine import Database
from .db.tables import Job, utcnow
from .jobs import ACTIVE, FINISHED
from .limits import SharedRateLimiter
from .settings import Settings

log = logging.getLogger("iei_match_service")


def prune(settings: Settings, db: Database) -> dict:
    """Remove what is no longer kept; returns ``{"versions": [...], "jobs": [...]}``."""
    root = settings.models_dir
    with db.session() as s:
        active = s.execute(select(Job.params).where(Job.state.in_(ACTIVE),
                                                    Job.kind == "batch")).scalars().all()
        cutoff = utcnow() - timedelta(days=settings.keep_job_days)
        kept_jobs = set(s.scalars(select(Job.id).where(
            (Job.state.not_in(FINISHED)) | (Job.updated_at >= cutoff))))
        known = set(s.scalars(select(Job.id)))
    keep = {p.get("model_version") for p in active if isinstance(p, dict)}
    names = [v["version"] for v in list_versions(root)]
    live = current_version(root)
    if live in names and names.index(live) > 0:
        keep.add(names[names.index(live) - 1])  # the previous version: a rollback's target
    versions = prune_versions(root, settings.keep_versions, keep=keep - {None})
    removed_jobs = []
    folder = settings.jobs_dir
    old = time.time() - settings.keep_job_days * 86400
    for d in sorted(folder.iterdir()) if folder.is_dir() else ():
        # A folder without a row is a job being submitted (its row is not committed yet)
        # unless nothing in it changed for the retention time.
        if not d.name.isdigit() or int(d.name) in kept_jobs or not d.is_dir() or (
                int(d.name) not in known and d.stat().st_mtime > old):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed_jobs.append(int(d.name))
    if not db.url.startswith("sqlite"):  # the shared rate limit's past minutes
        SharedRateLimiter.prune(db)
    if versions or removed_jobs:
        log.info("pruned %d model versions and the files of %d jobs", len(versions),
                 len(removed_jobs))
    return {"versions": versions, "jobs": removed_jobs}


def start_housekeeping(settings: Settings, db: Database) -> threading.Event:
    """Prune every ``prune_interval_s`` seconds in a background thread (never if 0); set
    the returned event to stop it."""
    stop = threading.Event()
    if settings.prune_interval_s <= 0:
        return stop

    def loop() -> None:
        while not stop.wait(settings.prune_interval_s):
            try:
                prune(settings, db)
            except Exception:  # logged; the next round tries again
                log.exception("pruning failed")

    threading.Thread(target=loop, name="iei-prune", daemon=True).start()
    return stop

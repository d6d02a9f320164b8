"""Preparing the programs after a write: a full ``Matcher.prepare`` vs an incremental one.

    python benchmarks/prepare_incremental.py [--size 10000] [--edits 1,100] [--repeat 3]
                                             [--work DIR] [--check]

The service keeps the stored programs prepared for the live model; a write to the table
(a program added or edited) used to make the next request prepare the whole catalog again.
``prepare(frame, previous=catalog)`` vectorises only the rows whose id is new or whose
texts changed. On the alliance of ``alliance_data.py`` (``--size`` programs), this times:

- ``full``: ``prepare(frame)``;
- ``N edited``: ``prepare(edited, previous=full)`` after the description of N random
  programs changed (a sentence added);
- ``1 added`` / ``1 deleted``: the same after one program was added at the end / deleted;

each ``--repeat`` times (the median is shown), with the number of rows reused and the
load average. ``--check`` also asserts that each incremental catalog ranks the bundled
needs exactly like a fresh ``prepare`` of the same table. The model is trained once and
kept in ``--work`` (as for ``recommend_latency.py``).

``--kind need`` times a table of ``--size`` stored needs instead (the bundled needs, again
and again under new ids): a need's texts are also checked for English and bridged, and
matched with the nearest known needs; ``--check`` then compares partner lists.

``--service`` (programs) times the service's own preparation too (``Catalogs.programs``: loading the
rows from a SQLite database filled with the alliance, the hard-rule arrays, the engine's
table and its catalog) the first time and after each write of the same cases, one after
another.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from alliance_data import engine_programs, machine, make_alliance, train_model

from iei_match.artifacts import load_model
from iei_match.bundled import catalog_dir


def cases(frame: pd.DataFrame, edits: list[int], rng, kind: str = "program"
          ) -> dict[str, pd.DataFrame]:
    out = {}
    for n in edits:
        edited = frame.copy()
        rows = rng.choice(len(frame), n, replace=False)
        edited.loc[rows, "text"] = edited.loc[rows, "text"] + " 新增校企共建实训基地，订单培养。"
        out[f"{n} edited"] = edited
    added = frame.iloc[[int(rng.integers(0, len(frame)))]].assign(
        **{f"{kind}_id": f"db-{kind}-new"}, title=lambda f: f["title"] + "（订单班）")
    out["1 added"] = pd.concat([frame, added], ignore_index=True)
    out["1 deleted"] = frame.drop(index=int(rng.integers(0, len(frame)))).reset_index(drop=True)
    return out


def service_rows(args, work: Path, matcher, version: str, alliance) -> list[tuple]:
    """(case, seconds, rows reused) of the service's ``Catalogs.programs`` after writes."""
    from alliance_data import seed_database
    from sqlalchemy import delete, insert, select, update

    from iei_match_service.catalogs import Catalogs
    from iei_match_service.db.engine import Database
    from iei_match_service.db.tables import Program
    from iei_match_service.model_host import LiveModel

    path = work / "prepare_incremental.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    seed_database(url, alliance)
    db, live, catalogs = Database(url), LiveModel(version, matcher), Catalogs()
    rng = np.random.default_rng(args.seed + 1)
    out = []

    def prepare(name: str, write=None) -> None:
        if write is not None:
            with db.session() as s:
                write(s)
        with db.sessions() as s:
            seconds, prepared = timed(lambda: catalogs.programs(s, live))
        out.append((name, seconds, prepared.catalog.reused))
        print(f"service, {name}: {seconds:.3f} s ({prepared.catalog.reused:,} rows reused)",
              flush=True)

    with db.sessions() as s:
        ids = list(s.scalars(select(Program.id).order_by(Program.id)))
    prepare("full")
    for n in [int(e) for e in args.edits.split(",") if e]:
        chosen = [int(i) for i in rng.choice(ids, n, replace=False)]
        prepare(f"{n} edited", lambda s, c=chosen: s.execute(
            update(Program).where(Program.id.in_(c))
            .values(description=Program.description + " 新增校企共建实训基地，订单培养。")))

    def add(s):
        first = s.get(Program, ids[0])
        s.execute(insert(Program), [{"org_id": first.org_id, "code": first.code,
                                     "title": first.title + "（订单班）",
                                     "description": first.description, "certificates": [],
                                     "level": first.level, "province": first.province,
                                     "city": first.city, "graduates_per_year": 30}])

    prepare("1 added", add)
    prepare("1 deleted", lambda s: s.execute(delete(Program).where(Program.id == ids[1])))
    db.dispose()
    return out


def stored_needs(size: int) -> pd.DataFrame:
    """``size`` needs: the bundled ones again and again, each time under new ids."""
    bundled = pd.read_csv(catalog_dir("cn-vocational") / "needs.csv", dtype=str).fillna("")
    frame = pd.concat([bundled] * -(-size // len(bundled)), ignore_index=True).head(size)
    return pd.DataFrame({"need_id": [f"db-need-{i}" for i in range(len(frame))],
                         "title": frame["title"].to_numpy(), "text": frame["text"].to_numpy()})


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10000, help="rows of the table")
    p.add_argument("--kind", choices=("program", "need"), default="program",
                   help="the table prepared (default: the alliance's programs)")
    p.add_argument("--edits", default="1,100", help="edited rows, comma-separated")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--work", type=Path, help="working directory (the model is kept there "
                   "and reused; default: a temporary directory, removed)")
    p.add_argument("--quick-model", action="store_true",
                   help="a small model (40 trees; for smoke tests, not for figures)")
    p.add_argument("--check", action="store_true",
                   help="assert each incremental catalog ranks like a fresh one")
    p.add_argument("--service", action="store_true",
                   help="also time the service's preparation (a SQLite database)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    work = args.work or Path(tempfile.mkdtemp(prefix="iei-prepare-"))
    try:
        models = work / "models"
        train_model(models, quick=args.quick_model)
        version = (models / "CURRENT").read_text().strip()
        matcher = load_model(models / version)
        kind = args.kind
        alliance = make_alliance(args.size if kind == "program" else 200, seed=args.seed)
        programs = engine_programs(alliance)
        frame = programs if kind == "program" else stored_needs(args.size)
        needs = alliance.needs.head(50)
        needs = pd.DataFrame({"need_id": [f"n{i}" for i in range(len(needs))],
                              "title": needs["title"].to_numpy(),
                              "text": needs["description"].to_numpy()})
        rng = np.random.default_rng(args.seed)
        load0 = os.getloadavg()[0]
        matcher.prepare(frame.head(50), kind)  # compile the kernels, warm the caches
        full_times, base = [], None
        for _ in range(args.repeat):
            seconds, base = timed(lambda: matcher.prepare(frame, kind))
            full_times.append(seconds)
        rows = [("full", statistics.median(full_times), 0)]
        print(f"full: {rows[0][1]:.2f} s", flush=True)
        for name, table in cases(frame, [int(e) for e in args.edits.split(",") if e],
                                 rng, kind).items():
            times = []
            for _ in range(args.repeat):
                seconds, catalog = timed(
                    lambda t=table: matcher.prepare(t, kind, previous=base))
                times.append(seconds)
            if args.check and kind == "program":
                fresh = matcher.prepare(table, kind)
                pd.testing.assert_frame_equal(matcher.rank(needs, catalog, k=10),
                                              matcher.rank(needs, fresh, k=10))
            elif args.check:
                fresh = matcher.prepare(table, kind)
                asked = programs.head(50)
                pd.testing.assert_frame_equal(matcher.partners(asked, catalog, k=10),
                                              matcher.partners(asked, fresh, k=10))
            rows.append((name, statistics.median(times), catalog.reused))
            print(f"{name}: {rows[-1][1]:.3f} s ({catalog.reused:,} rows reused)", flush=True)
        served = (service_rows(args, work, matcher, version, alliance)
                  if args.service and kind == "program" else [])
        load = (load0 + os.getloadavg()[0]) / 2
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nMachine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}; {len(frame):,} {kind}s, "
          f"median of {args.repeat}; load average {load:.1f}"
          f"{'; checked against fresh catalogs' if args.check else ''}.\n")
    print("| preparation | engine (s) | rows reused |" + (" service (s) |" if served else "")
          + "\n|---|---:|---:|" + ("---:|" if served else ""))
    for (name, seconds, reused), (_, svc, _) in zip(rows, served or [(0, 0, 0)] * len(rows),
                                                    strict=True):
        print(f"| {name} | {seconds:.2f} | {reused:,} |" + (f" {svc:.2f} |" if served else ""))


if __name__ == "__main__":
    main()

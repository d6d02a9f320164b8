"""Reference majors: what the national catalog says a need calls for, whatever the alliance
offers.

An alliance holds a few dozen programs; when none fits a need, a list of its programs says
nothing useful. The live model was trained on a bundled national catalog (1,313 Chinese
vocational majors by default), so it can also rank that catalog for the need: the majors
that fit best tell the enterprise and the coordinator what kind of program to look for,
and ``offered_in_alliance`` whether a program of the alliance already has that code.
The catalog is prepared once per live model version (about a second) and kept.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from iei_match.bundled import catalog_dir
from iei_match.catalog import Catalog
from iei_match.io import load_programs
from iei_match.taxonomy import major_groups

from .access import alliances_of, members
from .db.tables import Program
from .frames import need_key, need_record
from .model_host import LiveModel

REFERENCE_K = 5  # majors shown
_POOL = 20  # ranked before the best fits are kept


class ReferenceMajors:
    """The bundled catalog prepared for the live model, and the best majors for a need."""

    def __init__(self, catalog: str):
        self.catalog = catalog
        self._lock = threading.Lock()
        self._kept: tuple[str, Catalog, pd.DataFrame] | None = None

    def _prepared(self, live: LiveModel) -> tuple[Catalog, pd.DataFrame]:
        with self._lock:
            if self._kept is None or self._kept[0] != live.version:
                frame = load_programs(catalog_dir(self.catalog) / "programs.csv")
                frame["program_id"] = frame["program_id"].astype(str)
                prepared = live.matcher.prepare(frame, "program")
                self._kept = (live.version, prepared, frame.set_index("program_id"))
            return self._kept[1], self._kept[2]

    def best(self, live: LiveModel, need, offered: set[str], k: int = REFERENCE_K
             ) -> list[dict]:
        """The ``k`` majors of the catalog that fit ``need`` best (of its level when the
        need states one that the catalog has), highest fit first."""
        catalog, frame = self._prepared(live)
        record = need_record(need, need_key(getattr(need, "id", 0) or 0))
        levels = frame["level"].astype(str).to_numpy() if "level" in frame else None
        mask = np.ones(len(frame), dtype=bool)
        if levels is not None and record["level"] and (levels == record["level"]).any():
            mask = levels == record["level"]
        ranked = live.matcher.rank(pd.DataFrame([record]), catalog.restrict(mask), k=_POOL,
                                   explain=False)
        if ranked.empty:
            return []
        ranked = ranked.sort_values(["fit", "rank"], ascending=[False, True]).head(k)
        codes = ranked["program_id"].astype(str).tolist()
        groups = major_groups(codes, self.catalog)
        out = []
        for (_, row), (_, grp) in zip(ranked.iterrows(), groups.iterrows(), strict=True):
            major = frame.loc[row["program_id"]]
            out.append({"code": row["program_id"], "title": str(major["title"]),
                        "level": str(major.get("level", "") or ""),
                        "fit": round(float(row["fit"]), 4), "fit_level": row["fit_level"],
                        "group": grp["group"], "group_name": grp["group_name"],
                        "offered_in_alliance": row["program_id"] in offered})
        return out


def alliance_codes(s: Session, org_id: int | None) -> set[str]:
    """The catalog codes of the programs offered in the alliances of ``org_id`` (every
    stored program's when the organisation belongs to no alliance)."""
    stmt = select(Program.code).where(Program.code != "")
    if org_id is not None:
        alliances = alliances_of(s, org_id)
        if alliances:
            orgs: set[int] = set()
            for alliance in alliances:
                orgs |= members(s, alliance)
            stmt = stmt.where(Program.org_id.in_(orgs))
    return {c.strip() for c in s.scalars(stmt) if c and c.strip()}

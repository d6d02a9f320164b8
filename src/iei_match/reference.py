"""Reference majors: the majors of a bundled national catalog that fit each need best.

An alliance offers a few dozen programs; the model was trained on a national catalog. Ranking
a need against that catalog tells what kind of program it calls for, whatever the alliance
offers: the gap report counts demand under that major's group, so that a need nobody in the
alliance trains for shows as a shortage where it belongs.
"""

from __future__ import annotations

import pandas as pd

from .bundled import catalog_dir
from .catalog import Catalog
from .io import load_programs
from .matcher import Matcher
from .taxonomy import major_groups

__all__ = ["reference_majors", "reference_catalog"]

COLUMNS = ["need_id", "rank", "code", "title", "level", "fit", "fit_level", "group",
           "group_name"]


def reference_catalog(matcher: Matcher, catalog: str = "cn-vocational"
                      ) -> tuple[Catalog, pd.DataFrame]:
    """The bundled catalog's programs, prepared for ``matcher``, and their table."""
    frame = load_programs(catalog_dir(catalog) / "programs.csv")
    frame["program_id"] = frame["program_id"].astype(str)
    return matcher.prepare(frame, "program"), frame


def reference_majors(matcher: Matcher, needs: pd.DataFrame, catalog: str = "cn-vocational",
                     k: int = 5, pool: int = 20,
                     prepared: tuple[Catalog, pd.DataFrame] | None = None,
                     same_level: bool = False) -> pd.DataFrame:
    """The ``k`` majors of a bundled catalog with the highest fit for each need.

    Parameters
    ----------
    matcher : Matcher
        A fitted matcher (the one trained on ``catalog``).
    needs : DataFrame
        ``need_id, title, text`` and the optional columns of :meth:`Matcher.rank`.
    catalog : str, default="cn-vocational"
        A bundled catalog (:data:`iei_match.bundled.CATALOGS`).
    k : int, default=5
    pool : int, default=20
        Majors ranked per need before the ``k`` of highest fit are kept.
    prepared : tuple, optional
        :func:`reference_catalog` of the same matcher and catalog, when it is at hand.
    same_level : bool, default=False
        Rank a need that states a ``level`` the catalog has among the majors of that
        level only.

    Returns
    -------
    DataFrame
        ``need_id, rank, code, title, level, fit, fit_level, group, group_name``, each
        need's majors by fit (rank 1 = highest). A need that shares nothing with any major
        has no rows.
    """
    cat, frame = prepared if prepared is not None else reference_catalog(matcher, catalog)
    levels = frame["level"].fillna("").astype(str).to_numpy() if "level" in frame else None
    asked = (needs["level"].fillna("").astype(str) if same_level and levels is not None
             and "level" in needs else pd.Series("", index=needs.index))
    parts = []
    for level, group in needs.groupby(asked.to_numpy(), sort=False):
        mask = levels == level if level and (levels == level).any() else None
        parts.append(matcher.rank(group, cat if mask is None else cat.restrict(mask),
                                  k=max(k, pool), explain=False))
    ranked = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if ranked.empty:
        return pd.DataFrame(columns=COLUMNS)
    ranked = (ranked.sort_values(["need_id", "fit", "rank"], ascending=[True, False, True],
                                 kind="stable")
              .groupby("need_id", sort=False).head(k))
    ranked["rank"] = ranked.groupby("need_id", sort=False).cumcount() + 1
    info = frame.set_index("program_id")
    ranked["code"] = ranked["program_id"].astype(str)
    ranked["title"] = info.loc[ranked["code"], "title"].astype(str).to_numpy()
    ranked["level"] = (info.loc[ranked["code"], "level"].fillna("").astype(str).to_numpy()
                       if "level" in info else "")
    groups = major_groups(ranked["code"].tolist(), catalog)
    ranked["group"] = groups["group"].to_numpy()
    ranked["group_name"] = groups["group_name"].to_numpy()
    return ranked[COLUMNS].reset_index(drop=True)

"""The taxonomy a need or program may carry: education levels and hierarchical codes.

Official catalogs code occupations and majors hierarchically (``4607`` is the class
汽车制造类 of the category ``46`` 装备制造大类); the ranker learns priors between the code
prefixes of needs and of programs, and compares levels.

:func:`major_groups` gives a major's category and group, with their names for the Chinese
catalog: its three levels number the same groups alike, 20 apart (``2607`` 职教本科,
``4607`` 高职专科 and ``6607`` 中职 are all 汽车制造类), so a group is given in the
高职专科 numbering and the names come from one table (``categories.csv`` of the bundled
``cn-vocational`` catalog: the 19 专业大类 and their 专业类 of the 2021 catalog).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from .text import normalize

__all__ = ["LEVELS", "code_prefix", "level_index", "major_groups", "group_names"]

LEVELS = ("中职", "高职专科", "职教本科", "本科", "技工院校")


_NOT_CODE = re.compile(r"[^0-9a-z]")


def code_prefix(codes: pd.Series, length: int) -> np.ndarray:
    """The first ``length`` letters or digits of a taxonomy code (separators dropped)."""
    return np.array([_NOT_CODE.sub("", normalize(str(c)))[:length] for c in codes],
                    dtype=object)



def level_index(values) -> np.ndarray:
    """Index of each value in :data:`LEVELS` (-1 when unknown)."""
    lookup = {name: i for i, name in enumerate(LEVELS)}
    return np.array([lookup.get(str(v).strip(), -1) for v in values], dtype=np.int32)


def _cn_canonical(digits: str) -> str:
    """A Chinese vocational major code in the 高职专科 numbering (职教本科 21-39 and 中职
    61-79 are the same categories as 高职专科 41-59)."""
    if len(digits) >= 2 and digits[:2].isdigit():
        head = int(digits[:2])
        if 21 <= head <= 39 or 61 <= head <= 79:
            return f"{head + (20 if head < 40 else -20)}{digits[2:]}"
    return digits


@functools.cache
def group_names(catalog: str) -> dict[str, str]:
    """Names of the categories and groups of a bundled catalog (``{code: name}``; empty
    when the catalog has no table of names)."""
    from .bundled import catalog_dir  # the bundled catalogs know where they are installed

    path = catalog_dir(catalog) / "categories.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return dict(zip(table["code"].str.strip(), table["name"].str.strip(), strict=True))


def major_groups(codes, catalog: str | None = "cn-vocational",
                 prefix_length: int = 2) -> pd.DataFrame:
    """The category (2 digits) and group (4 digits) of each major code, with their names.

    Parameters
    ----------
    codes : sequence of str
        Major codes (``460104``; separators are dropped). Empty codes give empty cells.
    prefix_length : int, default=2
        Digits of a category; a group has two more.
    catalog : str or None, default="cn-vocational"
        The catalog the codes belong to: ``cn-vocational`` codes are put in the 高职专科
        numbering and named; others (``us-onet-cip``, None) keep their digits and have no
        names (the code stands for the name).

    Returns
    -------
    DataFrame
        ``category, category_name, group, group_name``, one row per code.

    Examples
    --------
    >>> major_groups(["460702", "660702", "590302"])[["group", "group_name"]].values.tolist()
    [['4607', '汽车制造类'], ['4607', '汽车制造类'], ['5903', '公共服务类']]
    """
    digits = [_NOT_CODE.sub("", normalize(str(c))) for c in codes]
    if catalog == "cn-vocational":
        digits = [_cn_canonical(d) for d in digits]
        names = group_names(catalog)
    else:
        names = {}
    category = [d[:prefix_length] for d in digits]
    group = [d[:prefix_length + 2] if len(d) >= prefix_length + 2 else "" for d in digits]
    return pd.DataFrame({
        "category": category, "category_name": [names.get(c, c) for c in category],
        "group": group, "group_name": [names.get(g, g) for g in group]})

"""The taxonomy a need or program may carry: education levels and hierarchical codes.

Official catalogs code occupations and majors hierarchically (``4607`` is the class
汽车制造类 of the category ``46`` 装备制造大类); the ranker learns priors between the code
prefixes of needs and of programs, and compares levels.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .text import normalize

__all__ = ["LEVELS", "code_prefix", "level_index"]

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

"""Short titles as the job market writes them, derived from official occupation titles.

The occupation dictionary names jobs precisely ("数控车工", "养老护理员", "道路养护工");
job postings mostly use the head of such a title ("车工", "护理员", "养护工"), which says
less and fits more programs. :func:`head_title` derives that form, so that the ranker and the
fit can be trained on queries that are as generic as the market's, with the links of the
official need they come from: such a query's true programs are a superset of those links,
which teaches the fit that a generic title is less certain evidence than a precise one.
"""

from __future__ import annotations

import re
from functools import lru_cache

import rjieba

from .text import has_cjk, normalize

__all__ = ["head_title"]

# Heads that name no trade: a query of them says nothing a posting would say alone.
_EMPTY_HEADS = frozenset({"人员", "技术人员", "专业人员", "工程技术人员", "管理人员",
                          "工作人员", "服务人员"})
_TAIL = re.compile(r"[^\u3400-\u9fff]+$")  # a catalog's marks after the title ("…师S")


@lru_cache(maxsize=65_536)
def _head(title: str) -> str | None:
    title = _TAIL.sub("", title)
    tokens = [t for t in rjieba.cut(title) if t.strip() and has_cjk(t)]
    if len(tokens) < 2:
        return None
    head = tokens[-1] if len(tokens[-1]) > 1 else tokens[-2] + tokens[-1]
    if len(head) < 2 or head == title or head in _EMPTY_HEADS:
        return None
    return head


def head_title(title: str) -> str | None:
    """The head word of a Chinese occupation title: its last word, with the word before it
    when the last is a one-character role ending; None when the title is a single word,
    has no Chinese head, or its head names no trade.

    Examples
    --------
    >>> head_title("数控车工"), head_title("道路养护工"), head_title("养老护理员")
    ('车工', '养护工', '护理员')
    >>> head_title("电工"), head_title("快递工程技术人员"), head_title("电子数据取证分析师S")
    (None, None, '分析师')
    """
    return _head(normalize(title))

"""Whether a text covers a skill: by phrase, by all its words, or by a synonym.

A need lists skills ("PLC编程", "GMP"); a program profile may say the same thing in other
words ("可编程控制器编程", "药品生产质量管理规范"). :data:`SYNONYMS` is a small table of
terms that mean the same in the alliances' trades (manufacturing, pharmaceuticals, IT, care,
automotive, aviation), Chinese and English; every term of a group stands for every other,
both ways, also inside a longer skill ("PLC编程" is covered by "可编程控制器编程").

A skill is covered by a phrase of any of its forms, or by all the words of the skill as
written; a synonym counts only as a phrase. The table is deliberately small and literal:
only abbreviations and translations whose meaning does not depend on context. Latin terms
match whole words only, so "AI" is not found in "maintain" nor "CAN总线" in "can"; the
market's two-character short forms (:data:`SHORT_FORMS`: "社工", "幼师") are never searched
for in a text, only read in a skill or a title (:func:`expand_title`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence, Set
from functools import lru_cache

import rjieba

from .text import has_cjk, normalize, tokenize

__all__ = ["SHORT_FORMS", "SYNONYMS", "canonical", "covers", "expand_title", "merge_counts",
           "missing_skills", "title_expansions", "title_terms", "variants"]

#: Groups of terms with the same meaning; the first term names the group (see
#: :func:`canonical`). Add a group rather than a term to an unrelated one, and keep an
#: abbreviation out when it is also a common word.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    # Manufacturing, electrical and electronics
    ("PLC", "可编程控制器", "可编程逻辑控制器", "programmable logic controller"),
    ("CAD", "计算机辅助设计", "computer-aided design", "computer aided design"),
    ("CAM", "计算机辅助制造", "computer-aided manufacturing", "computer aided manufacturing"),
    ("CAE", "计算机辅助工程", "computer-aided engineering", "computer aided engineering"),
    ("CNC", "数控", "计算机数控", "computer numerical control", "numerical control"),
    ("HMI", "人机界面", "human-machine interface", "human machine interface"),
    ("SCADA", "数据采集与监视控制", "监控与数据采集"),
    ("DCS", "集散控制系统", "分布式控制系统", "distributed control system"),
    ("MES", "制造执行系统", "manufacturing execution system"),
    ("ERP", "企业资源计划", "enterprise resource planning"),
    ("PLM", "产品生命周期管理", "product lifecycle management"),
    ("3D打印", "增材制造", "3d printing", "additive manufacturing"),
    ("SMT", "表面贴装技术", "表面组装技术", "surface mount technology"),
    ("PCB", "印制电路板", "印刷电路板", "printed circuit board"),
    ("集成电路", "IC", "integrated circuit"),
    ("EDA", "电子设计自动化", "electronic design automation"),
    ("单片机", "MCU", "微控制器", "microcontroller"),
    ("嵌入式", "embedded"),
    ("工业机器人", "industrial robot", "industrial robots"),
    ("机器视觉", "machine vision"),
    ("机电一体化", "mechatronics"),
    ("焊接", "电焊", "welding"),
    ("钳工", "fitter"),
    ("电工", "electrician"),
    ("机械维修", "机修"),
    ("质量检验", "质检", "quality inspection"),
    ("质量管理", "品质管理", "品管", "quality management"),
    ("液压", "hydraulics", "hydraulic"),
    ("气动", "pneumatics", "pneumatic"),
    ("自动化", "automation"),
    ("工业互联网", "industrial internet"),
    ("数字孪生", "digital twin"),
    ("精益生产", "lean production", "lean manufacturing"),
    ("六西格玛", "six sigma"),
    ("QC", "质量控制", "quality control"),
    ("QA", "质量保证", "quality assurance"),
    ("SPC", "统计过程控制", "statistical process control"),
    ("FMEA", "失效模式与影响分析", "失效模式及影响分析", "failure mode and effects analysis"),
    ("SOP", "标准操作规程", "标准作业程序", "standard operating procedure"),
    # Pharmaceuticals
    ("GMP", "药品生产质量管理规范", "good manufacturing practice"),
    ("GSP", "药品经营质量管理规范", "good supply practice"),
    ("GLP", "药物非临床研究质量管理规范", "good laboratory practice"),
    ("GCP", "药物临床试验质量管理规范", "good clinical practice"),
    ("HPLC", "高效液相色谱", "high performance liquid chromatography",
     "high-performance liquid chromatography"),
    ("气相色谱", "gas chromatography"),
    ("中药", "中草药", "TCM", "traditional chinese medicine"),
    ("药物制剂", "pharmaceutical preparation", "pharmaceutical preparations"),
    ("无菌操作", "aseptic technique"),
    # IT
    ("人工智能", "AI", "artificial intelligence"),
    ("机器学习", "machine learning"),
    ("深度学习", "deep learning"),
    ("NLP", "自然语言处理", "natural language processing"),
    ("计算机视觉", "computer vision"),
    ("大数据", "big data"),
    ("云计算", "cloud computing"),
    ("数据库", "database", "databases"),
    ("前端", "front-end", "frontend"),
    ("后端", "back-end", "backend"),
    ("物联网", "IoT", "internet of things"),
    ("网络安全", "cybersecurity", "cyber security", "network security"),
    ("操作系统", "operating system", "operating systems"),
    ("UI", "用户界面", "user interface"),
    ("软件测试", "software testing"),
    ("运维", "运行维护"),
    ("区块链", "blockchain"),
    # Care
    ("护理", "nursing"),
    ("养老护理", "老年护理", "elderly care", "aged care", "geriatric care"),
    ("康复", "rehabilitation"),
    ("CPR", "心肺复苏", "cardiopulmonary resuscitation"),
    ("AED", "自动体外除颤器", "automated external defibrillator"),
    ("急救", "first aid"),
    ("健康管理", "health management"),
    # Automotive
    ("新能源汽车", "NEV", "new energy vehicle", "new energy vehicles"),
    ("电动汽车", "EV", "electric vehicle", "electric vehicles"),
    ("BMS", "电池管理系统", "battery management system"),
    ("动力电池", "power battery", "traction battery"),
    ("ECU", "电子控制单元", "electronic control unit"),
    ("CAN总线", "CAN bus", "控制器局域网"),
    ("ADAS", "高级驾驶辅助系统", "advanced driver assistance system"),
    ("汽车维修", "汽修", "auto repair", "automotive repair", "vehicle maintenance"),
    ("钣金", "sheet metal"),
    # Aviation
    ("飞机维修", "航空器维修", "aircraft maintenance"),
    ("MRO", "维修大修", "maintenance, repair and overhaul"),
    ("NDT", "无损检测", "non-destructive testing", "nondestructive testing"),
    ("复合材料", "composite materials", "composites"),
    ("航电", "航空电子", "avionics"),
    ("空中乘务", "空乘", "flight attendant", "cabin crew"),
    ("民航", "civil aviation"),
    ("无人机", "UAV", "drone", "drones", "unmanned aerial vehicle"),
    # Building services and surveying
    ("暖通", "供热通风与空调", "供暖通风与空调", "HVAC"),
    ("GIS", "地理信息系统", "geographic information system",
     "geographic information systems"),
    # Services, trade and offices: the short forms job postings use
    ("电子商务", "电商", "e-commerce", "ecommerce"),
    ("国际贸易", "外贸", "对外贸易", "international trade", "foreign trade"),
    ("客户服务", "客服", "customer service"),
    ("仓储管理", "仓库管理", "仓管", "warehouse management"),
    ("物业管理", "物管", "property management"),
    ("人力资源", "人资", "HR", "human resources"),
    ("社会工作", "社工", "social work", "social worker"),
    ("幼儿教师", "幼师", "幼儿园教师", "kindergarten teacher", "preschool teacher"),
    ("学前教育", "幼儿教育", "幼教", "preschool education", "early childhood education"),
    ("母婴护理", "月嫂", "maternity care"),
    ("护理员", "护工", "care worker", "caregiver"),
    ("驾驶员", "司机", "driver"),
    # Common
    ("英语", "English"),
)

#: The job market's two-character short forms in :data:`SYNONYMS`. A skill or title that
#: holds one also stands for its group's other terms, but a text is never searched for one
#: in place of another term: as characters they are often a piece of another word
#: ("社工" in "合作社工作", "司机" in "公司机构", "护工" in "养护工程").
SHORT_FORMS = frozenset({"机修", "质检", "品管", "电焊", "汽修", "电商", "外贸", "客服",
                         "仓管", "物管", "人资", "社工", "幼师", "幼教", "月嫂", "护工",
                         "司机"})

_LATIN = re.compile(r"[a-z0-9]")
_MAX_VARIANTS = 64
#: One-character endings that make a job title of a trade word: 质检员, 电焊工, 幼师.
ROLE_SUFFIXES = frozenset("工员师")


def _pattern(term: str) -> str:
    """``term`` as a regular expression that matches it as a whole word on its Latin ends."""
    head = r"(?<![a-z0-9])" if _LATIN.match(term[0]) else ""
    tail = r"(?![a-z0-9])" if _LATIN.match(term[-1]) else ""
    return head + re.escape(term) + tail


def _compile() -> tuple[re.Pattern, dict[str, tuple[str, ...]]]:
    group_of: dict[str, tuple[str, ...]] = {}
    for group in SYNONYMS:
        terms = tuple(dict.fromkeys(normalize(t) for t in group))
        for term in terms:
            if term in group_of:
                raise ValueError(f"synonym term {term!r} is in two groups")
            group_of[term] = terms
    alternation = "|".join(_pattern(t) for t in sorted(group_of, key=lambda t: (-len(t), t)))
    return re.compile(alternation), group_of


_TERMS, _GROUP = _compile()


@lru_cache(maxsize=65_536)
def _phrase(phrase: str) -> re.Pattern:
    return re.compile(_pattern(phrase))


@lru_cache(maxsize=65_536)
def _variants(skill: str) -> tuple[str, ...]:
    found = list(_TERMS.finditer(skill))
    if not found:
        return (skill,) if skill else ()
    pieces: list[tuple[str, ...]] = []
    at = 0
    for m in found:
        others = tuple(t for t in _GROUP[m.group()] if t == m.group() or t not in SHORT_FORMS)
        pieces += [(skill[at:m.start()],), others]
        at = m.end()
    pieces.append((skill[at:],))
    out = ["".join(p) for p in itertools.islice(itertools.product(*pieces), _MAX_VARIANTS)]
    return tuple(dict.fromkeys([skill, *out]))


def variants(skill: str) -> list[str]:
    """The normalised ways of writing ``skill``: itself, and with each term of
    :data:`SYNONYMS` it contains replaced by the others of its group (at most 64).

    Examples
    --------
    >>> variants("PLC编程")
    ['plc编程', '可编程控制器编程', '可编程逻辑控制器编程', 'programmable logic controller编程']
    >>> variants("焊工")
    ['焊工']
    """
    return list(_variants(normalize(skill)))


def canonical(skill: str) -> str:
    """A key under which synonymous skills fall together: normalised, each term of
    :data:`SYNONYMS` replaced by the first of its group.

    Examples
    --------
    >>> canonical("可编程控制器编程") == canonical("PLC 编程".replace(" ", ""))
    True
    >>> canonical("Good Manufacturing Practice")
    'gmp'
    """
    return _TERMS.sub(lambda m: normalize(_GROUP[m.group()][0]), normalize(skill))


def covers(text: str, skill: str, *, haystack: str | None = None,
           words: Callable[[], Set[str]] | None = None) -> bool:
    """Whether ``text`` covers ``skill``: one of its :func:`variants` appears in it as a
    phrase (whole words on Latin ends), or all the words of the skill as written appear in
    it. Synonyms count as phrases only: the words of "药品生产质量管理规范" are in any
    pharmacy profile, the standard is not.

    Parameters
    ----------
    text : str
        The text searched (a program profile, say).
    skill : str
        The skill asked for.
    haystack : str, optional
        ``normalize(text)``, when already known.
    words : callable, optional
        Returns the set of ``tokenize(text)``, when it is cheaper to keep (called only when
        a skill is not found as a phrase).

    Returns
    -------
    bool
        True also for an empty skill (nothing is asked).

    Examples
    --------
    >>> covers("掌握可编程控制器编程与调试", "PLC编程")
    True
    >>> covers("Operates CNC lathes", "数控")
    True
    >>> covers("maintain the line", "AI")
    False
    """
    haystack = normalize(text) if haystack is None else haystack
    forms = _variants(normalize(skill))
    if not forms:
        return True
    if any(_phrase(f).search(haystack) for f in forms):
        return True
    toks = tokenize(forms[0], normalized=True)  # the skill as written, not its synonyms
    if not toks:
        return False
    known = words() if words is not None else set(tokenize(haystack, normalized=True))
    return all(t in known for t in toks)


def missing_skills(skills: Iterable[str], text: str, *, haystack: str | None = None,
                   words: Callable[[], Set[str]] | None = None) -> list[str]:
    """The skills of ``skills`` that ``text`` does not :func:`cover <covers>`, in order.

    Examples
    --------
    >>> missing_skills(["GMP", "区块链"], "熟悉药品生产质量管理规范")
    ['区块链']
    """
    haystack = normalize(text) if haystack is None else haystack
    if words is None:
        cache: list[Set[str]] = []

        def words() -> Set[str]:
            if not cache:
                cache.append(set(tokenize(haystack, normalized=True)))
            return cache[0]
    return [s for s in skills if not covers(text, s, haystack=haystack, words=words)]


def merge_counts(items: Sequence[tuple[str, int]]) -> list[dict]:
    """Group ``(skill, headcount)`` pairs by :func:`canonical` skill.

    Returns one dict per group, ``{"skill", "needs", "headcount"}``: the spelling used most
    often (first seen on a tie), how many pairs named it and their summed headcount, most
    named first (then most headcount, then skill).

    Examples
    --------
    >>> merge_counts([("PLC", 3), ("可编程控制器", 2), ("PLC", 1), ("焊接", 9)])
    [{'skill': 'PLC', 'needs': 3, 'headcount': 6}, {'skill': '焊接', 'needs': 1, 'headcount': 9}]
    """
    groups: dict[str, dict] = {}
    for skill, headcount in items:
        g = groups.setdefault(canonical(skill), {"spellings": {}, "needs": 0, "headcount": 0})
        g["spellings"][skill] = g["spellings"].get(skill, 0) + 1
        g["needs"] += 1
        g["headcount"] += int(headcount or 0)
    out = [{"skill": max(g["spellings"], key=g["spellings"].get), "needs": g["needs"],
            "headcount": g["headcount"]} for g in groups.values()]
    out.sort(key=lambda d: (-d["needs"], -d["headcount"], d["skill"]))
    return out


def _word_bounds(text: str) -> set[int]:
    """The offsets in ``text`` where a word starts or ends (jieba's precise mode)."""
    bounds, at = {0}, 0
    for token in rjieba.cut(text):
        at += len(token)
        bounds.add(at)
    return bounds


@lru_cache(maxsize=65_536)
def _title_terms(title: str) -> tuple[str, ...]:
    bounds = _word_bounds(title)
    out = []
    for m in _TERMS.finditer(title):
        start, end = m.span()
        # A whole word, or a trade word with a role ending (质检员 = 质检 + 员); not a
        # piece of a longer word (护工 in 养护工).
        whole_end = end in bounds or (end + 1 in bounds and title[end] in ROLE_SUFFIXES)
        if start in bounds and whole_end:
            out.append(m.group())
    return tuple(out)


def title_terms(title: str) -> list[str]:
    """The terms of :data:`SYNONYMS` that ``title`` holds as whole words.

    A Chinese term counts where it is a word of the title (jieba's segmentation) or a word
    followed by a role ending (工, 员, 师); Latin terms count as whole words.

    Examples
    --------
    >>> title_terms("质检员"), title_terms("护工"), title_terms("道路养护工")
    (['质检'], ['护工'], [])
    """
    return list(_title_terms(normalize(title)))


def expand_title(title: str) -> str:
    """``title`` followed by the longer Chinese forms of the synonym groups of its
    :func:`title_terms` that it does not spell out: a job title written the market's way
    ("幼师", "社工", "空乘", "汽修工") then also says it the way the catalogs do. Only
    longer forms are added: a title that spells a term out is not abbreviated.

    Examples
    --------
    >>> expand_title("空乘")
    '空乘 空中乘务'
    >>> expand_title("道路养护工"), expand_title("汽车维修工")
    ('道路养护工', '汽车维修工')
    """
    extra = list(title_expansions(title))
    return " ".join([title, *extra]) if extra else title


def title_expansions(title: str) -> dict[str, str]:
    """The longer forms :func:`expand_title` adds to ``title``, in its order, each with the
    term of the title it stands for.

    Examples
    --------
    >>> title_expansions("叉车司机"), title_expansions("汽车维修工")
    ({'驾驶员': '司机'}, {})
    """
    text = normalize(title)
    out: dict[str, str] = {}
    for term in _title_terms(text):
        for t in _GROUP[term]:
            if has_cjk(t) and len(t) > len(term) and t not in text and t not in out:
                out[t] = term
    return out

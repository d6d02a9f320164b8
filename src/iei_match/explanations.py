"""What each ranking feature means, and which shared words to show, for the people reading
an explanation.

Explanations speak of the pair: a factor's label says what the feature means for it, in
plain words, and whether it counted for or against the match (:func:`describe_feature` with
the contribution). Features that only make sense relative to the other candidates (``_rel``,
``_rank``) or that are sizes rather than reasons (headcount, graduates per year, the bare
levels) stay in the model but are not shown (:func:`is_shown`). Matched terms leave out
filler words (:data:`FILLER_WORDS`) and show English words as the texts spell them, not as
their stems (:func:`surface_terms`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from .bridge import bridge_text, detect_language
from .skills import title_expansions
from .text import _stem, has_cjk, tokenize

__all__ = ["FEATURE_LABELS", "FILLER_WORDS", "HIDDEN_FEATURES", "as_written",
           "describe_feature", "is_filler", "is_shown", "read_from", "says_in_common",
           "spelled_terms", "surface_forms", "surface_terms"]

# Per feature: (when it counts for the pair, when it counts against), each (English, Chinese).
_Label = tuple[tuple[str, str], tuple[str, str]]
FEATURE_LABELS: dict[str, _Label] = {
    "word_full": (("The job description matches what the program trains for",
                   "岗位描述与专业培养方向高度一致"),
                  ("The job description has little in common with what the program trains for",
                   "岗位描述与专业培养方向差异较大")),
    "char_full": (("The job description and the program profile share many terms",
                   "岗位描述与专业简介有较多共同用语"),
                  ("The job description and the program profile share few terms",
                   "岗位描述与专业简介共同用语较少")),
    "word_title": (("The job title and the program name share words", "岗位名称与专业名称相近"),
                   ("The job title and the program name differ", "岗位名称与专业名称差别较大")),
    "char_title": (("The job title and the program name read alike",
                    "岗位名称与专业名称字面相近"),
                   ("The job title and the program name read differently",
                    "岗位名称与专业名称字面差别较大")),
    "need_title_prog_body": (("The program profile speaks of this kind of job",
                              "专业简介提到了该岗位的内容"),
                             ("The program profile hardly speaks of this kind of job",
                              "专业简介很少提到该岗位的内容")),
    "need_body_prog_title": (("The job description speaks of the program's subject",
                              "岗位描述提到了该专业的方向"),
                             ("The job description hardly speaks of the program's subject",
                              "岗位描述很少提到该专业的方向")),
    "word_body": (("The job and the program cover the same work", "岗位描述与专业简介内容相近"),
                  ("The job and the program cover different work",
                   "岗位描述与专业简介内容不同")),
    "word_full_vs_need_best": (("By its words, this program is among the closest the job "
                                "finds in the whole catalog",
                                "按用词，该专业是与该岗位最接近的专业之一"),
                               ("By its words, other programs of the catalog are much closer "
                                "to the job", "按用词，目录中有与该岗位更接近的专业")),
    "char_full_vs_need_best": (("By its wording, this program is among the closest the job "
                                "finds in the whole catalog",
                                "按字面，该专业是与该岗位最接近的专业之一"),
                               ("By its wording, other programs of the catalog are much "
                                "closer to the job", "按字面，目录中有与该岗位更接近的专业")),
    "word_full_vs_program_best": (("By its words, this job is among the closest the program "
                                   "finds", "按用词，该岗位是与该专业最接近的岗位之一"),
                                  ("By its words, other jobs are much closer to this program",
                                   "按用词，有与该专业更接近的岗位")),
    "char_full_vs_program_best": (("By its wording, this job is among the closest the "
                                   "program finds", "按字面，该岗位是与该专业最接近的岗位之一"),
                                  ("By its wording, other jobs are much closer to this program",
                                   "按字面，有与该专业更接近的岗位")),
    "need_best_word": (("how closely the best program of the catalog matches the job",
                        "目录中最接近专业的相似度"),) * 2,
    "program_best_word": (("how closely the best job matches the program",
                           "最接近岗位的相似度"),) * 2,
    "bm25_need_query": (("The program profile covers the job's key words",
                         "专业简介覆盖岗位的关键词"),
                        ("The program profile misses the job's key words",
                         "专业简介缺少岗位的关键词")),
    "bm25_prog_query": (("The job asks for what the program is about",
                         "岗位需求涉及专业的关键词"),
                        ("The job asks little of what the program is about",
                         "岗位需求很少涉及专业的关键词")),
    "need_title_coverage": (("The program covers the words of the job title",
                             "专业覆盖岗位名称中的词语"),
                            ("The program covers few words of the job title",
                             "专业较少覆盖岗位名称中的词语")),
    "prog_title_coverage": (("The job covers the words of the program name",
                             "岗位涉及专业名称中的词语"),
                            ("The job covers few words of the program name",
                             "岗位较少涉及专业名称中的词语")),
    "need_title_in_prog_text": (("The program profile names this job", "专业简介直接提及该岗位"),
                                ("The program profile does not name this job",
                                 "专业简介未直接提及该岗位")),
    "prog_title_in_need_text": (("The job description names this program",
                                 "岗位描述直接提及该专业"),
                                ("The job description does not name this program",
                                 "岗位描述未直接提及该专业")),
    "dense_cosine": (("The job and the program mean much the same", "岗位与专业语义相近"),
                     ("The job and the program mean different things", "岗位与专业语义差别较大")),
    "dense_need_vs_program_history": (("The job reads like jobs this program served before",
                                       "与该专业以往对接的岗位语义相近"),
                                      ("The job reads unlike the jobs this program served",
                                       "与该专业以往对接的岗位语义不同")),
    "knn_sum": (("Similar jobs have partnered with this program before", "同类岗位曾与该专业合作"),
                ("Similar jobs have seldom partnered with this program",
                 "同类岗位很少与该专业合作")),
    "knn_max": (("A very similar job partnered with this program",
                 "有非常相似的岗位与该专业合作过"),
                ("No very similar job has partnered with this program",
                 "尚无非常相似的岗位与该专业合作")),
    "knn_share": (("Many similar jobs chose this program", "同类岗位多选择该专业"),
                  ("Few similar jobs chose this program", "同类岗位很少选择该专业")),
    "knn_first_rank": (("A similar job that partnered with it comes early",
                        "与该专业合作过的同类岗位相似度高"),
                       ("Jobs that partnered with it are not among the most similar",
                        "与该专业合作过的岗位相似度不高")),
    "program_links": (("The program has many past partnerships", "该专业以往合作较多"),
                      ("The program has few past partnerships", "该专业以往合作较少")),
    "program_known": (("The program has a partnership record", "该专业有合作记录"),
                      ("The program has no partnership record yet", "该专业尚无合作记录")),
    "need_vs_program_history": (("The job is like the jobs this program served before",
                                 "与该专业以往对接的岗位相近"),
                                ("The job is unlike the jobs this program served before",
                                 "与该专业以往对接的岗位不同")),
    "neighbour_programs_vs_program": (("Similar jobs chose programs like this one",
                                       "同类岗位所选专业与该专业相近"),
                                      ("Similar jobs chose other kinds of programs",
                                       "同类岗位多选择其他类型的专业")),
    "category_share_p2": (("Similar jobs chose programs of this category",
                           "同类岗位多选择该专业大类"),
                          ("Similar jobs seldom chose programs of this category",
                           "同类岗位很少选择该专业大类")),
    "category_share_p4": (("Similar jobs chose programs of this group", "同类岗位多选择该专业类"),
                          ("Similar jobs seldom chose programs of this group",
                           "同类岗位很少选择该专业类")),
    "same_province": (("In the same province as the job", "与岗位同省"),
                      ("In another province than the job", "与岗位不在同省")),
    "same_city": (("In the same city as the job", "与岗位同城"),
                  ("In another city than the job", "与岗位不在同城")),
    "need_neighbour_best": (("how close the nearest known job is", "最相近已知岗位的相似度"),) * 2,
    "need_neighbour_mean": (("how close the known jobs it borrows from are",
                             "相近已知岗位的平均相似度"),) * 2,
    "need_spread_word": (("how many programs are about as close (words)",
                          "与岗位相近的专业之多（词语）"),) * 2,
    "need_spread_char": (("how many programs are about as close (characters)",
                          "与岗位相近的专业之多（字符）"),) * 2,
    "need_terms": (("how much the job description says", "岗位描述的词语数"),) * 2,
    "need_body_terms": (("length of the job description", "岗位描述长度"),) * 2,
    "need_title_chars": (("length of the job title", "岗位名称长度"),) * 2,
    "need_title_words_in_program": (("The program profile names the job title's words",
                                     "专业简介中出现岗位名称的词语"),
                                    ("The program profile does not name the job title's words",
                                     "专业简介中未出现岗位名称的词语")),
    "need_title_words_in_program_title": (("The program's name holds the job title's words",
                                           "专业名称包含岗位名称的词语"),
                                          ("The program's name does not hold the job "
                                           "title's words", "专业名称不含岗位名称的词语")),
    "need_title_idf": (("how specific the job title's words are", "岗位名称词语的专指程度"),) * 2,
    "need_title_unknown_words": (("job title words the model has not seen",
                                  "岗位名称中模型未见过的词语数"),) * 2,
    "need_headcount": (("headcount asked", "需求人数"),) * 2,
    "program_capacity": (("graduates per year", "年毕业生数"),) * 2,
    "need_level": (("level asked", "需求层次"),) * 2,
    "program_level": (("program level", "专业层次"),) * 2,
    "same_level": (("The program's level is the one asked", "培养层次与需求一致"),
                   ("The program's level is not the one asked", "培养层次与需求不同")),
}
_PRIOR: _Label = (("Jobs of this kind often go to programs of this category",
                   "此类岗位常与该类专业合作"),
                  ("Jobs of this kind seldom go to programs of this category",
                   "此类岗位很少与该类专业合作"))
_PRIOR_NAME = re.compile(r"prior_n(\d+)_p(\d+)")


def _prior_label(name: str) -> _Label:
    """The label of ``prior_n{ln}_p{lp}``: the share of the links of past jobs whose
    occupation code begins as the job's (its first ``ln`` digits: a kind, or from 3 a
    narrower kind) that went to the program's category (``lp`` of 2) or group (more), so
    that a model's several priors read as different reasons."""
    found = _PRIOR_NAME.fullmatch(name)
    if found is None:
        return _PRIOR
    narrow, group = int(found[1]) >= 3, int(found[2]) > 2
    job_en = "Jobs of this narrower kind" if narrow else "Jobs of this kind"
    job_zh = "同一细类的岗位" if narrow else "此类岗位"
    prog_en = "programs of this group" if group else "programs of this category"
    prog_zh = "该专业类" if group else "该专业大类"
    return ((f"{job_en} often go to {prog_en}", f"{job_zh}常与{prog_zh}合作"),
            (f"{job_en} seldom go to {prog_en}", f"{job_zh}很少与{prog_zh}合作"))

#: Features kept in the model but not shown as reasons: sizes, bare levels and measures of
#: one side alone, which say nothing about the pair by themselves, and a rank.
HIDDEN_FEATURES = frozenset({"need_headcount", "program_capacity", "need_level",
                             "program_level", "knn_first_rank", "need_best_word",
                             "program_best_word", "need_neighbour_best",
                             "need_neighbour_mean", "need_spread_word", "need_spread_char",
                             "need_terms", "need_body_terms", "need_title_chars",
                             "need_title_idf", "need_title_unknown_words"})
_RELATIVE = (("_rel", ("relative to the best candidate", "相对最佳候选")),
             ("_rank", ("rank among the candidates", "候选中的名次")))


def is_shown(name: str) -> bool:
    """Whether a feature is shown to people as a reason (not relative to the other
    candidates, not a size or a bare level).

    Examples
    --------
    >>> is_shown("knn_sum"), is_shown("word_full_rank"), is_shown("program_capacity")
    (True, False, False)
    """
    return not name.endswith(("_rel", "_rank")) and name not in HIDDEN_FEATURES


# Features that say how much the two sides have in common (and their shares of the best,
# in the list or in the catalog): their wording for a positive contribution claims that
# something is shared, which is false where the value is 0.
_IN_COMMON = frozenset({
    "word_full", "char_full", "word_title", "char_title", "need_title_prog_body",
    "need_body_prog_title", "word_body", "bm25_need_query", "bm25_prog_query",
    "need_title_coverage", "prog_title_coverage", "need_title_in_prog_text",
    "prog_title_in_need_text", "need_title_words_in_program",
    "need_title_words_in_program_title"})
_SHARES = ("_rel", "_vs_need_best", "_vs_program_best")


def says_in_common(name: str) -> bool:
    """Whether a feature's wording for a positive contribution says the two sides have
    something in common (``word_full``: "matches what the program trains for";
    ``char_full_vs_need_best``: "among the closest the job has"): such a reason is false
    for a pair whose value is 0, whatever the contribution.

    Examples
    --------
    >>> says_in_common("bm25_need_query"), says_in_common("word_full_vs_need_best")
    (True, True)
    >>> says_in_common("knn_sum"), says_in_common("word_full_rank")
    (False, False)
    """
    for end in _SHARES:
        if name.endswith(end):
            name = name[: -len(end)]
            break
    return name in _IN_COMMON


def describe_feature(name: str, language: str = "en", contribution: float | None = None
                     ) -> str:
    """A plain description of a feature name, in ``"en"`` or ``"zh"``.

    With ``contribution``, the description says what the feature meant for the pair: a
    negative contribution (the feature counted against the match) gets the opposite wording.

    Examples
    --------
    >>> describe_feature("knn_sum", "zh")
    '同类岗位曾与该专业合作'
    >>> describe_feature("word_full", "en", contribution=-0.4)
    'The job description has little in common with what the program trains for'
    >>> describe_feature("word_full_rel")
    'The job description matches what the program trains for (relative to the best candidate)'
    """
    zh = language == "zh"
    base, suffix = name, ""
    for end, words in _RELATIVE:
        if name.endswith(end) and name[: -len(end)] in FEATURE_LABELS:
            base, suffix = name[: -len(end)], words[zh]
    if base.startswith("prior_"):
        label = _prior_label(base)
    else:
        label = FEATURE_LABELS.get(base, ((base, base), (base, base)))
    text = label[contribution is not None and contribution < 0][zh]
    if not suffix:
        return text
    return f"{text}（{suffix}）" if zh else f"{text} ({suffix})"


#: Words that are not worth showing as matched terms: function words and the filler of job
#: ads and catalogues (Chinese as segmented by jieba, English as stemmed).
FILLER_WORDS = frozenset(
    "按 按照 要求 日常 基于 企业 操作 负责 相关 进行 熟悉 做好 参与 完成 能够 使用 通过 根据 "
    "保证 确保 开展 协助 实施 相应 具体 一般 常用 基本 基础 良好 较强 工作 技能 知识 经验 优先 "
    "以上 学历 需要 及时 提供 达到 符合 实际 各项 有关 必要 一定 工作者 单位 公司 人才 岗位 "
    "use work job respons requir daili day base relat compani enterpris abl skill experi "
    "familiar knowledg good strong includ perform task duti year team need provid ensur "
    "support assist".split())
_DIGITS = re.compile(r"^[\d.]+$")
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9+#]*")
_CASED_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#]*")  # a Latin word as a text writes it


def is_filler(term: str) -> bool:
    """Whether a vocabulary term is filler, not worth showing as a matched term: a word of
    :data:`FILLER_WORDS`, a single Chinese character or a bare number.

    Examples
    --------
    >>> [is_filler(t) for t in ("按", "要求", "数控", "lath", "respons", "2024")]
    [True, True, False, False, True, True]
    """
    return term in FILLER_WORDS or (len(term) == 1 and has_cjk(term)) or bool(
        _DIGITS.match(term))


def read_from(title: str, text: str = "", bridge: bool = False) -> dict[str, str]:
    """The words the engine reads into a need that the need does not write, each with what
    the need wrote instead: the catalog's longer forms of the market's short forms in its
    title (驾驶员 for 司机; 空中 and 乘务 for 空乘) and, with ``bridge`` (a Chinese model),
    the Chinese terms of an English need's trades (数控 for "CNC machinist"). A matched term
    found here is shown with its source, so that a reason reads as the need was written.

    Examples
    --------
    >>> read_from("叉车司机")
    {'驾驶员': '司机'}
    >>> read_from("CNC machinist", bridge=True)["数控"]
    'CNC'
    """
    return dict(_read_from(title or "", text or "", bool(bridge)))


@lru_cache(maxsize=1024)  # a college's partner lists show the same needs again and again
def _read_from(title: str, text: str, bridge: bool) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    if bridge and detect_language(f"{title} {text}") == "en":
        bridged = bridge_text(title)
        for phrase, terms in (*bridged.terms, *bridge_text(text).terms):
            # the phrase as the need writes it ("CNC"), where it does word for word
            found = re.search(rf"(?<![a-z0-9]){re.escape(phrase)}(?:e?s)?(?![a-z0-9])",
                              f"{title}\n{text}", re.IGNORECASE)
            for word in tokenize(terms):
                out.setdefault(word, found.group(0) if found else phrase)
        title = bridged.text
    expansions = title_expansions(title)
    if expansions:
        written = set(tokenize(title)) | set(tokenize(text))
        for form, term in expansions.items():
            for word in tokenize(form):
                if word not in written:
                    out.setdefault(word, out.get(term, term))
    return tuple(out.items())


def as_written(terms: Sequence[str], *texts: str) -> list[str]:
    """``terms`` (matched terms, which come from lower-cased texts) in the letter case the
    original ``texts`` write them in: an acronym or a word in mixed case as written most
    often ("gmp" -> "GMP", "mysql" -> "MySQL"), a capitalised word only where the texts
    never write it in lower case (a "Nursing" that starts a title stays "nursing" when the
    text says "nursing care"); a term the texts do not write as a whole word stays as it is.

    Examples
    --------
    >>> as_written(["gmp", "中药", "plc"], "按GMP要求生产", "熟悉 PLC 和 plc 编程、PLC")
    ['GMP', '中药', 'PLC']
    >>> as_written(["nursing", "java"], "Nursing assistant", "nursing care; Java, SQL")
    ['nursing', 'Java']
    """
    if not any(_LATIN_WORD.fullmatch(t) for t in terms):
        return list(terms)
    forms: dict[str, Counter] = {}  # each Latin word of the texts, lower-cased: its spellings
    for text in texts:
        for word in _CASED_WORD.findall(text or ""):
            forms.setdefault(word.lower(), Counter())[word] += 1
    out = []
    for term in terms:
        seen: Counter[str] = forms.get(term) or Counter()
        special = [w for w in seen if w != w.lower() and w != w.capitalize()]
        if special:
            out.append(min(special, key=lambda w: (-seen[w], w)))
        elif seen and term not in seen:
            out.append(min(seen, key=lambda w: (-seen[w], w)))
        else:
            out.append(term)
    return out


def surface_forms(text: str) -> dict[str, Counter]:
    """For each stem of the English words of a normalised ``text``, how often each spelling
    occurs.

    Examples
    --------
    >>> dict(surface_forms("lathe operator, lathes and nursing"))["lath"]
    Counter({'lathe': 1, 'lathes': 1})
    """
    out: dict[str, Counter] = {}
    for word in _LATIN_WORD.findall(text):
        stem = _stem(word)
        forms = out.get(stem)
        if forms is None:
            forms = out[stem] = Counter()
        forms[word] += 1
    return out


def surface_terms(terms: Iterable[str], forms: Sequence[dict[str, Counter]],
                  n_terms: int = 5) -> list[str]:
    """The first ``n_terms`` terms that are not filler, each as its texts spell it.

    ``forms`` are the :func:`surface_forms` of the texts the terms were found in; a stem
    becomes its most frequent spelling there (the shortest on a tie), a term they do not
    spell (Chinese words are their own spelling) stays as it is. Spellings are not repeated.

    Examples
    --------
    >>> forms = [surface_forms("cnc lathe operator"), surface_forms("lathes and lathe work")]
    >>> surface_terms(["lath", "respons", "oper", "数控"], forms)
    ['lathe', 'operator', '数控']
    """
    return spelled_terms([t for t in terms if not is_filler(t)], forms, n_terms)


def spelled_terms(terms: Iterable[str], forms: Sequence[dict[str, Counter]],
                  n_terms: int = 5) -> list[str]:
    """:func:`surface_terms` of terms already known not to be filler."""
    out: list[str] = []
    for term in terms:
        shown = _spelling(term, [f[term] for f in forms if term in f])
        if shown not in out:
            out.append(shown)
            if len(out) == n_terms:
                break
    return out


def _spelling(term: str, hits: list[Counter]) -> str:
    """The most frequent spelling of ``term`` over the counts ``hits`` of its texts (the
    shortest, then the first alphabetically, on a tie); ``term`` itself when none spells it."""
    if not hits:
        return term
    counts: dict[str, int]
    if len(hits) == 1:
        counts = hits[0]
    else:
        counts = dict(hits[0])
        for h in hits[1:]:
            for w, c in h.items():
                counts[w] = counts.get(w, 0) + c
    if len(counts) == 1:
        return next(iter(counts))
    return min((-c, len(w), w) for w, c in counts.items())[2]

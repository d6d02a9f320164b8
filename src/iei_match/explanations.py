"""What each ranking feature means, for the people reading an explanation."""

from __future__ import annotations

__all__ = ["FEATURE_LABELS", "describe_feature"]

# What each feature means, for people reading an explanation (English, Chinese). Names ending
# in ``_rel`` / ``_rank`` are the same measure relative to the best candidate in the list.
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "word_full": ("word overlap, whole text", "全文词语相似度"),
    "char_full": ("character n-gram overlap", "全文字符相似度"),
    "word_title": ("titles share words", "名称词语相似度"),
    "char_title": ("titles share characters", "名称字符相似度"),
    "need_title_prog_body": ("need title found in the program profile", "岗位名称见于专业简介"),
    "need_body_prog_title": ("program title found in the need", "专业名称见于岗位描述"),
    "word_body": ("descriptions share words", "描述词语相似度"),
    "bm25_need_query": ("BM25, need as query", "BM25（以岗位为查询）"),
    "bm25_prog_query": ("BM25, program as query", "BM25（以专业为查询）"),
    "need_title_coverage": ("need title covered by the program", "岗位名称覆盖率"),
    "prog_title_coverage": ("program title covered by the need", "专业名称覆盖率"),
    "need_title_in_prog_text": ("need title named verbatim in the program",
                                "专业简介直接提及该岗位"),
    "prog_title_in_need_text": ("program title named verbatim in the need",
                                "岗位描述直接提及该专业"),
    "dense_cosine": ("sentence-embedding similarity", "语义向量相似度"),
    "dense_need_vs_program_history": ("semantically like needs this program served",
                                      "与该专业以往对接岗位语义相近"),
    "knn_sum": ("similar past needs partnered with this program", "相似岗位曾与该专业合作"),
    "knn_max": ("closest past need that partnered with it", "最相似的已合作岗位"),
    "knn_share": ("share of similar needs that partnered with it", "相似岗位中合作的比例"),
    "knn_first_rank": ("rank of the first similar need that partnered", "首个已合作相似岗位的名次"),
    "need_neighbour_best": ("how close the nearest known need is", "最相近已知岗位的相似度"),
    "need_neighbour_mean": ("how close the known needs it borrows from are",
                            "相近已知岗位的平均相似度"),
    "need_spread_word": ("how many programs are about as close (words): a generic need",
                         "相近专业之多（词语）：岗位较笼统"),
    "need_spread_char": ("how many programs are about as close (characters): a generic need",
                         "相近专业之多（字符）：岗位较笼统"),
    "need_terms": ("how much the need says (its terms)", "岗位描述的词语数"),
    "need_body_terms": ("length of the need's description", "岗位描述长度"),
    "need_title_chars": ("length of the need's title", "岗位名称长度"),
    "program_links": ("program's number of past partnerships", "该专业以往合作数"),
    "program_known": ("program has partnership history", "该专业有合作记录"),
    "need_vs_program_history": ("like the needs this program served before",
                                "与该专业以往对接岗位相近"),
    "neighbour_programs_vs_program": ("like programs that similar needs chose",
                                      "与相似岗位所选专业相近"),
    "category_share_p2": ("similar needs chose this program category", "相似岗位选择该专业大类"),
    "category_share_p4": ("similar needs chose this program class", "相似岗位选择该专业类"),
    "same_province": ("same province", "同省"),
    "same_city": ("same city", "同城"),
    "need_headcount": ("headcount asked", "需求人数"),
    "program_capacity": ("graduates per year", "年毕业生数"),
    "need_level": ("level asked", "需求层次"),
    "program_level": ("program level", "专业层次"),
    "same_level": ("same level", "层次一致"),
}


def describe_feature(name: str, language: str = "en") -> str:
    """A short human description of a feature name, in ``"en"`` or ``"zh"``.

    Examples
    --------
    >>> describe_feature("knn_sum", "zh")
    '相似岗位曾与该专业合作'
    >>> describe_feature("word_full_rel")
    'word overlap, whole text (relative to the best candidate)'
    """
    base, suffix = name, ""
    for end, words in (("_rel", ("relative to the best candidate", "相对最佳候选")),
                       ("_rank", ("rank among the candidates", "候选中的名次"))):
        if name.endswith(end) and name[: -len(end)] in FEATURE_LABELS:
            base, suffix = name[: -len(end)], words[language == "zh"]
    if base.startswith("prior_"):
        label = ("taxonomy prior learned from past links", "由以往合作学得的类别先验")
    else:
        label = FEATURE_LABELS.get(base, (base, base))
    text = label[language == "zh"]
    return f"{text} ({suffix})" if suffix and language != "zh" else (
        f"{text}（{suffix}）" if suffix else text)

"""A small synthetic "checkerboard" catalog with a known answer, shared by several tests.

Six program categories, each with its own vocabulary; every need is written in one
category's vocabulary and linked to programs of that category only. Ids do not encode the
category (they are shuffled), so only the texts and the links can tell categories apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHINESE = {
    "数控": ["数控", "机床", "车床", "铣削", "编程", "零件", "刀具", "夹具", "图纸", "模具"],
    "护理": ["护理", "病人", "临床", "医院", "护士", "注射", "输液", "康复", "病房", "伤口"],
    "会计": ["会计", "财务", "报表", "税务", "审计", "账簿", "成本", "预算", "出纳", "凭证"],
    "软件": ["软件", "程序", "数据库", "前端", "后端", "算法", "代码", "接口", "网站", "调试"],
    "电工": ["电工", "电路", "配电", "电缆", "变压器", "照明", "电气", "接线", "开关", "电机"],
    "烹饪": ["烹饪", "厨师", "菜肴", "刀工", "面点", "食材", "烘焙", "调味", "餐饮", "厨房"],
}
CHINESE_FILLER = ["负责", "企业", "技能", "团队", "要求", "经验", "工厂", "单位"]

ENGLISH = {
    "cnc": ["cnc", "lathe", "milling", "machining", "spindle", "fixture", "toolpath",
            "blueprint", "drilling", "gcode"],
    "nursing": ["nursing", "patient", "clinical", "hospital", "injection", "ward", "bedside",
                "medication", "wound", "triage"],
    "accounting": ["accounting", "ledger", "audit", "invoice", "tax", "payroll", "bookkeeping",
                   "budget", "reconciliation", "receivable"],
    "software": ["software", "database", "frontend", "backend", "algorithm", "debugging", "api",
                 "javascript", "compiler", "repository"],
    "electrical": ["electrician", "wiring", "circuit", "voltage", "transformer", "breaker",
                   "conduit", "switchgear", "grounding", "lighting"],
    "culinary": ["culinary", "chef", "kitchen", "pastry", "baking", "recipe", "sauce",
                 "butchery", "menu", "seasoning"],
}
ENGLISH_FILLER = ["responsible", "company", "skills", "team", "required", "experience",
                  "factory", "shift"]

VOCABULARIES = {"zh": (CHINESE, CHINESE_FILLER, "，"), "en": (ENGLISH, ENGLISH_FILLER, " ")}


def _doc(rng, words, filler, sep, n_words, n_filler):
    picked = list(rng.choice(words, n_words, replace=False))
    picked += list(rng.choice(filler, n_filler, replace=False))
    rng.shuffle(picked)
    return sep.join(picked)


def make_catalog(lang="zh", seed=0, programs_per_category=4, needs_per_category=10,
                 need_prefix="need", link_programs=2, long_texts=False):
    """Return (needs, programs, links, category), ``category`` mapping every id to its category.

    ``long_texts`` gives needs and programs bodies of very different lengths.
    """
    vocab, filler, sep = VOCABULARIES[lang]
    rng = np.random.default_rng(seed)
    cats = list(vocab)
    programs, needs, links = [], [], []
    prog_of_cat: dict[str, list[str]] = {c: [] for c in cats}
    prog_order = rng.permutation(len(cats) * programs_per_category)
    need_order = rng.permutation(len(cats) * needs_per_category)
    for c, cat in enumerate(cats):
        words = vocab[cat]
        for j in range(programs_per_category):
            pid = f"prog-{prog_order[c * programs_per_category + j]:03d}"
            n_body = int(rng.integers(4, 9)) if not long_texts else int(rng.integers(2, 10))
            body = _doc(rng, words, filler, sep, n_body, 1)
            if long_texts:
                body = sep.join([body] * int(rng.integers(1, 6)))
            programs.append((pid, sep.join(rng.choice(words, 2, replace=False)), body))
            prog_of_cat[cat].append(pid)
        for j in range(needs_per_category):
            nid = f"{need_prefix}-{need_order[c * needs_per_category + j]:03d}"
            body = _doc(rng, words, filler, sep, int(rng.integers(3, 7)), 2)
            if long_texts:
                body = sep.join([body] * int(rng.integers(1, 8)))
            needs.append((nid, sep.join(rng.choice(words, 2, replace=False)), body))
    needs_df = pd.DataFrame(needs, columns=["need_id", "title", "text"])
    programs_df = pd.DataFrame(programs, columns=["program_id", "title", "text"])
    category = {}
    for cat in cats:
        for pid in prog_of_cat[cat]:
            category[pid] = cat
    for (nid, _, _), cat in zip(needs, np.repeat(cats, needs_per_category), strict=True):
        category[nid] = cat
        for pid in rng.choice(prog_of_cat[cat], link_programs, replace=False):
            links.append((nid, pid, int(rng.integers(1, 4))))
    links_df = pd.DataFrame(links, columns=["need_id", "program_id", "grade"])
    # Shuffle rows so that row order does not reveal the category either.
    needs_df = needs_df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    programs_df = programs_df.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    return needs_df, programs_df, links_df, category

"""English needs in a Chinese alliance: language detection and an offline term bridge.

A model trained on a Chinese catalog knows Chinese words only: an English need ("CNC
machinist") shares no term with any program and would be answered with whatever happens
to rank first. :func:`bridge_text` puts the Chinese words of the trades an English text
names in front of it (``"CNC machinist"`` → ``"数控 机械加工 CNC machinist"``), so that the
need is matched by what it means; :func:`detect_language` tells which side of the bridge a
text is on, and :func:`language_note` says when the bridge had nothing to offer.

:data:`TERMS` is a small table written for this project: the English words and phrases
of job titles and trades (manufacturing, electrical, building, IT, logistics, business,
health and care, hospitality, agriculture, transport, media, public services) with the
Chinese words that name the same trade in vocational catalogs. It translates *words*, not
titles: a title is bridged word by word (longest phrase first), so titles the table never
saw are bridged too. It is not a crosswalk from jobs to majors: no major is named in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .skills import SYNONYMS
from .text import has_cjk, normalize

__all__ = ["TERMS", "Bridged", "detect_language", "bridge_text", "language_note"]

_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9+#]*")

#: English word or phrase -> Chinese terms of the same trade (space-separated).
TERMS: dict[str, str] = {
    # manufacturing, machining, materials
    "cnc": "数控", "numerical control": "数控", "machinist": "机械加工 车工",
    "machining": "机械加工", "lathe": "车床 车工", "turner": "车工", "milling": "铣削 铣工",
    "grinder": "磨工", "fitter": "钳工 装配", "toolmaker": "模具 钳工", "tool": "工装 刀具",
    "die": "模具", "mold": "模具", "mould": "模具", "injection": "注塑", "molding": "成型",
    "moulding": "成型", "casting": "铸造", "foundry": "铸造", "forging": "锻压",
    "stamping": "冲压", "sheet metal": "钣金", "welder": "焊接 焊工", "welding": "焊接",
    "assembler": "装配", "assembly": "装配", "manufacturing": "制造", "production": "生产",
    "factory": "工厂 生产", "operator": "操作", "machine": "机械 机床", "mechanical": "机械",
    "mechanic": "维修 机械", "mechatronics": "机电一体化", "maintenance": "维修 维护",
    "repair": "维修", "technician": "技术", "engineer": "工程 技术", "engineering": "工程",
    "drafter": "制图 设计", "draftsman": "制图 设计", "cad": "计算机辅助设计 制图",
    "designer": "设计", "design": "设计", "quality": "质量 质检", "inspector": "检验 质检",
    "inspection": "检验 检测", "testing": "测试 检测", "tester": "测试", "test": "测试 检测",
    "qc": "质量控制 质检", "qa": "质量保证", "metrology": "计量", "calibration": "计量 校准",
    "laboratory": "实验室 检验 分析", "lab": "实验室 检验 分析", "chemist": "化学 分析",
    "chemical": "化工", "polymer": "高分子", "plastics": "塑料 高分子", "rubber": "橡胶",
    "textile": "纺织", "sewing": "缝纫 服装", "garment": "服装", "tailor": "服装 缝纫",
    "fashion": "服装 服饰", "printing": "印刷", "packaging": "包装", "furniture": "家具",
    "woodworking": "木工 木业", "ceramics": "陶瓷", "jewelry": "珠宝 首饰", "glass": "玻璃",
    "steel": "钢铁", "metallurgy": "冶金", "metal": "金属", "materials": "材料",
    "robot": "机器人", "robotics": "机器人", "automation": "自动化", "plc": "可编程控制器 PLC 电气",
    "programmer": "编程", "programming": "编程", "hydraulic": "液压", "pneumatic": "气动",
    "industrial": "工业", "process": "工艺", "additive manufacturing": "增材制造",
    "3d printing": "增材制造 3D打印",
    # electrical, electronics, energy
    "electrician": "电工 电气", "electrical": "电气", "electric": "电力 电气", "power": "电力",
    "electronics": "电子", "electronic": "电子", "circuit": "电路", "chip": "芯片 集成电路",
    "semiconductor": "半导体 微电子", "integrated circuit": "集成电路", "smt": "表面贴装 电子",
    "embedded": "嵌入式", "instrument": "仪表", "instrumentation": "仪表 自动化",
    "substation": "变电站", "grid": "电网", "utility": "供电", "solar": "光伏 太阳能",
    "photovoltaic": "光伏", "wind turbine": "风力发电", "wind": "风力", "turbine": "发电 涡轮",
    "battery": "电池 储能", "energy": "能源", "nuclear": "核电", "boiler": "锅炉 热能",
    "hvac": "供热通风与空调 暖通 制冷", "air conditioning": "空调 制冷", "refrigeration": "制冷",
    "heating": "供热", "ventilation": "通风", "elevator": "电梯", "lift": "电梯",
    # building, civil, surveying
    "construction": "建筑 施工", "building": "建筑", "builder": "建筑 施工", "civil": "土木 工程",
    "site": "施工 现场", "supervisor": "管理 监督", "foreman": "施工 管理", "carpenter": "木工",
    "bricklayer": "砌筑", "mason": "砌筑", "plumber": "给排水 水暖", "plumbing": "给排水",
    "pipefitter": "管道", "pipe": "管道", "painter": "涂装 油漆", "decorator": "装饰 装修",
    "interior": "室内", "architect": "建筑设计", "architectural": "建筑", "estimator": "造价 预算",
    "cost": "造价 成本", "quantity surveyor": "造价", "surveyor": "测量 测绘",
    "surveying": "测量 测绘", "gis": "地理信息", "mapping": "测绘", "geologist": "地质",
    "geology": "地质", "road": "道路", "bridge": "桥梁", "highway": "公路 道路",
    "tunnel": "隧道", "railway": "铁道 铁路", "railroad": "铁道 铁路", "track": "线路 轨道",
    "landscaper": "园林 绿化", "landscape": "园林 景观", "gardener": "园艺 园林",
    "property": "物业 房地产", "real estate": "房地产", "safety": "安全", "fire": "消防",
    "firefighter": "消防 救援", "security guard": "安保 保安", "security": "安全",
    "water": "水", "wastewater": "污水 水处理", "sewage": "污水", "environmental": "环境",
    "environment": "环境", "mining": "采矿 矿山", "miner": "采矿 矿工", "mine": "矿山",
    "oil": "石油", "gas": "燃气 天然气", "petroleum": "石油",
    # IT, data, media
    "software": "软件", "developer": "开发", "development": "开发", "coder": "编程 软件",
    "front-end": "前端 网页", "frontend": "前端 网页", "back-end": "后端", "backend": "后端",
    "web": "网站 网页", "website": "网站", "java": "java 软件", "python": "python 编程",
    "app": "移动应用 应用", "mobile": "移动", "computer": "计算机", "it support": "信息技术 计算机",
    "network": "网络", "networking": "网络", "administrator": "管理员 管理",
    "system": "系统", "systems": "系统", "cloud": "云计算", "database": "数据库",
    "data": "数据", "big data": "大数据", "analyst": "分析", "analytics": "分析",
    "ai": "人工智能", "artificial intelligence": "人工智能", "machine learning": "机器学习",
    "algorithm": "算法", "cybersecurity": "信息安全 网络安全", "information security": "信息安全",
    "iot": "物联网", "internet of things": "物联网", "blockchain": "区块链",
    "telecommunications": "通信", "telecom": "通信", "communication": "通信",
    "5g": "移动通信 5G", "ui": "界面设计 UI", "ux": "交互设计", "graphic": "平面 视觉传达",
    "visual": "视觉", "animation": "动画 动漫", "animator": "动画 动漫", "game": "游戏",
    "video": "视频 影视", "film": "影视", "editor": "编辑", "editing": "剪辑 编辑",
    "photographer": "摄影", "photography": "摄影", "media": "媒体", "social media": "新媒体",
    "journalist": "新闻 采编", "reporter": "新闻 采编", "broadcast": "广播 播音",
    "host": "主持 主播", "anchor": "主播 主持", "live streaming": "直播", "streaming": "直播",
    "advertising": "广告", "drone": "无人机", "uav": "无人机",
    # business, trade, logistics, finance
    "accountant": "会计 财务", "accounting": "会计", "bookkeeper": "会计 记账",
    "cashier": "出纳 收银", "finance": "金融 财务", "financial": "金融 财务", "auditor": "审计",
    "audit": "审计", "tax": "税务 纳税", "bank": "银行 金融", "teller": "柜员 银行",
    "insurance": "保险", "investment": "投资", "securities": "证券", "statistician": "统计",
    "statistics": "统计", "sales": "销售 营销", "salesperson": "销售 营销", "seller": "销售",
    "marketing": "营销 市场", "market": "市场", "customer service": "客户服务 客服",
    "customer": "客户", "e-commerce": "电子商务 电商", "ecommerce": "电子商务 电商",
    "online store": "电子商务 网店", "trade": "贸易", "international": "国际",
    "export": "外贸 出口", "import": "进口 外贸", "customs": "报关 关务", "broker": "代理",
    "freight": "货运", "forwarder": "货运代理", "logistics": "物流", "warehouse": "仓储 仓库",
    "storekeeper": "仓储 仓库", "inventory": "库存 仓储", "forklift": "叉车 物流",
    "courier": "快递", "delivery": "配送 快递", "postal": "邮政", "supply chain": "供应链",
    "purchasing": "采购", "procurement": "采购", "buyer": "采购", "merchandiser": "跟单 商品",
    "retail": "零售 连锁经营", "store": "门店 零售", "shop": "门店", "manager": "管理",
    "management": "管理", "administrative": "行政", "admin": "行政", "office": "办公 行政",
    "clerk": "文员 事务", "secretary": "文秘 秘书", "receptionist": "前台 接待",
    "assistant": "助理", "hr": "人力资源", "human resources": "人力资源",
    "recruiter": "招聘 人力资源", "recruitment": "招聘", "payroll": "薪酬",
    "legal": "法律", "paralegal": "法律事务 法律文秘", "lawyer": "法律 律师", "law": "法律",
    "translator": "翻译 外语", "interpreter": "翻译 外语", "english": "英语",
    "japanese": "日语", "korean": "韩语", "russian": "俄语", "french": "法语",
    "german": "德语", "spanish": "西班牙语", "arabic": "阿拉伯语",
    # vehicles, transport
    "automotive": "汽车", "auto": "汽车", "car": "汽车", "vehicle": "车辆 汽车",
    "electric vehicle": "新能源汽车", "ev": "新能源汽车", "truck": "货车 汽车",
    "driver": "驾驶", "aircraft": "飞机 航空", "aviation": "航空", "airline": "航空 民航",
    "airport": "机场", "pilot": "驾驶 飞行", "flight attendant": "空中乘务 乘务",
    "cabin crew": "空中乘务", "ship": "船舶", "marine": "船舶 海洋", "captain": "驾驶 船长",
    "sailor": "水手 船舶", "seafarer": "船舶 航海", "port": "港口", "metro": "城市轨道交通 地铁",
    "subway": "城市轨道交通 地铁", "train": "列车 铁路", "bus": "公交 客运",
    # health, care, social
    "nurse": "护理 护士", "nursing": "护理", "registered nurse": "护理 护士",
    "midwife": "助产", "doctor": "医学 临床", "physician": "临床医学", "medical": "医学 医疗",
    "clinical": "临床", "hospital": "医院", "pharmacist": "药学 药师", "pharmacy": "药学 药房 药品",
    "pharmaceutical": "制药 药品", "drug": "药品", "radiologic": "医学影像",
    "radiology": "医学影像 放射", "imaging": "影像", "x-ray": "放射 影像",
    "physical therapist": "康复治疗", "physiotherapist": "康复治疗", "therapist": "治疗",
    "rehabilitation": "康复", "dental": "口腔", "dentist": "口腔医学", "optician": "眼视光 配镜",
    "optometrist": "眼视光", "dietitian": "营养", "nutritionist": "营养", "nutrition": "营养",
    "counselor": "咨询", "psychological": "心理", "psychologist": "心理",
    "caregiver": "照护 养老护理", "care": "照护 护理", "elderly": "老年 养老",
    "aged care": "养老 老年", "nanny": "育婴 家政 婴幼儿", "babysitter": "育婴 婴幼儿",
    "childcare": "托育 婴幼儿", "infant": "婴幼儿", "housekeeper": "家政 保洁",
    "housekeeping": "家政 客房", "domestic": "家政", "social worker": "社会工作 社工",
    "social work": "社会工作", "medical device": "医疗器械", "health": "健康",
    "massage": "推拿 按摩", "acupuncture": "针灸", "veterinarian": "兽医 动物医学",
    "vet": "兽医", "veterinary": "兽医", "pet": "宠物", "funeral": "殡葬",
    # education, culture, sport
    "teacher": "教育 教师", "tutor": "教育 辅导", "preschool": "学前教育 幼儿",
    "kindergarten": "幼儿园 学前教育", "primary school": "小学", "school": "学校 教育",
    "coach": "教练 训练", "trainer": "培训 教练", "fitness": "健身", "sports": "体育 运动",
    "athlete": "运动", "music": "音乐", "musician": "音乐", "dancer": "舞蹈", "dance": "舞蹈",
    "actor": "表演", "artist": "艺术", "art": "艺术", "librarian": "图书 档案",
    "archivist": "档案", "museum": "文物 博物馆",
    # hospitality, food, tourism, beauty
    "chef": "烹饪 厨师", "cook": "烹饪 厨师", "kitchen": "厨房 烹饪", "pastry": "面点 糕点",
    "baker": "面点 烘焙", "bakery": "烘焙 面点", "western cuisine": "西餐", "waiter": "餐厅 服务",
    "waitress": "餐厅 服务", "restaurant": "餐饮", "catering": "餐饮", "hotel": "酒店",
    "front desk": "前台 前厅", "tour guide": "导游", "guide": "导游", "travel": "旅游 旅行社",
    "tourism": "旅游", "beautician": "美容", "beauty": "美容", "cosmetologist": "美容 化妆",
    "makeup": "化妆 形象设计", "hairdresser": "美发 形象设计", "barber": "美发",
    "tea": "茶艺 茶叶", "wine": "葡萄酒 酿酒", "brewer": "酿酒",
    # food, agriculture, forestry, fishery
    "food": "食品", "agriculture": "农业", "agricultural": "农业", "farm": "农业 农场",
    "farmer": "农业 种植", "crop": "作物", "plant protection": "植物保护", "seed": "种子",
    "livestock": "畜牧", "animal": "动物 畜牧", "poultry": "家禽 畜禽", "breeder": "养殖",
    "fishery": "渔业 水产", "aquaculture": "水产养殖", "forestry": "林业", "forest": "森林 林业",
    "horticulture": "园艺", "florist": "花艺 花卉",
    # public services
    "police": "警务 公安", "prison": "刑事执行 监狱", "court": "司法", "government": "政府 行政",
    "community": "社区", "weather": "气象", "meteorologist": "气象",
}



def _table() -> dict[str, str]:
    """:data:`TERMS`, plus the English terms of the skill synonym groups
    (:data:`iei_match.skills.SYNONYMS`: "PLC", "GMP", "additive manufacturing" …) with the
    Chinese terms of their group; an entry of :data:`TERMS` wins."""
    out: dict[str, str] = {}
    for group in SYNONYMS:
        chinese = [t for t in group if has_cjk(t)]
        if not chinese:
            continue
        for term in group:
            if not has_cjk(term):
                out[normalize(term)] = " ".join(chinese)
    out.update(TERMS)
    return out


_TABLE = _table()
_MAX_PHRASE = max(len(k.split()) for k in _TABLE)


@dataclass(frozen=True)
class Bridged:
    """What :func:`bridge_text` made of a text.

    Attributes
    ----------
    text : str
        The Chinese terms found, then the original text (unchanged when nothing was found).
    terms : tuple of (str, str)
        ``(English phrase, Chinese terms)`` in the order they were found.
    """

    text: str
    terms: tuple[tuple[str, str], ...]


def detect_language(text: object) -> str:
    """``"zh"`` when a text has Chinese characters (at least one per ten Latin letters),
    ``"en"`` when it is mostly Latin letters, ``""`` when it has neither (empty, digits).

    Examples
    --------
    >>> detect_language("数控车工"), detect_language("CNC machinist"), detect_language("PLC编程")
    ('zh', 'en', 'zh')
    """
    s = normalize(text)
    cjk = len(_CJK_CHAR.findall(s))
    latin = sum(len(w) for w in _LATIN_WORD.findall(s))
    if cjk == 0 and latin == 0:
        return ""
    return "zh" if cjk * 10 >= latin and cjk > 0 else "en"


def _singular(word: str) -> str:
    if word in _TABLE or len(word) <= 3:
        return word
    for end, repl in (("ies", "y"), ("ses", "s"), ("s", "")):
        if word.endswith(end) and word[: -len(end)] + repl in _TABLE:
            return word[: -len(end)] + repl
    return word


def bridge_text(text: object) -> Bridged:
    """The Chinese terms of the trades an English text names, put before it.

    Words are matched longest phrase first (``"registered nurse"`` before ``"nurse"``),
    case-insensitively, plurals as singulars. A text with Chinese in it is returned as it
    is.

    Examples
    --------
    >>> bridge_text("CNC machinist").text
    '数控 机械加工 车工 CNC machinist'
    >>> bridge_text("registered nurses").terms
    (('registered nurse', '护理 护士'),)
    """
    raw = "" if text is None else str(text)
    s = normalize(raw)
    if not s or has_cjk(s):
        return Bridged(raw, ())
    words = [_singular(w) for w in re.findall(r"[a-z0-9][a-z0-9+#\-]*", s)]
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            zh = _TABLE.get(phrase)
            if zh is None and n == 1 and "-" in phrase:
                zh = _TABLE.get(phrase.replace("-", " ")) or _TABLE.get(phrase.replace("-", ""))
            if zh is not None:
                found.append((phrase, zh))
                i += n
                break
        else:
            i += 1
    if not found:
        return Bridged(raw, ())
    chinese = " ".join(dict.fromkeys(" ".join(zh for _, zh in found).split()))
    return Bridged(f"{chinese} {raw}", tuple(found))


def language_note(text: object, catalog_language: str) -> tuple[str, str | None]:
    """The detected language of a need and, when it cannot be matched well, why.

    Parameters
    ----------
    text : str
        The need's title and text.
    catalog_language : {"zh", "en"}
        The language of the programs it is matched against (the model's).

    Returns
    -------
    language : str
        :func:`detect_language` of ``text``.
    warning : str or None
        Set when an English need meets a Chinese catalog and :func:`bridge_text` found no
        trade term in it (its results share no word with the need: do not trust them), or
        when a Chinese need meets an English catalog (there is no bridge that way).
    """
    language = detect_language(text)
    if language == "en" and catalog_language == "zh" and not bridge_text(text).terms:
        return language, ("the need is in English and the programs are in Chinese; no term "
                          "of the need was found in the English-Chinese job-term table, so "
                          "the results do not rest on what it says: write the need in "
                          "Chinese")
    if language == "zh" and catalog_language == "en":
        return language, ("the need is in Chinese and the programs are in English: the "
                          "results do not rest on what it says; write the need in English")
    return language, None

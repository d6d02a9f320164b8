"""A bilingual demo alliance: enterprises, colleges with real catalog majors, training bases
and some partnership history, with one API key printed for each role.

Organisations are fictional (marked 演示 / demo); the majors' codes and profiles are the
official ones from the bundled catalog.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from iei_match.bundled import catalog_dir
from iei_match.io import load_programs

from .auth import create_key
from .db.tables import (
    ApiKey,
    Membership,
    Need,
    Organization,
    OutcomeEvent,
    Partnership,
    Program,
    TrainingBase,
    utcnow,
)
from .labels import grade_of

ALLIANCES = {
    "nanhai": ("南海产教融合联盟（演示）", "广东省", "佛山市"),
    "shanghai": ("上海航空产教融合联盟（演示）", "上海市", "上海市"),
    "chengyu": ("成渝地区双城经济圈产教联盟（演示）", "四川省", "成都市"),
}
ENTERPRISES = [
    ("herbal", "nanhai", "南海本草颗粒制药有限公司（演示）", "广东省", "佛山市"),
    # No college of the Nanhai alliance trains elderly-care staff: the demo shows what the
    # service says when nothing in the alliance fits (and the shortage in the gap report).
    ("care", "nanhai", "南海颐年养老服务中心（演示）", "广东省", "佛山市"),
    ("aero", "shanghai", "沪东商用飞机制造有限公司（演示） / Hudong Commercial Aircraft (demo)",
     "上海市", "上海市"),
    ("soft", "chengyu", "天府云数科技有限公司（演示）", "四川省", "成都市"),
    ("cq", "chengyu", "Chongqing Smart Manufacturing Co. (demo)", "重庆市", "重庆市"),
]
COLLEGES = [
    ("fsvc", "nanhai", "佛山南海职业技术学院（演示）", "高职", "广东省", "佛山市",
     ["520415", "490201", "490203", "520414", "460305"]),
    ("shav", "shanghai", "上海航空职业技术学院（演示）", "高职", "上海市", "上海市",
     ["500409", "460601", "500413", "430604"]),
    ("cdit", "chengyu", "成都信息职业技术学院（演示）", "高职", "四川省", "成都市",
     ["510203", "510205", "510207", "510206", "510202"]),
    ("cqtu", "chengyu", "重庆职业技术大学（演示）", "职教本科", "重庆市", "重庆市",
     ["310203", "260103"]),
]
NEEDS = [
    ("herbal", "中药配方颗粒生产技术员",
     "负责中药配方颗粒的提取、浓缩、喷雾干燥与制粒工序操作，按GMP要求做好批生产记录，"
     "参与设备清洁验证。", ["GMP", "提取浓缩", "喷雾干燥", "制粒", "质量检验"], 20, "高职专科"),
    ("herbal", "中药饮片质量检验员",
     "对中药材和配方颗粒进行性状鉴别、薄层色谱和含量测定，出具检验报告。",
     ["中药鉴定", "薄层色谱", "高效液相色谱"], 5, "高职专科"),
    ("care", "养老护理员",
     "为入住老人提供生活照料、基础护理、康复训练和心理慰藉，协助开展智慧养老服务与健康管理。",
     ["生活照料", "老年护理", "康复训练"], 20, "高职专科"),
    ("aero", "飞机结构装配技术员",
     "从事民用飞机机身部件的铆接装配、密封与数字化测量，识读装配图纸和工艺规程。",
     ["铆接", "数字化装配", "工艺规程", "复合材料"], 30, "高职专科"),
    ("aero", "Avionics maintenance technician 航空电子设备维修技术员",
     "Install, test and troubleshoot aircraft electrical and avionics systems. 负责飞机机电与"
     "航空电子设备的安装、测试与排故，按维修手册和适航规章工作。",
     ["avionics", "机电设备维修", "排故"], 10, "高职专科"),
    ("soft", "Java后端开发工程师",
     "参与政务云平台后端开发，使用Java、Spring Boot和MySQL，编写接口文档和单元测试。",
     ["Java", "Spring Boot", "MySQL", "Linux"], 15, "高职专科"),
    ("soft", "数据分析与大数据运维",
     "搭建和维护Hadoop、Spark大数据平台，进行数据采集清洗和可视化分析。",
     ["Hadoop", "Spark", "Python", "数据可视化"], 8, "高职专科"),
    ("cq", "Industrial robot operator 工业机器人操作与运维",
     "Program and maintain industrial robots on a welding line. 焊接生产线工业机器人的编程、"
     "操作与维护，掌握PLC基础和安全规范。", ["工业机器人", "PLC", "焊接"], 12, ""),
]
BASES = [
    ("fsvc", "南海中药配方颗粒生产性实训基地", "GMP车间、提取浓缩与喷雾干燥生产线", "医药制造",
     ["提取罐", "喷雾干燥塔", "制粒机"], "广东省", "佛山市", 60),
    ("herbal", "本草颗粒企业实践基地", "企业真实生产线跟岗实习", "医药制造", ["生产线"],
     "广东省", "佛山市", 30),
    ("shav", "民机装配实训中心", "机身壁板铆接与数字化测量实训", "航空制造",
     ["自动钻铆机", "激光跟踪仪"], "上海市", "上海市", 80),
    ("cdit", "成都软件与信息技术实训基地", "云计算与大数据综合实训平台", "软件和信息技术服务",
     ["服务器集群", "网络安全靶场"], "四川省", "成都市", 120),
]
HISTORY = [  # enterprise need title, program code, events
    ("中药配方颗粒生产技术员", "520415", ["viewed", "contacted", "visited", "agreement_signed"]),
    ("中药配方颗粒生产技术员", "490201", ["viewed", "contacted"]),
    ("飞机结构装配技术员", "460601", ["contacted", "visited", "agreement_signed",
                                    "students_placed"]),
    ("Java后端开发工程师", "510203", ["contacted", "agreement_signed", "hired"]),
    ("Java后端开发工程师", "510207", ["contacted", "rejected"]),
]


def _org(s: Session, kind: str, name: str, province: str, city: str,
         college_type: str | None = None, alliance: Organization | None = None) -> Organization:
    org = Organization(kind=kind, name=name, province=province, city=city,
                       college_type=college_type)
    s.add(org)
    s.flush()
    if alliance is not None:
        s.add(Membership(alliance_id=alliance.id, member_id=org.id))
    return org


def seed(s: Session) -> dict[str, Organization]:
    """Add the demo organisations and their data (once); returns them by short name."""
    existing = s.scalar(select(Organization).where(
        Organization.name == ALLIANCES["nanhai"][0]))
    if existing is not None:
        names = {**{k: v[0] for k, v in ALLIANCES.items()},
                 **{k: n for k, _, n, *_ in ENTERPRISES}, **{k: n for k, _, n, *_ in COLLEGES}}
        return {k: s.scalar(select(Organization).where(Organization.name == n))
                for k, n in names.items()}
    profiles = load_programs(catalog_dir("cn-vocational") / "programs.csv").set_index(
        "program_id")
    orgs: dict[str, Organization] = {}
    for key, (name, province, city) in ALLIANCES.items():
        orgs[key] = _org(s, "alliance", name, province, city)
    for key, alliance, name, province, city in ENTERPRISES:
        orgs[key] = _org(s, "enterprise", name, province, city, alliance=orgs[alliance])
    programs: dict[str, Program] = {}
    for key, alliance, name, ctype, province, city, codes in COLLEGES:
        orgs[key] = _org(s, "college", name, province, city, ctype, orgs[alliance])
        for i, code in enumerate(codes):
            row = profiles.loc[code]
            programs[code] = Program(org_id=orgs[key].id, code=code, title=row["title"],
                                     description=row["text"], level=row["level"],
                                     province=province, city=city,
                                     graduates_per_year=40 + 15 * i)
            s.add(programs[code])
    needs: dict[str, Need] = {}
    for owner, title, text, skills, headcount, level in NEEDS:
        org = orgs[owner]
        needs[title] = Need(org_id=org.id, title=title, description=text, skills=skills,
                            headcount=headcount, level=level, province=org.province,
                            city=org.city)
        s.add(needs[title])
    for owner, name, text, industry, equipment, province, city, capacity in BASES:
        s.add(TrainingBase(org_id=orgs[owner].id, name=name, description=text,
                           industry=industry, equipment=equipment, province=province,
                           city=city, capacity=capacity))
    s.flush()
    for title, code, events in HISTORY:
        need, program = needs[title], programs[code]
        p = Partnership(need_id=need.id, program_id=program.id, stage=events[-1],
                        grade=grade_of(events))
        s.add(p)
        s.flush()
        for event in events:
            s.add(OutcomeEvent(partnership_id=p.id, event=event, actor_org_id=need.org_id))
    return orgs


def _revoke_earlier(s: Session, org_id: int, role: str) -> None:
    """Revoke the keys an earlier demo run printed for ``org_id`` in ``role``."""
    for old in s.scalars(select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.role == role,
                                              ApiKey.revoked_at.is_(None))):
        old.revoked_at = utcnow()


def demo_keys(s: Session, orgs: dict[str, Organization]) -> list[tuple[str, str, str]]:
    """A fresh key for every demo organisation, in its role (each alliance's coordinator,
    then its enterprises and colleges), and an admin key: (role, organisation name, key).
    The keys an earlier demo run printed are revoked, so that each run leaves one valid key
    per organisation and role (an admin key above all), not one more."""
    roles = [(key, "coordinator") for key in ALLIANCES]
    roles += [(key, "enterprise") for key, *_ in ENTERPRISES]
    roles += [(key, "college") for key, *_ in COLLEGES]
    alliance_of = {key: alliance for key, alliance, *_ in [*ENTERPRISES, *COLLEGES]}
    order = list(ALLIANCES)
    roles.sort(key=lambda kr: order.index(alliance_of.get(kr[0], kr[0])))  # stable
    roles.append(("nanhai", "admin"))
    out = []
    for key, role in roles:
        _revoke_earlier(s, orgs[key].id, role)
        out.append((role, orgs[key].name, create_key(s, orgs[key].id, role)))
    return out

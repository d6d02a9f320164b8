"""A pilot alliance that can serve only some of its needs (tests of the service and the page).

One college in Foshan offers 中药制药, 工业机器人技术 and 软件技术; an enterprise asks for
TCM-granule technicians, elderly-care staff and NEV-battery technicians.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from iei_match.bundled import catalog_dir
from iei_match.io import load_programs
from iei_match_service.auth import create_key
from iei_match_service.db.tables import Membership, Need, Organization, Program

NEEDS = {
    "tcm": dict(title="中药配方颗粒生产技术员",
                description="负责中药配方颗粒的提取、浓缩、干燥、制粒工艺操作，按GMP要求做好生产记录，"
                            "进行中药饮片炮制与质量检验。",
                skills=["中药炮制", "制粒", "GMP", "质量检验"], headcount=12),
    "care": dict(title="养老护理员",
                 description="为入住老人提供生活照料、基础护理、康复训练和心理慰藉，"
                             "协助开展智慧养老服务与健康管理。",
                 skills=["生活照料", "老年护理", "康复训练"], headcount=20),
    "battery": dict(title="新能源汽车动力电池生产技术员",
                    description="在新能源汽车整车厂负责动力电池模组与电池包的生产装配、下线测试，"
                                "电池管理系统调试，整车高压电气装调。",
                    skills=["动力电池", "电池管理系统", "高压电气"], headcount=30),
}
PROGRAMS = {"520415": 40, "460305": 30, "510203": 45}  # 中药制药, 工业机器人技术, 软件技术


def seed_pilot(s: Session) -> tuple[dict, dict]:
    """Add the pilot alliance to the database; returns ``(ids, keys)``: the ids of its needs
    and programs, and a key for the enterprise (``firm``), the college and the
    coordinator."""
    profiles = load_programs(catalog_dir("cn-vocational") / "programs.csv").set_index(
        "program_id")
    alliance = Organization(kind="alliance", name="佛山产教融合试点联盟",
                            province="广东省", city="佛山市")
    college = Organization(kind="college", name="佛山试点职业技术学院", college_type="高职",
                           province="广东省", city="佛山市")
    firm = Organization(kind="enterprise", name="佛山试点企业集团", province="广东省",
                        city="佛山市")
    s.add_all([alliance, college, firm])
    s.flush()
    s.add_all([Membership(alliance_id=alliance.id, member_id=college.id),
               Membership(alliance_id=alliance.id, member_id=firm.id)])
    programs = {}
    for code, graduates in PROGRAMS.items():
        p = Program(org_id=college.id, code=code, title=str(profiles.loc[code, "title"]),
                    description=str(profiles.loc[code, "text"]), level="高职专科",
                    province="广东省", city="佛山市", graduates_per_year=graduates)
        s.add(p)
        programs[code] = p
    needs = {}
    for name, need in NEEDS.items():
        n = Need(org_id=firm.id, level="高职专科", province="广东省", city="佛山市", **need)
        s.add(n)
        needs[name] = n
    s.flush()
    ids = {"needs": {k: v.id for k, v in needs.items()},
           "programs": {k: v.id for k, v in programs.items()}}
    keys = {"firm": create_key(s, firm.id, "enterprise"),
            "college": create_key(s, college.id, "college"),
            "coordinator": create_key(s, alliance.id, "coordinator")}
    return ids, keys

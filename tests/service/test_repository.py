"""The repository suite: schema, constraints, keys, labels and training tables, run once on
SQLite and once on PostgreSQL (``database_url``), plus one HTTP round trip of the real server
on PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError

from iei_match_service.auth import authenticate, create_key, hash_key
from iei_match_service.db.engine import Database, alembic_config, upgrade
from iei_match_service.db.tables import (
    ApiKey,
    Job,
    Membership,
    Need,
    Organization,
    OutcomeEvent,
    Partnership,
    Program,
    TrainingBase,
)
from iei_match_service.errors import Invalid, NotFound, Unauthorized
from iei_match_service.labels import grade_of
from iei_match_service.retrain import training_tables
from iei_match_service.settings import Settings

from .conftest import make_world

TABLES = {"organizations", "memberships", "api_keys", "needs", "programs", "training_bases",
          "partnerships", "outcome_events", "jobs", "rate_counts"}
TABLES_0002 = TABLES - {"rate_counts"}  # rate_counts is made by 0005


@pytest.fixture
def db(database_url):
    d = Database(database_url)
    upgrade(d.engine)
    yield d
    d.dispose()


def _org(s, kind: str, name: str, **kw) -> Organization:
    org = Organization(kind=kind, name=name, **kw)
    s.add(org)
    s.flush()
    return org


def _utc(ts: datetime) -> datetime:
    """SQLite hands back naive UTC timestamps; PostgreSQL aware ones."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@pytest.fixture
def tenants(db):
    """An alliance with an enterprise and a college, each with one object; ids by name."""
    with db.session() as s:
        alliance = _org(s, "alliance", "粤港澳产教联盟", province="广东省", city="广州市")
        ent = _org(s, "enterprise", "岭南中药制药有限公司", province="广东省", city="佛山市")
        col = _org(s, "college", "佛山职业技术学院", college_type="高职", province="广东省",
                   city="佛山市")
        s.add_all([Membership(alliance_id=alliance.id, member_id=ent.id),
                   Membership(alliance_id=alliance.id, member_id=col.id)])
        need = Need(org_id=ent.id, title="中药制剂工", description="负责提取浓缩",
                    skills=["提取", "浓缩"])
        program = Program(org_id=col.id, code="490208", title="中药制药",
                          description="中药提取与制剂")
        s.add_all([need, program])
        s.flush()
        return {"alliance": alliance.id, "enterprise": ent.id, "college": col.id,
                "need": need.id, "program": program.id}


# --------------------------------------------------------------------------- schema


def test_migration_to_head_on_an_empty_database_and_again(database_url):
    d = Database(database_url)
    try:
        assert set(sa.inspect(d.engine).get_table_names()) == set()
        upgrade(d.engine)
        assert TABLES | {"alembic_version"} == set(sa.inspect(d.engine).get_table_names())
        head = ScriptDirectory.from_config(alembic_config(d.engine)).get_current_head()
        with d.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")) \
                .scalars().all() == [head]
        with d.session() as s:
            _org(s, "alliance", "联盟一")
        upgrade(d.engine)  # idempotent: no error, same version, data kept
        with d.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")) \
                .scalars().all() == [head]
        with d.session() as s:
            assert [o.name for o in s.scalars(sa.select(Organization))] == ["联盟一"]
        # the migrated schema is the one the tables declare: every column is there
        insp = sa.inspect(d.engine)
        for table in Organization.metadata.sorted_tables:
            assert {c["name"] for c in insp.get_columns(table.name)} == \
                {c.name for c in table.columns}, table.name
    finally:
        d.dispose()


def test_ids_are_never_reused_after_a_delete(db):
    """Outcomes, exports and job results refer to ids: a deleted row's id stays retired,
    on SQLite as on PostgreSQL, in every table."""
    with db.session() as s:
        ent = _org(s, "enterprise", "本草制药")
        col = _org(s, "college", "南海职院")
    models = [(Organization, dict(kind="enterprise", name="临时企业")),
              (Need, dict(org_id=ent.id, title="临时岗位")),
              (Program, dict(org_id=col.id, title="临时专业")),
              (TrainingBase, dict(org_id=col.id, name="临时基地"))]
    for model, values in models:
        with db.session() as s:
            first = model(**values)
            s.add(first)
            s.flush()
            gone = first.id
        with db.session() as s:  # the newest row is deleted: its id is the largest in use
            s.delete(s.get(model, gone))
        with db.session() as s:
            again = model(**values)
            s.add(again)
            s.flush()
            assert again.id > gone, model.__tablename__


def test_migrating_an_existing_sqlite_database_keeps_rows_and_retires_ids(tmp_path):
    from alembic import command

    from iei_match_service.demo import seed

    d = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        command.upgrade(alembic_config(d.engine), "0002")  # a database made before 0003
        with d.session() as s:
            seed(s)
        counts = {}
        with d.engine.connect() as conn:
            for t in TABLES_0002:
                counts[t] = conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
            newest = conn.exec_driver_sql("SELECT max(id) FROM needs").scalar()
            conn.exec_driver_sql(f"DELETE FROM outcome_events WHERE partnership_id IN "
                                 f"(SELECT id FROM partnerships WHERE need_id = {newest})")
            conn.exec_driver_sql(f"DELETE FROM partnerships WHERE need_id = {newest}")
            conn.exec_driver_sql(f"DELETE FROM needs WHERE id = {newest}")
            conn.commit()
        counts["needs"] -= 1
        upgrade(d.engine)
        with d.engine.connect() as conn:
            # no row lost (dropping the old tables cascaded nothing), foreign keys back on
            assert {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                    for t in TABLES_0002} == counts
            assert counts["partnerships"] and counts["outcome_events"]
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        with d.session() as s:
            need = Need(org_id=s.scalars(sa.select(Need.org_id)).first(), title="新岗位")
            s.add(need)
            s.flush()
            assert need.id > newest - 1
            s.delete(need)
        with d.session() as s:
            again = Need(org_id=s.scalars(sa.select(Need.org_id)).first(), title="新岗位")
            s.add(again)
            s.flush()
            assert again.id > need.id
    finally:
        d.dispose()


def test_sqlite_pragmas(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        upgrade(d.engine)
        for _ in range(2):  # every pooled connection, not just the first
            with d.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        d.dispose()


# --------------------------------------------------------------------------- CRUD


def test_crud_round_trip_of_every_table_with_chinese_text(db):
    t0 = datetime.now(UTC) - timedelta(seconds=5)
    with db.session() as s:
        alliance = _org(s, "alliance", "成渝地区双城经济圈产教联盟", province="四川省",
                        city="成都市")
        ent = _org(s, "enterprise", "天府云数科技有限公司", province="四川省", city="成都市")
        col = _org(s, "college", "成都信息职业技术学院", college_type="职教本科",
                   province="四川省", city="成都市")
        s.add(Membership(alliance_id=alliance.id, member_id=ent.id))
        need = Need(org_id=ent.id, title="Java后端开发工程师",
                    description="参与政务云平台后端开发，编写接口文档。",
                    skills=["Java", "Spring Boot", "数据库"], certificates=["软件设计师"],
                    industry="软件和信息技术服务", code="4-04-05-01", headcount=15,
                    level="高职专科", province="四川省", city="成都市")
        program = Program(org_id=col.id, code="510203", title="软件技术",
                          description="面向软件开发岗位群", certificates=["计算机等级证书"],
                          level="高职专科", province="四川省", city="成都市",
                          graduates_per_year=120)
        base = TrainingBase(org_id=col.id, name="成都软件实训基地", description="云计算实训",
                            industry="软件", equipment=["服务器集群", "网络安全靶场"],
                            province="四川省", city="成都市", capacity=120)
        s.add_all([need, program, base])
        s.flush()
        p = Partnership(need_id=need.id, program_id=program.id, stage="contacted", grade=1)
        s.add(p)
        s.flush()
        s.add(OutcomeEvent(partnership_id=p.id, event="contacted", actor_org_id=ent.id,
                           note="双方已电话沟通，约定下周参观。"))
        job = Job(kind="retrain", org_id=alliance.id, params={"说明": "重新训练"},
                  result={"版本": "v1", "labels": [1, 2]})
        s.add(job)
        s.flush()
        ids = {"alliance": alliance.id, "ent": ent.id, "col": col.id, "need": need.id,
               "program": program.id, "base": base.id, "p": p.id, "job": job.id}
    key = None
    with db.session() as s:
        key = create_key(s, ids["ent"], "enterprise")

    with db.session() as s:  # read back in a fresh session
        assert s.get(Organization, ids["alliance"]).name == "成渝地区双城经济圈产教联盟"
        college = s.get(Organization, ids["col"])
        assert (college.kind, college.college_type, college.city) == ("college", "职教本科",
                                                                      "成都市")
        assert s.scalar(sa.select(Membership.member_id)
                        .where(Membership.alliance_id == ids["alliance"])) == ids["ent"]
        need = s.get(Need, ids["need"])
        assert (need.title, need.description, need.skills, need.certificates, need.industry,
                need.code, need.headcount, need.level, need.province, need.city) == (
            "Java后端开发工程师", "参与政务云平台后端开发，编写接口文档。",
            ["Java", "Spring Boot", "数据库"], ["软件设计师"], "软件和信息技术服务",
            "4-04-05-01", 15, "高职专科", "四川省", "成都市")
        program = s.get(Program, ids["program"])
        assert (program.code, program.title, program.certificates,
                program.graduates_per_year) == ("510203", "软件技术", ["计算机等级证书"], 120)
        base = s.get(TrainingBase, ids["base"])
        assert (base.name, base.equipment, base.capacity) == ("成都软件实训基地",
                                                              ["服务器集群", "网络安全靶场"], 120)
        p = s.get(Partnership, ids["p"])
        assert (p.need_id, p.program_id, p.stage, p.grade) == (ids["need"], ids["program"],
                                                               "contacted", 1)
        assert [(e.event, e.note) for e in p.events] == [("contacted",
                                                          "双方已电话沟通，约定下周参观。")]
        job = s.get(Job, ids["job"])
        assert (job.state, job.progress, job.params, job.result) == (
            "queued", 0.0, {"说明": "重新训练"}, {"版本": "v1", "labels": [1, 2]})
        row = s.scalar(sa.select(ApiKey).where(ApiKey.org_id == ids["ent"]))
        assert row.key_hash == hash_key(key) and row.role == "enterprise"
        # timestamps are set, and are now
        now = datetime.now(UTC) + timedelta(seconds=5)
        for obj in (college, need, program, base, p, job, row, p.events[0]):
            assert t0 <= _utc(obj.created_at) <= now, type(obj).__name__
        for obj in (need, program, base, p, job):
            assert t0 <= _utc(obj.updated_at) <= now, type(obj).__name__
        created, updated = _utc(need.created_at), _utc(need.updated_at)

    time.sleep(0.01)
    with db.session() as s:  # update
        need = s.get(Need, ids["need"])
        need.title, need.skills = "Java 开发（更新）", ["Java", "微服务"]
        s.get(TrainingBase, ids["base"]).equipment = []
    with db.session() as s:
        need = s.get(Need, ids["need"])
        assert (need.title, need.skills) == ("Java 开发（更新）", ["Java", "微服务"])
        assert _utc(need.created_at) == created and _utc(need.updated_at) > updated
        assert s.get(TrainingBase, ids["base"]).equipment == []

    with db.session() as s:  # delete (a partnership's events first: the ORM relationship
        # does not cascade, it would try to orphan them)
        for event in s.get(Partnership, ids["p"]).events:
            s.delete(event)
        s.flush()
        for model, name in ((Partnership, "p"), (Need, "need"), (Program, "program"),
                            (TrainingBase, "base"), (Job, "job")):
            s.delete(s.get(model, ids[name]))
    with db.session() as s:
        for model, name in ((Partnership, "p"), (Need, "need"), (Program, "program"),
                            (TrainingBase, "base"), (Job, "job")):
            assert s.get(model, ids[name]) is None
        assert s.scalar(sa.select(sa.func.count()).select_from(OutcomeEvent)) == 0


def test_json_list_columns_round_trip(db, tenants):
    skills = ["中药鉴定", "GMP", 'quote "and" comma,', "emoji 🌿", "  空格  ", ""]
    with db.session() as s:
        need = Need(org_id=tenants["enterprise"], title="列表测试", skills=skills,
                    certificates=[])
        base = TrainingBase(org_id=tenants["college"], name="设备测试",
                            equipment=["喷雾干燥塔", "制粒机"])
        s.add_all([need, base])
        s.flush()
        need_id, base_id = need.id, base.id
    with db.session() as s:
        need = s.get(Need, need_id)
        assert need.skills == skills and need.certificates == []
        assert s.get(TrainingBase, base_id).equipment == ["喷雾干燥塔", "制粒机"]
        # lists a row was created without get their default: empty, not NULL
        bare = Program(org_id=tenants["college"], title="无证书专业")
        s.add(bare)
        s.flush()
        s.expire(bare)
        assert bare.certificates == []


# --------------------------------------------------------------------------- constraints


def test_foreign_keys_are_enforced(db, tenants):
    missing = 987_654
    for obj in (Need(org_id=missing, title="孤儿岗位"), Program(org_id=missing, title="孤儿专业"),
                TrainingBase(org_id=missing, name="孤儿基地"),
                Membership(alliance_id=tenants["alliance"], member_id=missing),
                Partnership(need_id=tenants["need"], program_id=missing, stage="viewed")):
        with pytest.raises(IntegrityError):
            with db.session() as s:
                s.add(obj)
                s.flush()
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Need)) == 1


def _count(s, model, *where) -> int:
    return s.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_deleting_an_organisation_cascades(db, tenants):
    with db.session() as s:
        create_key(s, tenants["enterprise"], "enterprise")
        create_key(s, tenants["college"], "college")
        s.add(TrainingBase(org_id=tenants["enterprise"], name="企业实践基地"))
        s.add(Partnership(need_id=tenants["need"], program_id=tenants["program"],
                          stage="viewed"))
        s.add(Job(kind="retrain", org_id=tenants["enterprise"]))
    with db.session() as s:
        s.delete(s.get(Organization, tenants["enterprise"]))
    with db.session() as s:
        ent = tenants["enterprise"]
        assert _count(s, Need, Need.org_id == ent) == 0
        assert _count(s, ApiKey, ApiKey.org_id == ent) == 0
        assert _count(s, TrainingBase, TrainingBase.org_id == ent) == 0
        assert _count(s, Job, Job.org_id == ent) == 0
        assert _count(s, Membership, Membership.member_id == ent) == 0
        assert _count(s, Partnership) == 0
        # the other tenant is untouched
        assert _count(s, Program, Program.org_id == tenants["college"]) == 1
        assert _count(s, ApiKey, ApiKey.org_id == tenants["college"]) == 1
        assert _count(s, Membership, Membership.member_id == tenants["college"]) == 1
    with db.session() as s:  # and a college takes its programs with it
        s.delete(s.get(Organization, tenants["college"]))
    with db.session() as s:
        assert _count(s, Program) == 0 and _count(s, ApiKey) == 0
        assert _count(s, Membership) == 0 and _count(s, Organization) == 1


def test_deleting_an_organisation_with_outcome_history(db, tenants, request):
    """An enterprise that recorded outcomes of its own needs: the needs, partnerships and
    events go with it, on both databases alike."""
    with db.session() as s:
        p = Partnership(need_id=tenants["need"], program_id=tenants["program"],
                        stage="contacted", grade=1)
        s.add(p)
        s.flush()
        s.add(OutcomeEvent(partnership_id=p.id, event="contacted",
                           actor_org_id=tenants["enterprise"]))
    with db.session() as s:
        s.delete(s.get(Organization, tenants["enterprise"]))
    with db.session() as s:
        assert _count(s, Need) == 0 and _count(s, Partnership) == 0
        assert _count(s, OutcomeEvent) == 0


def test_unique_constraints(db, tenants):
    with db.session() as s:
        s.add(Partnership(need_id=tenants["need"], program_id=tenants["program"],
                          stage="viewed"))
        create_key(s, tenants["enterprise"], "enterprise")
    with db.session() as s:
        prefix = s.scalar(sa.select(ApiKey.prefix))
    duplicates = [
        Membership(alliance_id=tenants["alliance"], member_id=tenants["enterprise"]),
        Partnership(need_id=tenants["need"], program_id=tenants["program"], stage="hired"),
        ApiKey(prefix=prefix, key_hash="0" * 64, role="college", org_id=tenants["college"]),
    ]
    for obj in duplicates:
        with pytest.raises(IntegrityError):
            with db.session() as s:
                s.add(obj)
                s.flush()
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Membership)) == 2
        assert s.scalar(sa.select(sa.func.count()).select_from(Partnership)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 1


# --------------------------------------------------------------------------- keys


def test_keys_are_stored_hashed_and_checked(db, tenants):
    with db.session() as s:
        key = create_key(s, tenants["enterprise"], "enterprise")
        admin_key = create_key(s, tenants["college"], "admin")  # admin: any organisation
        coord_key = create_key(s, tenants["alliance"], "coordinator")
    assert key.startswith("iem_") and len(key) > 40
    with db.session() as s:
        row = s.scalar(sa.select(ApiKey).where(ApiKey.prefix == key.split("_")[1]))
        stored = [getattr(row, c.name) for c in ApiKey.__table__.columns]
        assert key not in [str(v) for v in stored]
        assert not any(key.split("_", 2)[2] in str(v) for v in stored), "the secret is stored"
        assert row.key_hash == hash_key(key) and len(row.key_hash) == 64
        who = authenticate(s, f"Bearer {key}")
        assert (who.role, who.org_id, who.key_id) == ("enterprise", tenants["enterprise"],
                                                      row.id)
        assert authenticate(s, f"bearer   {key}  ").key_id == row.id
        assert authenticate(s, f"Bearer {admin_key}").is_admin
        assert authenticate(s, f"Bearer {coord_key}").org_id == tenants["alliance"]
        for header in (None, "", key, f"Basic {key}", "Bearer", f"Bearer {key}x",
                       f"Bearer {key[:-1]}{'A' if key[-1] != 'A' else 'B'}",
                       f"Bearer iem_{'0' * 12}_{key.split('_', 2)[2]}",
                       f"Bearer {key.replace('iem_', 'xyz_', 1)}"):
            with pytest.raises(Unauthorized):
                authenticate(s, header)
        row.revoked_at = datetime.now(UTC)
    with db.session() as s:
        with pytest.raises(Unauthorized):
            authenticate(s, f"Bearer {key}")
        assert authenticate(s, f"Bearer {admin_key}").role == "admin"


def test_key_role_must_fit_the_organisation(db, tenants):
    wrong = [("enterprise", "college"), ("enterprise", "alliance"), ("college", "enterprise"),
             ("coordinator", "enterprise"), ("coordinator", "college"),
             ("college", "alliance")]
    for role, org in wrong:
        with pytest.raises(Invalid):
            with db.session() as s:
                create_key(s, tenants[org], role)
    with pytest.raises(Invalid):
        with db.session() as s:
            create_key(s, tenants["enterprise"], "superuser")
    with pytest.raises(NotFound):
        with db.session() as s:
            create_key(s, 987_654, "admin")
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("events,grade", [
    ([], None),
    (["viewed"], None),
    (["viewed", "contacted"], 1),
    (["viewed", "visited"], 1),
    (["contacted", "visited", "agreement_signed"], 2),
    (["agreement_signed", "students_placed"], 3),
    (["contacted", "hired"], 3),
    (["agreement_signed", "contacted"], 2),  # the strongest stage, not the latest
    (["contacted", "rejected"], 0),
    (["rejected"], 0),
    (["hired", "rejected", "viewed"], 0),
    (["hired", "rejected", "contacted"], 1),  # a new start after a rejection
])
def test_grade_of(events, grade):
    assert grade_of(events) == grade


# --------------------------------------------------------------------------- training data


def test_training_tables_add_database_rows_and_labels(db, tenants, tmp_path):
    cat = tmp_path / "catalog"
    cat.mkdir()
    (cat / "needs.csv").write_text(
        "need_id,title,text\nN1,焊工,从事焊接作业\nN2,数控车工,操作数控车床\n", encoding="utf-8")
    (cat / "programs.csv").write_text(
        "program_id,title,text\n460104,焊接技术与自动化,焊接工艺\n460103,数控技术,数控加工\n",
        encoding="utf-8")
    (cat / "links.csv").write_text("need_id,program_id,grade\nN1,460104,3\nN2,460103,2\n",
                                   encoding="utf-8")
    with db.session() as s:
        need2 = Need(org_id=tenants["enterprise"], title="质量检验员", skills=["薄层色谱"])
        program2 = Program(org_id=tenants["college"], code="490206", title="药品质量与安全")
        s.add_all([need2, program2])
        s.flush()
        pairs = [(tenants["need"], tenants["program"], 2),  # labelled
                 (need2.id, program2.id, 0),               # rejected: a 0 label
                 (need2.id, tenants["program"], None)]     # only viewed: no label
        for need_id, program_id, grade in pairs:
            s.add(Partnership(need_id=need_id, program_id=program_id, stage="x", grade=grade))
        ids = (tenants["need"], need2.id, tenants["program"], program2.id)
    settings = Settings(data_dir=tmp_path / "data", database_url=db.url, catalog_dir=cat)
    needs, programs, links = training_tables(settings, db)

    n1, n2, p1, p2 = ids
    assert list(needs["need_id"]) == ["N1", "N2", f"db-need-{n1}", f"db-need-{n2}"]
    assert list(programs["program_id"]) == ["460104", "460103", f"db-program-{p1}",
                                            f"db-program-{p2}"]
    db_need = needs.set_index("need_id").loc[f"db-need-{n1}"]
    assert (db_need["title"], db_need["text"], db_need["skills"]) == ("中药制剂工",
                                                                     "负责提取浓缩", "提取 浓缩")
    db_program = programs.set_index("program_id").loc[f"db-program-{p1}"]
    assert (db_program["title"], db_program["code"]) == ("中药制药", "490208")
    # catalog ids double as codes; nothing is NaN
    assert programs.set_index("program_id").loc["460104", "code"] == "460104"
    for frame in (needs, programs):
        for col in ("title", "text", "code", "level"):
            assert not frame[col].isna().any() and "nan" not in set(frame[col]), col
    got = sorted(zip(links["need_id"], links["program_id"], links["grade"].astype(int),
                     strict=True))
    assert got == sorted([("N1", "460104", 3), ("N2", "460103", 2),
                          (f"db-need-{n1}", f"db-program-{p1}", 2),
                          (f"db-need-{n2}", f"db-program-{p2}", 0)])


# --------------------------------------------------------------------------- the server


def test_server_on_postgresql_create_need_and_recommend(tmp_path, model_root, pg_factory):
    world = make_world(tmp_path, model_root, database_url=pg_factory())
    try:
        assert world.db.engine.dialect.name == "postgresql"
        with world.client("herbal") as c:
            r = c.post("/api/v1/needs", json={
                "title": "中药提取工艺员", "description": "负责中药材提取、浓缩和喷雾干燥工序",
                "skills": ["提取", "浓缩", "喷雾干燥"], "headcount": 3, "level": "高职专科",
                "province": "广东省", "city": "佛山市"})
            assert r.status_code == 201, r.text
            need = r.json()
            assert need["org_id"] == world.orgs["herbal"] and need["skills"][0] == "提取"
            again = c.get(f"/api/v1/needs/{need['id']}").json()
            stamps = ("created_at", "updated_at")
            assert {k: v for k, v in again.items() if k not in stamps} == \
                {k: v for k, v in need.items() if k not in stamps}
            for k in stamps:
                assert datetime.fromisoformat(again[k]) == datetime.fromisoformat(need[k])
            r = c.get(f"/api/v1/needs/{need['id']}/recommendations", params={"k": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model_version"] and 1 <= len(body["items"]) <= 5
            for rank, item in enumerate(body["items"], 1):
                assert item["rank"] == rank and item["id"] == item["program"]["id"]
                assert isinstance(item["score"], float) and item["college"]["name"]
                assert set(item["explanation"]) >= {"matched_terms", "missing_skills",
                                                    "factors"}
            scores = [i["score"] for i in body["items"]]
            assert scores == sorted(scores, reverse=True)
            # an id beyond PostgreSQL's INTEGER is the client's mistake, not a database outage
            r = c.get(f"/api/v1/needs/{2**31}")
            assert r.status_code in (404, 422), r.text
        with world.client("soft") as c:
            assert c.get(f"/api/v1/needs/{need['id']}").status_code == 404
    finally:
        world.server.stop()
        world.db.dispose()

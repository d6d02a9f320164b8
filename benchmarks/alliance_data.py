"""A realistic alliance for the service benchmarks: colleges offering the bundled catalog's
majors across provinces and cities, enterprises posting the bundled needs, and a model.

Used by ``recommend_latency.py`` and ``load_test.py`` (not a benchmark itself).

- Programs: each college (中职, 高职 or 职教本科, in one of 30 cities) offers 10-40 majors of
  the bundled catalog at its own level (a 高职 offers 高职专科 majors, ...). An offering keeps
  the catalog major's code and title; its description is the catalog profile with a line
  about the college; graduates a year vary (20-400). Colleges are added until the wanted
  number of programs is reached, so 10,000 programs are ~400 colleges, each major offered
  by ~8 of them.
- Needs: the bundled catalog's needs (occupations), posted by enterprises in the same
  cities, with a level (高职专科 55%, 中职 15%, 职教本科 10%, none 20%), a headcount and
  a few skills taken from the text.
- Training bases: one or two per college, in its city.
- Every organisation is a member of its province's alliance; every enterprise has a key.

The database is filled with bulk inserts (a few seconds for 100,000 programs); the schema
is the service's own (Alembic migrations).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from iei_match.bundled import catalog_dir
from iei_match.io import load_links, load_needs, load_programs

PLACES = [
    ("广东省", "广州市"), ("广东省", "深圳市"), ("广东省", "佛山市"), ("广东省", "东莞市"),
    ("江苏省", "南京市"), ("江苏省", "苏州市"), ("江苏省", "无锡市"), ("浙江省", "杭州市"),
    ("浙江省", "宁波市"), ("山东省", "济南市"), ("山东省", "青岛市"), ("河南省", "郑州市"),
    ("湖北省", "武汉市"), ("湖南省", "长沙市"), ("四川省", "成都市"), ("四川省", "绵阳市"),
    ("重庆市", "重庆市"), ("上海市", "上海市"), ("北京市", "北京市"), ("天津市", "天津市"),
    ("河北省", "石家庄市"), ("陕西省", "西安市"), ("辽宁省", "沈阳市"), ("辽宁省", "大连市"),
    ("福建省", "福州市"), ("福建省", "厦门市"), ("安徽省", "合肥市"), ("江西省", "南昌市"),
    ("云南省", "昆明市"), ("广西壮族自治区", "南宁市"),
]
# college type -> the catalog level it offers, and how often such colleges occur
COLLEGE_TYPES = {"高职": ("高职专科", 0.6), "中职": ("中职", 0.25), "职教本科": ("职教本科", 0.15)}
NEED_LEVELS = (("高职专科", 0.55), ("中职", 0.15), ("职教本科", 0.10), ("", 0.20))
SMALL_MODEL = {"n_estimators": 40, "n_folds": 3, "early_stopping_rounds": 10, "min_rounds": 10,
               "random_state": 0}


def uptime_load() -> float:
    """The 1-minute load average (what each figure is reported with)."""
    return os.getloadavg()[0]


def machine() -> str:
    """One line about the machine the figures were taken on."""
    import platform

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def catalog_tables(catalog: str = "cn-vocational"):
    d = catalog_dir(catalog)
    return (load_needs(d / "needs.csv"), load_programs(d / "programs.csv"),
            load_links(d / "links.csv"))


def _skills(text: str, rng: np.random.Generator, n: int) -> list[str]:
    parts = [p.strip() for p in re.split(r"[，。、；：,.;:\s\d（）()]+", text or "")]
    parts = sorted({p for p in parts if 2 <= len(p) <= 8})
    if not parts:
        return []
    return [str(p) for p in rng.choice(parts, size=min(n, len(parts)), replace=False)]


@dataclass
class Alliance:
    """The rows to insert (engine-independent dicts) and what the load needs to know."""

    colleges: list[dict]
    enterprises: list[dict]
    programs: pd.DataFrame  # college (index into colleges), code, title, description, ...
    needs: pd.DataFrame     # enterprise (index into enterprises), title, description, ...
    bases: list[dict]
    # filled by seed_database
    need_ids: list[int] = field(default_factory=list)
    need_keys: list[str] = field(default_factory=list)  # the owner's key of each need
    admin_key: str = ""


def make_alliance(n_programs: int, catalog: str = "cn-vocational", seed: int = 0,
                  n_needs: int | None = None) -> Alliance:
    """Colleges offering catalog majors until there are ``n_programs`` programs."""
    rng = np.random.default_rng(seed)
    cat_needs, cat_programs, _ = catalog_tables(catalog)
    if "level" not in cat_programs or not cat_programs["level"].astype(bool).any():
        cat_programs = cat_programs.assign(level="")
    by_level = {lvl: cat_programs[cat_programs["level"] == lvl]
                for lvl in cat_programs["level"].unique()}
    types = list(COLLEGE_TYPES)
    probs = np.array([COLLEGE_TYPES[t][1] for t in types])
    colleges: list[dict] = []
    rows: list[pd.DataFrame] = []
    total = 0
    while total < n_programs:
        ctype = str(rng.choice(types, p=probs / probs.sum()))
        level = COLLEGE_TYPES[ctype][0]
        pool = by_level.get(level)
        if pool is None or pool.empty:
            pool, level = cat_programs, ""
        province, city = PLACES[int(rng.integers(len(PLACES)))]
        n = int(min(rng.integers(10, 41), len(pool), n_programs - total))
        i = len(colleges)
        kind = "职业技术学院" if ctype != "中职" else "职业学校"
        name = f"{city.removesuffix('市')}第{i + 1}{kind}（基准）"
        colleges.append({"kind": "college", "name": name, "college_type": ctype,
                         "province": province, "city": city})
        chosen = pool.iloc[rng.choice(len(pool), size=n, replace=False)]
        grads = rng.integers(20, 401, size=n)
        rows.append(pd.DataFrame({
            "college": i, "code": chosen["program_id"].astype(str).to_numpy(),
            "title": chosen["title"].to_numpy(),
            "description": [f"{t} {name}开设，{city}办学，每年毕业{g}人。"
                            for t, g in zip(chosen["text"], grads, strict=True)],
            "level": level, "province": province, "city": city,
            "graduates_per_year": grads}))
        total += n
    programs = pd.concat(rows, ignore_index=True)

    needs = cat_needs if n_needs is None else cat_needs.iloc[:n_needs]
    n_ent = max(1, len(needs) // 8)
    enterprises = []
    for j in range(n_ent):
        province, city = PLACES[int(rng.integers(len(PLACES)))]
        enterprises.append({"kind": "enterprise", "province": province, "city": city,
                            "name": f"{city}第{j + 1}制造服务有限公司（基准）"})
    owner = rng.integers(n_ent, size=len(needs))
    levels, lp = zip(*NEED_LEVELS, strict=True)
    need_rows = pd.DataFrame({
        "enterprise": owner, "title": needs["title"].to_numpy(),
        "description": needs["text"].to_numpy(),
        "code": needs["need_id"].astype(str).to_numpy(),
        "level": rng.choice(levels, size=len(needs), p=lp),
        "headcount": rng.integers(1, 51, size=len(needs)),
        "province": [enterprises[o]["province"] for o in owner],
        "city": [enterprises[o]["city"] for o in owner],
        "skills": [_skills(t, rng, int(rng.integers(2, 5))) for t in needs["text"]]})
    bases = []
    for i, c in enumerate(colleges):
        for b in range(int(rng.integers(1, 3))):
            bases.append({"college": i, "name": f"{c['name']}实训基地{b + 1}",
                          "description": "校内生产性实训基地", "industry": "",
                          "province": c["province"], "city": c["city"],
                          "capacity": int(rng.integers(20, 200))})
    return Alliance(colleges, enterprises, programs, need_rows, bases)


def seed_database(url: str, alliance: Alliance) -> Alliance:
    """Create the schema and insert the alliance (bulk inserts); fills ids and keys."""
    from iei_match_service.auth import create_key
    from iei_match_service.db.engine import Database, upgrade
    from iei_match_service.db.tables import (
        Membership,
        Need,
        Organization,
        Program,
        TrainingBase,
    )

    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        provinces = sorted({p for p, _ in PLACES})
        alliance_ids = {}
        for p in provinces:
            org = Organization(kind="alliance", name=f"{p}产教融合联盟（基准）", province=p)
            s.add(org)
            s.flush()
            alliance_ids[p] = org.id

        def add_orgs(orgs: list[dict]) -> list[int]:
            ids = list(s.scalars(insert(Organization).returning(Organization.id), orgs))
            s.execute(insert(Membership), [{"alliance_id": alliance_ids[o["province"]],
                                            "member_id": i} for o, i in zip(orgs, ids,
                                                                             strict=True)])
            return ids

        college_ids = add_orgs(alliance.colleges)
        enterprise_ids = add_orgs(alliance.enterprises)
        progs = alliance.programs
        records = progs.drop(columns="college").assign(
            org_id=np.asarray(college_ids)[progs["college"].to_numpy()],
            certificates=[[] for _ in range(len(progs))]).to_dict("records")
        for r in records:
            r["graduates_per_year"] = int(r["graduates_per_year"])
            r["org_id"] = int(r["org_id"])
        for start in range(0, len(records), 20_000):
            s.execute(insert(Program), records[start:start + 20_000])
        s.execute(insert(TrainingBase), [
            {**{k: v for k, v in b.items() if k != "college"},
             "org_id": college_ids[b["college"]], "equipment": []} for b in alliance.bases])
        need_recs = alliance.needs.drop(columns="enterprise").assign(
            org_id=np.asarray(enterprise_ids)[alliance.needs["enterprise"].to_numpy()],
            certificates=[[] for _ in range(len(alliance.needs))]).to_dict("records")
        for r in need_recs:
            r["headcount"], r["org_id"] = int(r["headcount"]), int(r["org_id"])
        need_ids = list(s.scalars(insert(Need).returning(Need.id), need_recs))
        keys = {eid: create_key(s, eid, "enterprise") for eid in enterprise_ids}
        admin = Organization(kind="alliance", name="基准管理员（基准）")
        s.add(admin)
        s.flush()
        alliance.admin_key = create_key(s, admin.id, "admin")
        alliance.need_ids = need_ids
        alliance.need_keys = [keys[int(r["org_id"])] for r in need_recs]
        assert s.scalar(select(Program.id).limit(1)) is not None
    db.dispose()
    return alliance


def engine_programs(alliance: Alliance) -> pd.DataFrame:
    """The alliance's programs as the engine's frame (the service's ``programs_frame``)."""
    p = alliance.programs
    return pd.DataFrame({"program_id": [f"db-program-{i + 1}" for i in range(len(p))],
                         "title": p["title"], "text": p["description"], "certificates": "",
                         "code": p["code"], "level": p["level"], "province": p["province"],
                         "city": p["city"], "graduates_per_year": p["graduates_per_year"]})


def train_model(models_dir: Path, catalog: str = "cn-vocational", quick: bool = False) -> float:
    """Publish a model trained on the bundled catalog (as the service's first start does),
    unless ``models_dir`` has one already. Returns the seconds spent training (0: reused)."""
    import warnings

    from iei_match.artifacts import publish_model
    from iei_match.matcher import Matcher

    if (models_dir / "CURRENT").exists():
        return 0.0
    needs, programs, links = catalog_tables(catalog)
    for frame, id_col in ((needs, "need_id"), (programs, "program_id")):
        frame["code"] = frame[id_col].astype(str)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matcher = Matcher(**(SMALL_MODEL if quick else {"random_state": 0})).fit(
            needs, programs, links)
    seconds = time.perf_counter() - t0
    publish_model(matcher, models_dir, metrics={"purpose": "benchmark"})
    return seconds


@dataclass
class EngineAlliance:
    """The benchmarks' model and an alliance's programs prepared for it: what the engine
    benchmarks (``engine_stages.py``, ``engine_threads.py``) call ``Matcher.rank`` on."""

    matcher: object
    catalog: object  # the prepared programs (iei_match.catalog.Catalog)
    level: np.ndarray  # each program's level, in catalog order
    rows: list  # the alliance's needs (namedtuples)

    @classmethod
    def of(cls, work: Path, size: int, seed: int = 0, quick: bool = False) -> EngineAlliance:
        """The model kept in ``work/models`` (trained there first when missing) and an
        alliance of ``size`` programs prepared for it."""
        from iei_match.artifacts import load_model

        models = work / "models"
        train_model(models, quick=quick)
        matcher = load_model(models / (models / "CURRENT").read_text().strip())
        alliance = make_alliance(size, seed=seed)
        frame = engine_programs(alliance)
        return cls(matcher, matcher.prepare(frame, "program"), frame["level"].to_numpy(),
                   list(alliance.needs.itertuples(index=False)))

    @staticmethod
    def arguments(doc: str) -> argparse.ArgumentParser:
        """The engine benchmarks' options: ``--work``, ``--size``, ``--seed`` and
        ``--quick-model`` (each script adds its own); :meth:`from_args` reads them."""
        p = argparse.ArgumentParser(description=doc.splitlines()[0])
        p.add_argument("--work", type=Path, required=True,
                       help="working directory (the model is kept there and reused)")
        p.add_argument("--size", type=int, default=10_000, help="programs in the alliance")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--quick-model", action="store_true",
                       help="a small model (40 trees; for smoke tests, not for figures)")
        return p

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EngineAlliance:
        """:meth:`of` with the options of :meth:`arguments`."""
        return cls.of(args.work, args.size, args.seed, args.quick_model)

    def restricted(self, row):
        """The catalog as the service searches it for the need ``row``: its level only."""
        allowed = self.level == row.level if row.level else np.ones(len(self.level), bool)
        return self.catalog.restrict(allowed)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM a server still running and wait for it (killed after 60 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


class Service:
    """``iei-match serve`` as a subprocess on 127.0.0.1 (stopped with SIGTERM)."""

    def __init__(self, data_dir: Path, port: int, env: dict | None = None,
                 log: Path | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "IEI_MATCH_DATA_DIR": str(data_dir),
                    "IEI_MATCH_DATABASE_URL": f"sqlite:///{data_dir / 'iei-match.db'}",
                    "IEI_MATCH_MODELS_DIR": str(data_dir / "models"),
                    "IEI_MATCH_HOST": "127.0.0.1", "IEI_MATCH_PORT": str(port),
                    **(env or {})}
        self.log = log or data_dir / "serve.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> Service:
        import httpx

        exe = shutil.which("iei-match") or str(Path(sys.executable).parent / "iei-match")
        self._log = open(self.log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([exe, "serve"], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"iei-match serve exited with {self.proc.returncode}; "
                                   f"see {self.log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the service did not become ready in {timeout} s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self._log.close()
        self.proc = None

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values, qs=(50, 90, 95, 99)) -> dict[str, float]:
    """Percentiles (and the max) of ``values`` in milliseconds (values in seconds)."""
    a = np.asarray(values, dtype=float) * 1000
    if len(a) == 0:
        return {**{f"p{q}": float("nan") for q in qs}, "max": float("nan")}
    return {**{f"p{q}": float(np.percentile(a, q)) for q in qs}, "max": float(a.max())}

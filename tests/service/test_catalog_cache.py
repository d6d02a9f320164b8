"""The prepared catalogs are reused between requests and never stale: a program or need
created, changed or deleted (through the API, or by another process writing to the same
database) is seen by the very next ranking; with ``IEI_MATCH_CATALOG_REFRESH_S``, at most
that many seconds later."""

from __future__ import annotations

import gc
import time
import weakref

import pandas as pd
from sqlalchemy import delete, update

from iei_match_service.catalogs import Catalogs
from iei_match_service.db.engine import Database
from iei_match_service.db.tables import Program

PROGRAM = {"title": "航空复合材料成型技术", "code": "460610",
           "description": "碳纤维预浸料铺贴、热压罐固化、无损检测，面向大飞机复合材料构件制造",
           "level": "高职专科", "province": "上海市", "city": "上海市",
           "graduates_per_year": 40}
NEED = {"title": "复合材料铺贴工", "description": "碳纤维预浸料铺贴与热压罐固化，无损检测",
        "headcount": 5, "level": "高职专科", "province": "上海市", "city": "上海市"}


def ranked_ids(c, need_id, **params) -> list[int]:
    r = c.get(f"/api/v1/needs/{need_id}/recommendations", params={"k": 20, **params})
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


def test_rankings_follow_every_change_to_the_programs(world):
    with world.client("herbal") as ent, world.client("fsvc") as col:
        need = ent.post("/api/v1/needs", json=NEED).json()
        before = ranked_ids(ent, need["id"])
        program = col.post("/api/v1/programs", json=PROGRAM)
        assert program.status_code == 201, program.text
        pid = program.json()["id"]
        assert pid not in before
        assert ranked_ids(ent, need["id"])[0] == pid  # created: ranked at once, on top
        # changed through the API: a level the need does not ask for filters it out
        r = col.patch(f"/api/v1/programs/{pid}", json={"level": "本科"})
        assert r.status_code == 200, r.text
        assert pid not in ranked_ids(ent, need["id"])
        assert pid in ranked_ids(ent, need["id"], level="本科")
        # changed by another process straight in the database: seen too
        db = Database(world.db.engine.url.render_as_string(hide_password=False))
        try:
            with db.session() as s:
                s.execute(update(Program).where(Program.id == pid)
                          .values(level="高职专科", title="航空复合材料成型技术（订单班）"))
            top = ent.get(f"/api/v1/needs/{need['id']}/recommendations").json()["items"][0]
            assert top["id"] == pid and top["program"]["title"].endswith("（订单班）")
            with db.session() as s:
                s.execute(delete(Program).where(Program.id == pid))
        finally:
            db.dispose()
        assert pid not in ranked_ids(ent, need["id"])
        assert ranked_ids(ent, need["id"]) == before


def test_partner_lists_follow_new_needs_and_show_only_shared_alliances(world):
    with world.client("herbal") as ent, world.client("fsvc") as col:
        program = col.post("/api/v1/programs", json=PROGRAM).json()
        first = col.get(f"/api/v1/programs/{program['id']}/partners", params={"k": 50})
        assert first.status_code == 200, first.text
        catalogs = world.server.app.state.services.catalogs
        n = len(catalogs.kept("need").rows)
        need = ent.post("/api/v1/needs", json=NEED).json()
        after = col.get(f"/api/v1/programs/{program['id']}/partners",
                        params={"k": 50}).json()["items"]
        assert after[0]["id"] == need["id"]
        assert catalogs.kept("need").catalog.reused == n  # only the new need was vectorised
        assert need["id"] not in [i["id"] for i in first.json()["items"]]


def assert_prepared_alike(got, fresh) -> None:
    """What a ranking reads of a prepared table: rows, hard-rule arrays, engine frame, vectors."""
    assert [r.id for r in got.rows] == [r.id for r in fresh.rows]
    assert [r.out for r in got.rows] == [r.out for r in fresh.rows]
    for name in ("org", "level", "province", "city", "haystack", "stamps"):
        assert list(getattr(got, name)) == list(getattr(fresh, name)), name
    pd.testing.assert_frame_equal(got.frame, fresh.frame, check_dtype=False)
    g, f = got.catalog.side, fresh.catalog.side
    assert list(g.ids) == list(f.ids) and list(g.level) == list(f.level)
    for fm in ("word", "char"):
        for part in ("title", "body", "full", "counts"):
            a, b = getattr(getattr(g, fm), part), getattr(getattr(f, fm), part)
            assert a.shape == b.shape and (a != b).nnz == 0, (fm, part)
    assert (got.catalog.history != fresh.catalog.history).nnz == 0


def test_a_write_prepares_only_the_rows_it_wrote(world):
    """After one program is added, edited or deleted, the next ranking reflects it, and the
    preparation loaded and vectorised that program only (the others are taken as they were),
    with the result a fresh preparation of the table gives."""
    services = world.server.app.state.services
    catalogs = services.catalogs
    with world.client("herbal") as ent, world.client("fsvc") as col:
        need = ent.post("/api/v1/needs", json=NEED).json()
        before = ranked_ids(ent, need["id"])
        first = catalogs.kept("program")
        n = len(first.rows)
        assert n > 10 and first.catalog.reused == 0  # the first preparation: all of them

        pid = col.post("/api/v1/programs", json=PROGRAM).json()["id"]
        assert ranked_ids(ent, need["id"])[0] == pid  # added: ranked at once
        added = catalogs.kept("program")
        assert len(added.rows) == n + 1 and added.catalog.reused == n  # vectorised: 1 row
        assert all(a is b for a, b in zip(added.rows[:n], first.rows, strict=True))  # not reloaded

        r = col.patch(f"/api/v1/programs/{pid}", json={
            "title": "航空复合材料成型技术（订单班）",
            "description": PROGRAM["description"] + "，订单培养"})
        assert r.status_code == 200, r.text
        top = ent.get(f"/api/v1/needs/{need['id']}/recommendations").json()["items"][0]
        assert top["id"] == pid and top["program"]["title"].endswith("（订单班）")
        edited = catalogs.kept("program")
        assert len(edited.rows) == n + 1 and edited.catalog.reused == n  # its texts changed

        r = col.patch(f"/api/v1/programs/{pid}", json={"level": "本科"})
        assert r.status_code == 200, r.text
        assert pid not in ranked_ids(ent, need["id"])  # another level: filtered out
        moved = catalogs.kept("program")
        assert moved.catalog.reused == n + 1  # reloaded, but its texts are the same
        assert moved.rows[-1] is not edited.rows[-1] and moved.rows[-1].out.level == "本科"

        with services.db.sessions() as s:  # the same table prepared from scratch
            fresh = Catalogs().programs(s, services.models.live())
        assert_prepared_alike(moved, fresh)

        assert col.delete(f"/api/v1/programs/{pid}").status_code == 204
        assert ranked_ids(ent, need["id"]) == before
        deleted = catalogs.kept("program")
        assert len(deleted.rows) == n and deleted.catalog.reused == n


def test_a_prepared_catalog_is_left_out_of_later_collections_and_freed_when_replaced(
        world, monkeypatch):
    """After a preparation its objects are frozen (full collections no longer walk them:
    they stalled requests for 150-300 ms), and the catalog a write replaces is still freed
    (at the next preparation at least ``SETTLE_S`` after the last collection: here at
    once)."""
    from iei_match_service import catalogs as module

    monkeypatch.setattr(module, "SETTLE_S", 0.0)
    catalogs = world.server.app.state.services.catalogs
    with world.client("herbal") as ent, world.client("fsvc") as col:
        need = ent.post("/api/v1/needs", json=NEED).json()
        ranked_ids(ent, need["id"])
        first = catalogs.kept("program")
        assert gc.get_freeze_count() > len(first.rows)
        collected = {id(o) for o in gc.get_objects()}  # the generations a collection walks
        assert id(first.rows[0]) not in collected and id(first.rows[0].out) not in collected
        gone = weakref.ref(first)
        del first, collected

        pid = col.post("/api/v1/programs", json=PROGRAM).json()["id"]
        assert ranked_ids(ent, need["id"])[0] == pid
        assert catalogs.kept("program") is not None and gone() is None


def test_the_words_kept_are_those_asked_for_last(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import fields

    from iei_match_service import catalogs

    monkeypatch.setattr(catalogs, "WORDS_KEPT", 3)
    texts = ["数控机床操作", "中药制剂生产", "护理临床", "飞机铆装", "电子商务运营"]
    rows = [catalogs.Row(i, 1, None, t) for i, t in enumerate(texts)]
    init = {f.name: None for f in fields(catalogs.Prepared) if f.init and f.name[0] != "_"}
    prepared = catalogs.Prepared(**{**init, "rows": rows, "haystack": [
        catalogs.normalize(t) for t in texts]})  # what a preparation keeps of each text
    for i in (0, 1, 2, 0, 3):  # row 0 asked again: row 1 is the one forgotten
        assert prepared.words(i) == frozenset(catalogs.tokenize(texts[i]))
    assert list(prepared._words) == [2, 0, 3]
    with ThreadPoolExecutor(8) as pool:  # concurrent requests never break the order
        assert all(pool.map(prepared.words, [i % 5 for i in range(400)]))
    assert len(prepared._words) == 3


def test_with_a_refresh_interval_a_write_is_ranked_at_most_that_late(world):
    svc = world.server.app.state.services
    live = svc.models.live()
    catalogs = Catalogs(refresh_s=60.0)
    with world.db.session() as s:
        first = catalogs.programs(s, live)
    looked = time.monotonic()
    with world.client("fsvc") as col:
        key = f"db-program-{col.post('/api/v1/programs', json=PROGRAM).json()['id']}"
    with world.db.session() as s:
        assert catalogs.programs(s, live) is first  # the table was not looked at again
    catalogs.refresh_s = 1.0
    time.sleep(max(0.0, 1.1 - (time.monotonic() - looked)))
    with world.db.session() as s:
        later = catalogs.programs(s, live)
    assert key not in first.position and key in later.position

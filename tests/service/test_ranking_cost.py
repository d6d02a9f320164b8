"""A ranking's cost does not grow with the stored tables: the check that a prepared catalog
and the directory are still current (row count, largest id, latest change) is answered
from indexes, in one statement."""

from __future__ import annotations

import sqlalchemy as sa

from iei_match_service import table_state
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import Membership, Organization, Program, TrainingBase


def test_the_state_check_reads_no_table(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'cost.db'}")
    try:
        upgrade(db.engine)
        with db.sessions() as s:
            for kind in ("program", "need"):
                query = table_state.statement(kind, "directory")
                plan = s.execute(sa.text("EXPLAIN QUERY PLAN " + str(query.compile(
                    db.engine, compile_kwargs={"literal_binds": True})))).all()
                details = [row[-1] for row in plan]
                for table in (table_state.CATALOGS[kind], Organization, Membership,
                              TrainingBase):
                    name = table.__tablename__
                    # no full scan of a table (every row's text): its indexes, or rowid
                    # search
                    assert f"SCAN {name}" not in details, details
                    assert all(name not in d or "INDEX" in d or d == f"SEARCH {name}"
                               for d in details), details
                assert table_state.read(s, kind, "directory") == {
                    kind: (0, None, None), "directory": (0, None, 0, None, 0, None, None)}
    finally:
        db.dispose()


def test_the_state_follows_every_write(database_url):
    db = Database(database_url)
    try:
        upgrade(db.engine)
        seen = []

        def state():
            with db.sessions() as s:
                seen.append(table_state.read(s, "program", "need", "directory"))
            return seen[-1]

        state()
        with db.session() as s:
            s.add(Organization(kind="college", name="学院"))
        assert state()["directory"][:2] == (1, 1) and state()["program"] == seen[0]["program"]
        with db.session() as s:
            s.add(Program(org_id=1, title="数控技术"))
        assert state()["program"][:2] == (1, 1) and state()["need"] == seen[0]["need"]
        before = state()
        with db.session() as s:
            s.get(Program, 1).title = "数控技术应用"
        after = state()
        assert after["program"][:2] == (1, 1) and after["program"] != before["program"]
        assert after["directory"] == before["directory"]
    finally:
        db.dispose()

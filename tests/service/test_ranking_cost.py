"""A ranking's cost does not grow with the stored tables: the check that a prepared catalog
is still current (row count, largest id, latest change) is answered from indexes."""

from __future__ import annotations

import sqlalchemy as sa

from iei_match_service.catalogs import Catalogs
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import Need, Program


def test_the_catalog_state_check_reads_no_table(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'cost.db'}")
    try:
        upgrade(db.engine)
        with db.sessions() as s:
            for table in (Program, Need):
                query = Catalogs._state_query(table)
                plan = s.execute(sa.text("EXPLAIN QUERY PLAN " + str(query.compile(
                    db.engine, compile_kwargs={"literal_binds": True})))).all()
                details = [row[-1] for row in plan]
                name = table.__tablename__
                # no full scan of the table (every row's text): its indexes, or rowid search
                assert f"SCAN {name}" not in details, details
                assert all(name not in d or "INDEX" in d or d == f"SEARCH {name}"
                           for d in details), details
                assert s.execute(query).one() == (0, None, None)
    finally:
        db.dispose()

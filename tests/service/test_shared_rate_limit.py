"""The shared rate limit (``IEI_MATCH_SHARED_RATE_LIMIT``, PostgreSQL): a key's requests are
counted in the database, so that several processes of the service together allow the
limit, not the limit each."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import RateCount
from iei_match_service.errors import RateLimited
from iei_match_service.limits import SharedRateLimiter

from .conftest import LiveServer, make_world


def away_from_the_minute_turn(margin: float = 10.0) -> None:
    """Wait until the clock's minute has at least ``margin`` seconds left (a fixed window
    starts again at the turn: counts made across it are not comparable)."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.5)


@pytest.fixture
def two_processes(pg_factory):
    """Two connection pools on one database: what two processes of the service hold."""
    url = pg_factory()
    dbs = [Database(url), Database(url)]
    upgrade(dbs[0].engine)
    yield dbs
    for db in dbs:
        db.dispose()


def passed(limiter: SharedRateLimiter, key: object) -> bool:
    try:
        limiter.check(key)
    except RateLimited as exc:
        assert 1 <= exc.extra["retry_after"] <= 60
        return False
    return True


def test_two_processes_together_allow_the_limit_once_even_at_once(two_processes):
    a, b = (SharedRateLimiter(30, db) for db in two_processes)
    away_from_the_minute_turn()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: passed(a if i % 2 else b, 7), range(50)))
    assert sum(got) == 30  # not 30 each
    assert passed(a, 8) and passed(b, 8)  # another key has its own count
    assert not passed(a, 7) and not passed(b, 7)


def test_pruning_removes_the_minutes_before_the_previous_one(two_processes):
    db = two_processes[0]
    now = int(time.time() // 60)
    with db.session() as s:
        s.add_all([RateCount(bucket="k", minute=m, hits=1) for m in (now - 5, now - 1, now)])
    assert SharedRateLimiter.prune(db) == 1
    with db.session() as s:
        assert sorted(r.minute for r in s.query(RateCount)) == [now - 1, now]


@pytest.mark.slow  # ~22 s on 2 cores: two real servers
def test_two_servers_on_one_database_share_a_keys_limit(tmp_path, model_root, pg_factory):
    w = make_world(tmp_path, model_root, pg_factory(), rate_limit_per_minute=20,
                   shared_rate_limit=True)
    other = LiveServer(w.server.settings).start()
    try:
        away_from_the_minute_turn()
        statuses = []
        with w.client("herbal") as ca, other.client(w.keys["herbal"]) as cb:
            for i in range(30):
                statuses.append((ca if i % 2 else cb).get("/api/v1/needs").status_code)
            assert statuses.count(200) == 20 and statuses.count(429) == 10, statuses
            r = cb.get("/api/v1/needs")
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        with w.client("fsvc") as c:  # another key is not limited by it
            assert c.get("/api/v1/programs").status_code == 200
    finally:
        other.stop()
        w.server.stop()
        w.db.dispose()

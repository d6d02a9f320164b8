"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document and sends
them over real HTTP to a live server, once with a key of each role.

Every response must be a non-5xx that matches the document (status code, content type,
body schema), and a request the document calls invalid must be refused (4xx). The default
run tries a few examples per operation; ``-m fuzz`` runs many more.

schemathesis' own engine drives the run (its pytest plugin does not support this pytest).
The fuzzed server has its own database and models (other tests' worlds are never touched),
a rate limit high enough not to get in the way, and retraining replaced by a stub job (the
endpoint, its validation and its job are exercised; a real training takes 30 s a time).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from iei_match_service import retrain as retrain_module

from .conftest import make_world

ROLES = {"enterprise": "herbal", "college": "fsvc", "coordinator": "nanhai", "admin": "admin"}
# Examples per operation and role: a modest number by default, many under ``-m fuzz``.
EXAMPLES = int(os.environ.get("IEI_MATCH_FUZZ_EXAMPLES", "8"))
DEEP_EXAMPLES = int(os.environ.get("IEI_MATCH_FUZZ_DEEP_EXAMPLES", "150"))
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection"]


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory, model_root):
    mp = pytest.MonkeyPatch()
    # Retraining is exercised as a job that succeeds at once, not a 30-second training.
    # (The retraining job's handler calls retrain.run.)
    mp.setattr(retrain_module, "run", lambda *a, **k: {"published": False, "stub": True})
    w = make_world(tmp_path_factory.mktemp("fuzz"), model_root,
                   rate_limit_per_minute=1_000_000)
    yield w
    w.server.stop()
    w.db.dispose()
    mp.undo()


def fuzz(world, role: str, examples: int, phases: list[str]) -> tuple[int, list[str]]:
    """Run schemathesis against ``world`` with ``role``'s key; (cases sent, failures)."""
    schema = schemathesis.openapi.from_url(world.server.url + "/openapi.json")
    schema.config.update(headers={"Authorization": f"Bearer {world.keys[ROLES[role]]}"},
                         base_url=world.server.url, request_timeout=60)
    schema.config.generation.update(max_examples=examples, deterministic=True, database="none")
    schema.config.phases.update(phases=phases)
    schema.config.checks.update(included_check_names=CHECKS)
    cases, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        failures.append(f"[{event.recorder.label}] {check.name}: "
                                        f"{info.failure.title}\n{info.failure.message}\n"
                                        f"{info.code_sample}")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            info = getattr(event, "info", None)
            label = getattr(event, "label", "")
            failures.append(f"[{label}] engine error: "
                            f"{info.title if info else ''}\n{info or event}"[:3000])
    return cases, sorted(set(failures))


def assert_clean(cases: int, failures: list[str]) -> None:
    assert cases > 0
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:40])


@pytest.mark.parametrize("role", sorted(ROLES))
def test_api_fuzz(fuzz_world, role):
    """Random valid and invalid requests to every operation, with each role's key."""
    assert_clean(*fuzz(fuzz_world, role, EXAMPLES, ["examples", "fuzzing"]))


@pytest.mark.fuzz
def test_api_fuzz_boundaries(fuzz_world):
    """schemathesis' coverage phase: each parameter and field at and past its limits, missing,
    of the wrong type (the admin key reaches every object, so every operation's code runs).
    About a minute on 2 cores, so it runs with ``-m fuzz``; the default run fuzzes every
    operation with every role's key (above)."""
    assert_clean(*fuzz(fuzz_world, "admin", EXAMPLES, ["coverage"]))


@pytest.mark.fuzz
@pytest.mark.parametrize("role", sorted(ROLES))
def test_api_fuzz_deep(fuzz_world, role):
    """Every phase, stateful sequences included, with many examples (``-m fuzz``)."""
    assert_clean(*fuzz(fuzz_world, role, DEEP_EXAMPLES,
                       ["examples", "coverage", "fuzzing", "stateful"]))


# Regressions: what fuzzing found, each pinned by the request that showed it.

def test_openapi_documents_the_error_responses(fuzz_world):
    """Every operation behind a key documents its error statuses with the service's error
    body (FastAPI's document had only 2xx and a 422 of another shape: a 404, 403, 401 or 429
    broke the document); /metrics is text, behind an admin key."""
    with fuzz_world.client() as c:
        doc = c.get("/openapi.json").json()
    assert "Error" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in str(doc)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if path in ("/healthz", "/readyz"):
                assert not codes & {"401", "403"}, (method, path)
                continue
            assert {"401", "403", "422", "429", "503"} <= codes, (method, path, codes)
            if "requestBody" in op:
                assert {"400", "413"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
            for code in codes - {"200", "201", "202", "204"}:
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == \
        ["text/plain"]


@pytest.mark.parametrize("path, body", [
    ("/api/v1/bases", {"name": "实训基地", "capacity": False}),
    ("/api/v1/programs", {"title": "数控技术", "graduates_per_year": False}),
    ("/api/v1/needs", {"title": "数控车工", "headcount": True}),
    ("/api/v1/needs", {"title": "数控车工", "headcount": "3"}),
    ("/api/v1/needs", {"title": "数控车工", "headcount": 3.0}),
    ("/api/v1/models/retrain", {"force": 0}),
    ("/api/v1/match", {"title": "车工", "k": True}),
    # limits are on what the client sends, before spaces and control characters go
    ("/api/v1/match", {"title": "车工", "province": "\t\x1a" + "省" * 49}),
    ("/api/v1/needs", {"title": " " + "车" * 199 + " "}),
    ("/api/v1/bases", {"name": "基地", "description": "\x01" + "x" * 20_000}),
    ("/api/v1/outcomes", {"need_id": 1, "program_id": 1, "event": "viewed\x00"}),
])
def test_invalid_json_types_and_lengths_are_refused(fuzz_world, path, body):
    with fuzz_world.client("admin") as c:
        r = c.post(path, json=body)
    assert r.status_code == 422, (path, body, r.status_code, r.text[:300])
    assert r.json()["error"]["code"] == "invalid"


def test_cleaning_still_applies_within_the_limits(fuzz_world):
    with fuzz_world.client("herbal") as c:
        r = c.post("/api/v1/needs", json={"title": " 数控\x00车工 ", "province": " 广东省 ",
                                          "skills": [" 焊\x07接 ", "焊接"], "headcount": 3})
        assert r.status_code == 201, r.text
        need = r.json()
        assert (need["title"], need["province"], need["skills"], need["headcount"]) == \
            ("数控车工", "广东省", ["焊接"], 3)
        assert c.post("/api/v1/needs", json={"title": " \x00 "}).status_code == 422
        assert c.delete(f"/api/v1/needs/{need['id']}").status_code == 204


@pytest.mark.parametrize("raw, message", [
    (b'{"title": "\xff\xfe"}', "not UTF-8"),
    (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
])
def test_unreadable_bodies_get_a_documented_400_naming_the_problem(fuzz_world, raw, message):
    with fuzz_world.client("herbal") as c:
        r = c.post("/api/v1/needs", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
    assert message in r.json()["error"]["message"]

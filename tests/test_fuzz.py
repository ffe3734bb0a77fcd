"""Schemathesis over the whole `/openapi.json`: no 5xx, and every answer matches its schema.

The app is the one `create_app` builds, on a migrated database of this module's own, driven
in-process through schemathesis' ASGI transport (which runs the app's lifespan once, on its own
event loop). Each operation is one test: valid and invalid requests (positive and negative
generation), a bounded number of each. `pytest -s` prints how many cases every operation ran.

schemathesis' own `from_fixture(...).parametrize()` fails on pytest 9 (it sets
`Function._nodeid`), so operations are parametrized here and driven through `as_strategy`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from tests.conftest import make_settings
from tests.support import create_database, drop_database

EXAMPLES = 15  # per operation and generation mode: about 30 cases an operation, in all < 60 s
# The import route's body is NDJSON: text, one JSON record a line (docs/lifecycle.md).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
CHECKS = [not_a_server_error, response_schema_conformance]
CASES: Counter[str] = Counter()


def _cases() -> list[Any]:
    """(operation, generation mode) pairs; operations that take no input have no invalid one."""
    # The same app's document, read without a database, names the operations at collection.
    document = create_app(make_settings(), dsn="postgresql://collect@127.0.0.1:1/x").openapi()
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    cases = []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method not in methods:
                continue
            label = f"{method.upper()} {path}"
            modes = [GenerationMode.POSITIVE]
            if spec.get("parameters") or spec.get("requestBody"):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                name = "valid" if mode is GenerationMode.POSITIVE else "invalid"
                cases.append(pytest.param(label, mode, id=f"{name} {label}"))
    return cases


@pytest.fixture(scope="module")
def target(admin_dsn: str, template_db: str) -> Iterator[tuple[Any, Any]]:
    dsn = create_database(admin_dsn, template_db)
    app = create_app(make_settings(), dsn=dsn)
    yield app, schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()
    drop_database(admin_dsn, dsn)
    print(f"\nfuzzed {len(CASES)} operations with {sum(CASES.values())} cases:")
    for label, count in sorted(CASES.items()):
        print(f"  {count:4d}  {label}")


@pytest.fixture
def api_schema(target: tuple[Any, Any]) -> Any:
    """The schema, with the app started and connected to its database."""
    app, schema = target
    # schemathesis' pytest plugin ends the app's lifespan after every test; entering a client
    # starts it again, and the app connects in the background: wait until it is ready.
    with asgi.get_client(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the app did not become ready"
            time.sleep(0.02)
    return schema


@pytest.mark.parametrize(("label", "mode"), _cases())
def test_no_server_errors_and_answers_match_the_schema(
    api_schema: Any, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        CASES[label] += 1
        case.call_and_validate(checks=CHECKS)

    run()


async def test_found_a_content_block_key_holding_nul_round_trips(client: Any) -> None:
    """A fuzzer's finding, made deterministic: a content block key holding NUL (which the
    content_types text[] column cannot hold) is stored and comes back as sent."""
    base = "/api/v1/sessions/nul/agents/a/messages"
    await client.post("/api/v1/sessions", json={"session_id": "nul"})
    await client.post(
        "/api/v1/sessions/nul/agents",
        json={"agent_id": "a", "state": {}, "conversation_manager_state": {}},
    )
    message = {"role": "user", "content": [{"a\u0000": 1}]}
    created = await client.post(base, json={"message_id": 0, "message": message})
    replaced = await client.put(f"{base}/0", json={"message": message, "redact_message": None})
    assert created.status_code == 201 and replaced.status_code == 200, (created.text, replaced.text)
    assert (await client.get(f"{base}/0")).json()["message"] == message

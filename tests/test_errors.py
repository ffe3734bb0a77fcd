"""One error envelope for every 4xx/5xx, X-Request-ID everywhere, and the OpenAPI document."""

from __future__ import annotations

import pytest

S = "/api/v1/sessions"


def assert_envelope(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == r.headers["x-request-id"]


async def test_unknown_route_and_405_use_the_envelope(client):
    assert_envelope(await client.get("/nowhere"), 404, "not_found")
    assert_envelope(await client.get("/api/v1/sessions/s/whatever/else"), 404, "not_found")
    r = await client.patch(f"{S}/s")
    assert_envelope(r, 405, "method_not_allowed")
    assert "allow" in r.headers


async def test_request_id_is_echoed_or_generated(client):
    r = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = (await client.get("/health/live")).headers["x-request-id"]
    assert len(generated) >= 16
    hostile = await client.get("/health/live", headers={"X-Request-ID": "a b\tc" * 100})
    assert hostile.headers["x-request-id"] != "a b\tc" * 100


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""]
)
async def test_non_json_bodies_are_415(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post(S, content=b'{"session_id": "s"}', headers=headers)
    assert_envelope(r, 415, "unsupported_media_type")


async def test_json_with_charset_and_vendor_types_are_accepted(client):
    r = await client.post(
        S,
        content=b'{"session_id": "s"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201
    r = await client.post(
        S, content=b'{"session_id": "t"}', headers={"content-type": "application/vnd.api+json"}
    )
    assert r.status_code == 201


async def test_malformed_json_and_wrong_shapes_are_422(client):
    for body in (b"{", b"[]", b'"x"', b"null", b'{"session_id": 5}'):
        r = await client.post(S, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] in ("invalid_request", "invalid_id")


@pytest.mark.parametrize(
    "sid", ["", ".", "..", "a/b", "a\\b", "a\u0001b", "   ", "x" * 256, "tab\tin"]
)
async def test_bad_ids_in_the_body_are_invalid_id(client, sid):
    assert_envelope(await client.post(S, json={"session_id": sid}), 422, "invalid_id")


@pytest.mark.parametrize("path", ["%2E", "%2E%2E", "a%2Fb", "a%5Cb", "a%00b", "%20%20", "x" * 256])
async def test_bad_ids_in_the_path_are_invalid_id(client, path):
    assert_envelope(await client.get(f"{S}/{path}"), 422, "invalid_id")
    assert_envelope(await client.get(f"{S}/ok/agents/{path}"), 422, "invalid_id")


async def test_percent_encoded_ids_are_decoded(client):
    assert (await client.post(S, json={"session_id": "a b+é"})).status_code == 201
    r = await client.get(f"{S}/a%20b%2B%C3%A9")
    assert r.status_code == 200 and r.json()["session_id"] == "a b+é"
    assert (await client.get(f"{S}/x" + "y" * 254)).status_code == 404  # 255 chars is fine


async def test_body_over_the_limit_is_413(app_factory):
    from tests.conftest import app_client

    async with app_client(app_factory(max_body_bytes=2048)) as http:
        big = {"session_id": "s", "pad": "x" * 4096}
        assert_envelope(await http.post(S, json=big), 413, "payload_too_large")

        async def chunks():
            for _ in range(8):
                yield b" " * 1024  # no Content-Length: counted as it arrives

        r = await http.post(S, content=chunks(), headers={"content-type": "application/json"})
        assert_envelope(r, 413, "payload_too_large")
        assert (await http.get("/health/ready")).status_code == 200


async def test_nesting_deeper_than_the_limit_is_422(app_factory):
    from tests.conftest import app_client

    async with app_client(app_factory(max_json_depth=8)) as http:
        deep = "[" * 20 + "]" * 20
        text = f'{{"session_id": "s", "x": {deep}}}'
        r = await http.post(S, content=text, headers={"content-type": "application/json"})
        assert_envelope(r, 422, "invalid_request")
        assert "deeper" in r.json()["error"]["message"]


async def test_openapi_describes_every_route_and_error(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        "/api/v1/sessions": {"get", "post"},
        "/api/v1/sessions/{session_id}": {"get", "put", "delete"},
        "/api/v1/sessions/{session_id}/agents": {"get", "post"},
        "/api/v1/sessions/{session_id}/agents/{agent_id}": {"get", "put", "delete"},
        "/api/v1/sessions/{session_id}/agents/{agent_id}/messages": {"get", "post"},
        "/api/v1/sessions/{session_id}/agents/{agent_id}/messages/batch": {"post"},
        "/api/v1/sessions/{session_id}/agents/{agent_id}/messages/{message_id}": {
            "get",
            "put",
            "delete",
        },
        "/api/v1/sessions/{session_id}/multi-agents": {"post"},
        "/api/v1/sessions/{session_id}/multi-agents/{multi_agent_id}": {"get", "put", "delete"},
        "/health/live": {"get"},
        "/health/ready": {"get"},
        "/health": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) >= methods, path
        for method in methods:
            responses = paths[path][method]["responses"]
            if path.startswith("/api"):
                assert "503" in responses and "422" in responses, (path, method)
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_an_unexpected_exception_is_a_500_envelope_with_the_request_id(app_factory):
    from tests.conftest import app_client

    app = app_factory()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async with app_client(app) as http:
        r = await http.get("/boom", headers={"X-Request-ID": "trace-me"})
        assert_envelope(r, 500, "internal")
        assert r.headers["x-request-id"] == "trace-me"
        assert "a bug" not in r.text  # no internals leak to the client

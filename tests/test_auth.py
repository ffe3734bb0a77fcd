"""API keys, CORS and the production guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import app_client, make_settings

S = "/api/v1/sessions"


async def test_keys_guard_the_api_but_not_liveness(app_factory):
    async with app_client(app_factory(api_keys="k1, k2")) as http:
        r = await http.get(S)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
        for header in ("Bearer nope", "Basic azE=", "k1", "Bearer "):
            assert (await http.get(S, headers={"Authorization": header})).status_code == 401
        for key in ("k1", "k2"):
            ok = await http.get(S, headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get("/health/ready")).status_code == 200
        assert (await http.get("/health")).status_code == 200


async def test_metrics_and_health_can_be_keyed(app_factory):
    async with app_client(app_factory(api_keys="k", metrics_require_key=True)) as http:
        assert (await http.get("/health")).status_code == 401
        assert (await http.get("/health", headers={"Authorization": "Bearer k"})).status_code == 200
        assert (await http.get("/health/ready")).status_code == 200


async def test_cors_is_off_unless_origins_are_configured(app_factory):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with app_client(app_factory()) as http:
        r = await http.options(S, headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    async with app_client(app_factory(cors_origins="https://app.example")) as http:
        r = await http.options(S, headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-credentials" not in r.headers


def test_production_requires_keys():
    with pytest.raises(ValidationError, match="API_KEYS"):
        make_settings(environment="production")
    assert make_settings(environment="production", api_keys="k").api_keys

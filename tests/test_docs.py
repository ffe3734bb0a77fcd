"""/docs and /redoc work offline: every asset their pages name is served by the service itself,
and the OpenAPI document declares the bearer key so "Try it out" can send it."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx

# src="…", href="…", spec-url="…" attributes and Swagger UI's `url: '…'` option.
_REFERENCES = re.compile(r"""(?:\b(?:src|href|spec-url)=|\burl:\s*)["']([^"']+)["']""")


def references(page: str) -> list[str]:
    return _REFERENCES.findall(page)


def test_docs_and_redoc_load_every_asset_from_the_service(service_process, database_url):
    proc = service_process({"DATABASE_URL": database_url, "API_KEYS": "docs-key"})
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        for page in ("/docs", "/redoc"):
            answer = http.get(page)
            assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
            found = references(answer.text)
            assert any(ref.endswith(".js") for ref in found), (page, found)
            assert "openapi.json" in " ".join(found), (page, found)
            for ref in found:
                url = urljoin(f"{proc.url}{page}", ref)
                assert urlsplit(url).netloc == urlsplit(proc.url).netloc, f"{page} loads {ref}"
                asset = http.get(url)
                assert asset.status_code == 200, (page, ref, asset.status_code)
                assert len(asset.content) > 1000, (page, ref)
            # Nothing else on the page may reach out: no URL of another host at all.
            assert not re.search(r"https?://", answer.text), answer.text
        assert '"persistAuthorization": true' in http.get("/docs").text
        assert '"validatorUrl": null' in http.get("/docs").text


def test_openapi_declares_the_bearer_key_where_it_is_checked(service_process, database_url):
    proc = service_process({"DATABASE_URL": database_url, "API_KEYS": "docs-key"})
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        spec = http.get("/openapi.json").json()
        scheme = spec["components"]["securitySchemes"]["bearerAuth"]
        assert scheme == scheme | {"type": "http", "scheme": "bearer"}
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                expected = [{"bearerAuth": []}] if path.startswith("/api/") else None
                assert operation.get("security") == expected, (method, path)
        # What "Try it out" sends once authorized is what the service accepts.
        assert http.get("/api/v1/sessions").status_code == 401
        keyed = http.get("/api/v1/sessions", headers={"Authorization": "Bearer docs-key"})
        assert keyed.status_code == 200


async def test_without_api_keys_the_key_is_optional_in_the_document(client):
    spec = (await client.get("/openapi.json")).json()
    assert spec["paths"]["/api/v1/sessions"]["get"]["security"] == [{"bearerAuth": []}, {}]

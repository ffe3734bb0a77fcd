"""The API's documentation pages, served by the service itself, and its security scheme.

`/docs` (Swagger UI) and `/redoc` (ReDoc) load their scripts, styles and icon from the service
(`/docs-assets/…`, the files the `fastapi-offline` package ships), never from a CDN, so they work
on a machine without internet. The OpenAPI document declares the bearer key (`bearerAuth`) on
every route the API-key check (`service.auth`) guards, so Swagger UI's "Authorize" button makes
"Try it out" send `Authorization: Bearer <key>`; the key stays in the browser across reloads.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service.settings import Settings

ASSETS_URL = "/docs-assets"
SCHEME = "bearerAuth"
_OPERATIONS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})
_KEYED_BY_SETTING = frozenset({"/metrics", "/health"})


def documented_app(**options: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc pages use the assets served under ASSETS_URL."""
    # No validator badge: it would fetch an image from the Swagger validator's site.
    parameters = {"persistAuthorization": True, "validatorUrl": None}
    parameters |= options.pop("swagger_ui_parameters", {})
    return FastAPIOffline(static_url=ASSETS_URL, swagger_ui_parameters=parameters, **options)


def _guarded(path: str, settings: Settings) -> bool:
    return path.startswith("/api/") or (settings.metrics_require_key and path in _KEYED_BY_SETTING)


def declare_bearer_key(app: FastAPI, settings: Settings) -> None:
    """Add the bearer scheme to the app's OpenAPI document and require it where it is checked.

    Without API_KEYS the service checks no key: the requirement then lists "no key" as an
    alternative, so the document stays true and clients need not send one.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the keys in the service's API_KEYS "
            "(`Authorization: Bearer <key>`). Not needed when API_KEYS is unset.",
        }
        requirement: list[dict[str, list[str]]] = [{SCHEME: []}]
        if not settings.api_keys:
            requirement.append({})
        for path, item in schema.get("paths", {}).items():
            if not _guarded(path, settings):
                continue
            for method, operation in item.items():
                if method in _OPERATIONS and isinstance(operation, dict):
                    operation["security"] = requirement
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Health and readiness."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Response
from pydantic import BaseModel

from service import __version__
from service.errors import ServiceUnavailable
from service.http import respond
from service.migrate import expected
from service.queries import Q
from service.routes import Services, Svc, errors

router = APIRouter(tags=["health"])


class Status(BaseModel):
    status: str


class Health(BaseModel):
    status: str
    version: str
    database: dict[str, Any]
    pool: dict[str, int]
    cache: dict[str, Any]


async def _schema_at_head(svc: Services) -> bool:
    async def applied(conn: asyncpg.Connection) -> set[str]:
        try:
            return {r["migration_id"] for r in await conn.fetch(Q["applied_migrations"])}
        except asyncpg.UndefinedTableError:
            return set()

    return expected() <= await svc.db.probe(applied)


@router.get("/health/live", response_model=Status, summary="The process is up")
async def live() -> Response:
    return respond({"status": "ok"})


@router.get(
    "/health/ready",
    response_model=Status,
    responses=errors(),
    summary="The database is reachable and the schema at head",
)
async def ready(svc: Svc) -> Response:
    await svc.db.ping()
    if not await _schema_at_head(svc):
        raise ServiceUnavailable(
            "the database schema is not migrated to head; run `python -m service migrate`"
        )
    return respond({"status": "ready"})


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Status, version, database latency, pool and cache figures",
)
async def health(svc: Svc) -> Response:
    database: dict[str, Any] = {"reachable": False, "retries": svc.db.retries}
    try:
        database["latency_ms"] = round(await svc.db.ping() * 1000, 3)
        database["reachable"] = True
        database["schema_at_head"] = await _schema_at_head(svc)
    except Exception as exc:  # any failure here is what /health reports, not raises
        database["error"] = exc.__class__.__name__
    ok = database["reachable"] and database.get("schema_at_head", False)
    body = {
        "status": "ok" if ok else "unavailable",
        "version": __version__,
        "database": database,
        "pool": svc.db.pool_figures(),
        "cache": svc.cache.figures(),
    }
    return respond(body, 200 if ok else 503)

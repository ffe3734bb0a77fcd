"""create_app(settings) -> FastAPI: lifespan (pool, cache), error handling, routers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from service import __version__, apidocs, migrate, startup, writes
from service.cache import ResponseCache
from service.db import Database
from service.edge import RequestEdge
from service.errors import (
    DATABASE_ERRORS,
    InvalidId,
    InvalidRequest,
    NotFound,
    ServiceError,
    envelope,
)
from service.listener import InvalidationListener
from service.middleware import Cors, Gate
from service.paging import Cursors
from service.queries import Q
from service.routes import (
    Services,
    agents,
    health,
    leases,
    messages,
    multi_agents,
    sessions,
    storage,
    transfer,
    turns,
)
from service.settings import Settings, redact_dsn
from service.sweeper import Sweeper
from service.ui import install as install_ui

log = logging.getLogger("service")

_ID_FIELDS = {"session_id", "agent_id", "message_id", "multi_agent_id"}
RETRY_AFTER = "2"
FATAL = False  # set when start-up gave up on the database: `python -m service` exits 1


def _error_response(
    request: Request, error: ServiceError, headers: dict[str, str] | None = None
) -> Response:
    headers = dict(headers or {})
    if error.status == 503:
        headers["Retry-After"] = RETRY_AFTER
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="strands-session-backend"'
    return Response(
        envelope(error, getattr(request.state, "request_id", None)),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if exc.status == 500:  # an error nothing maps: a bug, logged with its cause
        log.error(
            "%s %s answered 500: %s",
            request.method,
            request.url.path,
            exc.message,
            exc_info=exc.__cause__ or exc,
        )
    elif exc.status > 500:
        log.warning(
            "%s %s answered %d: %s", request.method, request.url.path, exc.status, exc.message
        )
    return _error_response(request, exc, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        if err.get("type") == "json_invalid":  # loc holds a character position
            loc, message = ["body"], str(err.get("ctx", {}).get("error", "invalid JSON"))
        else:
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"loc": loc, "message": message, "type": err.get("type", "invalid")})
    first = details[0] if details else {"loc": [], "message": "invalid request"}
    where = ".".join(p for p in first["loc"] if p not in ("body", "path", "query")) or "body"
    is_id = any(
        set(d["loc"]) & _ID_FIELDS
        and d["loc"][0] in ("path", "body")
        and d["loc"][-1] in _ID_FIELDS
        for d in details
    )
    error_type = InvalidId if is_id else InvalidRequest
    return _error_response(request, error_type(f"{where}: {first['message']}", details))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: ServiceError
    if exc.status_code == 404:
        raw = request.scope.get("raw_path", b"").lower()
        if raw.startswith(b"/api/v1/sessions/") and (b"%2f" in raw or b"%5c" in raw):
            error = InvalidId("ids must not contain '/' or '\\'")
        else:
            error = NotFound(f"no route for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = ServiceError(f"{request.method} is not allowed on {request.url.path}")
        error.status, error.code = 405, "method_not_allowed"
    else:
        error = ServiceError(str(exc.detail))
        error.status, error.code = exc.status_code, "invalid_request"
    return _error_response(request, error, dict(exc.headers or {}))


async def _connect(app: FastAPI, svc: Services) -> None:
    """Reach the database (with backoff until the deadline), migrate, load the cursor key.

    An error waiting cannot fix (unknown database, authentication, TLS) stops start-up at once.
    """
    settings = svc.settings

    async def start() -> None:
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate.apply, svc.db.dsn)
        await svc.db.connect()

    try:
        await startup.reach_then(
            svc.db.dsn,
            start,
            deadline=settings.db_connect_deadline_seconds,
            connect_timeout=settings.db_connect_timeout_seconds,
        )
    except (startup.PermanentDatabaseError, startup.DatabaseUnreachable) as exc:
        log.critical("%s", exc)
        global FATAL
        FATAL = True
        os.kill(os.getpid(), signal.SIGTERM)
        return
    svc.cursors = Cursors(await _cursor_secret(svc.db))
    if settings.cache_enabled:
        svc.listener = InvalidationListener(settings.direct_dsn(svc.db.dsn), svc.cache)
        svc.listener.start()
    svc.db.accepting = True
    log.info("connected to %s", redact_dsn(svc.db.dsn))
    svc.ready.set()
    if settings.sweep_interval_seconds > 0:
        svc.sweeper = Sweeper(svc.db.dsn, settings)
        svc.sweeper.start()


async def _cursor_secret(db: Database) -> str:
    """The cursor key, once the schema exists; until then the service is up but not ready."""
    assert db.pool is not None
    warned = False
    while True:
        try:
            return str(await db.pool.fetchval(Q["cursor_secret"]))
        except asyncpg.UndefinedTableError:
            if not warned:
                log.warning(
                    "the schema is not migrated; run `python -m service migrate` (waiting for it)"
                )
                warned = True
        except DATABASE_ERRORS as exc:
            log.warning("cannot read the cursor key yet (%s)", exc.__class__.__name__)
        await asyncio.sleep(1.0)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc: Services = app.state.services
    # Connect in the background so /health/live answers while the database is still away.
    connecting = asyncio.create_task(_connect(app, svc))
    try:
        yield
    finally:
        connecting.cancel()
        if svc.listener is not None:
            await svc.listener.stop()
        if svc.sweeper is not None:
            await svc.sweeper.stop()
        await svc.db.close()


def create_app(settings: Settings | None = None, dsn: str | None = None) -> FastAPI:
    """The ASGI app for one process; `dsn` overrides settings.database_url."""
    settings = settings or Settings()
    dsn = dsn or settings.dsn
    if dsn is None:
        raise ValueError("DATABASE_URL is unset; `python -m service` starts the embedded one")
    app = apidocs.documented_app(
        title="Strands session backend",
        version=__version__,
        description="Stores Strands sessions, agents, messages and multi-agent state in "
        'PostgreSQL. Every error answers `{"error": {code, message, details?, request_id}}`.',
        lifespan=_lifespan,
    )
    from service import metrics, telemetry
    from service.routes import metrics as metrics_route

    app.state.settings = settings
    app.state.services = Services(settings, Database(settings, dsn), ResponseCache(settings))
    # The API's routes go straight into the app's own list. `include_router` would add each
    # router as one entry (FastAPI >= 0.137), resolved through on every request: 67k of an
    # append's ~960k instructions. Nothing is lost: a router's prefix, tags and route class were
    # applied to each route as it was declared, and none is given more when included.
    # The deepest paths first: the message routes (what every turn calls) then match without
    # trying the session and agent routes first. No two routers' paths overlap, so the order
    # changes nothing else.
    for router in (
        messages.router,
        turns.router,
        agents.router,
        sessions.router,
        multi_agents.router,
        leases.router,
        health.router,
        transfer.router,
        storage.router,
        metrics_route.router,
    ):
        app.router.routes.extend(router.routes)
    writes.document(app)
    install_ui(app)  # the session browser under /ui, and the front page
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Outermost to innermost (each add_middleware wraps the ones before): request id and
    # metrics, CORS, API keys and the separator guard, then the routes.
    app.add_middleware(Gate, settings=settings)
    if settings.cors_origins:
        # Outside the key check: preflights carry no key. Bearer keys travel in a header,
        # never in cookies: credentials stay off.
        app.add_middleware(
            Cors,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "X-Request-ID", "Location", "Idempotency-Key", "Retry-After"],
        )
    # Outermost: every answer carries the request id, and every request is timed and counted.
    app.add_middleware(RequestEdge, metrics=metrics.install(app))
    if not settings.api_keys:
        log.warning(
            "API_KEYS is unset: /api/v1 is open to anyone who can reach %s:%d",
            settings.host,
            settings.port,
        )
    apidocs.declare_bearer_key(app, settings)
    telemetry.setup(app, os.environ)  # nothing at all unless OTEL_* asks for tracing
    return app


def factory() -> FastAPI:
    """Entry point for uvicorn (`--factory`): settings from the environment."""
    return create_app()

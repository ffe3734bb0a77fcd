"""The framework floors: bare apps served like the service.

`python -m bench.floor_app fastapi|starlette|append` runs `uvicorn.run` with the arguments
`service/__main__.py` uses (import string + factory, host, port, workers, log level, graceful
shutdown, no access log, `loop` / `http` left at "auto", i.e. uvloop and httptools when
installed), so the only difference from the service is the app itself.

Both apps have the service's route shapes, with path parameters:
    GET  /api/v1/sessions/{session_id}/agents/{agent_id}            the GET-agent body
    POST /api/v1/sessions/{session_id}/agents/{agent_id}/messages   reads the request body,
                                                                    answers the append body (201)
    GET  /health/ready                                              readiness, as the service
The bodies are the bytes of real service answers, read from the files named by
`BENCH_FLOOR_AGENT_BODY` and `BENCH_FLOOR_MESSAGE_BODY`.

`append` is the append floor: a bare FastAPI app whose POST on the messages route parses the
body, runs the service's own `create_message` statement (`service.queries.Q`, the same
`INSERT ... RETURNING`, which also records the write's idempotency key) through an asyncpg
pool on `BENCH_FLOOR_DSN`, and answers the row as JSON (201). Nothing else: no middleware, no
dependencies, no validation, no retries, no cache; the pool with the service's sizes and
without asyncpg's reset query on release (as the service). What an append costs on this stack
when the framework, the driver and PostgreSQL are all it pays for.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

AGENT_PATH = "/api/v1/sessions/{session_id}/agents/{agent_id}"
MESSAGES_PATH = AGENT_PATH + "/messages"
JSON = "application/json"


def _bodies() -> tuple[bytes, bytes]:
    agent = Path(os.environ["BENCH_FLOOR_AGENT_BODY"]).read_bytes()
    message = Path(os.environ["BENCH_FLOOR_MESSAGE_BODY"]).read_bytes()
    return agent, message


def fastapi_factory() -> FastAPI:
    """A bare FastAPI app: no middleware, no dependencies, no validation beyond the path."""
    agent, message = _bodies()
    app = FastAPI()

    @app.get(AGENT_PATH)
    async def read_agent(session_id: str, agent_id: str) -> Response:
        return Response(agent, media_type=JSON, headers={"ETag": '"1"'})

    @app.post(MESSAGES_PATH, status_code=201)
    async def create_message(session_id: str, agent_id: str, request: Request) -> Response:
        await request.body()
        return Response(message, status_code=201, media_type=JSON, headers={"ETag": '"1"'})

    @app.get("/health/ready")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type=JSON)

    return app


def append_factory() -> FastAPI:
    """The append floor: FastAPI + an asyncpg pool + the service's INSERT ... RETURNING."""
    import hashlib
    import secrets
    from contextlib import asynccontextmanager

    import asyncpg
    import orjson

    from service.queries import Q

    dsn = os.environ["BENCH_FLOOR_DSN"]
    insert = Q["create_message"]
    state: dict[str, Any] = {}

    async def _no_reset(_conn: Any) -> None:
        return None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10, reset=_no_reset)
        try:
            yield
        finally:
            await state["pool"].close()

    app = FastAPI(lifespan=lifespan)

    @app.post(MESSAGES_PATH, status_code=201)
    async def create_message(session_id: str, agent_id: str, request: Request) -> Response:
        raw = await request.body()
        body = orjson.loads(raw)
        message = body["message"]
        kinds = list(dict.fromkeys(k for block in message["content"] for k in block))
        async with state["pool"].acquire() as conn:
            row = await conn.fetchrow(
                insert,
                session_id,
                agent_id,
                body["message_id"],
                message["role"],
                kinds,
                orjson.dumps(message).decode(),
                None,
                # The statement records the write's idempotency key with it, as every write does:
                # a fresh key and the body's digest as its fingerprint.
                secrets.token_hex(16),
                hashlib.sha256(raw).digest(),
                None,  # no X-Session-Lease: the fence finds no lease and lets the write through
            )
        if row is None:
            return Response(b'{"error":"conflict"}', status_code=409, media_type=JSON)
        out = dict(row)
        out["message"] = orjson.Fragment(out["message"])
        return Response(orjson.dumps(out), status_code=201, media_type=JSON)

    @app.get("/health/ready")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type=JSON)

    return app


def starlette_factory() -> Any:
    """The same routes on bare Starlette (what FastAPI adds is the difference to this)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    agent, message = _bodies()

    async def read_agent(request: Request) -> Response:
        return Response(agent, media_type=JSON, headers={"ETag": '"1"'})

    async def create_message(request: Request) -> Response:
        await request.body()
        return Response(message, status_code=201, media_type=JSON, headers={"ETag": '"1"'})

    async def ready(request: Request) -> Response:
        return Response(b'{"status":"ready"}', media_type=JSON)

    return Starlette(
        routes=[
            Route(AGENT_PATH, read_agent, methods=["GET"]),
            Route(MESSAGES_PATH, create_message, methods=["POST"]),
            Route("/health/ready", ready, methods=["GET"]),
        ]
    )


def main(argv: list[str]) -> int:
    import uvicorn

    kind = argv[0] if argv else "fastapi"
    if kind not in ("fastapi", "starlette", "append"):
        print("usage: python -m bench.floor_app fastapi|starlette|append", file=sys.stderr)
        return 2
    uvicorn.run(
        f"bench.floor_app:{kind}_factory",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ["PORT"]),
        workers=int(os.environ.get("WORKERS", "1")),
        log_level=os.environ.get("LOG_LEVEL", "warning").lower(),
        timeout_graceful_shutdown=10,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

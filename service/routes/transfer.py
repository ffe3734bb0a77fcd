"""/api/v1/sessions/{session_id}/export and /api/v1/sessions/import (NDJSON, docs/lifecycle.md)"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from service import ndjson, transfer
from service.errors import UnsupportedMediaType
from service.http import JSONRequest, NDJSONStream, respond
from service.leases import LeaseToken
from service.models import ErrorEnvelope, SessionOut, session_body
from service.routes import SessionId, Svc, errors, location
from service.writes import write_of

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

_NDJSON = re.compile(r"^application/x-ndjson\s*(;|$)", re.IGNORECASE)
_STREAM_DOC: dict[str, Any] = {
    "description": "The session's records, one JSON object per line (see docs/lifecycle.md).",
    "content": {ndjson.MEDIA_TYPE: {"schema": {"type": "string"}}},
}


@router.get(
    "/{session_id}/export",
    response_class=Response,
    responses={200: _STREAM_DOC, **errors(404)},
    summary="Export a session with its agents, messages and multi-agent states (NDJSON)",
)
async def export_session(session_id: SessionId, svc: Svc) -> Response:
    records = transfer.export_session(svc.db, session_id)
    first = await anext(records)  # 404 / 503 here, before anything is sent
    return NDJSONStream(first, records, svc.settings.export_send_timeout_seconds)


@router.post(
    "/import",
    status_code=201,
    response_model=SessionOut,
    responses={
        **errors(409, 413),
        415: {"model": ErrorEnvelope, "description": "Body is not NDJSON."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                ndjson.MEDIA_TYPE: {"schema": {"type": "string", "description": "An export."}}
            },
        }
    },
    summary="Import an export, all or nothing (409 if the session exists, unless replace=true)",
)
async def import_session(
    request: Request,
    svc: Svc,
    replace: Annotated[bool, Query(description="Replace an existing session atomically.")] = False,
    lease: LeaseToken = None,
) -> Response:
    content_type = request.headers.get("content-type", "")
    if not _NDJSON.match(content_type):
        raise UnsupportedMediaType(
            f"send the body as {ndjson.MEDIA_TYPE}, not {content_type or 'no type'!r}"
        )
    body = await JSONRequest(request.scope, request.receive).body()  # MAX_BODY_BYTES applies
    # Validating a large stream takes a while: off the event loop.
    bundle = await asyncio.to_thread(ndjson.parse, body, svc.settings.max_json_depth)
    session_id = bundle.session.session_id
    write = await write_of(request, session_id, body=body)
    status, row = await svc.db.write(
        write, "session", transfer.restore, bundle, replace, lease, atomic=True
    )
    await svc.cache.drop_session(session_id)
    return respond(
        session_body(row), status, version=row["version"], headers=location("sessions", session_id)
    )

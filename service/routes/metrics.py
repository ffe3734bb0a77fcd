"""GET /metrics: Prometheus text format (OpenMetrics when the scraper asks for it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.models import ErrorEnvelope
from service.routes import Svc

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, pool, cache, retries",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: {
            "model": ErrorEnvelope,
            "description": "Missing or wrong API key (with METRICS_REQUIRE_KEY=true).",
        },
    },
)
async def metrics(request: Request, svc: Svc) -> Response:
    collected = request.app.state.metrics
    collected.sync(svc)
    body, content_type = collected.render(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})

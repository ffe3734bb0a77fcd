"""Calling a route's handler without FastAPI's per-request machinery, when the request is valid.

Per request, FastAPI's handler builds an error context for the endpoint, parses the
Content-Type with the `email` package, resolves sub-dependencies recursively (a cache, an exit
stack and a scratch `Response` each time) and only then validates the parameters: about a
fifth of the CPU an append costs here. For routes whose parameters are plain path, query or
header values, one JSON body, the request and parameterless async dependencies (`Svc`),
`direct_caller(route)` returns a function that validates those with FastAPI's own field
validators (each path parameter's `ModelField.validate`, `request_params_to_args` for query
and header values, `request_body_to_args` for the body: the same values and the same
coercions) and awaits the handler. Whenever anything does not validate it returns None, and the
caller hands the request to FastAPI's handler, which answers exactly as it always did (the same
422 envelope, the same details). Routes with anything else (dependency overrides, security,
background tasks, a response parameter, forms, handlers that return a model) keep FastAPI's
handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute

DirectCall = Callable[[Request], Awaitable[Response | None]]


def _plain_dependency(sub: Dependant) -> bool:
    """An async callable that takes the request at most (like `routes._services`)."""
    return (
        sub.name is not None
        and inspect.iscoroutinefunction(sub.call)
        and not (
            sub.path_params
            or sub.query_params
            or sub.header_params
            or sub.cookie_params
            or sub.body_params
            or sub.dependencies
            or sub.http_connection_param_name
            or sub.websocket_param_name
            or sub.response_param_name
            or sub.background_tasks_param_name
            or sub.security_scopes_param_name
            or sub.own_oauth_scopes
            or sub.parent_oauth_scopes
        )
    )


def _eligible(route: APIRoute) -> bool:
    d = route.dependant
    returns = getattr(d.call, "__annotations__", {}).get("return")
    return (
        inspect.iscoroutinefunction(d.call)
        and returns in (Response, "Response")  # nothing for FastAPI to serialize
        and not (
            d.cookie_params
            or len(d.body_params) > 1
            or d.http_connection_param_name
            or d.websocket_param_name
            or d.response_param_name
            or d.background_tasks_param_name
            or d.security_scopes_param_name
            or d.own_oauth_scopes
        )
        and all(_plain_dependency(sub) for sub in d.dependencies)
    )


def direct_caller(route: APIRoute) -> DirectCall | None:
    """The direct call of `route`'s handler, or None when the route needs FastAPI's handler."""
    if not _eligible(route):
        return None
    d = route.dependant
    call = d.call
    assert call is not None
    overrides = route.dependency_overrides_provider
    subs: list[tuple[str, Any, str | None]] = [
        (str(sub.name), sub.call, sub.request_param_name) for sub in d.dependencies
    ]
    body_params = d.body_params
    path_fields = [(field.name, field.alias, field) for field in d.path_params]

    async def direct(request: Request) -> Response | None:
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return None  # tests may override dependencies: FastAPI resolves those
        values: dict[str, Any] = {}
        received_path = request.path_params
        for name, alias, field in path_fields:  # always one plain value each
            raw = received_path.get(alias)
            if raw is None:
                return None
            value, errors = field.validate(raw, values, loc=("path", alias))
            if errors:
                return None
            values[name] = value
        if d.query_params:
            found, errors = request_params_to_args(d.query_params, request.query_params)
            if errors:
                return None
            values.update(found)
        if d.header_params:
            found, errors = request_params_to_args(d.header_params, request.headers)
            if errors:
                return None
            values.update(found)
        if body_params:
            if not await request.body():
                return None
            try:
                received = await request.json()
            except ValueError:
                return None
            found, errors = await request_body_to_args(body_params, received, False)
            if errors:
                return None
            values.update(found)
        if d.request_param_name:
            values[d.request_param_name] = request
        for sub_name, dependency, request_name in subs:
            values[sub_name] = await (
                dependency(**{request_name: request}) if request_name else dependency()
            )
        response: Response = await call(**values)
        return response

    return direct

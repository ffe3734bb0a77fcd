"""Calling a route's handler without FastAPI's per-request machinery, when the request is valid.

Per request, FastAPI's handler builds an error context for the endpoint, parses the
Content-Type with the `email` package, resolves sub-dependencies recursively (a cache, an exit
stack and a scratch `Response` each time) and only then validates the parameters: about a
fifth of the CPU an append costs here. For routes whose parameters are plain path, query or
header values, one JSON body, the request and parameterless async dependencies (`Svc`),
`direct_caller(route)` returns a function that validates those with FastAPI's own field
validators and awaits the handler: each path, query and header parameter's
`ModelField.validate`, under the key FastAPI reads it by, and one JSON body validated whole, as
FastAPI does (the same values, the same coercions). A parameter that is not one plain value (a
list, a model, a JSON field, several aliases, a default that needs copying or validating) or a
body of several parts goes through FastAPI's `request_params_to_args` / `request_body_to_args`
(for one optional header, the former cost an append 7% of its instructions). Whenever anything
does not validate it returns None, and the caller hands the request to FastAPI's handler, which
answers exactly as it always did (the same 422 envelope, the same details). Routes with
anything else (dependency overrides, security, background tasks, a response parameter, forms,
handlers that return a model) keep FastAPI's handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response, params
from fastapi._compat import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute

try:  # FastAPI's own helpers: what key a parameter is read by, and which need its handling
    from fastapi.dependencies.utils import (
        _get_form_models,
        _get_param_aliases,
        _get_param_model,
        _is_json_field,
        _should_embed_body_fields,
    )
except ImportError:  # pragma: no cover - another FastAPI: its request_*_to_args then
    _get_param_aliases = None  # type: ignore[assignment]

DirectCall = Callable[[Request], Awaitable[Response | None]]
# (name, request key, field, default when absent) of a plain query or header parameter.
PlainParam = tuple[str, str, Any, Any]
_IMMUTABLE = (type(None), bool, int, float, str, bytes)


def _plain_params(fields: list[Any]) -> list[PlainParam] | None:
    """The parameters as plain single values, or None when any needs FastAPI's handling."""
    if _get_param_aliases is None:
        return None
    plain: list[PlainParam] = []
    for field in fields:
        info = field.field_info
        if (
            not isinstance(info, params.Param)
            or _get_param_model(field) is not None
            or _is_json_field(field)
            or field_annotation_is_sequence(info.annotation)
            or info.validate_default
            or not isinstance(field.default, _IMMUTABLE)
        ):
            return None
        aliases = _get_param_aliases(field)
        if len(aliases) != 1:
            return None
        plain.append((field.name, aliases[0][1], field, field.default))
    return plain


def _read_plain(plain: list[PlainParam], where: str, received: Any, values: dict[str, Any]) -> bool:
    """Validate `plain` parameters from `received` into `values`; False on any error."""
    for name, key, field, default in plain:
        raw = received.get(key)
        if raw is None:
            if field.field_info.is_required():
                return False  # FastAPI answers the missing value
            values[name] = default
            continue
        value, errors = field.validate(raw, values, loc=(where, key))
        if errors:
            return False
        values[name] = value
    return True


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
    # One JSON body, not embedded: validated whole, as FastAPI does, without its form checks.
    whole_body = (
        body_params[0]
        if len(body_params) == 1
        and _get_param_aliases is not None
        and not _should_embed_body_fields(body_params)
        and not _get_form_models(body_params[0])
        else None
    )
    path_fields = [(field.name, field.alias, field) for field in d.path_params]
    plain_query = _plain_params(d.query_params) if d.query_params else []
    plain_headers = _plain_params(d.header_params) if d.header_params else []

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
        if plain_query:
            if not _read_plain(plain_query, "query", request.query_params, values):
                return None
        elif d.query_params:
            found, errors = request_params_to_args(d.query_params, request.query_params)
            if errors:
                return None
            values.update(found)
        if plain_headers:
            if not _read_plain(plain_headers, "header", request.headers, values):
                return None
        elif d.header_params:
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
            if whole_body is not None:
                value, errors = whole_body.validate(received, values, loc=("body",))
                if errors:
                    return None
                values[whole_body.name] = value
            else:
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

"""Declaring HTTP endpoints once: the route, its schemas and roles feed both the nameko
``@http`` entrypoint and the OpenAPI document."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import eventlet
from marshmallow import Schema
from nameko.web.handlers import http

from contracts.rpc import load
from gateway import auth
from gateway.errors import json_response, response_for
from services.common.errors import BadRequest


@dataclass
class Route:
    method: str
    path: str  # OpenAPI style: /orders/{order_id}
    summary: str
    tag: str
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    public: bool = False
    roles: tuple[str, ...] = ()
    description: str = ""
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 409, 422))


ROUTES: list[Route] = []

RPC_TIMEOUT = float(os.environ.get("IOTB_RPC_TIMEOUT", "30"))


def call(proxy: Any, method: str, *args: Any) -> Any:
    """An RPC with a deadline: a service that does not answer becomes a 503, not a hang."""
    with eventlet.Timeout(RPC_TIMEOUT):
        return getattr(proxy, method)(*args)


def _werkzeug_path(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def _json_body(request: Any) -> Any:
    raw = request.get_data(as_text=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_float=str)  # keep 12.50 exact: never a float
    except ValueError as exc:
        raise BadRequest("the body is not valid JSON", {"_body": ["not valid JSON"]}) from exc


def endpoint(method: str, path: str, summary: str, tag: str, **options: Any) -> Callable:
    route = Route(method=method, path=path, summary=summary, tag=tag, **options)
    ROUTES.append(route)

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(self: Any, request: Any, **params: str) -> Any:
            try:
                kwargs: dict[str, Any] = dict(params)
                if not route.public:
                    actor = auth.verify(request.headers.get("Authorization"))
                    if route.roles:
                        actor.require(*route.roles)
                    kwargs["actor"] = actor
                if route.body is not None:
                    payload = _json_body(request)
                    load(route.body(), payload)  # refuse bad input here, with field errors
                    kwargs["payload"] = payload
                if route.query is not None:
                    query = {k: v for k, v in request.args.items() if v != ""}
                    load(route.query(), query)
                    kwargs["query"] = query
                result = fn(self, request, **kwargs)
                if hasattr(result, "status_code"):
                    return result
                return json_response(route.status, result)
            except Exception as exc:  # noqa: BLE001 - every failure gets the JSON error format
                return response_for(exc)

        return http(method, _werkzeug_path(path))(handler)

    return decorate

"""The OpenAPI document, generated from the declared routes and their marshmallow schemas."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from gateway.api import ROUTES, Route

ERROR_TEXT = {
    400: "Malformed request (wrong types, missing or unknown fields)",
    401: "Missing, invalid or expired token",
    403: "Your role or company scope does not allow this",
    404: "No such thing within your scope",
    409: "Conflicts with the current state (duplicate, wrong state, in use)",
    422: "A value breaks a rule (amount, currency, ...)",
    503: "A service did not answer in time",
}


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"example": "VALIDATION_FAILED"})
    message = fields.String(required=True)
    fields = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), metadata={"example": {}}
    )


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


def build_spec() -> dict:
    spec = APISpec(
        title="IoT fleet billing API",
        version="0.1.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Renewals, balances, payments and staff workflows for IoT device "
            "fleets. Log in with POST /auth/login and send the token as a Bearer token. "
            "Every failure answers with the Error schema."
        },
        servers=[{"url": "http://127.0.0.1:8000"}],
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Error", schema=Error)
    paths: dict[str, dict] = {}
    for route in ROUTES:
        operation: dict = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
            "responses": {},
        }
        if route.description or route.roles:
            roles = f" Roles: {', '.join(route.roles)}." if route.roles else ""
            operation["description"] = (route.description + roles).strip()
        params = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", route.path)
        ]
        if route.query is not None:
            params.append({"in": "query", "schema": route.query})
        if params:
            operation["parameters"] = params
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.body}},
            }
        ok: dict = {"description": "OK"}
        if route.response is not None:
            schema: object = route.response
            if route.many:
                schema = {"type": "array", "items": route.response}
            ok["content"] = {"application/json": {"schema": schema}}
        operation["responses"][str(route.status)] = ok
        codes = list(route.errors)
        if route.public and route.errors == Route.__dataclass_fields__["errors"].default:
            codes = [c for c in codes if c not in (401, 403)]  # nobody is asked for a token
        for code in [*codes, 503]:
            operation["responses"][str(code)] = {
                "description": ERROR_TEXT[code],
                "content": {"application/json": {"schema": "Error"}},
            }
        if not route.public:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()

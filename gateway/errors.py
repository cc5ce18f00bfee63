"""One JSON error format for every failure, and one table from error class to status.

{"error": {"code": "VALIDATION_FAILED", "message": "amount: ...",
           "fields": {"amount": ["amount has more than two decimals"]}}}
"""

from __future__ import annotations

import json
import logging

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from werkzeug.wrappers import Response

from services.common.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)

log = logging.getLogger(__name__)

STATUS: dict[type[AppError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ValidationFailed: 422,
    Unavailable: 503,
}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def json_response(status: int, body: object, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def response_for(exc: BaseException) -> Response:
    if isinstance(exc, AppError):
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        return json_response(status, error_body(exc.code, exc.message, exc.fields))
    if isinstance(exc, (eventlet.Timeout, UnknownService)):
        return json_response(
            503, error_body("UNAVAILABLE", "a service did not answer in time; try again")
        )
    if isinstance(exc, RemoteError):
        log.error("remote error: %s", exc)
    else:
        log.exception("unexpected error", exc_info=exc)
    return json_response(500, error_body("INTERNAL", "something went wrong on our side"))

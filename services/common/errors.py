"""Domain and application errors, the same classes in every service and in the gateway.

They cross nameko RPC intact (registered with ``deserialize_to_instance``), and the
gateway maps each class to an HTTP status with one table (gateway/errors.py).
"""

from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class AppError(Exception):
    code = "ERROR"

    def __init__(self, message: str, fields: dict | None = None) -> None:
        super().__init__(message, fields or {})
        self.message = message
        self.fields = fields or {}

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class BadRequest(AppError):
    code = "BAD_REQUEST"


@deserialize_to_instance
class ValidationFailed(AppError):
    """The request is well-formed but a field's value breaks a rule (422)."""

    code = "VALIDATION_FAILED"


@deserialize_to_instance
class Unauthorized(AppError):
    code = "UNAUTHORIZED"


@deserialize_to_instance
class Forbidden(AppError):
    code = "FORBIDDEN"


@deserialize_to_instance
class NotFound(AppError):
    code = "NOT_FOUND"


@deserialize_to_instance
class Conflict(AppError):
    """The request clashes with the current state (duplicate, wrong state, in use)."""

    code = "CONFLICT"


@deserialize_to_instance
class Unavailable(AppError):
    """Something outside us (a payment provider) did not answer; safe to retry (503)."""

    code = "UNAVAILABLE"


def field_error(field: str, message: str, cls: type[AppError] = ValidationFailed) -> AppError:
    return cls(f"{field}: {message}", {field: [message]})

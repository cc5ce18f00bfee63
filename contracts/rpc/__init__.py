"""Request and response schemas of the services' RPC methods (and of the HTTP API, which
forwards them). A service loads its arguments with the same schema the gateway checked."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError

from services.common.errors import BadRequest, ValidationFailed

# marshmallow messages that mean "malformed request" (400) rather than "a value breaks a
# rule" (422)
_MALFORMED = (
    "Missing data for required field.",
    "Unknown field.",
    "Not a valid",
    "Invalid input type.",
    "Field may not be null.",
)


class Request(Schema):
    class Meta:
        unknown = RAISE


def _messages(errors: Any) -> list[str]:
    if isinstance(errors, dict):
        return [m for v in errors.values() for m in _messages(v)]
    if isinstance(errors, list):
        return [m for v in errors for m in _messages(v)]
    return [str(errors)]


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(_flatten(value, name))
            else:
                flat[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return flat


def load(schema: Schema, data: Any, **kwargs: Any) -> Any:
    """Load ``data`` or raise BadRequest (malformed) / ValidationFailed (bad values)."""
    if not isinstance(data, dict) and not kwargs.get("many"):
        raise BadRequest("the body must be a JSON object", {"_body": ["must be a JSON object"]})
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        fields = _flatten(
            exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages}
        )
        malformed = any(m.startswith(_MALFORMED) for m in _messages(exc.messages))
        first = next(iter(fields.items()), ("_body", ["invalid"]))
        message = f"{first[0]}: {first[1][0]}"
        raise (BadRequest if malformed else ValidationFailed)(message, fields) from exc

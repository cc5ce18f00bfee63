"""The message envelope every event travels in, and the registry of payload schemas.

Producers add optional fields freely; consumers ignore unknown fields (``EXCLUDE``).
Any other change is a new version, registered with an upcaster from the version before,
so a consumer always reads the latest shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from contracts.fields import Timestamp


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    source = fields.String(required=True)
    subject = fields.String(required=True)
    sequence = fields.Integer(required=True)
    time = Timestamp(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)
    causation_id = fields.String(allow_none=True, load_default=None)
    data = fields.Dict(required=True)


class PayloadSchema(Schema):
    class Meta:
        unknown = EXCLUDE


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    version: int
    source: str
    subject: str
    sequence: int
    time: datetime
    correlation_id: str | None
    causation_id: str | None
    data: dict[str, Any]


@dataclass
class EventContract:
    source: str
    type: str
    schemas: dict[int, type[Schema]]
    upcasters: dict[int, Callable[[dict], dict]]  # from version n to n + 1

    @property
    def latest(self) -> int:
        return max(self.schemas)


CONTRACTS: dict[tuple[str, str], EventContract] = {}


def event(source: str, type_: str, version: int = 1) -> Callable[[type[Schema]], type[Schema]]:
    """Register ``schema`` as the payload of ``source``'s event ``type_`` at ``version``."""

    def register(schema: type[Schema]) -> type[Schema]:
        contract = CONTRACTS.setdefault((source, type_), EventContract(source, type_, {}, {}))
        contract.schemas[version] = schema
        return schema

    return register


def upcaster(source: str, type_: str, from_version: int) -> Callable:
    def register(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        CONTRACTS[(source, type_)].upcasters[from_version] = fn
        return fn

    return register


def contract(source: str, type_: str) -> EventContract:
    _load_all()
    try:
        return CONTRACTS[(source, type_)]
    except KeyError:
        raise KeyError(f"no contract for event {source}.{type_}") from None


def validate(message: dict) -> dict[str, Any]:
    """Errors of an envelope and its payload against the registered schema ({} if valid)."""
    errors = EnvelopeSchema().validate(message)
    if errors:
        return errors
    try:
        found = contract(message["source"], message["type"])
    except KeyError as exc:
        return {"type": [str(exc)]}
    schema = found.schemas.get(message["version"])
    if schema is None:
        return {"version": [f"unknown version {message['version']}"]}
    data_errors = schema().validate(message["data"])
    return {"data": data_errors} if data_errors else {}


def parse(message: dict) -> Envelope:
    """Load an envelope, upcast its payload to the latest version and load it."""
    head = EnvelopeSchema().load(message)
    found = contract(head["source"], head["type"])
    data, version = dict(head["data"]), head["version"]
    if version not in found.schemas:
        raise ValidationError({"version": [f"unknown version {version}"]})
    while version < found.latest:
        data = found.upcasters[version](data)
        version += 1
    loaded = found.schemas[version]().load(data)
    return Envelope(**{**head, "version": version, "data": loaded})


def dump_payload(source: str, type_: str, data: dict) -> tuple[int, dict]:
    """Serialise a payload with its latest schema; refuses data the schema rejects."""
    found = contract(source, type_)
    schema = found.schemas[found.latest]()
    dumped = schema.dump(data)
    errors = schema.validate(dumped)
    if errors:
        raise ValidationError({f"{source}.{type_}": errors})
    return found.latest, dumped


def _load_all() -> None:
    # importing the modules registers their schemas
    from contracts.events import (  # noqa: F401
        billing,
        catalog,
        devices,
        notifications,
        payments,
    )

"""Base aggregate: every domain event carries ``meta`` (actor, correlation and causation ids).

The meta of the message or request being handled is held in a context variable, so domain
methods stay in the words of the product and never pass plumbing around.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import field
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate as _Aggregate

_META: contextvars.ContextVar[dict | None] = contextvars.ContextVar("iotb_meta", default=None)


@contextmanager
def event_meta(**meta: object) -> Iterator[None]:
    """Within this block every new domain event records ``meta`` (None values dropped)."""
    clean = {k: v for k, v in meta.items() if v is not None}
    token = _META.set(clean)
    try:
        yield
    finally:
        _META.reset(token)


def stable_id(kind: str, key: str) -> UUID:
    """A deterministic aggregate id: creating the same thing twice collides in the store."""
    return uuid5(NAMESPACE_URL, f"https://iot-billing.example/{kind}/{key}")


def current_meta() -> dict:
    return dict(_META.get() or {})


class Aggregate(_Aggregate):
    class Event(_Aggregate.Event):
        meta: dict | None = field(default=None, kw_only=True)

        def __post_init__(self) -> None:
            if self.meta is None:
                object.__setattr__(self, "meta", current_meta())

    class Created(Event, _Aggregate.Created):
        pass

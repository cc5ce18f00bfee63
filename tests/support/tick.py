"""A tiny service used by the infrastructure tests: a counter whose ticks are published by
the generic relay and consumed (idempotently) by a nameko subscriber.

    python -m services.common.relay testsvc --module tests.support.tick
    nameko run --config <cfg> tests.support.tick:TickService
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from eventsourcing.domain import event
from marshmallow import fields
from nameko.rpc import rpc

from contracts.envelope import CONTRACTS, PayloadSchema
from contracts.envelope import event as contract
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.common.domain import Aggregate, stable_id
from services.common.relay import WireEvent
from services.common.store import ServiceApplication

SOURCE = "testsvc"

if (SOURCE, "ticked") not in CONTRACTS:

    @contract(SOURCE, "ticked", 1)
    class TickedV1(PayloadSchema):
        counter = fields.String(required=True)
        number = fields.Integer(required=True)


class Counter(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0
        self.seen: list[str] = []

    @staticmethod
    def create_id(name: str) -> Any:
        return stable_id("counter", name)

    @event("Ticked")
    def tick(self, number: int) -> None:
        self.value += 1


class TickApplication(ServiceApplication):
    service = SOURCE

    def counter(self, name: str) -> Counter:
        return self.find(Counter.create_id(name)) or Counter(name=name)

    def tick_many(self, name: str, count: int, batch: int = 200) -> None:
        counter = self.counter(name)
        for number in range(count):
            counter.tick(number=number)
            if (number + 1) % batch == 0:
                self.save(counter)
        self.save(counter)

    def apply_message(self, message_id: str, name: str) -> bool:
        def effect() -> list:
            counter = self.counter(name)
            counter.tick(number=counter.value)
            return [counter]

        return self.handle_once("testsvc.on_ticked", message_id, effect)


def open_store() -> tuple[TickApplication, sa.Engine]:
    app = TickApplication()
    return app, app.engine


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    if isinstance(e, Counter.Ticked):
        yield WireEvent(
            "ticked", str(e.originator_id), {"counter": str(e.originator_id), "number": e.number}
        )


class TickService:
    name = "ticklistener"
    app: TickApplication = Store(TickApplication)

    @rpc
    def value(self, name: str) -> int:
        return self.app.counter(name).value

    @subscribe(SOURCE, "ticked")
    def on_ticked(self, envelope: Any) -> None:
        self.app.apply_message(envelope.id, "received")

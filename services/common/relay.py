"""Outbox relay: follows a service's notification log and publishes its wire events.

The notification log is the outbox. The relay publishes each wire event to the topic
exchange ``<service>.events`` (routing key = event type) with publisher confirms and
``mandatory``, then moves its persisted position. A crash between the two republishes at
most one page; envelope ids are derived from the notification id, so consumers (which
dedupe by envelope id) see one effect.

Run one per service: ``python -m services.common.relay <service>``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import sqlalchemy as sa
from eventsourcing.application import Application
from kombu import Connection, Exchange, Producer

from contracts.envelope import dump_payload
from services.common.config import amqp_uri

log = logging.getLogger(__name__)

_meta = sa.MetaData()
relay_position = sa.Table(
    "relay_position",
    _meta,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class WireEvent:
    type: str
    subject: str
    data: dict[str, Any]


ToWire = Callable[[Any, Application], Iterable[WireEvent]]


def event_exchange(service: str) -> Exchange:
    # must match nameko's declaration exactly, or RabbitMQ refuses it (PRECONDITION_FAILED)
    return Exchange(f"{service}.events", type="topic", durable=True, delivery_mode=2)


def envelope_id(service: str, notification_id: int, index: int) -> str:
    return str(uuid5(NAMESPACE_URL, f"iotb:{service}:{notification_id}:{index}"))


def build_envelopes(
    service: str, notification_id: int, event: Any, to_wire: ToWire, app: Application
) -> list[dict]:
    meta = getattr(event, "meta", None) or {}
    envelopes = []
    for index, wire in enumerate(to_wire(event, app)):
        version, data = dump_payload(service, wire.type, wire.data)
        envelopes.append(
            {
                "id": envelope_id(service, notification_id, index),
                "type": wire.type,
                "version": version,
                "source": service,
                "subject": wire.subject,
                "sequence": event.originator_version,
                "time": event.timestamp.isoformat(),
                "correlation_id": meta.get("correlation_id"),
                "causation_id": meta.get("causation_id"),
                "data": data,
            }
        )
    return envelopes


class Relay:
    def __init__(
        self,
        service: str,
        app: Application,
        engine: sa.Engine,
        to_wire: ToWire,
        uri: str | None = None,
        page: int = 500,
    ) -> None:
        self.service = service
        self.app = app
        self.engine = engine
        self.to_wire = to_wire
        self.uri = uri or amqp_uri()
        self.page = page
        self.exchange = event_exchange(service)
        self.unroutable = 0
        self.published = 0
        self._conn: Connection | None = None
        self._producer: Producer | None = None

    # -- position ------------------------------------------------------------------------
    def setup(self) -> None:
        _meta.create_all(self.engine)
        with self.engine.begin() as conn:
            if (
                conn.execute(
                    sa.select(relay_position.c.position).where(
                        relay_position.c.name == self.service
                    )
                ).first()
                is None
            ):
                conn.execute(relay_position.insert().values(name=self.service, position=0))

    def position(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(relay_position.c.position).where(relay_position.c.name == self.service)
            ).scalar_one()

    def _move(self, position: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                relay_position.update()
                .where(relay_position.c.name == self.service)
                .values(position=position)
            )

    # -- broker --------------------------------------------------------------------------
    def _connect(self) -> Producer:
        if self._producer is None:
            self._conn = Connection(self.uri, transport_options={"confirm_publish": True})
            self._conn.ensure_connection(max_retries=3)
            channel = self._conn.channel()
            self.exchange(channel).declare()
            self._producer = Producer(channel, on_return=self._on_return)
        return self._producer

    def _on_return(
        self, exception: Exception, exchange: str, routing_key: str, message: Any
    ) -> None:
        # nobody has bound a queue for this event type yet; the event stays in the store
        self.unroutable += 1
        log.debug("%s.%s has no subscriber yet (returned by the broker)", exchange, routing_key)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.release()
        self._conn = self._producer = None

    # -- work ----------------------------------------------------------------------------
    def publish_pending(self) -> int:
        """Publish every event after the position; return how many messages were sent."""
        sent = 0
        while True:
            start = self.position()
            notes = self.app.recorder.select_notifications(
                start=start, limit=self.page, inclusive_of_start=False
            )
            if not notes:
                return sent
            producer = self._connect()
            last = start
            try:
                for note in notes:
                    event = self.app.mapper.to_domain_event(note)
                    for envelope in build_envelopes(
                        self.service, note.id, event, self.to_wire, self.app
                    ):
                        producer.publish(
                            json.dumps(envelope),
                            exchange=self.exchange,
                            routing_key=envelope["type"],
                            mandatory=True,
                            delivery_mode=2,
                            content_type="application/json",
                            content_encoding="utf-8",
                            message_id=envelope["id"],
                            retry=False,
                        )
                        sent += 1
                        self.published += 1
                    last = note.id
            finally:
                if last != start:
                    self._move(last)

    def run_forever(self, idle: float = 0.2, stop: Callable[[], bool] = lambda: False) -> None:
        backoff = 0.5
        while not stop():
            try:
                if self.publish_pending() == 0:
                    time.sleep(idle)
                backoff = 0.5
            except Exception:  # broker or store down: reconnect and resume from the position
                log.exception("relay %s failed; retrying in %.1fs", self.service, backoff)
                self.close()
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
        self.close()


def build(service: str, module_name: str | None = None) -> Relay:
    module = importlib.import_module(module_name or f"services.{service}.relay")
    app, engine = module.open_store()
    return Relay(service, app, engine, module.to_wire)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Publish a service's events to RabbitMQ.")
    parser.add_argument("service")
    parser.add_argument(
        "--module", help="module with open_store() and to_wire() (default services.<service>.relay)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(levelname)s %(message)s")
    relay = build(args.service, args.module)
    relay.setup()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    log.info("relay for %s.events started at position %d", args.service, relay.position())
    relay.run_forever(stop=lambda: bool(stopping))


if __name__ == "__main__":
    main()

"""Subscribing to other services' events (nameko ``@event_handler`` with our rules).

- The queue is durable and dead-letters to ``iotb.dead-letter``: a message that fails
  twice (first try and one redelivery) is parked in ``iotb.dead-letters`` for an operator,
  never dropped.
- The handler receives a parsed, upcast ``Envelope``; a message that does not match its
  contract is dead-lettered at once.
- Nothing is acked before the handler returns. Handlers make their effect idempotent
  (``ServiceApplication.handle_once`` keyed by the envelope id).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu import Connection, Exchange, Queue
from marshmallow import ValidationError
from nameko.events import SERVICE_POOL, EventHandler

from contracts.envelope import parse
from services.common.config import amqp_uri

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "iotb.dead-letter"
DEAD_LETTER_QUEUE = "iotb.dead-letters"


def declare_dead_letters(uri: str) -> None:
    with Connection(uri) as conn:
        channel = conn.channel()
        exchange = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
        exchange(channel).declare()
        Queue(DEAD_LETTER_QUEUE, exchange=exchange, durable=True)(channel).declare()


class Subscription(EventHandler):
    def setup(self) -> None:
        super().setup()
        self.queue.queue_arguments = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
        declare_dead_letters(self.container.config.get("AMQP_URI") or amqp_uri())

    def handle_message(self, body: Any, message: Any) -> None:
        try:
            envelope = parse(body if isinstance(body, dict) else {})
        except (ValidationError, KeyError, TypeError) as exc:
            log.error("dead-lettering malformed %s message: %s", self.event_type, exc)
            self._reject(message)
            return
        super().handle_message(envelope, message)

    def handle_message_processed(
        self, message: Any, result: Any = None, exc_info: Any = None
    ) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        elif not message.delivery_info.get("redelivered"):
            self.queue_consumer.requeue_message(message)
        else:
            log.error("dead-lettering %s after a retry: %r", self.event_type, exc_info[1])
            self._reject(message)

    def _reject(self, message: Any) -> None:
        if message.channel.connection:
            message.reject(requeue=False)


def subscribe(source_service: str, event_type: str, **kwargs: Any):
    """``@subscribe("billing", "order_paid")``: one durable queue per handler."""
    return Subscription.decorator(source_service, event_type, handler_type=SERVICE_POOL, **kwargs)


def subscriptions(service_cls: type) -> list[tuple[str, str, str]]:
    """(queue, source service, event type) of every ``@subscribe`` handler of a service."""
    found = []
    for attr in sorted(dir(service_cls)):
        for entrypoint in getattr(getattr(service_cls, attr), "nameko_entrypoints", ()):
            if isinstance(entrypoint, Subscription):
                queue = f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{service_cls.name}.{attr}"
                found.append((queue, entrypoint.source_service, entrypoint.event_type))
    return found


def declare_subscriptions(service_classes: list[type], uri: str | None = None) -> int:
    """Declare every subscriber's durable queue and binding before any service or relay
    starts, so no event published on a first start is lost for want of a queue.

    The declarations match what nameko declares when the service starts.
    """
    uri = uri or amqp_uri()
    declare_dead_letters(uri)
    count = 0
    with Connection(uri) as conn, conn.channel() as channel:
        for cls in service_classes:
            for queue, source, event_type in subscriptions(cls):
                exchange = Exchange(f"{source}.events", type="topic", durable=True)
                exchange(channel).declare()
                Queue(
                    queue,
                    exchange=exchange,
                    routing_key=event_type,
                    durable=True,
                    auto_delete=False,
                    exclusive=False,
                    queue_arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE},
                )(channel).declare()
                count += 1
    return count

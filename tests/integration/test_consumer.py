"""Consumers are idempotent: the same event delivered twice has one effect, and a message
that cannot be read is parked in the dead-letter queue, never dropped."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Producer, Queue

from services.common.config import StoreConfig
from services.common.consumer import DEAD_LETTER_QUEUE
from tests.conftest import new_pg_store
from tests.support import tick
from tests.support.processes import nameko_config, nameko_run, wait_for

pytestmark = pytest.mark.integration


def _envelope(message_id: str, number: int) -> dict:
    return {
        "id": message_id,
        "type": "ticked",
        "version": 1,
        "source": "testsvc",
        "subject": "counter-x",
        "sequence": number,
        "time": datetime.now(UTC).isoformat(),
        "correlation_id": None,
        "causation_id": None,
        "data": {"counter": "counter-x", "number": number},
    }


def _publish(uri: str, body: object) -> None:
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        producer.publish(
            json.dumps(body),
            exchange=Exchange("testsvc.events", type="topic", durable=True),
            routing_key="ticked",
            content_type="application/json",
            delivery_mode=2,
        )


def _queue_depth(uri: str, name: str) -> int:
    with Connection(uri) as conn:
        return Queue(name)(conn.channel()).queue_declare(passive=True).message_count


def test_the_same_event_twice_has_one_effect(amqp_uri: str, tmp_path) -> None:
    store = new_pg_store("testsvc")
    env = {
        **os.environ,
        "IOTB_STORE": "postgres",
        "IOTB_DB_PREFIX": store.pg_dbname[: -len("testsvc")],
        "AMQP_URI": amqp_uri,
        "IOTB_DATA_DIR": str(tmp_path),
    }
    # one worker: messages are handled in the order they arrive
    config = nameko_config(tmp_path / "nameko.yaml", amqp_uri, max_workers=1)
    listener = nameko_run("ticklistener", "tests.support.tick:TickService", config, env, tmp_path)
    app = tick.TickApplication(
        config=StoreConfig(service="testsvc", kind="postgres", pg_dbname=store.pg_dbname)
    )
    try:
        queue = "evt-testsvc-ticked--ticklistener.on_ticked"
        wait_for(
            lambda: _queue_depth(amqp_uri, queue) == 0, timeout=60, what="the listener's queue"
        )
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        _publish(amqp_uri, _envelope(first, 1))
        _publish(amqp_uri, _envelope(first, 1))  # a redelivery of the same event
        _publish(amqp_uri, _envelope(second, 2))
        # the third message is handled after the duplicate, so by now all three are done
        wait_for(
            lambda: (
                app.find(tick.Counter.create_id("received")) is not None
                and app.repository.get(tick.Counter.create_id("received")).value >= 2
            ),
            timeout=60,
            what=lambda: f"two effects; listener log:\n{listener.tail()}",
        )
        wait_for(lambda: _queue_depth(amqp_uri, queue) == 0, timeout=30, what="an empty queue")
        assert app.repository.get(tick.Counter.create_id("received")).value == 2

        # a message that does not match its contract goes to the dead-letter queue
        before = _queue_depth(amqp_uri, DEAD_LETTER_QUEUE)
        _publish(amqp_uri, {"id": "broken", "type": "ticked"})
        wait_for(
            lambda: _queue_depth(amqp_uri, DEAD_LETTER_QUEUE) == before + 1,
            timeout=30,
            what="the malformed message in the dead-letter queue",
        )
        assert app.repository.get(tick.Counter.create_id("received")).value == 2
    finally:
        listener.stop()
        app.close()

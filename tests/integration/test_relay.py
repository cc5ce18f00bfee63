"""The outbox relay: publishes every event once confirmed, keeps its position, and loses
nothing when killed and restarted."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from contracts.envelope import validate
from services.common.relay import Relay, envelope_id
from tests.conftest import new_pg_store
from tests.support import tick
from tests.support.processes import relay_run, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def tick_env(amqp_uri: str, tmp_path) -> Iterator[dict]:
    store = new_pg_store("testsvc")
    prefix = store.pg_dbname[: -len("testsvc")]
    env = {
        **os.environ,
        "IOTB_STORE": "postgres",
        "IOTB_DB_PREFIX": prefix,
        "AMQP_URI": amqp_uri,
        "IOTB_DATA_DIR": str(tmp_path),
    }
    yield env


def _store(env: dict) -> tick.TickApplication:
    from services.common.config import StoreConfig

    return tick.TickApplication(
        config=StoreConfig(
            service="testsvc", kind="postgres", pg_dbname=env["IOTB_DB_PREFIX"] + "testsvc"
        )
    )


def _audit_queue(conn: Connection, name: str) -> Queue:
    queue = Queue(
        name, exchange=Exchange("testsvc.events", type="topic", durable=True), routing_key="#"
    )
    queue(conn.channel()).declare()
    return queue


def _drain(conn: Connection, queue: Queue, into: list[dict]) -> int:
    got = 0
    with conn.channel() as channel:
        bound = queue(channel)
        while (message := bound.get(no_ack=True)) is not None:
            into.append(json.loads(message.body))
            got += 1
    return got


def test_relay_publishes_every_event_confirmed_and_valid(tick_env: dict) -> None:
    app = _store(tick_env)
    app.tick_many("a", 250)
    with Connection(tick_env["AMQP_URI"]) as conn:
        queue = _audit_queue(conn, "audit-valid")
        relay = Relay("testsvc", app, app.engine, tick.to_wire, uri=tick_env["AMQP_URI"], page=100)
        relay.setup()
        assert relay.publish_pending() == 250
        # the position is persisted: a second relay on the same store publishes nothing
        again = Relay("testsvc", app, app.engine, tick.to_wire, uri=tick_env["AMQP_URI"])
        assert again.position() == app.recorder.max_notification_id()
        assert again.publish_pending() == 0
        relay.close()
        again.close()
        received: list[dict] = []
        wait_for(lambda: _drain(conn, queue, received) or len(received) >= 250, what="250 messages")
    assert len(received) == 250
    assert [m["data"]["number"] for m in received] == list(range(250))  # in log order
    assert all(validate(m) == {} for m in received)
    assert all(m["source"] == "testsvc" and m["type"] == "ticked" for m in received)


def test_killing_and_restarting_the_relay_loses_nothing(tick_env: dict, tmp_path) -> None:
    app = _store(tick_env)
    app.tick_many("b", 3000, batch=500)
    # every Ticked event goes on the wire (the Created event does not)
    notes = app.recorder.select_notifications(start=None, limit=10_000)
    expected = {envelope_id("testsvc", n.id, 0) for n in notes if n.topic.endswith(".Ticked")}
    assert len(expected) == 3000
    received: list[dict] = []
    by_id = {envelope_id("testsvc", n.id, 0): n.id for n in notes}

    def missing() -> list[int]:
        return sorted(by_id[i] for i in expected - {m["id"] for m in received})

    with Connection(tick_env["AMQP_URI"]) as conn:
        queue = _audit_queue(conn, "audit-kill")
        first = relay_run("testsvc", tick_env, tmp_path, module="tests.support.tick")
        try:
            # kill it mid-stream, without warning
            wait_for(
                lambda: _drain(conn, queue, received) is not None and len(received) >= 300,
                timeout=60,
                what="the first messages",
            )
        finally:
            first.kill()
        assert len({m["id"] for m in received}) < len(expected), (
            "the relay finished before the kill"
        )
        second = relay_run("testsvc", tick_env, tmp_path, module="tests.support.tick")
        try:
            wait_for(
                lambda: (
                    _drain(conn, queue, received) is not None
                    and {m["id"] for m in received} >= expected
                ),
                timeout=90,
                what=lambda: f"every event after the restart; missing {missing()}",
            )
        finally:
            second.stop()
    ids = [m["id"] for m in received]
    assert set(ids) == expected
    # at most one page may be published twice (consumers dedupe by envelope id)
    assert len(ids) - len(set(ids)) <= 500

"""The payments service as it runs: its relay publishing to RabbitMQ, and the nameko service
(RPC, callbacks forwarded as the gateway forwards them, the reconciliation timer) as a real
``nameko run`` process against the simulators."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from kombu import Connection, Queue

from contracts.envelope import parse
from gateway.routes.payments import PaymentsRoutes
from gateway.service import GatewayService
from services.common.actor import SYSTEM
from services.common.errors import Conflict, ValidationFailed
from services.common.relay import Relay, event_exchange
from services.payments.application import PaymentsApplication
from services.payments.config import load_settings
from services.payments.providers.base import CallbackAnswer
from services.payments.relay import to_wire
from services.payments.simulators import Simulators
from tests.support import simulators as support
from tests.support.platform import Platform
from tests.support.simulators import poll, set_behaviour, start_simulators

pytestmark = pytest.mark.integration

sim_keys_dir = support.sim_keys_dir
callback_server = support.callback_server
simulators = support.simulators

ORDER = {
    "purpose": "order",
    "reference_id": "order-7",
    "company_id": "c1",
    "method": "wechat_pay",
    "amount": "66.00",
    "currency": "CNY",
    "description": "renewal",
}


def drain(amqp_uri: str, queue_name: str) -> list[dict]:
    found = []
    with Connection(amqp_uri) as conn:
        queue = Queue(
            queue_name, exchange=event_exchange("payments"), routing_key="#", durable=False
        )(conn.channel())
        while (message := queue.get(no_ack=True)) is not None:
            found.append(json.loads(message.body))
    return found


def test_the_relay_publishes_one_payment_succeeded_however_many_callbacks(
    pg_store: Any, simulators: Simulators, callback_server: support.CallbackServer, amqp_uri: str
) -> None:
    app = PaymentsApplication(pg_store("payments"), settings=load_settings(simulators.env))
    callback_server.target = app.handle_callback
    queue_name = f"test-payments-{uuid.uuid4().hex[:8]}"
    with Connection(amqp_uri) as conn:  # a subscriber bound before anything is published
        Queue(queue_name, exchange=event_exchange("payments"), routing_key="#", durable=False)(
            conn.channel()
        ).declare()
    relay = Relay("payments", app, app.engine, to_wire, uri=amqp_uri)
    relay.setup()
    try:
        # a payment reported 200 times, a failed one, and one that does not match
        paid = app.start_payment(SYSTEM, {**ORDER, "amount": Decimal("66.00")})
        failed = app.start_payment(
            SYSTEM,
            {**ORDER, "method": "alipay", "amount": Decimal("66.00"), "reference_id": "order-8"},
        )
        wrong = app.start_payment(
            SYSTEM, {**ORDER, "amount": Decimal("66.00"), "reference_id": "order-9"}
        )
        set_behaviour(simulators.wechat.url, duplicate=200, concurrency=50)
        requests.post(
            f"{simulators.wechat.url}/_sim/pay/{paid['out_trade_no']}",
            json={"wait": True},
            timeout=120,
        )
        requests.post(
            f"{simulators.alipay.url}/_sim/pay/{failed['out_trade_no']}",
            json={"outcome": "fail", "wait": True},
            timeout=60,
        )
        set_behaviour(simulators.wechat.url, tamper="amount")
        requests.post(
            f"{simulators.wechat.url}/_sim/pay/{wrong['out_trade_no']}",
            json={"wait": True},
            timeout=60,
        )
        assert relay.publish_pending() == 3
        assert relay.publish_pending() == 0  # the position moved: nothing is sent twice
        messages = drain(amqp_uri, queue_name)
        envelopes = [parse(m) for m in messages]  # every message honours its contract
        assert Counter(e.type for e in envelopes) == Counter(
            {"payment_succeeded": 1, "payment_failed": 1, "payment_mismatch": 1}
        )
        succeeded = next(e for e in envelopes if e.type == "payment_succeeded")
        assert succeeded.subject == paid["attempt_id"] and succeeded.data["amount"] == Decimal(
            "66.00"
        )
        assert succeeded.data["reference_id"] == "order-7" and succeeded.data["late"] is False
        mismatch = next(e for e in envelopes if e.type == "payment_mismatch")
        assert mismatch.data["reported_amount"] == "66.01"
    finally:
        relay.close()
        callback_server.target = None
        app.close()


# -- the nameko service -------------------------------------------------------------------------
def rpc_forwarder(platform: Platform):
    """What the gateway's callback routes do: raw bytes and headers to payments over RPC."""

    def forward(method: str, headers: dict, body: bytes) -> CallbackAnswer:
        with platform.rpc(timeout=30) as rpc:
            answer = rpc.payments.handle_callback(
                {"provider": method, "headers": headers, "body": base64.b64encode(body).decode()}
            )
        return CallbackAnswer(answer["status"], answer["content_type"], answer["body"])

    return forward


@pytest.fixture
def payments_platform(amqp_uri: str, tmp_path: Path, simulators: Simulators) -> Iterator[Platform]:
    env = {
        **simulators.env,
        "IOTB_PAYMENTS_RECONCILE_INTERVAL": "1",
        "IOTB_PAYMENTS_RECONCILE_AFTER": "0",
    }
    with Platform(amqp_uri, tmp_path, services=("payments",), gateway=False, env=env) as platform:
        yield platform


def test_the_service_starts_payments_takes_callbacks_and_reconciles(
    payments_platform: Platform, simulators: Simulators, callback_server: support.CallbackServer
) -> None:
    callback_server.target = rpc_forwarder(payments_platform)
    actor = SYSTEM.to_rpc()
    with payments_platform.rpc() as rpc:
        # start, and a retry with the same idempotency key gets the same answer
        first = rpc.payments.start_payment(actor, {**ORDER, "idempotency_key": "k1"})
        again = rpc.payments.start_payment(actor, {**ORDER, "idempotency_key": "k1"})
        assert again == first and first["code_url"].startswith("weixin://")
        with pytest.raises(Conflict):
            rpc.payments.start_payment(actor, {**ORDER, "amount": "1.00", "idempotency_key": "k1"})
        with pytest.raises(ValidationFailed):
            rpc.payments.start_payment(actor, {**ORDER, "currency": "USD"})
        # the payer pays; the callback reaches the service and is recorded
        requests.post(
            f"{simulators.wechat.url}/_sim/pay/{first['out_trade_no']}",
            json={"wait": True},
            timeout=60,
        )
        assert rpc.payments.get_attempt(actor, first["attempt_id"])["status"] == "succeeded"
        # a PayPal payment whose webhooks are lost: the service's timer settles it
        paypal = rpc.payments.start_payment(
            actor, {**ORDER, "method": "paypal", "currency": "USD", "amount": "9.99"}
        )
        assert paypal["approve_url"].startswith(simulators.paypal.url)
        set_behaviour(simulators.paypal.url, drop=True)
        requests.post(
            f"{simulators.paypal.url}/_sim/pay/{paypal['provider_ref']}", json={}, timeout=60
        )
        poll(
            lambda: rpc.payments.get_attempt(actor, paypal["attempt_id"])["status"] == "succeeded",
            timeout=30,
        )
        listed = rpc.payments.list_attempts(actor, {"status": "succeeded"})
        assert {a["attempt_id"] for a in listed} == {first["attempt_id"], paypal["attempt_id"]}


# -- through the gateway ----------------------------------------------------------------------
@pytest.mark.skipif(
    not issubclass(GatewayService, PaymentsRoutes),
    reason="PaymentsRoutes is not mixed into GatewayService yet",
)
def test_provider_callbacks_through_the_gateway(
    amqp_uri: str, tmp_path: Path, sim_keys_dir: Path
) -> None:
    platform = Platform(amqp_uri, tmp_path, services=("payments",), gateway=True)
    sims = start_simulators(sim_keys_dir, platform.base_url)
    platform.env.update(sims.env)
    try:
        with platform:
            with platform.rpc() as rpc:
                attempt = rpc.payments.start_payment(SYSTEM.to_rpc(), {**ORDER, "method": "alipay"})
            # a forged notify gets Alipay's "failure"; the real one gets "success"
            forged = requests.post(
                f"{platform.base_url}/payments/callbacks/alipay",
                data={"out_trade_no": attempt["out_trade_no"], "trade_status": "TRADE_SUCCESS"},
                timeout=30,
            )
            assert forged.text == "failure"
            requests.post(
                f"{sims.alipay.url}/_sim/pay/{attempt['out_trade_no']}",
                json={"wait": True},
                timeout=60,
            )
            (delivery,) = sims.alipay.dispatcher.deliveries
            assert delivery.answers == ["success"]
            with platform.rpc() as rpc:
                assert (
                    rpc.payments.get_attempt(SYSTEM.to_rpc(), attempt["attempt_id"])["status"]
                    == "succeeded"
                )
            # WeChat Pay's answer format, for a tampered callback
            with platform.rpc() as rpc:
                wechat = rpc.payments.start_payment(
                    SYSTEM.to_rpc(), {**ORDER, "reference_id": "order-10"}
                )
            set_behaviour(sims.wechat.url, tamper="byte")
            requests.post(
                f"{sims.wechat.url}/_sim/pay/{wechat['out_trade_no']}",
                json={"wait": True},
                timeout=60,
            )
            (refused,) = sims.wechat.dispatcher.deliveries
            assert refused.statuses == [-401] and json.loads(refused.answers[0])["code"] == "FAIL"
    finally:
        sims.stop()

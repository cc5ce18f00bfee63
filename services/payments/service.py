"""Payments service entrypoints: parse, call, return. Rules live in application/domain."""

from __future__ import annotations

import base64
import binascii

from nameko.rpc import rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
from contracts.rpc.payments import (
    AttemptFilter,
    PaymentAttemptOut,
    ProviderCallbackIn,
    ProviderCallbackOut,
    StartPaymentIn,
)
from services.common.actor import Actor
from services.common.config import env
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.common.errors import BadRequest
from services.payments.application import PaymentsApplication

RECONCILE_INTERVAL = float(env("IOTB_PAYMENTS_RECONCILE_INTERVAL", "30"))


class PaymentsService:
    name = "payments"
    app: PaymentsApplication = Store(PaymentsApplication)

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def start_payment(self, actor: dict, payload: dict) -> dict:
        data = load(StartPaymentIn(), payload)
        return PaymentAttemptOut().dump(self.app.start_payment(Actor.from_rpc(actor), data))

    @rpc
    def get_attempt(self, actor: dict, attempt_id: str) -> dict:
        return PaymentAttemptOut().dump(self.app.get_attempt(Actor.from_rpc(actor), attempt_id))

    @rpc
    def close_attempt(self, actor: dict, attempt_id: str) -> dict:
        return PaymentAttemptOut().dump(self.app.close_attempt(Actor.from_rpc(actor), attempt_id))

    @rpc
    def list_attempts(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(AttemptFilter(), filters or {})
        return PaymentAttemptOut(many=True).dump(
            self.app.list_attempts(Actor.from_rpc(actor), data)
        )

    @rpc
    def handle_callback(self, payload: dict) -> dict:
        """A provider's notification as the gateway received it (public, unauthenticated:
        trust comes from the provider's signature, checked here)."""
        data = load(ProviderCallbackIn(), payload)
        try:
            body = base64.b64decode(data["body"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("body must be base64", {"body": ["not base64"]}) from exc
        answer = self.app.handle_callback(data["provider"], data["headers"], body)
        return ProviderCallbackOut().dump(answer)

    @rpc
    def reconcile(self) -> dict:
        return self.app.reconcile()

    # reactions
    @subscribe("devices", "company_registered")
    def on_company_registered(self, envelope: Envelope) -> None:
        self.app.record_company(envelope.sequence, envelope.data)

    @timer(interval=RECONCILE_INTERVAL)
    def reconcile_pending(self) -> None:
        self.app.reconcile()

    @timer(interval=2)
    def catch_up(self) -> None:
        self.app.catch_up()

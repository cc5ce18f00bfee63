"""Notifications service entrypoints."""

from __future__ import annotations

from nameko.rpc import rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc.notifications import DeliveryOut
from services.common.actor import Actor
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.notifications.application import NotificationsApplication


class NotificationsService:
    name = "notifications"
    app: NotificationsApplication = Store(NotificationsApplication)

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def delivery_log(self, actor: dict, company_id: str | None = None) -> list[dict]:
        return DeliveryOut(many=True).dump(self.app.delivery_log(Actor.from_rpc(actor), company_id))

    @subscribe("devices", "company_registered")
    def on_company_registered(self, envelope: Envelope) -> None:
        self.app.record_company(envelope.sequence, envelope.data)

    @subscribe("billing", "account_config_set")
    def on_account_config_set(self, envelope: Envelope) -> None:
        self.app.record_push_settings(envelope.sequence, envelope.data)

    @subscribe("devices", "renewal_applied")
    def on_renewal_applied(self, envelope: Envelope) -> None:
        self.app.renewal_receipt(envelope.id, envelope.data)

    @timer(interval=5)
    def retry_pending(self) -> None:
        self.app.retry_pending()

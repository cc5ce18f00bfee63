"""Notifications service entrypoints: other services' events in, mails out, the delivery
log by RPC. Rules live in application.py."""

from __future__ import annotations

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
from contracts.rpc.notifications import DeliveryFilter, DeliveryOut
from services.common.actor import Actor
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.notifications.application import NotificationsApplication
from services.notifications.config import NotificationSettings
from services.notifications.documents import StatementFiles

SETTINGS = NotificationSettings.from_env()


class NotificationsService:
    name = "notifications"
    app: NotificationsApplication = Store(NotificationsApplication)
    billing = RpcProxy("billing")

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True, "mail": self.app.mailer.describe}

    @rpc
    def delivery_log(self, actor: dict, filters: dict | None = None) -> list[dict]:
        query = load(DeliveryFilter(), filters or {})
        return DeliveryOut(many=True).dump(self.app.delivery_log(Actor.from_rpc(actor), query))

    @rpc
    def get_delivery(self, actor: dict, delivery_id: str) -> dict:
        return DeliveryOut().dump(self.app.delivery(Actor.from_rpc(actor), delivery_id))

    # -- facts -------------------------------------------------------------------------------
    @subscribe("devices", "company_registered")
    def on_company_registered(self, envelope: Envelope) -> None:
        self.app.record_company(envelope.sequence, envelope.data)

    @subscribe("billing", "account_config_set")
    def on_account_config_set(self, envelope: Envelope) -> None:
        self.app.record_account_config(envelope.sequence, envelope.data)

    @subscribe("billing", "account_config_deleted")
    def on_account_config_deleted(self, envelope: Envelope) -> None:
        self.app.forget_account_config(envelope.sequence, envelope.data)

    # -- mails -------------------------------------------------------------------------------
    @subscribe("billing", "order_paid")
    def on_order_paid(self, envelope: Envelope) -> None:
        self.app.order_paid(envelope)

    @subscribe("devices", "renewal_applied")
    def on_renewal_applied(self, envelope: Envelope) -> None:
        self.app.renewal_applied(envelope)

    @subscribe("billing", "account_credited")
    def on_account_credited(self, envelope: Envelope) -> None:
        self.app.account_credited(envelope)

    @subscribe("billing", "offline_application_approved")
    def on_application_approved(self, envelope: Envelope) -> None:
        self.app.application_reviewed(envelope)

    @subscribe("billing", "offline_application_returned")
    def on_application_returned(self, envelope: Envelope) -> None:
        self.app.application_reviewed(envelope)

    @subscribe("billing", "offline_application_rejected")
    def on_application_rejected(self, envelope: Envelope) -> None:
        self.app.application_reviewed(envelope)

    @subscribe("billing", "auto_renewal_failed")
    def on_auto_renewal_failed(self, envelope: Envelope) -> None:
        self.app.auto_renewal_failed(envelope)

    @subscribe("billing", "statement_issued")
    def on_statement_issued(self, envelope: Envelope) -> None:
        self.app.statement_issued(envelope, StatementFiles(self.billing, SETTINGS.rpc_timeout))

    # -- device changes, gathered into digests ------------------------------------------------
    @subscribe("devices", "device_expiring")
    def on_device_expiring(self, envelope: Envelope) -> None:
        self.app.device_expiring(envelope)

    @subscribe("devices", "device_expired")
    def on_device_expired(self, envelope: Envelope) -> None:
        self.app.device_expired(envelope)

    @subscribe("devices", "device_suspended")
    def on_device_suspended(self, envelope: Envelope) -> None:
        self.app.device_status_changed(envelope, "suspended")

    @subscribe("devices", "device_reenabled")
    def on_device_reenabled(self, envelope: Envelope) -> None:
        self.app.device_status_changed(envelope, "reenabled")

    @subscribe("devices", "device_renewed")
    def on_device_renewed(self, envelope: Envelope) -> None:
        self.app.device_renewed(envelope)

    @subscribe("devices", "device_expiry_changed")
    def on_device_expiry_changed(self, envelope: Envelope) -> None:
        self.app.device_expiry_changed(envelope)

    @timer(interval=SETTINGS.tick_seconds)
    def tick(self) -> None:
        self.app.tick()

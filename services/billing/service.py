"""Billing service entrypoints."""

from __future__ import annotations

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
from contracts.rpc.billing import (
    AccountConfigIn,
    AccountConfigOut,
    AccountOut,
    ApplicationFilter,
    OfflineApplicationIn,
    OfflineApplicationOut,
    OrderFilter,
    OrderOut,
    OrderPage,
    PayIn,
    RenewalCandidateOut,
    RenewalCenterFilter,
    RenewalOrderIn,
    ReviewIn,
)
from services.billing.application import BillingApplication
from services.common.actor import Actor
from services.common.consumer import subscribe
from services.common.dependencies import Store


class BillingService:
    name = "billing"
    app: BillingApplication = Store(BillingApplication)
    devices = RpcProxy("devices")
    catalog = RpcProxy("catalog")

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    # accounts and configs
    @rpc
    def get_account(self, actor: dict, company_id: str) -> dict:
        return AccountOut().dump(self.app.account(Actor.from_rpc(actor), company_id))

    @rpc
    def set_account_config(self, actor: dict, company_id: str, payload: dict) -> dict:
        data = load(AccountConfigIn(), payload)
        return AccountConfigOut().dump(
            self.app.set_account_config(Actor.from_rpc(actor), company_id, data)
        )

    @rpc
    def get_account_config(self, actor: dict, company_id: str) -> dict:
        return AccountConfigOut().dump(self.app.account_config(Actor.from_rpc(actor), company_id))

    # offline recharge
    @rpc
    def file_offline_application(self, actor: dict, payload: dict) -> dict:
        data = load(OfflineApplicationIn(), payload)
        return OfflineApplicationOut().dump(
            self.app.file_offline_application(Actor.from_rpc(actor), data)
        )

    @rpc
    def submit_offline_application(self, actor: dict, application_id: str) -> dict:
        return OfflineApplicationOut().dump(
            self.app.submit_offline_application(Actor.from_rpc(actor), application_id)
        )

    @rpc
    def review_offline_application(self, actor: dict, application_id: str, payload: dict) -> dict:
        data = load(ReviewIn(), payload)
        return OfflineApplicationOut().dump(
            self.app.review_offline_application(Actor.from_rpc(actor), application_id, data)
        )

    @rpc
    def get_offline_application(self, actor: dict, application_id: str) -> dict:
        return OfflineApplicationOut().dump(
            self.app.offline_application(Actor.from_rpc(actor), application_id)
        )

    @rpc
    def list_offline_applications(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(ApplicationFilter(), filters or {})
        return OfflineApplicationOut(many=True, exclude=("history",)).dump(
            self.app.list_offline_applications(Actor.from_rpc(actor), data)
        )

    # renewal center and orders
    @rpc
    def renewal_center(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(RenewalCenterFilter(), filters or {})
        return RenewalCandidateOut(many=True).dump(
            self.app.renewal_center(
                Actor.from_rpc(actor), data["within_days"], self.devices, self.catalog
            )
        )

    @rpc
    def create_renewal_order(self, actor: dict, payload: dict) -> dict:
        data = load(RenewalOrderIn(), payload)
        return OrderOut().dump(
            self.app.create_renewal_order(Actor.from_rpc(actor), data, self.devices, self.catalog)
        )

    @rpc
    def confirm_order(self, actor: dict, order_id: str) -> dict:
        return OrderOut().dump(self.app.confirm_order(Actor.from_rpc(actor), order_id))

    @rpc
    def cancel_order(self, actor: dict, order_id: str) -> dict:
        return OrderOut().dump(self.app.cancel_order(Actor.from_rpc(actor), order_id))

    @rpc
    def pay_order(self, actor: dict, order_id: str, payload: dict) -> dict:
        data = load(PayIn(), payload)
        return OrderOut().dump(self.app.pay_order(Actor.from_rpc(actor), order_id, data["method"]))

    @rpc
    def get_order(self, actor: dict, order_id: str) -> dict:
        return OrderOut().dump(self.app.order(Actor.from_rpc(actor), order_id))

    @rpc
    def list_orders(self, actor: dict, filters: dict | None = None) -> dict:
        data = load(OrderFilter(), filters or {})
        return OrderPage().dump(self.app.list_orders(Actor.from_rpc(actor), data))

    # reactions
    @subscribe("devices", "company_registered")
    def on_company_registered(self, envelope: Envelope) -> None:
        self.app.record_company(envelope.sequence, envelope.data)

    @timer(interval=2)
    def catch_up(self) -> None:
        self.app.catch_up()
